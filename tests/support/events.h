#pragma once

// Hand-made events, as an event source delivers them, for tests of projection stores.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

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

}  // namespace shopcqrs::test_support
