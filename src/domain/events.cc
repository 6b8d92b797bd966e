#include "domain/events.h"

#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

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

// The name of every order status, indexed by the status: what ToString and ParseOrderStatus
// agree on.
constexpr std::array<std::string_view, 5> kOrderStatusNames = {"placed", "paid", "shipped",
                                                               "delivered", "cancelled"};
static_assert(std::to_underlying(OrderStatus::kPlaced) == 0 &&
                  static_cast<std::size_t>(std::to_underlying(OrderStatus::kCancelled)) + 1 ==
                      kOrderStatusNames.size(),
              "every order status has a name");

}  // namespace

std::string_view ToString(OrderStatus status) {
  const auto index = static_cast<std::size_t>(std::to_underlying(status));
  return index < kOrderStatusNames.size() ? kOrderStatusNames[index] : "unknown";
}

std::optional<OrderStatus> ParseOrderStatus(std::string_view text) {
  for (std::size_t i = 0; i < kOrderStatusNames.size(); ++i) {
    if (kOrderStatusNames[i] == text) return static_cast<OrderStatus>(i);
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
  return std::visit([](const auto& event) { return std::decay_t<decltype(event)>::kTypeName; },
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
