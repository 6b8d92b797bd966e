-- Seed data for the search benchmark (scripts/bench-search.sh), written straight into a migrated
-- READ database: :norders orders (default 200000) of :ncustomers customers (norders / 10) over
-- 2000 products, as the read_pg and search projections would have stored them (order_views,
-- customer_views, search_customers, search_orders; search_words is filled by its trigger). It
-- replaces what is there. Then bench_search_queries holds :nqueries (default 10000) queries of one
-- or two words sampled from the documents (customer names, product names, SKUs, tracking
-- numbers), 20% of their words misspelt by one letter (substituted, dropped or doubled; only
-- words of 5+ letters, the others cannot match fuzzily); shopcqrs-bench search --queries and the
-- pgbench script bench/sql/search.sql draw from them.
--
--   psql "$READ_DB" -v norders=200000 -v nqueries=10000 -f bench/sql/search_seed.sql
\set ON_ERROR_STOP on
SET client_min_messages = warning;
\if :{?norders}
\else
  \set norders 200000
\endif
\if :{?nqueries}
\else
  \set nqueries 10000
\endif
SELECT setseed(0.42);
TRUNCATE order_views, customer_views, search_customers, search_orders, search_words;

CREATE TEMP TABLE first_names AS
SELECT row_number() OVER () AS n, w FROM unnest(string_to_array(
  'Ada Alan Alice Amara Anton Beatrix Boris Carla Cedric Clara Daniel Dora Edgar Elena Emil '
  'Fatima Felix Frida Gustav Greta Hannah Hugo Ingrid Isaac Jasper Julia Karim Klara Lars Lena '
  'Marco Maria Nadia Niklas Olga Oscar Paula Pedro Quentin Rosa Rafael Sofia Stefan Tamara '
  'Tobias Ursula Viktor Wanda Xavier Yasmin Zora', ' ')) AS w;
CREATE TEMP TABLE syllables AS
SELECT row_number() OVER () - 1 AS n, s FROM unnest(string_to_array(
  'ber,can,dor,fel,gan,hol,jas,kor,lem,mar,nor,pel,ros,sal,tin,var,wen,zel,bri,dra', ',')) AS s;
CREATE TEMP TABLE adjectives AS
SELECT row_number() OVER () - 1 AS n, w FROM unnest(string_to_array(
  'Amber Arctic Bold Brass Classic Cobalt Compact Copper Crimson Deluxe Dusty Electric Emerald '
  'Golden Granite Heavy Ivory Jade Lunar Marble Matte Midnight Modern Nordic Olive Onyx Polar '
  'Rapid Royal Rustic Sable Scarlet Silver Smart Solar Steel Swift Urban Velvet Vintage', ' '))
  AS w;
CREATE TEMP TABLE nouns AS
SELECT row_number() OVER () - 1 AS n, w FROM unnest(string_to_array(
  'Anchor Backpack Blender Bottle Bracket Camera Candle Carafe Charger Clock Compass Cushion '
  'Drill Earbuds Easel Fountain Gadget Grinder Hammer Helmet Jacket Kettle Keyboard Lamp '
  'Lantern Ladder Mirror Monitor Mixer Notebook Organizer Pillow Planter Printer Router Sandal '
  'Scanner Shovel Speaker Stapler Tablet Teapot Thermos Toaster Tripod Umbrella Wallet Watch '
  'Whisk Widget', ' ')) AS w;

CREATE TEMP TABLE products AS
SELECT n, 'SKU-' || lpad(n::text, 5, '0') AS sku,
       (SELECT w FROM adjectives WHERE adjectives.n = (p.n * 7) % 40) || ' '
       || (SELECT w FROM nouns WHERE nouns.n = p.n % 50) || CASE WHEN p.n % 3 = 0 THEN ' Pro'
                                                                  ELSE '' END AS name,
       100 + (n * 7919) % 9900 AS price
FROM generate_series(1, 2000) AS p (n);

-- Customers: a first name and a surname of three syllables (8000 surnames).
INSERT INTO customer_views (id, name, email, order_count, lifetime_value_cents, version)
SELECT (lpad(to_hex(g.n), 8, '0') || '-0000-4000-8000-00000000000c')::uuid,
       f.w || ' ' || initcap(s1.s || s2.s || s3.s),
       lower(f.w) || '.' || s1.s || s2.s || s3.s || g.n || '@example.com', 0, 0, 1
FROM generate_series(1, greatest(:norders / 10, 1)) AS g (n)
JOIN first_names f ON f.n = 1 + (g.n * 31) % 50
JOIN syllables s1 ON s1.n = (g.n / 7) % 20
JOIN syllables s2 ON s2.n = (g.n / 140) % 20
JOIN syllables s3 ON s3.n = (g.n * 13) % 20;
INSERT INTO search_customers (id, name, email, version)
SELECT id, name, email, version FROM customer_views;

CREATE TEMP TABLE gen AS
SELECT n, (lpad(to_hex(n), 8, '0') || '-0000-4000-8000-00000000000a')::uuid AS id,
       1 + floor(random() * greatest(:norders / 10, 1))::int AS customer,
       1 + floor(random() * 3)::int AS nlines,
       date_trunc('milliseconds', timestamptz '2026-01-01' + (n::float8 / :norders) * interval '330 days')
         AS placed_at,
       (ARRAY['placed', 'paid', 'shipped', 'delivered', 'cancelled'])[1 + floor(random() * 5)::int]
         AS status
