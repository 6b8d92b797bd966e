#pragma once

#include <string_view>
#include <vector>

#include "infra/pg/connection.h"

// Every SQL statement of the read-database adapter, prepared on each connection by name.
// Timestamps travel as integer milliseconds since the Unix epoch (exact both ways).
namespace shopcqrs::adapters::pg_read::queries {

using infra::pg::Statement;

// ---- projections (writes; one transaction per batch) ----
// Checkpoint statements shared by the projections of the read database (projection_support.h).

// The compare-and-set that opens every batch transaction (migration 0004): creates the row if
// missing, locks it and raises SQLSTATE kCheckpointMovedState unless it holds ($2, $3, $4).
inline constexpr Statement kClaimCheckpoint{"r_claim_checkpoint",
                                            "SELECT shopcqrs_claim_checkpoint($1, $2, $3, $4)"};
inline constexpr std::string_view kCheckpointMovedState = "SC409";
inline constexpr Statement kLoadCheckpoint{
    "r_load_checkpoint", "SELECT xid, position, bound FROM projection_checkpoints WHERE name = $1"};
// Runs after kClaimCheckpoint in the same transaction: the row holds the batch's starting
// checkpoint, so this moves it exactly to the batch's end. $5, the events applied, counts only
// when the position moves (a test may hand a batch in again from its own end).
inline constexpr Statement kStoreCheckpoint{
    "r_store_checkpoint",
    "UPDATE projection_checkpoints SET xid = $2, position = $3, bound = $4, "
    "events = events + CASE WHEN (xid, position) < ($2, $3) THEN $5 ELSE 0 END, "
    "updated_at = now() WHERE name = $1"};
// Building from zero (migration 0005): the secondary indexes of order_views are dropped in the
// first batch's transaction and created again once the projector has caught up.
inline constexpr Statement kDeferIndexes{
    "r_defer_indexes", "SELECT shopcqrs_defer_indexes($1, ARRAY['order_views']::regclass[])"};
inline constexpr Statement kRestoreIndexes{"r_restore_indexes",
                                           "SELECT shopcqrs_restore_indexes($1)"};
// Payload "<name>:<bound>:<dead-letter generation>" ($1 = "<name>:<bound>", $2 the name).
inline constexpr Statement kNotifyProgress{
    "r_notify_progress",
    "SELECT pg_notify('shopcqrs_progress', $1 || ':' || dead_letter_generation) "
    "FROM projection_checkpoints WHERE name = $2"};

// ---- dead letters (migration 0008) ----
// $2: JSON array of {position, xid, aggregate_type, aggregate_id, event_id, event_type,
// schema_version, aggregate_version, occurred_at_ms, committed_at_ms, payload, error, keys}.
inline constexpr Statement kParkEvents{
    "r_park_events",
    "INSERT INTO dead_letters (projection, position, xid, aggregate_type, aggregate_id, event_id, "
    "event_type, schema_version, aggregate_version, occurred_at_ms, committed_at_ms, payload, "
    "error, keys) "
    "SELECT $1, position, xid, aggregate_type, aggregate_id, event_id, event_type, "
    "schema_version, aggregate_version, occurred_at_ms, committed_at_ms, payload, error, keys "
    "FROM json_to_recordset($2::json) AS x (position bigint, xid bigint, aggregate_type text, "
    "aggregate_id text, event_id text, event_type text, schema_version integer, "
    "aggregate_version bigint, occurred_at_ms bigint, committed_at_ms bigint, payload text, "
    "error text, keys text[]) "
    "ON CONFLICT (projection, position) DO NOTHING"};
inline constexpr Statement kReleaseAggregate{
    "r_release_aggregate", "DELETE FROM dead_letters WHERE projection = $1 AND aggregate_id = $2"};
inline constexpr Statement kAddSkip{
    "r_add_skip",
    "INSERT INTO projection_skips (projection, position, xid, event_id, aggregate_type, "
    "aggregate_id, aggregate_version, skipped_by, skipped_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9::bigint / 1000.0)) "
    "ON CONFLICT (projection, position) DO NOTHING"};
inline constexpr Statement kBumpDeadLetterGeneration{
    "r_bump_dead_letter_generation",
    "UPDATE projection_checkpoints SET dead_letter_generation = dead_letter_generation + 1 "
    "WHERE name = $1"};
// One row per parked event, in log order.
inline constexpr Statement kLoadDeadLetters{
    "r_load_dead_letters",
    "SELECT position, xid, aggregate_type, aggregate_id, error, array_to_json(keys)::text, "
    "(extract(epoch FROM parked_at) * 1000)::bigint FROM dead_letters WHERE projection = $1 "
    "ORDER BY position"};
inline constexpr Statement kLoadParkedEvents{
    "r_load_parked_events",
    "SELECT position, xid, event_id, event_type, schema_version, aggregate_type, aggregate_id, "
    "aggregate_version, occurred_at_ms, committed_at_ms, payload FROM dead_letters "
    "WHERE projection = $1 AND aggregate_id = $2 ORDER BY position"};
inline constexpr Statement kLoadSkips{
    "r_load_skips",
    "SELECT position, xid, event_id, aggregate_type, aggregate_id, skipped_by, "
    "(extract(epoch FROM skipped_at) * 1000)::bigint, aggregate_version FROM projection_skips "
    "WHERE projection = $1 "
    "ORDER BY position"};
// A retry re-applies parked events behind the checkpoint (which then stays): they count too.
inline constexpr Statement kCountRetried{
    "r_count_retried", "UPDATE projection_checkpoints SET events = events + $2 WHERE name = $1"};
inline constexpr Statement kDeadLetterGeneration{
    "r_dead_letter_generation",
    "SELECT dead_letter_generation FROM projection_checkpoints WHERE name = $1"};

#define SHOPCQRS_ORDER_COLUMNS                                                                    \
  "o.id::text, o.customer_id::text, o.customer_name, o.customer_email, o.status, "                \
  "o.lines::text, o.item_count, o.total_cents, "                                                  \
  "(extract(epoch FROM o.placed_at) * 1000)::bigint, "                                            \
  "(extract(epoch FROM o.paid_at) * 1000)::bigint, "                                              \
  "(extract(epoch FROM o.shipped_at) * 1000)::bigint, "                                           \
  "(extract(epoch FROM o.delivered_at) * 1000)::bigint, "                                         \
  "(extract(epoch FROM o.cancelled_at) * 1000)::bigint, o.payment_reference, o.tracking_number, " \
  "o.cancel_reason, o.version, o.line_text "

// The lean load of the orders a batch touches: what the events of an order already in the
// store change or read (its lifecycle columns, customer and total), not what placing fixed (lines,
// line_text, item count, placed_at): an existing row is written back by kUpdateOrders, which
// leaves those columns alone.
inline constexpr Statement kLoadOrders{
    "r_load_orders",
    "SELECT o.id::text, o.customer_id::text, o.customer_name, o.customer_email, o.status, "
    "o.total_cents, (extract(epoch FROM o.paid_at) * 1000)::bigint, "
    "(extract(epoch FROM o.shipped_at) * 1000)::bigint, "
    "(extract(epoch FROM o.delivered_at) * 1000)::bigint, "
    "(extract(epoch FROM o.cancelled_at) * 1000)::bigint, o.payment_reference, o.tracking_number, "
    "o.cancel_reason, o.version FROM order_views o WHERE o.id = ANY ($1::uuid[])"};
inline constexpr Statement kLoadCustomers{
    "r_load_customers",
    "SELECT id::text, name, email, order_count, lifetime_value_cents, version, 1::bigint "
    "FROM customer_views WHERE id = ANY ($1::uuid[])"};
inline constexpr Statement kLoadProducts{
    "r_load_products",
    "SELECT id::text, sku, name, price_cents, stock, units_sold, revenue_cents, version "
    "FROM product_views WHERE id = ANY ($1::uuid[])"};

// The set-based writes take their rows from a JSON parameter (small batches: one statement, no
// extra round trip) or, in large batches, from session staging tables filled by COPY (no JSON for
// the server to parse): the same columns and the same statement bodies either way.
//
// Orders placed in the batch: whole rows (upsert).
#define SHOPCQRS_ORDER_ROW_COLUMNS                                                         \
  "(id uuid, customer_id uuid, customer_name text, customer_email text, status text, "     \
  "lines jsonb, item_count bigint, total_cents bigint, placed_at bigint, paid_at bigint, " \
  "shipped_at bigint, delivered_at bigint, cancelled_at bigint, payment_reference text, "  \
  "tracking_number text, cancel_reason text, version bigint, line_text text)"
#define SHOPCQRS_ORDER_UPSERT_INSERT                                                       \
  "INSERT INTO order_views AS o (id, customer_id, customer_name, customer_email, status, " \
  "lines, item_count, total_cents, placed_at, paid_at, shipped_at, delivered_at, "         \
  "cancelled_at, payment_reference, tracking_number, cancel_reason, version, line_text) "  \
  "SELECT r.id, r.customer_id, r.customer_name, r.customer_email, r.status, r.lines, "     \
  "r.item_count, r.total_cents, "                                                          \
  "timestamptz 'epoch' + r.placed_at * interval '1 millisecond', "                         \
  "timestamptz 'epoch' + r.paid_at * interval '1 millisecond', "                           \
  "timestamptz 'epoch' + r.shipped_at * interval '1 millisecond', "                        \
  "timestamptz 'epoch' + r.delivered_at * interval '1 millisecond', "                      \
  "timestamptz 'epoch' + r.cancelled_at * interval '1 millisecond', "                      \
  "r.payment_reference, r.tracking_number, r.cancel_reason, r.version, r.line_text "
#define SHOPCQRS_ORDER_UPSERT_CONFLICT                                                   \
  " ON CONFLICT (id) DO UPDATE SET customer_id = excluded.customer_id, "                 \
  "customer_name = excluded.customer_name, customer_email = excluded.customer_email, "   \
  "status = excluded.status, lines = excluded.lines, item_count = excluded.item_count, " \
  "total_cents = excluded.total_cents, placed_at = excluded.placed_at, "                 \
  "paid_at = excluded.paid_at, shipped_at = excluded.shipped_at, "                       \
  "delivered_at = excluded.delivered_at, cancelled_at = excluded.cancelled_at, "         \
  "payment_reference = excluded.payment_reference, "                                     \
  "tracking_number = excluded.tracking_number, cancel_reason = excluded.cancel_reason, " \
  "version = excluded.version, line_text = excluded.line_text"
// Orders already in the store: their lifecycle columns only (what kLoadOrders loaded). The SET
// names the unchanged key columns too: an UPDATE that leaves an index's columns alone makes
// btree try a bottom-up deletion pass (heap visits) before every leaf split, which costs a
// catch-up batch far more than the splits it saves (measured: a third of the statement's time).
#define SHOPCQRS_ORDER_UPDATE_COLUMNS                                                     \
  "(id uuid, customer_name text, customer_email text, status text, paid_at bigint, "      \
  "shipped_at bigint, delivered_at bigint, cancelled_at bigint, payment_reference text, " \
  "tracking_number text, cancel_reason text, version bigint)"
#define SHOPCQRS_ORDER_UPDATE_SET                                                              \
  "UPDATE order_views o SET id = o.id, customer_id = o.customer_id, placed_at = o.placed_at, " \
  "customer_name = r.customer_name, "                                                          \
  "customer_email = r.customer_email, status = r.status, "                                     \
  "paid_at = timestamptz 'epoch' + r.paid_at * interval '1 millisecond', "                     \
  "shipped_at = timestamptz 'epoch' + r.shipped_at * interval '1 millisecond', "               \
  "delivered_at = timestamptz 'epoch' + r.delivered_at * interval '1 millisecond', "           \
  "cancelled_at = timestamptz 'epoch' + r.cancelled_at * interval '1 millisecond', "           \
  "payment_reference = r.payment_reference, tracking_number = r.tracking_number, "             \
  "cancel_reason = r.cancel_reason, version = r.version "
#define SHOPCQRS_CUSTOMER_ROW_COLUMNS                                                  \
  "(id uuid, name text, email text, order_count bigint, lifetime_value_cents bigint, " \
  "version bigint)"
#define SHOPCQRS_CUSTOMER_UPSERT_INSERT                                                       \
  "INSERT INTO customer_views (id, name, email, order_count, lifetime_value_cents, version) " \
  "SELECT r.id, r.name, r.email, r.order_count, r.lifetime_value_cents, r.version "
#define SHOPCQRS_CUSTOMER_UPSERT_CONFLICT                                                      \
  " ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, "             \
  "order_count = excluded.order_count, lifetime_value_cents = excluded.lifetime_value_cents, " \
  "version = excluded.version"
#define SHOPCQRS_PRODUCT_ROW_COLUMNS                                                     \
  "(id uuid, sku text, name text, price_cents bigint, stock bigint, units_sold bigint, " \
  "revenue_cents bigint, version bigint)"
#define SHOPCQRS_PRODUCT_UPSERT_INSERT                                                        \
  "INSERT INTO product_views (id, sku, name, price_cents, stock, units_sold, revenue_cents, " \
  "version) SELECT r.id, r.sku, r.name, r.price_cents, r.stock, r.units_sold, "               \
  "r.revenue_cents, r.version "
#define SHOPCQRS_PRODUCT_UPSERT_CONFLICT                                       \
  " ON CONFLICT (id) DO UPDATE SET sku = excluded.sku, name = excluded.name, " \
  "price_cents = excluded.price_cents, stock = excluded.stock, "               \
  "units_sold = excluded.units_sold, revenue_cents = excluded.revenue_cents, " \
  "version = excluded.version"

// Whole-row upserts and lifecycle updates from a JSON array of rows (absolute values computed by
// the projection while it holds the checkpoint lock).
inline constexpr Statement kUpsertOrders{
    "r_upsert_orders",
    SHOPCQRS_ORDER_UPSERT_INSERT "FROM json_to_recordset($1::json) AS r " SHOPCQRS_ORDER_ROW_COLUMNS
        SHOPCQRS_ORDER_UPSERT_CONFLICT};
inline constexpr Statement kUpdateOrders{
    "r_update_orders", SHOPCQRS_ORDER_UPDATE_SET
    "FROM json_to_recordset($1::json) AS r " SHOPCQRS_ORDER_UPDATE_COLUMNS " WHERE o.id = r.id"};
inline constexpr Statement kUpsertCustomers{
    "r_upsert_customers", SHOPCQRS_CUSTOMER_UPSERT_INSERT
    "FROM json_to_recordset($1::json) AS r " SHOPCQRS_CUSTOMER_ROW_COLUMNS
        SHOPCQRS_CUSTOMER_UPSERT_CONFLICT};
inline constexpr Statement kUpsertProducts{
    "r_upsert_products", SHOPCQRS_PRODUCT_UPSERT_INSERT
    "FROM json_to_recordset($1::json) AS r " SHOPCQRS_PRODUCT_ROW_COLUMNS
        SHOPCQRS_PRODUCT_UPSERT_CONFLICT};

// The staging tables of large batches: the session's temporary tables, emptied at every commit
// of a transaction that used them. Simple-query text, not prepared (the tables exist only once
// created): kCreateStages, then COPY into the stages that have rows (and kCopyNewOrders), then
// the statements from the stages in the batch's write pipeline. The stages have no statistics: the
// joins of the batch go by index lookups (a hash join would scan the whole view table for every
// batch).
inline constexpr const char* kCreateStages =
    "SET LOCAL client_min_messages = warning; SET LOCAL enable_hashjoin = off; "
    "SET LOCAL enable_mergejoin = off; "
    "CREATE TEMP TABLE IF NOT EXISTS order_updates_stage " SHOPCQRS_ORDER_UPDATE_COLUMNS
    " ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS customer_views_stage " SHOPCQRS_CUSTOMER_ROW_COLUMNS
    " ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS product_views_stage " SHOPCQRS_PRODUCT_ROW_COLUMNS
    " ON COMMIT DELETE ROWS";
// Orders placed in a large batch go by COPY straight into order_views (timestamps as text): the
// load showed them absent, and under the checkpoint lock nothing else writes them.
inline constexpr const char* kCopyNewOrders =
    "COPY order_views (id, customer_id, customer_name, customer_email, status, lines, item_count, "
    "total_cents, placed_at, paid_at, shipped_at, delivered_at, cancelled_at, payment_reference, "
    "tracking_number, cancel_reason, version, line_text) FROM STDIN";
inline constexpr const char* kCopyOrderUpdateStage = "COPY order_updates_stage FROM STDIN";
inline constexpr const char* kCopyCustomerStage = "COPY customer_views_stage FROM STDIN";
inline constexpr const char* kCopyProductStage = "COPY product_views_stage FROM STDIN";
inline constexpr const char* kUpdateOrdersFromStage =
    SHOPCQRS_ORDER_UPDATE_SET "FROM order_updates_stage AS r WHERE o.id = r.id";
inline constexpr const char* kUpsertCustomersFromStage = SHOPCQRS_CUSTOMER_UPSERT_INSERT
    "FROM customer_views_stage AS r" SHOPCQRS_CUSTOMER_UPSERT_CONFLICT;
inline constexpr const char* kUpsertProductsFromStage =
    SHOPCQRS_PRODUCT_UPSERT_INSERT "FROM product_views_stage AS r" SHOPCQRS_PRODUCT_UPSERT_CONFLICT;
#undef SHOPCQRS_ORDER_ROW_COLUMNS
#undef SHOPCQRS_ORDER_UPSERT_INSERT
#undef SHOPCQRS_ORDER_UPSERT_CONFLICT
#undef SHOPCQRS_ORDER_UPDATE_COLUMNS
#undef SHOPCQRS_ORDER_UPDATE_SET
#undef SHOPCQRS_CUSTOMER_ROW_COLUMNS
#undef SHOPCQRS_CUSTOMER_UPSERT_INSERT
#undef SHOPCQRS_CUSTOMER_UPSERT_CONFLICT
#undef SHOPCQRS_PRODUCT_ROW_COLUMNS
#undef SHOPCQRS_PRODUCT_UPSERT_INSERT
#undef SHOPCQRS_PRODUCT_UPSERT_CONFLICT

// Deltas per UTC day (days since 1970-01-01).
inline constexpr Statement kAddDailySales{
    "r_add_daily_sales",
    "INSERT INTO daily_sales AS d (date, orders_placed, orders_paid, revenue_cents) "
    "SELECT date '1970-01-01' + r.day, r.placed, r.paid, r.revenue "
    "FROM json_to_recordset($1::json) AS r (day integer, placed bigint, paid bigint, "
    "revenue bigint) "
    "ON CONFLICT (date) DO UPDATE SET orders_placed = d.orders_placed + excluded.orders_placed, "
    "orders_paid = d.orders_paid + excluded.orders_paid, "
    "revenue_cents = d.revenue_cents + excluded.revenue_cents"};
// A customer's current details reach all of its order views.
inline constexpr Statement kPropagateCustomers{
    "r_propagate_customers",
    "UPDATE order_views o SET customer_name = c.name, customer_email = c.email "
    "FROM customer_views c WHERE c.id = ANY ($1::uuid[]) AND o.customer_id = c.id "
    "AND (o.customer_name IS DISTINCT FROM c.name OR o.customer_email IS DISTINCT FROM c.email)"};

// ---- search projection (search_projection.h; migration 0003) ----

// The search document of an order: its customer's current name and e-mail, the SKUs and
// product names of its lines, its tracking number. `c` is the customer row (search_customers,
// may be missing: NULLs), `o` the order row. Every statement that writes a document builds it
// from this expression, so an unchanged document compares equal and is not rewritten (a new row
// version re-inserts the ~100 trigram entries of search_orders_document_idx).
#define SHOPCQRS_SEARCH_DOCUMENT(c, o)                                        \
  "coalesce(" c ".name, '') || ' ' || coalesce(" c ".email, '') || ' ' || " o \
  ".line_text || ' ' || coalesce(" o ".tracking_number, '')"

inline constexpr Statement kLoadSearchOrders{
    "r_load_search_orders",
    "SELECT id::text, customer_id::text, line_text, tracking_number, "
    "(extract(epoch FROM placed_at) * 1000)::bigint, version "
    "FROM search_orders WHERE id = ANY ($1::uuid[])"};
inline constexpr Statement kLoadSearchCustomers{
    "r_load_search_customers",
    "SELECT id::text, name, email, version FROM search_customers WHERE id = ANY ($1::uuid[])"};
// Whole-row upserts from a JSON array of rows computed under the checkpoint lock; the version
// guard keeps a row from ever going back.
inline constexpr Statement kUpsertSearchCustomers{
    "r_upsert_search_customers",
    "INSERT INTO search_customers AS c (id, name, email, version) "
    "SELECT r.id, r.name, r.email, r.version FROM json_to_recordset($1::json) "
    "AS r (id uuid, name text, email text, version bigint) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, "
    "version = excluded.version WHERE c.version < excluded.version"};
// Runs after kUpsertSearchCustomers: documents carry the customer details of this batch.
inline constexpr Statement kUpsertSearchOrders{
    "r_upsert_search_orders",
    "INSERT INTO search_orders AS s (id, customer_id, line_text, tracking_number, placed_at, "
    "version, document) SELECT r.id, r.customer_id, r.line_text, r.tracking_number, "
    "timestamptz 'epoch' + r.placed_at * interval '1 millisecond', r.version, "
    SHOPCQRS_SEARCH_DOCUMENT("c", "r")
    " FROM json_to_recordset($1::json) AS r (id uuid, customer_id uuid, line_text text, "
    "tracking_number text, placed_at bigint, version bigint) "
    "LEFT JOIN search_customers c ON c.id = r.customer_id "
    "ON CONFLICT (id) DO UPDATE SET customer_id = excluded.customer_id, "
    "line_text = excluded.line_text, tracking_number = excluded.tracking_number, "
    "placed_at = excluded.placed_at, version = excluded.version, document = excluded.document "
    "WHERE s.version < excluded.version"};
// A customer's new details reach every one of its order documents ($1: customer ids); the
// documents this batch wrote already have them and are left alone.
inline constexpr Statement kPropagateSearchCustomers{
    "r_propagate_search_customers",
    "UPDATE search_orders s SET document = " SHOPCQRS_SEARCH_DOCUMENT("c", "s")
    " FROM search_customers c WHERE c.id = ANY ($1::uuid[]) AND s.customer_id = c.id "
    "AND s.document <> " SHOPCQRS_SEARCH_DOCUMENT("c", "s")};
#undef SHOPCQRS_SEARCH_DOCUMENT

// ---- queries ----

inline constexpr Statement kGetOrder{
    "r_get_order", "SELECT " SHOPCQRS_ORDER_COLUMNS "FROM order_views o WHERE o.id = $1::uuid"};
// Keyset pages, newest first: $1 = cursor placed_at ('infinity' for the first page),
// $2 = cursor id, $3 = limit (+1 to tell whether another page follows).
inline constexpr Statement kListOrders{
    "r_list_orders", "SELECT " SHOPCQRS_ORDER_COLUMNS
                     "FROM order_views o WHERE (o.placed_at, o.id) < ($1::timestamptz, $2::uuid) "
                     "ORDER BY o.placed_at DESC, o.id DESC LIMIT $3"};
inline constexpr Statement kListOrdersByStatus{
    "r_list_orders_by_status",
    "SELECT " SHOPCQRS_ORDER_COLUMNS
    "FROM order_views o WHERE o.status = $4 AND (o.placed_at, o.id) < ($1::timestamptz, $2::uuid) "
    "ORDER BY o.placed_at DESC, o.id DESC LIMIT $3"};
// $5: optional status filter.
inline constexpr Statement kListOrdersByCustomer{
    "r_list_orders_by_customer", "SELECT " SHOPCQRS_ORDER_COLUMNS
                                 "FROM order_views o WHERE o.customer_id = $4::uuid "
                                 "AND (o.placed_at, o.id) < ($1::timestamptz, $2::uuid) "
                                 "AND ($5::text IS NULL OR o.status = $5::text) "
                                 "ORDER BY o.placed_at DESC, o.id DESC LIMIT $3"};
// Ranked search (migration 0007): $1 the words of the query (text[]), $2 status or NULL, $3/$4
// first/last placed date (UTC) or NULL, $5/$6/$7 the keyset cursor (rank, placed_at, id; the
// first page starts above all), $8 the limit (+1 to tell whether another page follows), $9 a
// customer id or NULL (only that customer's orders). Per query word (t): its exact and prefix
// tsquery and, for 5+ characters, the dictionary words at distance 1 (search_words: its deletion
// keys overlap, then levenshtein). An order matches when each query word matches one of its words
// by prefix (exact included) or one of the fuzzy alternatives: one GIN scan of
// search_orders_words_idx for the AND of them (k). Its rank is the sum over the query words of 3
// (exact), 2 (prefix) or 1 (fuzzy only); answer column 18. The page is ranked and cut on
// search_orders alone; only its rows are read from order_views (an order read_pg has not applied
// yet is left out of the page).
#define SHOPCQRS_SEARCH_TERMS(FUZZY)                                                         \
  "WITH t AS MATERIALIZED (SELECT w.w, shopcqrs_search_term(w.w, false)::tsquery AS exact, " \
  "shopcqrs_search_term(w.w, true)::tsquery AS prefix, " FUZZY                               \
  " AS fuzzy FROM (SELECT DISTINCT lower(u) AS w FROM unnest($1::text[]) AS u) AS w) "
inline constexpr Statement kSearchOrders{
    "r_search_orders",
    SHOPCQRS_SEARCH_TERMS(
        "CASE WHEN char_length(w.w) >= 5 THEN (SELECT string_agg(shopcqrs_search_term(d.word, "
        "false), ' | ') FROM search_words d WHERE d.keys && shopcqrs_search_keys(w.w) "
        "AND d.word <> w.w "
        "AND shopcqrs_search_close(d.word, w.w)) END") ", "
    "k AS MATERIALIZED (SELECT s.id, s.placed_at, (SELECT sum(CASE WHEN s.words @@ t.exact "
    "THEN 3 WHEN s.words @@ t.prefix THEN 2 ELSE 1 END) FROM t)::integer AS rank "
    "FROM search_orders s WHERE s.words @@ (SELECT string_agg('(' || t.prefix::text || "
    "coalesce(' | ' || t.fuzzy, '') || ')', ' & ')::tsquery FROM t) "
    "AND ($3::date IS NULL OR s.placed_at >= $3::date) "
    "AND ($4::date IS NULL OR s.placed_at < $4::date + 1) "
    "AND ($9::uuid IS NULL OR s.customer_id = $9::uuid) "
    "AND ($2::text IS NULL OR EXISTS (SELECT FROM order_views v WHERE v.id = s.id "
    "AND v.status = $2::text))), "
    "p AS (SELECT k.id, k.placed_at, k.rank FROM k "
    "WHERE (k.rank, k.placed_at, k.id) < ($5::integer, $6::timestamptz, $7::uuid) "
    "ORDER BY k.rank DESC, k.placed_at DESC, k.id DESC LIMIT $8) "
    "SELECT " SHOPCQRS_ORDER_COLUMNS ", p.rank FROM p JOIN order_views o ON o.id = p.id "
    "ORDER BY p.rank DESC, p.placed_at DESC, p.id DESC"};
inline constexpr Statement kGetCustomer{
    "r_get_customer",
    "SELECT id::text, name, email, order_count, lifetime_value_cents, version "
    "FROM customer_views WHERE id = $1::uuid AND version > 0"};
inline constexpr Statement kGetProduct{
    "r_get_product",
    "SELECT id::text, sku, name, price_cents, stock, units_sold, revenue_cents, version "
    "FROM product_views WHERE id = $1::uuid AND version > 0"};
inline constexpr Statement kTopProducts{
    "r_top_products",
    "SELECT id::text, sku, name, units_sold, revenue_cents FROM product_views "
    "WHERE version > 0 ORDER BY units_sold DESC, id LIMIT $1"};
inline constexpr Statement kDailySales{
    "r_daily_sales",
    "SELECT (g.day::date - date '1970-01-01'), coalesce(s.orders_placed, 0), "
    "coalesce(s.orders_paid, 0), coalesce(s.revenue_cents, 0) "
    "FROM generate_series($1::date, $2::date, interval '1 day') AS g (day) "
    "LEFT JOIN daily_sales s ON s.date = g.day::date ORDER BY g.day"};

#undef SHOPCQRS_ORDER_COLUMNS
#undef SHOPCQRS_SEARCH_TERMS

inline std::vector<Statement> All() {
  return {kClaimCheckpoint,
          kLoadCheckpoint,
          kStoreCheckpoint,
          kNotifyProgress,
          kParkEvents,
          kReleaseAggregate,
          kAddSkip,
          kBumpDeadLetterGeneration,
          kLoadDeadLetters,
          kLoadParkedEvents,
          kLoadSkips,
          kDeadLetterGeneration,
          kCountRetried,
          kDeferIndexes,
          kRestoreIndexes,
          kLoadOrders,
          kLoadCustomers,
          kLoadProducts,
          kUpsertOrders,
          kUpdateOrders,
          kUpsertCustomers,
          kUpsertProducts,
          kAddDailySales,
          kPropagateCustomers,
          kLoadSearchOrders,
          kLoadSearchCustomers,
          kUpsertSearchCustomers,
          kUpsertSearchOrders,
          kPropagateSearchCustomers,
          kGetOrder,
          kListOrders,
          kListOrdersByStatus,
          kListOrdersByCustomer,
          kSearchOrders,
          kGetCustomer,
          kGetProduct,
          kTopProducts,
          kDailySales};
}

}  // namespace shopcqrs::adapters::pg_read::queries
