#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cqrs/stored_event.h"

// Sequenced dead letters (docs/OPERATIONS.md): an event a projection cannot apply, however often
// it is retried, is parked together with every later event of the same aggregate, in the
// projection's own store and in the same transaction as the checkpoint, so the checkpoint moves
// on exactly once and every other aggregate goes on being projected. An operator retries the
// parked events (re-applied in order) or skips the first one (recorded in the store's skip list,
// which every later projection of the log honours).
namespace shopcqrs::cqrs {

using DeadLetterTime = TimePoint;

struct AggregateKey {
  std::string type;  // "Order", "Customer", "Product"
  std::string id;
  friend auto operator<=>(const AggregateKey&, const AggregateKey&) = default;
};

// A store could not apply a batch, and never will, whatever the retry: the payload does not
// decode, an aggregate version is missing, the store refuses the data (a constraint, a key of
// the wrong type). The projector finds the event that causes it (applying the batch's events one
// at a time), retries it a bounded number of times and then parks its aggregate. A fault of the
// store itself (connection lost, a timeout) is never this.
class DeterministicApplyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One event to park, with what the queries need to know about it: `keys`, the read rows it would
// change ("order:<id>", "customer:<id>", "customer-of:<id>" (a customer's statistics and order
// list), "product:<id>", "day:<days since the epoch>"); `error` for the first one of an aggregate
// (why it was parked), empty for those parked behind it.
struct ParkedEvent {
  StoredEvent event;
  std::string error;
  std::vector<std::string> keys;
};

// A parked aggregate, as a projection's store lists it.
struct DeadLetter {
  AggregateKey aggregate;
  std::int64_t first_position = 0;
  std::uint64_t first_xid = 0;
  std::int64_t events = 0;  // parked events of the aggregate
  std::string error;        // the first one's
  DeadLetterTime parked_at{};
  std::vector<std::string> keys;  // of all its parked events
  friend bool operator==(const DeadLetter&, const DeadLetter&) = default;
};

// A skipped event: set aside by an operator, never applied by this projection.
struct SkipRecord {
  std::int64_t position = 0;
  std::uint64_t xid = 0;
  std::string event_id;
  AggregateKey aggregate;
  std::int64_t aggregate_version = 0;
  std::string skipped_by;  // the principal
  DeadLetterTime skipped_at{};
  friend bool operator==(const SkipRecord&, const SkipRecord&) = default;
};

// A skipped event's aggregate version.
struct PassedVersion {
  AggregateKey aggregate;
  std::int64_t version = 0;
  friend bool operator==(const PassedVersion&, const PassedVersion&) = default;
};

// `have` (an aggregate's applied version) moved past the skipped versions that follow it: what a
// version guard compares an event's version with.
std::int64_t PassedUpTo(const std::vector<PassedVersion>& pass, std::string_view type,
                        std::string_view id, std::int64_t have);

// What one store transaction does besides applying its events and moving the checkpoint.
struct DeadLetterChanges {
  std::vector<ParkedEvent> park;        // record these (idempotent per position)
  std::optional<AggregateKey> release;  // delete every parked event of this aggregate
  std::optional<SkipRecord> skip;       // add to the skip list
  // The versions of skipped events (the skip list): each counts as applied without its effect,
  // so the aggregate's version guard lets its later events through (PassedUpTo).
  std::vector<PassedVersion> pass;
  bool empty() const { return park.empty() && !release && !skip && pass.empty(); }
};

// The parked events that queries must respect: an answer that reads a row a parked event would
// change cannot honour a token that covers that event (its xid is below the token's bound).
class ParkedIndex {
 public:
  struct Entry {
    std::uint64_t first_xid = 0;
    std::vector<std::string> keys;
  };
  ParkedIndex() = default;
  explicit ParkedIndex(const std::vector<DeadLetter>& letters);

  bool empty() const { return entries_.empty(); }
  // Whether an answer reading the rows `keys` names may not honour a token of `bound`: some
  // parked aggregate whose first parked event lies below `bound` touches one of them. A key
  // ending in '*' ("product:*") names every key with that prefix.
  bool Blocks(std::uint64_t bound, std::span<const std::string> keys) const;

 private:
  std::vector<Entry> entries_;
};

// "parked" when dead letters exist: a status worth an alert (shown by /v1/admin/projections).
inline constexpr std::string_view kParkedStatus = "parked";

}  // namespace shopcqrs::cqrs
