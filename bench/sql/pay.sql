-- pgbench script: the raw-SQL equivalent of one PayOrder command, on the shopcqrs write
-- database seeded by seed.sql (with norders >= the number of transactions pgbench will run).
--
--   pgbench -n -c 8 -j 2 -T 20 -f bench/sql/pay.sql
--
-- Every transaction pays a distinct placed order: the next number from the sequence
-- bench_pay_seq (order n has id <n as 8 hex digits>-0000-4000-8000-00000000000a). Same work as
-- src/adapters/pg_write/write_store.cc does for PayOrder: the per-aggregate advisory lock
-- (first 8 bytes of the id), load the order FOR NO KEY UPDATE with its lines, insert the
-- payment, move the order to paid (version-guarded), append the OrderPaid event (with the
-- lines, as the service's payload has them). Not included: the service's post-commit
-- "SELECT commit bound" (see commit_bound.sql).
-- If the seeded orders run out, the first SELECT returns no row and pgbench aborts the client.

BEGIN;

SELECT s.n AS n, o.total_cents AS total,
       pg_advisory_xact_lock(('x' || substr(translate(o.id::text, '-', ''), 1, 16))::bit(64)::bigint)
         AS locked
  FROM (SELECT nextval('bench_pay_seq') AS n) AS s
  JOIN orders o ON o.id = (lpad(to_hex(s.n), 8, '0') || '-0000-4000-8000-00000000000a')::uuid
 WHERE o.status = 'placed'
   FOR NO KEY UPDATE OF o \gset

INSERT INTO payments (order_id, amount_cents, payment_reference, paid_at)
VALUES ((lpad(to_hex(:n::bigint), 8, '0') || '-0000-4000-8000-00000000000a')::uuid, :total,
        'pgbench-' || :n::bigint, now());

UPDATE orders SET status = 'paid', version = 2, updated_at = now()
 WHERE id = (lpad(to_hex(:n::bigint), 8, '0') || '-0000-4000-8000-00000000000a')::uuid AND version = 1;

INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id,
                    aggregate_version, occurred_at, payload)
SELECT gen_random_uuid(), 'OrderPaid', 1, 'Order', o.id, 2, now(),
       json_build_object('order_id', o.id, 'customer_id', o.customer_id,
                         'amount_cents', o.total_cents,
                         'payment_reference', 'pgbench-' || :n::bigint,
                         'lines', (SELECT json_agg(json_build_object(
                                            'product_id', l.product_id, 'sku', l.sku,
                                            'product_name', l.product_name,
                                            'quantity', l.quantity,
                                            'unit_price_cents', l.unit_price_cents)
                                          ORDER BY l.line_no)
                                     FROM order_lines l WHERE l.order_id = o.id))
  FROM orders o
 WHERE o.id = (lpad(to_hex(:n::bigint), 8, '0') || '-0000-4000-8000-00000000000a')::uuid;

END;
