#include "domain/events.h"

#include <type_traits>

namespace shopcqrs::domain {
namespace {

template <class>
inline constexpr bool kAlwaysFalse = false;

// The aggregate an event type belongs to.
template <class T>
constexpr AggregateType AggregateTypeFor() {
  if constexpr (std::is_same_v<T, CustomerRegistered> ||
                std::is_same_v<T, CustomerDetailsChanged>) {
    return AggregateType::kCustomer;
  } else if constexpr (std::is_same_v<T, ProductAdded> || std::is_same_v<T, ProductPriceChanged> ||
                       std::is_same_v<T, ProductRestocked>) {
    return AggregateType::kProduct;
  } else if constexpr (std::is_same_v<T, OrderPlaced> || std::is_same_v<T, OrderPaid> ||
                       std::is_same_v<T, OrderShipped> || std::is_same_v<T, OrderDelivered> ||
                       std::is_same_v<T, OrderCancelled>) {
    return AggregateType::kOrder;
  } else {
    static_assert(kAlwaysFalse<T>, "every event type belongs to an aggregate");
  }
}

}  // namespace

std::string_view ToString(OrderStatus status) {
  switch (status) {
    case OrderStatus::kPlaced:
      return "placed";
    case OrderStatus::kPaid:
      return "paid";
    case OrderStatus::kShipped:
      return "shipped";
    case OrderStatus::kDelivered:
      return "delivered";
    case OrderStatus::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::optional<OrderStatus> ParseOrderStatus(std::string_view text) {
  for (auto status : {OrderStatus::kPlaced, OrderStatus::kPaid, OrderStatus::kShipped,
                      OrderStatus::kDelivered, OrderStatus::kCancelled}) {
    if (ToString(status) == text) return status;
  }
  return std::nullopt;
}

std::string_view ToString(AggregateType type) {
  switch (type) {
    case AggregateType::kCustomer:
      return "Customer";
    case AggregateType::kProduct:
      return "Product";
    case AggregateType::kOrder:
      return "Order";
  }
  return "unknown";
}

std::string_view EventTypeName(const EventPayload& payload) {
  return std::visit(
      [](const auto& event) -> std::string_view {
        using T = std::decay_t<decltype(event)>;
        if constexpr (std::is_same_v<T, CustomerRegistered>) {
          return "CustomerRegistered";
        } else if constexpr (std::is_same_v<T, CustomerDetailsChanged>) {
          return "CustomerDetailsChanged";
        } else if constexpr (std::is_same_v<T, ProductAdded>) {
          return "ProductAdded";
        } else if constexpr (std::is_same_v<T, ProductPriceChanged>) {
          return "ProductPriceChanged";
        } else if constexpr (std::is_same_v<T, ProductRestocked>) {
          return "ProductRestocked";
        } else if constexpr (std::is_same_v<T, OrderPlaced>) {
          return "OrderPlaced";
        } else if constexpr (std::is_same_v<T, OrderPaid>) {
          return "OrderPaid";
        } else if constexpr (std::is_same_v<T, OrderShipped>) {
          return "OrderShipped";
        } else if constexpr (std::is_same_v<T, OrderDelivered>) {
          return "OrderDelivered";
        } else if constexpr (std::is_same_v<T, OrderCancelled>) {
          return "OrderCancelled";
        } else {
          static_assert(kAlwaysFalse<T>, "every event type needs a name");
        }
      },
      payload);
}

AggregateType AggregateTypeOf(const EventPayload& payload) {
  return std::visit(
      [](const auto& event) { return AggregateTypeFor<std::decay_t<decltype(event)>>(); }, payload);
}

Uuid AggregateIdOf(const EventPayload& payload) {
  return std::visit(
      [](const auto& event) -> Uuid {
        constexpr AggregateType kType = AggregateTypeFor<std::decay_t<decltype(event)>>();
        if constexpr (kType == AggregateType::kCustomer) {
          return event.customer_id.value();
        } else if constexpr (kType == AggregateType::kProduct) {
          return event.product_id.value();
        } else {
          return event.order_id.value();
        }
      },
      payload);
}

}  // namespace shopcqrs::domain
