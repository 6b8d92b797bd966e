#pragma once

#include <vector>

#include "infra/pg/connection.h"

// Every SQL statement of the single-database query adapter (query_source = "write"), prepared
// on each connection by name. They answer the read model's queries with normalized joins and
// aggregates over the WRITE database's tables (orders, customers, order_lines, payments,
// shipments, products); the columns are those of the read-PG adapter's order statements, so
// the answers are identical. Timestamps travel as integer milliseconds since the Unix epoch.
namespace shopcqrs::adapters::pg_single::queries {

using infra::pg::Statement;

// Columns 0..16 as in pg_read's SHOPCQRS_ORDER_COLUMNS (column 5, the lines, is only
// computed by kGetOrder; the lists answer NULL there). `i` is the LATERAL of the lines.
#define SHOPCQRS_SINGLE_ORDER_COLUMNS(LINES)                                                      \
  "o.id::text, o.customer_id::text, c.name, c.email, o.status, " LINES                            \
  ", i.item_count, o.total_cents, (extract(epoch FROM o.placed_at) * 1000)::bigint, "             \
  "(extract(epoch FROM p.paid_at) * 1000)::bigint, "                                              \
  "(extract(epoch FROM s.shipped_at) * 1000)::bigint, "                                           \
  "(extract(epoch FROM s.delivered_at) * 1000)::bigint, "                                         \
  "(extract(epoch FROM o.cancelled_at) * 1000)::bigint, p.payment_reference, s.tracking_number, " \
  "nullif(o.cancel_reason, ''), o.version "

#define SHOPCQRS_SINGLE_ORDER_JOINS                         \
  "FROM orders o JOIN customers c ON c.id = o.customer_id " \
  "LEFT JOIN payments p ON p.order_id = o.id LEFT JOIN shipments s ON s.order_id = o.id "

#define SHOPCQRS_SINGLE_ITEM_COUNT                                                 \
  "CROSS JOIN LATERAL (SELECT coalesce(sum(l.quantity), 0)::bigint AS item_count " \
  "FROM order_lines l WHERE l.order_id = o.id) i "

#define SHOPCQRS_SINGLE_SUMMARY                         \
  "SELECT " SHOPCQRS_SINGLE_ORDER_COLUMNS("NULL::text") \
      SHOPCQRS_SINGLE_ORDER_JOINS SHOPCQRS_SINGLE_ITEM_COUNT

// One order with its lines (JSON array in line order, the shape of order_views.lines).
inline constexpr Statement kGetOrder{
    "s_get_order",
    "SELECT " SHOPCQRS_SINGLE_ORDER_COLUMNS("i.lines::text") SHOPCQRS_SINGLE_ORDER_JOINS
    "CROSS JOIN LATERAL (SELECT coalesce(sum(l.quantity), 0)::bigint AS item_count, "
    "coalesce(json_agg(json_build_object('product_id', l.product_id, 'sku', l.sku, "
    "'product_name', l.product_name, 'quantity', l.quantity, 'unit_price_cents', "
    "l.unit_price_cents, 'line_total_cents', l.quantity * l.unit_price_cents) "
    "ORDER BY l.line_no), '[]') AS lines FROM order_lines l WHERE l.order_id = o.id) i "
    "WHERE o.id = $1::uuid"};
// Keyset pages, newest first: $1 = cursor placed_at ('infinity' for the first page),
// $2 = cursor id, $3 = limit (+1 to tell whether another page follows).
inline constexpr Statement kListOrders{"s_list_orders", SHOPCQRS_SINGLE_SUMMARY
                                       "WHERE (o.placed_at, o.id) < ($1::timestamptz, $2::uuid) "
                                       "ORDER BY o.placed_at DESC, o.id DESC LIMIT $3"};
inline constexpr Statement kListOrdersByStatus{
    "s_list_orders_by_status", SHOPCQRS_SINGLE_SUMMARY
    "WHERE o.status = $4 AND (o.placed_at, o.id) < ($1::timestamptz, $2::uuid) "
    "ORDER BY o.placed_at DESC, o.id DESC LIMIT $3"};
// $5: optional status filter. Served by orders_customer_idx.
inline constexpr Statement kListOrdersByCustomer{
    "s_list_orders_by_customer", SHOPCQRS_SINGLE_SUMMARY
    "WHERE o.customer_id = $4::uuid AND (o.placed_at, o.id) < ($1::timestamptz, $2::uuid) "
    "AND ($5::text IS NULL OR o.status = $5::text) "
    "ORDER BY o.placed_at DESC, o.id DESC LIMIT $3"};
// Ranked search, the parameters and answer (rank in column 17) of pg_read's kSearchOrders: the
// words of each order are computed from the joins with the same functions (pg_write migration
// 0003), and a query word matches fuzzily when one of the order's own words of 4..64 characters
// is at distance 1 (the words the read database's dictionary holds), so both modes find and
// rank alike. No index can serve this on the normalized schema: every
// order is joined and matched.
inline constexpr Statement kSearchOrders{
    "s_search_orders",
    "WITH t AS MATERIALIZED (SELECT w.w, shopcqrs_search_term(w.w, false)::tsquery AS exact, "
    "shopcqrs_search_term(w.w, true)::tsquery AS prefix "
    "FROM (SELECT DISTINCT lower(u) AS w FROM unnest($1::text[]) AS u) AS w) "
    "SELECT " SHOPCQRS_SINGLE_ORDER_COLUMNS(
        "NULL::text") ", m.rank " SHOPCQRS_SINGLE_ORDER_JOINS SHOPCQRS_SINGLE_ITEM_COUNT
                      "CROSS JOIN LATERAL (SELECT shopcqrs_search_vector(c.name || ' ' || c.email "
                      "|| ' ' || "
                      "coalesce((SELECT string_agg(l.sku || ' ' || l.product_name, ' ' ORDER BY "
                      "l.line_no) "
                      "FROM order_lines l WHERE l.order_id = o.id), '') || ' ' || "
                      "coalesce(s.tracking_number, '')) AS v) d "
                      "CROSS JOIN LATERAL (SELECT sum(x.level)::integer AS rank, min(x.level) AS "
                      "worst FROM "
                      "(SELECT CASE WHEN d.v @@ t.exact THEN 3 WHEN d.v @@ t.prefix THEN 2 "
                      "WHEN char_length(t.w) >= 5 AND EXISTS (SELECT 1 FROM "
                      "unnest(tsvector_to_array(d.v)) AS dw "
                      "(word) WHERE char_length(dw.word) BETWEEN 4 AND 64 AND dw.word <> t.w "
                      "AND shopcqrs_search_close(dw.word, t.w)) THEN 1 ELSE 0 END AS level FROM t) "
                      "AS x) m "
                      "WHERE m.worst > 0 AND ($2::text IS NULL OR o.status = $2::text) "
                      "AND ($3::date IS NULL OR o.placed_at >= $3::date) "
                      "AND ($4::date IS NULL OR o.placed_at < $4::date + 1) "
                      "AND ($9::uuid IS NULL OR o.customer_id = $9::uuid) "
                      "AND (m.rank, o.placed_at, o.id) < ($5::integer, $6::timestamptz, $7::uuid) "
                      "ORDER BY m.rank DESC, o.placed_at DESC, o.id DESC LIMIT $8"};
// Customer statistics by aggregation over its orders.
inline constexpr Statement kGetCustomer{
    "s_get_customer",
    "SELECT c.id::text, c.name, c.email, "
    "count(o.id) FILTER (WHERE o.status <> 'cancelled'), "
    "coalesce(sum(o.total_cents) FILTER (WHERE o.status IN ('paid', 'shipped', 'delivered')), "
    "0)::bigint, c.version "
    "FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE c.id = $1::uuid "
    "GROUP BY c.id"};
// Product sales by aggregation over the lines of orders paid, shipped or delivered.
#define SHOPCQRS_SINGLE_PRODUCT_SALES                                                      \
  "coalesce(sum(l.quantity) FILTER (WHERE o.status IN ('paid', 'shipped', 'delivered')), " \
  "0)::bigint AS units_sold, "                                                             \
  "coalesce(sum(l.quantity * l.unit_price_cents) FILTER (WHERE o.status IN ('paid', "      \
  "'shipped', 'delivered')), 0)::bigint AS revenue_cents "
inline constexpr Statement kGetProduct{
    "s_get_product",
    "SELECT p.id::text, p.sku, p.name, p.price_cents, p.stock, " SHOPCQRS_SINGLE_PRODUCT_SALES
    ", p.version FROM products p LEFT JOIN order_lines l ON l.product_id = p.id "
    "LEFT JOIN orders o ON o.id = l.order_id WHERE p.id = $1::uuid GROUP BY p.id"};
inline constexpr Statement kTopProducts{
    "s_top_products", "SELECT p.id::text, p.sku, p.name, " SHOPCQRS_SINGLE_PRODUCT_SALES
                      "FROM products p LEFT JOIN order_lines l ON l.product_id = p.id "
                      "LEFT JOIN orders o ON o.id = l.order_id GROUP BY p.id "
                      "ORDER BY units_sold DESC, p.id LIMIT $1"};
// Per UTC day in [$1, $2]: orders placed (orders.placed_at), orders paid and payments
// (payments.paid_at), minus refunds (payments.refunded_at). The session runs in UTC.
inline constexpr Statement kDailySales{
    "s_daily_sales",
    "WITH d AS ("
    " SELECT placed_at::date AS day, 1 AS placed, 0 AS paid, 0::bigint AS revenue FROM orders"
    "  WHERE placed_at >= $1::date AND placed_at < $2::date + 1"
    " UNION ALL SELECT paid_at::date, 0, 1, amount_cents FROM payments"
    "  WHERE paid_at >= $1::date AND paid_at < $2::date + 1"
    " UNION ALL SELECT refunded_at::date, 0, 0, -refunded_cents FROM payments"
    "  WHERE refunded_cents > 0 AND refunded_at >= $1::date AND refunded_at < $2::date + 1), "
    "s AS (SELECT day, sum(placed)::bigint AS placed, sum(paid)::bigint AS paid, "
    " sum(revenue)::bigint AS revenue FROM d GROUP BY day) "
    "SELECT (g.day::date - date '1970-01-01'), coalesce(s.placed, 0), coalesce(s.paid, 0), "
    "coalesce(s.revenue, 0) "
    "FROM generate_series($1::date, $2::date, interval '1 day') AS g (day) "
    "LEFT JOIN s ON s.day = g.day::date ORDER BY g.day"};

#undef SHOPCQRS_SINGLE_PRODUCT_SALES
#undef SHOPCQRS_SINGLE_SUMMARY
#undef SHOPCQRS_SINGLE_ITEM_COUNT
#undef SHOPCQRS_SINGLE_ORDER_JOINS
#undef SHOPCQRS_SINGLE_ORDER_COLUMNS

inline std::vector<Statement> All() {
  return {kGetOrder,     kListOrders,  kListOrdersByStatus, kListOrdersByCustomer,
          kSearchOrders, kGetCustomer, kGetProduct,         kTopProducts,
          kDailySales};
}

}  // namespace shopcqrs::adapters::pg_single::queries
