#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/http/admin_routes.h"
#include "adapters/http/auth_policy.h"
#include "adapters/http/ops_routes.h"
#include "adapters/metrics/projection_metrics.h"
#include "adapters/nats/jetstream_source.h"
#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_read/progress_listener.h"
#include "adapters/pg_read/read_model.h"
#include "adapters/pg_single/read_model.h"
#include "adapters/pg_write/write_store.h"
#include "adapters/redis/redis_read_model.h"
#include "adapters/relay/relay.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "apps/shopcqrs/config.h"
#include "cqrs/consistency_token.h"
#include "cqrs/projector.h"
#include "infra/http/router.h"
#include "infra/http/server.h"
#include "infra/metrics/registry.h"
#include "infra/pg/pool.h"
#include "infra/redis/redis_client.h"

// The parts a `shopcqrs` process runs, one object each: it builds its own connections from the
// configuration, starts and stops its threads, and names its readiness checks and metrics. The
// composition (Serve) picks the roles the configuration asks for and wires their outputs
// (progress trackers, projection listings) into the HTTP routes.
namespace shopcqrs::apps {

// The applied bound of each projection, shared by whatever publishes it (the projectors in this
// process, or a follower of another process's) and the query routes that wait for tokens.
struct ProgressTrackers {
  cqrs::ProgressTracker read_pg;
  cqrs::ProgressTracker search;
  cqrs::ProgressTracker redis;
};

// The Redis endpoint of the configuration, if any (validated by ValidateConfig).
std::optional<infra::redis::RedisEndpoint> RedisEndpointOf(const apps::Config& config);

// ---- What a configuration asks for: Serve and the roles build exactly this ----

// The roles a process runs: `roles` when set, else the switches (api.enabled: command and
// query; relay.enabled with nats set: relay; projectors.enabled: projector).
struct RolePlan {
  bool command = false;
  bool query = false;
  bool relay = false;
  bool projectors = false;
  bool follower = false;  // query without the projectors: their progress, followed for the tokens

  friend bool operator==(const RolePlan&, const RolePlan&) = default;
};
RolePlan PlanRoles(const apps::Config& config);
// "command,query,relay,projector" (the roles of the plan, in kRoles' order).
std::string DescribeRoles(const RolePlan& roles);

// The installation's consistency tokens: HMAC-SHA256 keyed with token_secret.
cqrs::ConsistencyTokens ConsistencyTokensOf(const apps::Config& config);

// The process's HTTP server (every process has one: /healthz, /readyz, /metrics): the listen
// address, one I/O thread and http_threads handler threads (handlers block on PostgreSQL, so
// these bound the requests handled at once).
infra::http::HttpServer::Options HttpServerOptions(const apps::Config& config);

// The command and query roles' connection pools, each of its own size.
struct ApiPoolOptions {
  infra::pg::Pool::Options write;  // commands: write_db, write_db.pool_size connections
  infra::pg::Pool::Options read;   // queries: read_db, read_db.pool_size connections
  // query_source = write (single-database mode): the queries' read-only pool on write_db, of
  // read_db.pool_size connections.
  std::optional<infra::pg::Pool::Options> single;
};
ApiPoolOptions ApiPools(const apps::Config& config);

// The relay role: the outbox of write_db onto the event stream of the nats-server at `nats`.
adapters::relay::Relay::Options RelayOptions(const apps::Config& config);

// One projector of the projectors role.
struct ProjectorPlan {
  std::string store;           // where it writes: "read_pg" (read_db) or "redis"
  std::string store_identity;  // which database or Redis that is (its consumer is named after it)
  cqrs::Projector::Options projector;  // its name and batch size
  // projection_source = broker: a durable consumer of its own of the event stream at `nats`;
  // outbox (nullopt): it reads the outbox of write_db directly.
  std::optional<adapters::nats::JetStreamSource::Options> broker;
  adapters::pg_outbox::OutboxReader::Options outbox;
};
// read_pg and search (in read_db) always; redis (its own batch size) when redis is set.
std::vector<ProjectorPlan> PlanProjectors(const apps::Config& config);

// The command role: the command routes, on a pool of the write database (its only connection).
class CommandRole {
 public:
  CommandRole(const apps::Config& config, const cqrs::ConsistencyTokens& tokens);
  // The command routes and POST /v1/admin/tokens; `authorizer` issues sign-up and minted tokens.
  void AddRoutes(infra::http::Router& router, infra::metrics::Registry& registry,
                 std::shared_ptr<adapters::http::Authorizer> authorizer);
  void AddReadiness(std::vector<adapters::http::ReadinessCheck>& checks);

