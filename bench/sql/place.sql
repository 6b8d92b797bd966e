-- pgbench script: the raw-SQL equivalent of one PlaceOrder command (3 lines of distinct
-- products, quantity 1), on the shopcqrs write database seeded by seed.sql.
--
--   pgbench -n -c 8 -j 2 -T 20 -D ncustomers=200 -D nproducts=500 -f bench/sql/place.sql
--
-- Same work as src/adapters/pg_write/write_store.cc does for PlaceOrder: check the customer,
-- lock the products in id order and read their prices, insert the order and its lines, take
-- the stock, append the OrderPlaced event (with the same payload) to the outbox. Not included:
-- the service's post-commit "SELECT commit bound" (see commit_bound.sql).
-- Works with -M simple (the default), extended and prepared: the order id travels between
-- statements as a transaction-local setting, not as a pgbench variable.

-- A random customer and three distinct random products: k, k+a, k+2a (mod nproducts), with
-- 0 < a <= (nproducts-1)/2 so that the three differ.
\set c random(1, :ncustomers)
\set k random(0, :nproducts - 1)
\set a random(1, (:nproducts - 1) / 2)
\set p1 1 + :k
\set p2 1 + (:k + :a) % :nproducts
\set p3 1 + (:k + 2 * :a) % :nproducts

BEGIN;

SELECT set_config('bench.order_id', gen_random_uuid()::text, true) AS order_id,
       (SELECT count(*) FROM customers
         WHERE id = (lpad(to_hex(:c::bigint), 8, '0') || '-0000-4000-8000-00000000000c')::uuid) AS customer_ok,
       sum(p.price_cents) AS total
  FROM (SELECT price_cents FROM products
         WHERE id IN ((lpad(to_hex(:p1::bigint), 8, '0') || '-0000-4000-8000-00000000000b')::uuid,
                      (lpad(to_hex(:p2::bigint), 8, '0') || '-0000-4000-8000-00000000000b')::uuid,
                      (lpad(to_hex(:p3::bigint), 8, '0') || '-0000-4000-8000-00000000000b')::uuid)
         ORDER BY id
           FOR NO KEY UPDATE) AS p \gset

INSERT INTO orders (id, customer_id, status, total_cents, version, placed_at, updated_at)
VALUES (current_setting('bench.order_id')::uuid,
        (lpad(to_hex(:c::bigint), 8, '0') || '-0000-4000-8000-00000000000c')::uuid,
        'placed', :total, 1, now(), now());

INSERT INTO order_lines (order_id, line_no, product_id, sku, product_name, quantity,
                         unit_price_cents)
SELECT current_setting('bench.order_id')::uuid, row_number() OVER (ORDER BY p.id), p.id, p.sku,
       p.name, 1, p.price_cents
  FROM products p
 WHERE p.id IN ((lpad(to_hex(:p1::bigint), 8, '0') || '-0000-4000-8000-00000000000b')::uuid,
                (lpad(to_hex(:p2::bigint), 8, '0') || '-0000-4000-8000-00000000000b')::uuid,
                (lpad(to_hex(:p3::bigint), 8, '0') || '-0000-4000-8000-00000000000b')::uuid);

UPDATE products SET stock = stock - 1, updated_at = now()
 WHERE id IN ((lpad(to_hex(:p1::bigint), 8, '0') || '-0000-4000-8000-00000000000b')::uuid,
              (lpad(to_hex(:p2::bigint), 8, '0') || '-0000-4000-8000-00000000000b')::uuid,
              (lpad(to_hex(:p3::bigint), 8, '0') || '-0000-4000-8000-00000000000b')::uuid);

INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id,
                    aggregate_version, occurred_at, payload)
SELECT gen_random_uuid(), 'OrderPlaced', 1, 'Order', o.id, 1, now(),
       json_build_object('order_id', o.id, 'customer_id', o.customer_id,
                         'lines', (SELECT json_agg(json_build_object(
                                            'product_id', l.product_id, 'sku', l.sku,
                                            'product_name', l.product_name,
                                            'quantity', l.quantity,
                                            'unit_price_cents', l.unit_price_cents)
                                          ORDER BY l.line_no)
                                     FROM order_lines l WHERE l.order_id = o.id),
                         'total_cents', o.total_cents)
  FROM orders o
 WHERE o.id = current_setting('bench.order_id')::uuid;

END;
