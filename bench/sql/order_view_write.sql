-- pgbench: the normalized join of one order view on the WRITE database, the statement behind
-- GET /v1/orders/{id} in single-database mode (pg_single queries.h, s_get_order):
-- orders ⋈ customers ⋈ payments ⋈ shipments, lines aggregated from order_lines. The order is
-- picked as in order_view_read.sql.
\set n random(1, :norders)
SELECT o.id::text, o.customer_id::text, c.name, c.email, o.status, i.lines::text,
       i.item_count, o.total_cents, (extract(epoch FROM o.placed_at) * 1000)::bigint,
       (extract(epoch FROM p.paid_at) * 1000)::bigint,
       (extract(epoch FROM s.shipped_at) * 1000)::bigint,
       (extract(epoch FROM s.delivered_at) * 1000)::bigint,
       (extract(epoch FROM o.cancelled_at) * 1000)::bigint, p.payment_reference,
       s.tracking_number, nullif(o.cancel_reason, ''), o.version
  FROM orders o JOIN customers c ON c.id = o.customer_id
  LEFT JOIN payments p ON p.order_id = o.id LEFT JOIN shipments s ON s.order_id = o.id
 CROSS JOIN LATERAL (SELECT coalesce(sum(l.quantity), 0)::bigint AS item_count,
       coalesce(json_agg(json_build_object('product_id', l.product_id, 'sku', l.sku,
         'product_name', l.product_name, 'quantity', l.quantity,
         'unit_price_cents', l.unit_price_cents,
         'line_total_cents', l.quantity * l.unit_price_cents) ORDER BY l.line_no), '[]')
         AS lines
       FROM order_lines l WHERE l.order_id = o.id) i
 WHERE o.id = (SELECT id FROM bench_order_ids WHERE n = :n);
