-- Seed data for the pgbench scripts place.sql and pay.sql, on the shopcqrs WRITE database.
--
--   psql "$WRITE_DB" -v ncustomers=200 -v nproducts=500 -v norders=0 -f bench/sql/seed.sql
--
-- Rows get ids by number so that pgbench can pick them with \set:
--   customer n  <n as 8 hex digits>-0000-4000-8000-00000000000c
--   product n   <n ...>-0000-4000-8000-00000000000b   (n = 1..nproducts, stock 10^9)
--   order n     <n ...>-0000-4000-8000-00000000000a   (status placed, 3 lines, for pay.sql)
-- The number comes first because the service's per-aggregate advisory lock key is the first
-- 8 bytes of the id: a common prefix would serialize every pay on one lock.
-- Orders are numbered on from the sequence bench_pay_seq, which pay.sql advances, so every
-- pgbench pay transaction pays a distinct placed order and the script can be rerun; seed at
-- least as many orders as pay.sql will run transactions. Every row also gets its creation
-- event in the outbox (the event log), as if it had been created through the service.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
BEGIN;

INSERT INTO customers (id, name, email, version, created_at, updated_at)
SELECT (lpad(to_hex(n), 8, '0') || '-0000-4000-8000-00000000000c')::uuid,
       'Pgbench Customer ' || n, 'pgbench-c' || n || '@example.com', 1, now(), now()
  FROM generate_series(1, :ncustomers) AS n
ON CONFLICT DO NOTHING;

INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id,
                    aggregate_version, occurred_at, payload)
SELECT gen_random_uuid(), 'CustomerRegistered', 1, 'Customer', c.id, 1, c.created_at,
       json_build_object('customer_id', c.id, 'name', c.name, 'email', c.email)
  FROM customers c
 WHERE c.id::text LIKE '%-0000-4000-8000-00000000000c'
ON CONFLICT DO NOTHING;

INSERT INTO products (id, sku, name, price_cents, stock, version, created_at, updated_at)
SELECT (lpad(to_hex(n), 8, '0') || '-0000-4000-8000-00000000000b')::uuid,
       'pgbench-p' || n, 'Pgbench Product ' || n, 100 + (n * 7919) % 9900, 1000000000, 1,
       now(), now()
  FROM generate_series(1, :nproducts) AS n
ON CONFLICT DO NOTHING;

INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id,
                    aggregate_version, occurred_at, payload)
SELECT gen_random_uuid(), 'ProductAdded', 1, 'Product', p.id, 1, p.created_at,
       json_build_object('product_id', p.id, 'sku', p.sku, 'name', p.name,
                         'price_cents', p.price_cents, 'stock', p.stock)
  FROM products p
 WHERE p.id::text LIKE '%-0000-4000-8000-00000000000b'
ON CONFLICT DO NOTHING;

-- Placed orders for pay.sql: numbers first_order .. first_order + norders - 1.
CREATE SEQUENCE IF NOT EXISTS bench_pay_seq;
SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END AS first_order
  FROM bench_pay_seq \gset

CREATE TEMP TABLE bench_new_lines ON COMMIT DROP AS
SELECT (lpad(to_hex(o.n), 8, '0') || '-0000-4000-8000-00000000000a')::uuid AS order_id,
       (lpad(to_hex(1 + o.n % :ncustomers), 8, '0') || '-0000-4000-8000-00000000000c')::uuid
         AS customer_id,
       l.line_no, p.id AS product_id, p.sku, p.name, p.price_cents
  FROM generate_series(:first_order::bigint, :first_order::bigint + :norders - 1) AS o (n)
 CROSS JOIN generate_series(1, 3) AS l (line_no)
  JOIN products p
    ON p.id = (lpad(to_hex(1 + (o.n + l.line_no - 1) % :nproducts), 8, '0')
               || '-0000-4000-8000-00000000000b')::uuid;

INSERT INTO orders (id, customer_id, status, total_cents, version, placed_at, updated_at)
SELECT order_id, customer_id, 'placed', sum(price_cents), 1, now(), now()
  FROM bench_new_lines
 GROUP BY order_id, customer_id
ON CONFLICT DO NOTHING;

INSERT INTO order_lines (order_id, line_no, product_id, sku, product_name, quantity,
                         unit_price_cents)
SELECT order_id, line_no, product_id, sku, name, 1, price_cents
  FROM bench_new_lines
ON CONFLICT DO NOTHING;

INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id,
                    aggregate_version, occurred_at, payload)
SELECT gen_random_uuid(), 'OrderPlaced', 1, 'Order', order_id, 1, now(),
       json_build_object('order_id', order_id, 'customer_id', customer_id,
                         'lines', json_agg(json_build_object('product_id', product_id,
                                                             'sku', sku,
                                                             'product_name', name,
                                                             'quantity', 1,
                                                             'unit_price_cents', price_cents)
                                           ORDER BY line_no),
                         'total_cents', sum(price_cents))
  FROM bench_new_lines
 GROUP BY order_id, customer_id
ON CONFLICT DO NOTHING;

COMMIT;
ANALYZE customers, products, orders, order_lines, payments, outbox;
