-- pgbench: the flat select of one order view on the READ database, the statement behind
-- GET /v1/orders/{id} in separated mode (pg_read queries.h, r_get_order). The order is picked
-- at random from bench_order_ids (n = 1..:norders; created by scripts/bench-suite.sh from the
-- seeded dataset): one primary-key lookup more than the service does, in the same statement.
\set n random(1, :norders)
SELECT o.id::text, o.customer_id::text, o.customer_name, o.customer_email, o.status,
       o.lines::text, o.item_count, o.total_cents,
       (extract(epoch FROM o.placed_at) * 1000)::bigint,
       (extract(epoch FROM o.paid_at) * 1000)::bigint,
       (extract(epoch FROM o.shipped_at) * 1000)::bigint,
       (extract(epoch FROM o.delivered_at) * 1000)::bigint,
       (extract(epoch FROM o.cancelled_at) * 1000)::bigint, o.payment_reference,
       o.tracking_number, o.cancel_reason, o.version, o.line_text
  FROM order_views o WHERE o.id = (SELECT id FROM bench_order_ids WHERE n = :n);
