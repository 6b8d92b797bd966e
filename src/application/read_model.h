#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/error.h"
#include "domain/ids.h"
#include "domain/time.h"

namespace shopcqrs::app {

// The query side's port: what the read stores answer (API.md, Queries). Implementations read
// read stores only, never the write database. Infrastructure faults throw.

struct OrderLineView {
  std::string product_id;
  std::string sku;           // as captured when the order was placed
  std::string product_name;  // as captured when the order was placed
  std::int64_t quantity = 0;
  std::int64_t unit_price_cents = 0;
  std::int64_t line_total_cents = 0;
  friend bool operator==(const OrderLineView&, const OrderLineView&) = default;
};

// An order summary: the order view without lines.
struct OrderSummary {
  std::string id;
  std::string customer_id;
  std::optional<std::string> customer_name;  // current details; null until projected
  std::optional<std::string> customer_email;
  std::string status;           // "placed", "paid", "shipped", "delivered", "cancelled"
  std::int64_t item_count = 0;  // sum of the line quantities
  std::int64_t total_cents = 0;
  domain::Timestamp placed_at{};
  std::optional<domain::Timestamp> paid_at;
  std::optional<domain::Timestamp> shipped_at;
  std::optional<domain::Timestamp> delivered_at;
  std::optional<domain::Timestamp> cancelled_at;
  std::optional<std::string> payment_reference;
  std::optional<std::string> tracking_number;
  std::optional<std::string> cancel_reason;
  std::int64_t version = 0;
  friend bool operator==(const OrderSummary&, const OrderSummary&) = default;
};

struct OrderView : OrderSummary {
  std::vector<OrderLineView> lines;
};

struct OrderPage {
  std::vector<OrderSummary> items;
  std::optional<std::string> next_cursor;  // null on the last page
};

struct OrderListQuery {
  std::optional<std::string> status;  // one of the order statuses
  std::optional<domain::CustomerId> customer_id;
  int limit = 20;                     // 1..100
  std::optional<std::string> cursor;  // from OrderPage::next_cursor
};

// GET /v1/search/orders (docs/API.md, Search): the words of `q` with optional filters, one page.
struct OrderSearchQuery {
  std::string q;                                  // 1..10 whitespace-separated words, <= 200 chars
  std::optional<std::string> status;              // one of the order statuses
  std::optional<std::chrono::sys_days> from;      // placed on or after this UTC day
  std::optional<std::chrono::sys_days> to;        // placed on or before this UTC day
  int limit = 20;                                 // 1..100
  std::optional<std::string> cursor;              // from OrderPage::next_cursor of the same search
  std::optional<domain::CustomerId> customer_id;  // only this customer's orders
};

struct CustomerView {
  std::string id;
  std::string name;
  std::string email;
  std::int64_t order_count = 0;           // orders not cancelled
  std::int64_t lifetime_value_cents = 0;  // totals of orders paid, shipped or delivered
  std::int64_t version = 0;
  friend bool operator==(const CustomerView&, const CustomerView&) = default;
};

struct ProductView {
  std::string id;
  std::string sku;
  std::string name;
  std::int64_t price_cents = 0;
  std::int64_t stock = 0;
  std::int64_t units_sold = 0;  // lines of orders paid, shipped or delivered
  std::int64_t revenue_cents = 0;
  std::int64_t version = 0;
  friend bool operator==(const ProductView&, const ProductView&) = default;
};

struct TopProduct {
  std::string product_id;
  std::string sku;
  std::string name;
  std::int64_t units_sold = 0;
  std::int64_t revenue_cents = 0;
};

struct DailySalesItem {
  std::chrono::sys_days date{};
  std::int64_t orders_placed = 0;
  std::int64_t orders_paid = 0;
  std::int64_t revenue_cents = 0;  // payments that day minus refunds that day
  friend bool operator==(const DailySalesItem&, const DailySalesItem&) = default;
};

class ReadModel {
 public:
  virtual ~ReadModel() = default;

  // nullopt until projected.
  virtual std::optional<OrderView> GetOrder(const domain::OrderId& id) = 0;
  // Newest placed_at first (ties by id). A cursor this model did not make, or a limit out of
  // 1..100, or an unknown status, is a validation error.
  virtual domain::Result<OrderPage> ListOrders(const OrderListQuery& query) = 0;
  virtual domain::Result<OrderPage> ListCustomerOrders(
      const domain::CustomerId& customer_id, int limit,
      const std::optional<std::string>& cursor) = 0;
  virtual std::optional<CustomerView> GetCustomer(const domain::CustomerId& id) = 0;
  virtual std::optional<ProductView> GetProduct(const domain::ProductId& id) = 0;
  // Most units sold first; limit 1..100.
  virtual domain::Result<std::vector<TopProduct>> TopProducts(int limit) = 0;
  // Orders where every word of `q` matches a word of the customer's name or e-mail, a line's
  // product name or SKU, or the tracking number: exactly, as a prefix, or (words of 5+
  // characters) with one wrong, missing or extra letter. Most relevant first (exact above
  // prefix above fuzzy, summed over the words), ties newest placed_at first, then by id. A bad
  // q, limit, status, range or cursor is a validation error.
  virtual domain::Result<OrderPage> SearchOrders(const OrderSearchQuery& query) = 0;
  // One item per UTC day in [from, to], zero-filled; at most 366 days.
  virtual domain::Result<std::vector<DailySalesItem>> DailySales(std::chrono::sys_days from,
                                                                 std::chrono::sys_days to) = 0;
};

}  // namespace shopcqrs::app
