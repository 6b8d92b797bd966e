#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "cqrs/envelope.h"

namespace shopcqrs::cqrs {

using TimePoint = std::chrono::sys_time<std::chrono::milliseconds>;

// Where a projection stands in the event log.
//   (xid, position): the last event applied, in (transaction id, outbox position) order.
//   bound: every transaction with an xid below it is applied (what consistency tokens name).
struct Checkpoint {
  std::uint64_t xid = 0;
  std::int64_t position = 0;
  std::uint64_t bound = 0;
  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

struct StoredEvent {
  EventEnvelope envelope;
  std::uint64_t xid = 0;
  std::int64_t position = 0;
  TimePoint committed_at{};  // commit-ish time (when the event was recorded)
};

struct EventBatch {
  std::vector<StoredEvent> events;  // in commit-consistent (xid, position) order
  Checkpoint next;                  // the checkpoint after applying `events`
};

}  // namespace shopcqrs::cqrs
