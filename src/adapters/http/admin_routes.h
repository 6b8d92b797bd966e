#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "infra/http/router.h"

namespace shopcqrs::adapters::http {

struct ProjectionInfo {
  std::string name;
  std::string store;   // e.g. "read_pg"
  std::string status;  // running, catching_up, stalled, error, stopped, ...
  std::int64_t position = 0;
  std::int64_t events_behind = 0;  // -1 when it could not be counted
  std::int64_t lag_ms = 0;
  std::int64_t dead_letters = 0;
  std::string last_error;
};

// ---- Sequenced dead letters (API.md "Operations") ----

struct DeadLetterItem {
  std::string projection;
  std::string aggregate_type;
  std::string aggregate_id;
  std::int64_t first_position = 0;
  std::int64_t events = 0;
  std::string error;
  std::chrono::sys_time<std::chrono::milliseconds> parked_at{};
};

struct ResolveOutcome {
  enum class Kind { kResolved, kUnknownProjection, kNotParked, kStillFailing, kUnavailable };
  Kind kind = Kind::kResolved;
  std::int64_t applied = 0;
  std::int64_t skipped = 0;
  std::string error;
};

// What the dead-letter routes act on (the projectors of the process).
struct DeadLetterAdmin {
  // The parked aggregates of `projection` (every projection when not given); nullopt: no such
  // projection in this process.
  std::function<std::optional<std::vector<DeadLetterItem>>(const std::optional<std::string>&)> list;
  // Retries (skip false) or skips the parked aggregate, on behalf of `by`; waits for it.
  std::function<ResolveOutcome(const std::string& projection, const std::string& aggregate_id,
                               bool skip, const std::string& by)>
      resolve;
};

// What a process without projectors answers (a relay's): no projection, nothing parked.
DeadLetterAdmin NoDeadLetters();

// GET /v1/admin/projections → {items: [{name, store, status, position, events_behind, lag_ms,
// dead_letters, last_error}]}, and the dead-letter routes:
// GET /v1/admin/dead-letters?projection= -> {items: [{projection, aggregate_type, aggregate_id,
// first_position, events, error, parked_at}]}; POST /v1/admin/dead-letters/{projection}/
// {aggregate_id}/retry and .../skip -> 200 {projection, aggregate_id, resolved: true, applied,
// skipped}; 404 not_found for an unknown projection or an aggregate that is not parked; 409
// still_failing (the parked events stay parked, `detail` says why); 503 when the store is
// unavailable. The principal that retried or skipped is recorded ("<role>:<subject>").
void RegisterAdminRoutes(infra::http::Router& router,
                         std::function<std::vector<ProjectionInfo>()> projections,
                         DeadLetterAdmin dead_letters = NoDeadLetters());

}  // namespace shopcqrs::adapters::http
