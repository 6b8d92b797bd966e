#include "adapters/events/footprint.h"

#include <algorithm>
#include <cctype>
#include <exception>

#include "adapters/events/event_codec.h"

namespace shopcqrs::adapters::events {

namespace {

std::string DayKey(domain::Timestamp at) {
  return "day:" +
         std::to_string(std::chrono::floor<std::chrono::days>(at).time_since_epoch().count());
}

}  // namespace

std::vector<std::string> Footprint(const cqrs::StoredEvent& event) {
  std::string own = event.envelope.aggregate_type;
  std::ranges::transform(own, own.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  own += ":" + event.envelope.aggregate_id;
  std::vector<std::string> keys{own};
  domain::DomainEvent decoded;
  try {
    decoded = DecodeStored(event);
  } catch (const std::exception&) {
    return keys;
  }
  auto add = [&](std::string key) {
    if (std::ranges::find(keys, key) == keys.end()) keys.push_back(std::move(key));
  };
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (requires { e.order_id; }) {
          add("customer-of:" + e.customer_id.ToString());
          if constexpr (std::is_same_v<T, domain::OrderPlaced> ||
                        std::is_same_v<T, domain::OrderPaid> ||
                        std::is_same_v<T, domain::OrderCancelled>) {
            add(DayKey(decoded.occurred_at));
          }
        }
        if constexpr (requires { e.lines; }) {
          for (const auto& line : e.lines) add("product:" + line.product_id.ToString());
        }
      },
      decoded.payload);
  return keys;
}

}  // namespace shopcqrs::adapters::events
