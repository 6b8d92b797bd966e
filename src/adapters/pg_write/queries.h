#pragma once

#include "infra/pg/connection.h"

// Every SQL statement of the write-database adapter, prepared on each connection by name.
namespace shopcqrs::adapters::pg_write::queries {

using infra::pg::Statement;

inline constexpr Statement kLockAggregate{"w_lock_aggregate",
                                          "SELECT pg_advisory_xact_lock($1::bigint)"};
inline constexpr Statement kFindIdempotencyKey{
    "w_find_idempotency_key",
    "SELECT fingerprint, result::text, commit_bound FROM idempotency_keys WHERE key = $1"};
inline constexpr Statement kInsertIdempotencyKey{
    "w_insert_idempotency_key",
    "INSERT INTO idempotency_keys (key, fingerprint, result) VALUES ($1, $2, $3::json)"};
// The statement below runs right after COMMIT, in the same pipeline: the commit bound behind
// the consistency token (every transaction that committed before has an xid below it), composed
// with the write server's epoch the session recorded when it connected (cqrs/commit_bound.h,
// kRecordSessionEpoch). It takes no xid. The outbox readers are woken by CommitNotifier, not by
// the command's session.
#define SHOPCQRS_COMMIT_BOUND                                   \
  "((current_setting('shopcqrs.write_epoch')::bigint << 44) | " \
  "pg_snapshot_xmax(pg_current_snapshot())::text::bigint)"
inline constexpr Statement kCommitBound{"w_commit_bound", "SELECT " SHOPCQRS_COMMIT_BOUND};
// The same, also recording the bound beside the idempotency key so a replay answers it.
inline constexpr Statement kRecordIdempotencyBound{
    "w_record_idempotency_bound",
    "UPDATE idempotency_keys SET commit_bound = " SHOPCQRS_COMMIT_BOUND
    " WHERE key = $1 RETURNING commit_bound"};
#undef SHOPCQRS_COMMIT_BOUND
// Run once per connection: the epoch of the write server's current start, kept in the session.
inline constexpr const char* kRecordSessionEpoch =
    "SELECT set_config('shopcqrs.write_epoch', shopcqrs_write_epoch()::text, false)";

inline constexpr Statement kLoadCustomer{
    "w_load_customer",
    "SELECT name, email, version FROM customers WHERE id = $1 FOR NO KEY UPDATE"};
inline constexpr Statement kCustomerExists{"w_customer_exists",
                                           "SELECT 1 FROM customers WHERE id = $1"};
inline constexpr Statement kInsertCustomer{
    "w_insert_customer",
    "INSERT INTO customers (id, name, email, version, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $5)"};
inline constexpr Statement kUpdateCustomer{
    "w_update_customer",
    "UPDATE customers SET name = $2, email = $3, version = $4, updated_at = $5 "
    "WHERE id = $1 AND version = $6"};

inline constexpr Statement kLoadProduct{
    "w_load_product",
    "SELECT id, sku, name, price_cents, stock, version FROM products WHERE id = $1"};
inline constexpr Statement kLoadProductsForUpdate{
    "w_load_products_for_update",
    "SELECT id, sku, name, price_cents, stock, version FROM products "
    "WHERE id = ANY ($1::uuid[]) ORDER BY id FOR NO KEY UPDATE"};
inline constexpr Statement kInsertProduct{
    "w_insert_product",
    "INSERT INTO products (id, sku, name, price_cents, stock, version, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"};
inline constexpr Statement kUpdateProduct{
    "w_update_product",
    "UPDATE products SET sku = $2, name = $3, price_cents = $4, stock = $5, version = $6, "
    "updated_at = $7 WHERE id = $1 AND version = $8"};
inline constexpr Statement kUpdateStock{
    "w_update_stock",
    "UPDATE products p SET stock = v.stock, updated_at = $3 "
    "FROM unnest($1::uuid[], $2::bigint[]) AS v (id, stock) WHERE p.id = v.id"};

inline constexpr Statement kLoadOrder{
    "w_load_order",
    "SELECT customer_id, status, total_cents, version FROM orders WHERE id = $1 "
    "FOR NO KEY UPDATE"};
inline constexpr Statement kLoadOrderLines{
    "w_load_order_lines",
    "SELECT product_id, sku, product_name, quantity, unit_price_cents FROM order_lines "
    "WHERE order_id = $1 ORDER BY line_no"};
inline constexpr Statement kInsertOrder{
    "w_insert_order",
    "INSERT INTO orders (id, customer_id, status, total_cents, version, placed_at, updated_at) "
    "VALUES ($1, $2, 'placed', $3, $4, $5, $5)"};
inline constexpr Statement kInsertOrderLines{
    "w_insert_order_lines",
    "INSERT INTO order_lines (order_id, line_no, product_id, sku, product_name, quantity, "
    "unit_price_cents) SELECT $1, l.n, l.product_id, l.sku, l.product_name, l.quantity, "
    "l.unit_price_cents FROM unnest($2::uuid[], $3::text[], $4::text[], $5::bigint[], "
    "$6::bigint[]) WITH ORDINALITY AS l (product_id, sku, product_name, quantity, "
    "unit_price_cents, n)"};
inline constexpr Statement kUpdateOrder{
    "w_update_order",
    "UPDATE orders SET status = $2, version = $3, updated_at = $4 "
    "WHERE id = $1 AND version = $5"};
inline constexpr Statement kCancelOrder{
    "w_cancel_order",
    "UPDATE orders SET status = 'cancelled', version = $2, updated_at = $3, cancelled_at = $3, "
    "cancel_reason = $4 WHERE id = $1 AND version = $5"};
inline constexpr Statement kInsertPayment{
    "w_insert_payment",
    "INSERT INTO payments (order_id, amount_cents, payment_reference, paid_at) "
    "VALUES ($1, $2, $3, $4)"};
inline constexpr Statement kRefundPayment{
    "w_refund_payment",
    "UPDATE payments SET refunded_cents = $2, refunded_at = $3 WHERE order_id = $1"};
inline constexpr Statement kInsertShipment{
    "w_insert_shipment",
    "INSERT INTO shipments (order_id, tracking_number, shipped_at) VALUES ($1, $2, $3)"};
inline constexpr Statement kDeliverShipment{
    "w_deliver_shipment", "UPDATE shipments SET delivered_at = $2 WHERE order_id = $1"};

inline constexpr Statement kAppendEvent{
    "w_append_event",
    "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id, "
    "aggregate_version, occurred_at, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json)"};

inline const std::vector<Statement>& All() {
  static const std::vector<Statement> kAll = {kLockAggregate,
                                              kFindIdempotencyKey,
                                              kInsertIdempotencyKey,
                                              kRecordIdempotencyBound,
                                              kCommitBound,
                                              kLoadCustomer,
                                              kCustomerExists,
                                              kInsertCustomer,
                                              kUpdateCustomer,
                                              kLoadProduct,
                                              kLoadProductsForUpdate,
                                              kInsertProduct,
                                              kUpdateProduct,
                                              kUpdateStock,
                                              kLoadOrder,
                                              kLoadOrderLines,
                                              kInsertOrder,
                                              kInsertOrderLines,
                                              kUpdateOrder,
                                              kCancelOrder,
                                              kInsertPayment,
                                              kRefundPayment,
                                              kInsertShipment,
                                              kDeliverShipment,
                                              kAppendEvent};
  return kAll;
}

}  // namespace shopcqrs::adapters::pg_write::queries
