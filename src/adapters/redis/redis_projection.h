#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cqrs/projector.h"
#include "infra/redis/redis_client.h"

namespace shopcqrs::adapters::redis {

inline constexpr const char* kProjectionName = "redis";
// Events per Apply that keep one script run in the low milliseconds while amortising the
// round trip (Projector::Options::batch_size).
inline constexpr std::size_t kRecommendedBatchSize = 2000;

// The key layout shared by the projection (writer) and RedisReadModel (reader).
//   <p>checkpoint:<name>      hash  xid, position, bound (decimal text), events (applied count),
//                                   dead_letter_generation (raised by each change of the next)
//   <p>dead_letters:<name>    hash  position -> a parked event (JSON: the event, error, keys)
//   <p>skips:<name>           hash  position -> a skipped event (JSON: who, when, which event)
//   <p>order:<id>             string  the API order view as JSON (timestamps RFC 3339)
//   <p>customer:<id>          hash  name, email, version
//   <p>customer_orders:<id>   set   ids of the customer's orders (to propagate renames)
//   <p>product:<id>           hash  sku, name, version, units_sold, revenue_cents
//   <p>top_products           zset  product ids (version > 0) scored -units_sold, so ZRANGE
//                                   yields most sold first and ties by id ascending
struct RedisKeys {
  std::string prefix = "shopcqrs:";

  std::string Checkpoint(std::string_view name) const { return Join("checkpoint:", name); }
  std::string DeadLetters(std::string_view name) const { return Join("dead_letters:", name); }
  std::string Skips(std::string_view name) const { return Join("skips:", name); }
  std::string Order(std::string_view id) const { return Join("order:", id); }
  std::string Customer(std::string_view id) const { return Join("customer:", id); }
  std::string CustomerOrders(std::string_view id) const { return Join("customer_orders:", id); }
  std::string Product(std::string_view id) const { return Join("product:", id); }
  std::string TopProducts() const { return prefix + "top_products"; }

 private:
  std::string Join(std::string_view kind, std::string_view id) const {
    std::string out = prefix;
    out += kind;
    out += id;
    return out;
  }
};

// The "redis" projection: the hot order-view cache and the top-sellers ranking in Redis.
//
// Redis cannot share a transaction with anything else, so the checkpoint lives in Redis and
// each Apply is ONE Lua script run (atomic in Redis, and written to the AOF as one MULTI/EXEC
// block) that:
//   1. compares the stored checkpoint with `from` (compare-and-set): if they differ -- Redis
//      restarted and lost its last batches together with the matching checkpoint, or another
//      projector moved it -- nothing is written and Apply throws a retryable error, so the
//      projector reloads the checkpoint and replays;
//   2. checks every event's aggregate version against the stored one and its type before
//      writing anything (<= stored: redelivered, skipped; a gap or an unknown type:
//      cqrs::DeterministicApplyError, nothing written);
//   3. applies the events, propagates customer details to all that customer's cached orders,
//      re-ranks the touched products, and stores the new checkpoint -- absolute writes only
//      (totals are summed in the script and written as values, never HINCRBY).
// A kill -9 during the AOF append of a script can leave the start of its MULTI block in the
// AOF; Redis 7.0 loads the file anyway and appends after that cut-off block, so the next
// restart would replay its first commands and then the next script's. Before its first write
// on a new connection to a server that restarted (a new run_id), Apply therefore rewrites the
// AOF (BGREWRITEAOF, waited for): the cut-off block is gone before anything follows it.
// Events of different aggregates may come in any order (an order before its customer: the
// customer's details reach the order when the customer arrives).
class RedisProjection final : public cqrs::ProjectionStore {
 public:
  struct Options {
    infra::redis::RedisEndpoint endpoint;
    std::string key_prefix = "shopcqrs:";
    std::string name = kProjectionName;
  };
  explicit RedisProjection(Options options);
  ~RedisProjection() override;
  // LoadCheckpoint reads only: a follower in an API process may use it.

  cqrs::Checkpoint LoadCheckpoint() override;
  void Apply(const cqrs::Checkpoint& from, const std::vector<cqrs::StoredEvent>& events,
             const cqrs::Checkpoint& to) override;
  void Reset() override;

  // Dead letters in Redis (the keys above), written by the apply script with the checkpoint.
  bool KeepsDeadLetters() const override { return true; }
  void ApplyWithDeadLetters(const cqrs::Checkpoint& from,
                            const std::vector<cqrs::StoredEvent>& events,
                            const cqrs::Checkpoint& to,
                            const cqrs::DeadLetterChanges& changes) override;
  std::vector<cqrs::DeadLetter> LoadDeadLetters() override;
  std::vector<cqrs::StoredEvent> LoadParkedEvents(const cqrs::AggregateKey& aggregate) override;
  std::vector<cqrs::SkipRecord> LoadSkips() override;
  std::vector<std::string> Footprint(const cqrs::StoredEvent& event) override;
  // The checkpoint's dead_letter_generation (a follower reloads the parked events when it moves).
  std::uint64_t DeadLetterGeneration();

  // Events applied so far (the checkpoint's counter); for status output and tests.
  std::int64_t EventsApplied();
  const RedisKeys& keys() const { return keys_; }

 private:
  Options options_;
  RedisKeys keys_;
  infra::redis::RedisClient client_;
  // The server run whose AOF this projection compacted, and the client connection on which that
  // was checked (a new connection checks again).
  std::string compacted_run_id_;
  std::uint64_t verified_connection_ = 0;

  void EnsureCompactedSinceRestart();
  std::string DeadLettersKey() const { return keys_.DeadLetters(options_.name); }
  std::string SkipsKey() const { return keys_.Skips(options_.name); }
  std::vector<std::string> Entries(const std::string& hash_key);
};

// The fields of an INFO reply ("key:value" lines).
std::map<std::string, std::string> InfoFields(std::string_view text);
// Rewrites the AOF (if enabled) and waits for the rewrite to finish; throws RedisError if it
// fails or takes longer than `timeout`.
void CompactAppendOnlyFile(infra::redis::RedisClient& client,
                           std::chrono::milliseconds timeout = std::chrono::seconds(60));

// The Lua source of the apply script (exposed for tests and inspection).
std::string_view ApplyScriptSource();

}  // namespace shopcqrs::adapters::redis
