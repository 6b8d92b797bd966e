#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace shopcqrs::cqrs {

// The event envelope of ../shared/DESIGN.md (docs/ARCHITECTURE.md). The engine does not know the
// shop's event types: the payload is carried as JSON text and interpreted by whoever consumes it.
struct EventEnvelope {
  std::string event_id;  // uuid text
  std::string type;      // e.g. "OrderPaid"
  int schema_version = 1;
  std::string aggregate_type;  // e.g. "Order"
  std::string aggregate_id;    // uuid text
  std::int64_t aggregate_version = 0;
  std::chrono::sys_time<std::chrono::milliseconds> occurred_at{};
  std::string payload;  // JSON object text
};

}  // namespace shopcqrs::cqrs
