#pragma once

// Hand-made events, as an event source delivers them, for tests of projection stores.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "adapters/system/system.h"
#include "cqrs/envelope.h"
#include "cqrs/projector.h"

namespace shopcqrs::test_support {

// An event with a fresh id, occurred at a fixed time (2023-11-14T22:13:20Z); xid and position
// are left 0.
inline cqrs::StoredEvent Event(std::string type, std::string aggregate_type, std::string id,
                               std::int64_t version, std::string payload) {
  cqrs::StoredEvent e;
  e.envelope.event_id = adapters::system::NewRandomUuid().ToString();
  e.envelope.type = std::move(type);
  e.envelope.aggregate_type = std::move(aggregate_type);
  e.envelope.aggregate_id = std::move(id);
  e.envelope.aggregate_version = version;
  e.envelope.occurred_at = cqrs::TimePoint(std::chrono::milliseconds(1'700'000'000'000));
  e.envelope.payload = std::move(payload);
  return e;
}

// The lines of a hand-made order: 2 of `product` (SKU `sku`, "Thing") at 5 cents.
inline std::string OrderLines(const std::string& product, const std::string& sku = "S1") {
  return fmt::format(R"([{{"product_id":"{}","sku":"{}","product_name":"Thing","quantity":2,)"
                     R"("unit_price_cents":5}}])",
                     product, sku);
}

// That order placed (version 1, total 10 cents) and paid (version 2, reference "P").
inline cqrs::StoredEvent OrderPlaced(const std::string& order, const std::string& customer,
                                     const std::string& lines) {
  return Event("OrderPlaced", "Order", order, 1,
               fmt::format(R"({{"order_id":"{}","customer_id":"{}","lines":{},"total_cents":10}})",
                           order, customer, lines));
}
inline cqrs::StoredEvent OrderPaid(const std::string& order, const std::string& customer,
                                   const std::string& lines) {
  return Event("OrderPaid", "Order", order, 2,
               fmt::format(R"({{"order_id":"{}","customer_id":"{}","amount_cents":10,)"
                           R"("payment_reference":"P","lines":{}}})",
                           order, customer, lines));
}

}  // namespace shopcqrs::test_support
