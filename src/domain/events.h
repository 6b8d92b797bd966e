#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/ids.h"
#include "domain/time.h"

namespace shopcqrs::domain {

enum class OrderStatus { kPlaced, kPaid, kShipped, kDelivered, kCancelled };
std::string_view ToString(OrderStatus status);  // "placed", "paid", ...
std::optional<OrderStatus> ParseOrderStatus(std::string_view text);

// Domain events. Each is self-contained: a consumer needs nothing but the event to apply it.
// kTypeName is the event type name (of ../shared/DESIGN.md).
struct CustomerRegistered {
  static constexpr std::string_view kTypeName = "CustomerRegistered";
  CustomerId customer_id;
  std::string name;
  std::string email;
};
struct CustomerDetailsChanged {  // carries the full current details after the change
  static constexpr std::string_view kTypeName = "CustomerDetailsChanged";
  CustomerId customer_id;
  std::string name;
  std::string email;
};
struct ProductAdded {
  static constexpr std::string_view kTypeName = "ProductAdded";
  ProductId product_id;
  std::string sku;
  std::string name;
  std::int64_t price_cents;
  std::int64_t stock;
};
struct ProductPriceChanged {
  static constexpr std::string_view kTypeName = "ProductPriceChanged";
  ProductId product_id;
  std::int64_t price_cents;           // the price from now on
  std::int64_t previous_price_cents;  // the price before the change
};
struct ProductRestocked {
  static constexpr std::string_view kTypeName = "ProductRestocked";
  ProductId product_id;
  std::int64_t quantity;
  std::int64_t stock_after;
};
struct PlacedLine {
  ProductId product_id;
  std::string sku;           // as captured at placing
  std::string product_name;  // as captured at placing
  std::int64_t quantity;
  std::int64_t unit_price_cents;
  std::int64_t line_total_cents() const { return quantity * unit_price_cents; }
  friend bool operator==(const PlacedLine&, const PlacedLine&) = default;
};
struct OrderPlaced {
  static constexpr std::string_view kTypeName = "OrderPlaced";
  OrderId order_id;
  CustomerId customer_id;
  std::vector<PlacedLine> lines;  // merged: one line per product
  std::int64_t total_cents;
};
struct OrderPaid {
  static constexpr std::string_view kTypeName = "OrderPaid";
  OrderId order_id;
  CustomerId customer_id;
  std::int64_t amount_cents;
  std::string payment_reference;
  std::vector<PlacedLine> lines;  // repeated so sales projections need no lookup
};
struct OrderShipped {
  static constexpr std::string_view kTypeName = "OrderShipped";
  OrderId order_id;
  CustomerId customer_id;
  std::string tracking_number;
};
struct OrderDelivered {
  static constexpr std::string_view kTypeName = "OrderDelivered";
  OrderId order_id;
  CustomerId customer_id;
};
struct OrderCancelled {
  static constexpr std::string_view kTypeName = "OrderCancelled";
  OrderId order_id;
  CustomerId customer_id;
  std::string reason;             // may be empty
  std::int64_t refunded_cents;    // the total when cancelled from paid, else 0
  OrderStatus previous_status;    // placed or paid
  std::vector<PlacedLine> lines;  // stock returned per line
};

using EventPayload = std::variant<CustomerRegistered, CustomerDetailsChanged, ProductAdded,
                                  ProductPriceChanged, ProductRestocked, OrderPlaced, OrderPaid,
                                  OrderShipped, OrderDelivered, OrderCancelled>;

enum class AggregateType { kCustomer, kProduct, kOrder };
std::string_view ToString(AggregateType type);  // "Customer", "Product", "Order"

// An event as recorded by an aggregate: the payload plus the aggregate version it produced
// (1 for the creating event, +1 for each later one) and when it happened.
struct DomainEvent {
  EventPayload payload;
  std::int64_t aggregate_version = 0;
  Timestamp occurred_at{};
};

// "CustomerRegistered", "OrderPaid", ... (the event type names of ../shared/DESIGN.md).
std::string_view EventTypeName(const EventPayload& payload);
AggregateType AggregateTypeOf(const EventPayload& payload);
Uuid AggregateIdOf(const EventPayload& payload);

}  // namespace shopcqrs::domain
