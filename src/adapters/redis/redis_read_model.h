#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "adapters/pg_read/read_model.h"
#include "adapters/redis/redis_projection.h"
#include "application/read_model.h"
#include "infra/pg/pool.h"
#include "infra/redis/redis_client.h"

namespace shopcqrs::adapters::redis {

// Reads what RedisProjection maintains. Thread-safe: a small set of connections, each used
// by one caller at a time. After a connection fault Redis is considered down for
// `down_interval` and calls fail fast (RedisConnectionError) instead of waiting for a
// connect timeout each time. Faults throw RedisError.
class RedisReadModel {
 public:
  struct Options {
    // Short timeouts: a query waits at most this long before its fallback answers.
    infra::redis::RedisEndpoint endpoint{.connect_timeout = std::chrono::milliseconds(200),
                                         .command_timeout = std::chrono::milliseconds(500)};
    std::string key_prefix = "shopcqrs:";
    int connections = 4;
    std::chrono::milliseconds down_interval{1000};
  };
  explicit RedisReadModel(Options options);
  ~RedisReadModel();
  RedisReadModel(const RedisReadModel&) = delete;
  RedisReadModel& operator=(const RedisReadModel&) = delete;

  // nullopt when the order is not cached (yet).
  std::optional<app::OrderView> GetOrder(const domain::OrderId& id);
  // Most units sold first, ties by product id; `limit` >= 1.
  std::vector<app::TopProduct> TopProducts(int limit);
  // For /readyz: true when Redis answers PING (false, not a throw, when it does not).
  bool Ping();

 private:
  struct Slot {
    std::mutex mutex;
    std::unique_ptr<infra::redis::RedisClient> client;
  };
  template <class F>
  auto WithClient(F&& f);

  Options options_;
  RedisKeys keys_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<std::size_t> next_slot_ = 0;
  std::atomic<std::int64_t> down_until_ms_ = 0;  // steady clock
};

// Parses the order document the projection writes. Throws std::runtime_error if malformed.
app::OrderView ParseOrderView(std::string_view json_text);

// The read PostgreSQL's query model (pg_read::PgReadModel) with GetOrder and TopProducts served
// from Redis. GetOrder falls back to the read PostgreSQL on a cache miss; both fall back when
// Redis is unreachable or answers with an error, so Redis being down never fails a query.
class RedisQueries final : public pg_read::PgReadModel {
 public:
  struct Stats {
    std::uint64_t redis_hits = 0;
    std::uint64_t redis_misses = 0;  // GetOrder not cached: answered by the read PostgreSQL
    std::uint64_t redis_errors = 0;  // Redis down or failing: answered by the read PostgreSQL
  };
  // `read_pool`: the read database's pool (pg_read::ReadPoolOptions).
  RedisQueries(RedisReadModel& redis, infra::pg::Pool& read_pool);

  std::optional<app::OrderView> GetOrder(const domain::OrderId& id) override;
  domain::Result<std::vector<app::TopProduct>> TopProducts(int limit) override;

  Stats GetStats() const;

 private:
  RedisReadModel& redis_;
  std::atomic<std::uint64_t> hits_ = 0;
  std::atomic<std::uint64_t> misses_ = 0;
  std::atomic<std::uint64_t> errors_ = 0;
};

}  // namespace shopcqrs::adapters::redis
