#pragma once

// What the read database of a read_pg projection must hold, compared with what the write
// database implies.

#include <cstdint>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/sql.h"

namespace shopcqrs::test_support {

struct ReadCheckOptions {
  // An order whose view is left out of the comparison (e.g. one with a skipped event).
  std::optional<std::string> except_order;
  // Events of the outbox the projection did not count as applied (skipped ones).
  std::int64_t events_not_applied = 0;
};

inline std::string OrderFilter(const char* column, const ReadCheckOptions& options) {
  if (!options.except_order) return "";
  return fmt::format("WHERE {} <> '{}'", column, *options.except_order);
}

// Asserts the read database holds exactly what the write database implies.
inline void ExpectReadMatchesWrite(const std::string& write, const std::string& read,
                                   const ReadCheckOptions& options = {}) {
  const char* kPaid = "('paid', 'shipped', 'delivered')";
  EXPECT_EQ(
      Dump(write,
           fmt::format("SELECT c.id, c.name, c.email, c.version, "
                       "(SELECT count(*) FROM orders o WHERE o.customer_id = c.id AND "
                       "o.status <> 'cancelled'), "
                       "(SELECT coalesce(sum(total_cents), 0) FROM orders o WHERE "
                       "o.customer_id = c.id AND o.status IN {}) FROM customers c ORDER BY c.id",
                       kPaid)),
      Dump(read,
           "SELECT id, name, email, version, order_count, lifetime_value_cents "
           "FROM customer_views ORDER BY id"));
  EXPECT_EQ(
      Dump(write, fmt::format("SELECT p.id, p.sku, p.name, p.price_cents, p.stock, p.version, "
                              "coalesce(sum(l.quantity) FILTER (WHERE o.status IN {0}), 0), "
                              "coalesce(sum(l.quantity * l.unit_price_cents) FILTER "
                              "(WHERE o.status IN {0}), 0) FROM products p "
                              "LEFT JOIN order_lines l ON l.product_id = p.id "
                              "LEFT JOIN orders o ON o.id = l.order_id GROUP BY p.id ORDER BY p.id",
                              kPaid)),
      Dump(read,
           "SELECT id, sku, name, price_cents, stock, version, units_sold, revenue_cents "
           "FROM product_views ORDER BY id"));
  EXPECT_EQ(Dump(write,
                 "SELECT o.id, o.customer_id, c.name, c.email, o.status, o.total_cents, o.version, "
                 "o.placed_at, p.paid_at, s.shipped_at, s.delivered_at, o.cancelled_at, "
                 "p.payment_reference, s.tracking_number, nullif(o.cancel_reason, ''), "
                 "(SELECT sum(quantity) FROM order_lines l WHERE l.order_id = o.id) "
                 "FROM orders o JOIN customers c ON c.id = o.customer_id "
                 "LEFT JOIN payments p ON p.order_id = o.id "
                 "LEFT JOIN shipments s ON s.order_id = o.id " +
                     OrderFilter("o.id", options) + " ORDER BY o.id"),
            Dump(read,
                 "SELECT id, customer_id, customer_name, customer_email, status, total_cents, "
                 "version, placed_at, paid_at, shipped_at, delivered_at, cancelled_at, "
                 "payment_reference, tracking_number, cancel_reason, item_count "
                 "FROM order_views " +
                     OrderFilter("id", options) + " ORDER BY id"));
  EXPECT_EQ(Dump(write,
                 "WITH d AS ("
                 " SELECT (placed_at AT TIME ZONE 'UTC')::date AS day, 1 AS placed, 0 AS paid, "
                 "   0::bigint AS revenue FROM orders"
                 " UNION ALL SELECT (paid_at AT TIME ZONE 'UTC')::date, 0, 1, amount_cents "
                 "   FROM payments"
                 " UNION ALL SELECT (refunded_at AT TIME ZONE 'UTC')::date, 0, 0, -refunded_cents "
                 "   FROM payments WHERE refunded_cents > 0) "
                 "SELECT day, sum(placed), sum(paid), sum(revenue) FROM d GROUP BY day "
                 "ORDER BY day"),
            Dump(read,
                 "SELECT date, orders_placed, orders_paid, revenue_cents FROM daily_sales "
                 "ORDER BY date"));
  EXPECT_EQ(Scalar(write, "SELECT count(*) FROM outbox") - options.events_not_applied,
            Scalar(read, "SELECT events FROM projection_checkpoints WHERE name = 'read_pg'"));
}

}  // namespace shopcqrs::test_support