 private:
  adapters::system::SystemClock clock_;
  adapters::system::RandomIds ids_;
  infra::pg::Pool write_pool_;
  adapters::pg_write::PgWriteStore write_store_;
  app::CommandService commands_;
};

// The query role: the query routes, on the read stores (a pool of the read PostgreSQL and, with
// query_source = redis, Redis), waiting for consistency tokens on the projections' progress.
// With query_source = write (single-database mode) the queries run as normalized joins on a
// read-only pool of the write database instead, where every commit is visible at once.
class QueryRole {
 public:
  QueryRole(const apps::Config& config, const cqrs::ConsistencyTokens& tokens,
            ProgressTrackers& trackers);
  ~QueryRole();
  void AddRoutes(infra::http::Router& router, infra::metrics::Registry& registry);
  void AddReadiness(std::vector<adapters::http::ReadinessCheck>& checks);

 private:
  const cqrs::ConsistencyTokens& tokens_;
  ProgressTrackers& trackers_;
  infra::pg::Pool read_pool_;
  adapters::pg_read::PgReadModel read_model_;
  std::unique_ptr<adapters::redis::RedisReadModel> redis_model_;
  std::unique_ptr<adapters::redis::RedisQueries> redis_queries_;
  std::unique_ptr<infra::pg::Pool> single_pool_;
  std::unique_ptr<adapters::pg_single::PgSingleReadModel> single_model_;
  cqrs::ProgressTracker committed_;  // single-database mode: everything committed is visible
};

// The relay: appends the outbox to the JetStream event stream (one leader among any number of
// relays, elected by an advisory lock on the write database).
class RelayRole {
 public:
  explicit RelayRole(const apps::Config& config);
  void Start() { relay_.Start(); }
  void Stop() { relay_.Stop(); }
  void AddReadiness(std::vector<adapters::http::ReadinessCheck>& checks);
  void AddMetrics(infra::metrics::Registry& registry);
  adapters::http::ProjectionInfo Info(adapters::pg_outbox::OutboxReader& monitor) const;

 private:
  adapters::relay::Relay relay_;
};

// The projectors: read_pg, search and (with Redis) redis, each with its own event source (a
// durable JetStream consumer, or the outbox) and its own store connection and checkpoint.
class ProjectorsRole {
 public:
  ProjectorsRole(const apps::Config& config, ProgressTrackers& trackers,
                 infra::metrics::Registry& registry);
  ~ProjectorsRole();  // Stop()
  void Start();
  void Stop();
  void AddReadiness(std::vector<adapters::http::ReadinessCheck>& checks);
  void AddMetrics(infra::metrics::Registry& registry);
  // Each projection's state; events_behind counted where it reads (the outbox's committed
  // events after its checkpoint, or its durable consumer's unacknowledged messages).
  std::vector<adapters::http::ProjectionInfo> Infos() const;
  // The dead-letter routes' view of the projectors (list, retry, skip).
  adapters::http::DeadLetterAdmin DeadLetterAdmin();

 private:
  struct Running {
    std::string store;
    std::unique_ptr<cqrs::EventSource> source;
    std::function<std::int64_t(const cqrs::Checkpoint&)> backlog;
    std::unique_ptr<cqrs::ProjectionStore> projection;
    std::unique_ptr<cqrs::Projector> projector;
  };
  void Add(ProjectorPlan plan, std::unique_ptr<cqrs::ProjectionStore> projection,
           cqrs::ProgressTracker& tracker);

  adapters::metrics::ProjectionMetrics metrics_;
  std::vector<Running> running_;
};

// In a process that serves queries without running the projectors: follows their progress from
// the stores (NOTIFY and polls on the read PostgreSQL, polls of the Redis checkpoint), setting
// each tracker to the stored bound.
class ProgressFollowerRole {
 public:
  ProgressFollowerRole(const apps::Config& config, ProgressTrackers& trackers);
  ~ProgressFollowerRole();

 private:
  adapters::pg_read::ProgressListener read_pg_;
  adapters::pg_read::ProgressListener search_;
  std::jthread redis_;
};

// The durable consumer of a projection: one per projection and store, so processes feeding
// different stores (a second read database, say) never share one.
std::string ConsumerName(std::string_view projection, std::string_view store_identity);
// host:port/dbname of a libpq conninfo (what identifies the database a projection writes to).
std::string DatabaseIdentity(const std::string& conninfo);

}  // namespace shopcqrs::apps
