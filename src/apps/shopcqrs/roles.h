#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/http/admin_routes.h"
#include "adapters/http/ops_routes.h"
#include "adapters/metrics/projection_metrics.h"
#include "adapters/nats/jetstream_source.h"
#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_read/progress_listener.h"
#include "adapters/relay/relay.h"
#include "apps/shopcqrs/config.h"
#include "cqrs/consistency_token.h"
#include "cqrs/projector.h"
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

// The roles a process runs.
struct RolePlan {
  bool api = false;         // api.enabled
  bool relay = false;       // relay.enabled, with nats set
  bool projectors = false;  // projectors.enabled
  bool follower = false;    // without the projectors: their progress, followed for the tokens

  friend bool operator==(const RolePlan&, const RolePlan&) = default;
};
RolePlan PlanRoles(const apps::Config& config);

// The installation's consistency tokens: HMAC-SHA256 keyed with token_secret.
cqrs::ConsistencyTokens ConsistencyTokensOf(const apps::Config& config);

// The API role's HTTP server: the listen address, one I/O thread and http_threads handler
// threads (handlers block on PostgreSQL, so these bound the requests handled at once).
infra::http::HttpServer::Options HttpServerOptions(const apps::Config& config);

// The API role's connection pools, each of its own size.
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
  std::vector<adapters::http::ProjectionInfo> Infos(
      adapters::pg_outbox::OutboxReader& monitor) const;

 private:
  struct Running {
    std::string store;
    std::unique_ptr<cqrs::EventSource> source;
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