FROM generate_series(1, :norders) AS n;
CREATE TEMP TABLE gen_lines AS
SELECT x.n, x.l, p.sku, p.name, p.price, p.n AS pn
FROM (SELECT g.n, l, 1 + floor(random() * 2000)::int AS pick
      FROM gen g, generate_series(1, g.nlines) AS l) AS x
JOIN products p ON p.n = x.pick;
CREATE INDEX ON gen_lines (n);

INSERT INTO order_views (id, customer_id, customer_name, customer_email, status, lines,
                         item_count, total_cents, placed_at, paid_at, shipped_at, delivered_at,
                         cancelled_at, payment_reference, tracking_number, cancel_reason, version,
                         line_text)
SELECT g.id, c.id, c.name, c.email, g.status,
       (SELECT jsonb_agg(jsonb_build_object('product_id', (lpad(to_hex(l.pn), 8, '0')
                         || '-0000-4000-8000-00000000000b'), 'sku', l.sku, 'product_name', l.name,
                         'quantity', 1, 'unit_price_cents', l.price, 'line_total_cents', l.price)
                         ORDER BY l.l) FROM gen_lines l WHERE l.n = g.n),
       g.nlines, (SELECT sum(price) FROM gen_lines l WHERE l.n = g.n), g.placed_at,
       CASE WHEN g.status IN ('paid', 'shipped', 'delivered') THEN g.placed_at END,
       CASE WHEN g.status IN ('shipped', 'delivered') THEN g.placed_at END,
       CASE WHEN g.status = 'delivered' THEN g.placed_at END,
       CASE WHEN g.status = 'cancelled' THEN g.placed_at END,
       CASE WHEN g.status IN ('paid', 'shipped', 'delivered') THEN 'PAY-' || g.n END,
       CASE WHEN g.status IN ('shipped', 'delivered')
            THEN 'TRK' || lpad(((g.n::bigint * 2654435761) % 10000000000)::text, 10, '0') END,
       NULL,
       CASE g.status WHEN 'placed' THEN 1 WHEN 'paid' THEN 2 WHEN 'shipped' THEN 3
                     WHEN 'delivered' THEN 4 ELSE 2 END,
       (SELECT string_agg(l.sku || ' ' || l.name, ' ' ORDER BY l.l) FROM gen_lines l
        WHERE l.n = g.n)
FROM gen g JOIN customer_views c
  ON c.id = (lpad(to_hex(g.customer), 8, '0') || '-0000-4000-8000-00000000000c')::uuid;

INSERT INTO search_orders (id, customer_id, line_text, tracking_number, placed_at, version,
                           document)
SELECT o.id, o.customer_id, o.line_text, o.tracking_number, o.placed_at,
       CASE WHEN o.tracking_number IS NULL THEN 1 ELSE 3 END,
       coalesce(c.name, '') || ' ' || coalesce(c.email, '') || ' ' || o.line_text || ' '
       || coalesce(o.tracking_number, '')
FROM order_views o LEFT JOIN search_customers c ON c.id = o.customer_id;

-- The queries: one or two words of a random order's document.
DROP TABLE IF EXISTS bench_search_queries;
CREATE TABLE bench_search_queries (n integer PRIMARY KEY, words text[] NOT NULL, q text NOT NULL);
CREATE TEMP TABLE picks AS
SELECT q.n, s.document, q.nwords
FROM (SELECT n, 1 + floor(random() * :norders)::int AS k, 1 + floor(random() * 2)::int AS nwords
      FROM generate_series(1, :nqueries) AS n) AS q
JOIN search_orders s ON s.id = (lpad(to_hex(q.k), 8, '0') || '-0000-4000-8000-00000000000a')::uuid;
CREATE TEMP TABLE picked AS
SELECT p.n, i, w.word, random() < 0.2 AND char_length(w.word) >= 5 AS misspell,
       floor(random() * 3)::int AS how, random() AS at
FROM picks p, generate_series(1, p.nwords) AS i,
     LATERAL (SELECT t.word FROM unnest(regexp_split_to_array(p.document, '\s+')) AS t (word)
              WHERE t.word <> '' AND t.word !~ '@' AND t.word <> 'Pro' AND i > 0
              ORDER BY random() LIMIT 1) AS w;
INSERT INTO bench_search_queries (n, words, q)
SELECT n, array_agg(lower(word) ORDER BY i), string_agg(word, ' ' ORDER BY i)
FROM (SELECT n, i, CASE WHEN NOT misspell THEN word
                        ELSE overlay(word PLACING CASE how WHEN 0 THEN 'q' WHEN 1 THEN ''
                               ELSE substr(word, 2 + floor(at * (char_length(word) - 2))::int, 1)
                                    || substr(word, 2 + floor(at * (char_length(word) - 2))::int, 1)
                               END
                             FROM 2 + floor(at * (char_length(word) - 2))::int FOR 1) END AS word
      FROM picked) AS m
GROUP BY n;
ANALYZE;
SELECT count(*) AS orders, (SELECT count(*) FROM search_words) AS words,
       (SELECT count(*) FROM bench_search_queries) AS queries FROM search_orders;
