#include "apps/shopcqrs/roles.h"

#include <libpq-fe.h>

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "adapters/http/command_routes.h"
#include "adapters/http/query_routes.h"
#include "adapters/pg_read/projection.h"
#include "adapters/pg_read/read_model.h"
#include "adapters/pg_read/search_projection.h"
#include "adapters/pg_single/read_model.h"
#include "adapters/pg_write/write_store.h"
#include "adapters/redis/redis_projection.h"
#include "apps/shopcqrs/catalogue.h"

namespace shopcqrs::apps {

using apps::Config;

std::optional<infra::redis::RedisEndpoint> RedisEndpointOf(const Config& config) {
  if (config.redis.empty()) return std::nullopt;
  auto address = apps::ParseListenAddress(config.redis);
  if (!address) throw std::runtime_error(address.error());
  return infra::redis::RedisEndpoint{.host = address->host, .port = address->port};
}

std::string DatabaseIdentity(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (!options) {
    if (error) PQfreemem(error);
    return conninfo;
  }
  std::string host, port, dbname;
  for (auto* o = options; o->keyword; ++o) {
    const std::string_view key = o->keyword;
    const std::string value = o->val ? o->val : "";
    if (key == "host" || (key == "hostaddr" && host.empty())) host = value;
    if (key == "port") port = value;
    if (key == "dbname") dbname = value;
  }
  PQconninfoFree(options);
  return fmt::format("{}:{}/{}", host, port, dbname);
}

std::string ConsumerName(std::string_view projection, std::string_view store_identity) {
  std::uint32_t hash = 2166136261u;  // FNV-1a: stable across builds and runs
  for (const unsigned char c : store_identity) hash = (hash ^ c) * 16777619u;
  return fmt::format("shopcqrs_{}_{:08x}", projection, hash);
}

// ---- What a configuration asks for ----

RolePlan PlanRoles(const Config& config) {
  RolePlan plan;
  if (config.roles.empty()) {
    plan.command = plan.query = config.run_api;
    plan.relay = config.run_relay && !config.nats.empty();
    plan.projectors = config.run_projectors;
  } else {
    const auto has = [&](std::string_view role) {
      return std::find(config.roles.begin(), config.roles.end(), role) != config.roles.end();
    };
    plan.command = has("command");
    plan.query = has("query");
    plan.relay = has("relay");
    plan.projectors = has("projector");
  }
  plan.follower = plan.query && !plan.projectors;
  return plan;
}

std::string DescribeRoles(const RolePlan& roles) {
  std::string text;
  for (const auto& [on, name] : {std::pair{roles.command, "command"},
                                 {roles.query, "query"},
                                 {roles.relay, "relay"},
                                 {roles.projectors, "projector"}}) {
    if (!on) continue;
    if (!text.empty()) text += ',';
    text += name;
  }
  return text.empty() ? "none" : text;
}

cqrs::ConsistencyTokens ConsistencyTokensOf(const Config& config) {
  return cqrs::ConsistencyTokens(config.token_secret);
}

infra::http::HttpServer::Options HttpServerOptions(const Config& config) {
  auto listen = apps::ParseListenAddress(config.listen);
  if (!listen) throw std::runtime_error(listen.error());
  infra::http::HttpServer::Options options;
  options.host = listen->host;
  options.port = listen->port;
  options.io_threads = 1;
  options.worker_threads = config.http_threads;
  return options;
}

ApiPoolOptions ApiPools(const Config& config) {
  ApiPoolOptions pools{
      .write = adapters::pg_write::WritePoolOptions(config.write_db, config.write_pool_size),
      .read = adapters::pg_read::ReadPoolOptions(config.read_db, config.read_pool_size),
      .single = std::nullopt};
  if (config.query_source == "write") {
    pools.single = adapters::pg_single::SinglePoolOptions(config.write_db, config.read_pool_size);
  }
  return pools;
}

adapters::relay::Relay::Options RelayOptions(const Config& config) {
  adapters::relay::Relay::Options options;
  options.write_db = config.write_db;
  options.nats.url = config.nats;
  options.nats.name = "shopcqrs-relay";
  options.stream_replicas = BrokerReplicas(config);
  options.reconcile_replicas = config.broker_replicas > 0;  // set, not derived from the URLs
  return options;
}

std::vector<ProjectorPlan> PlanProjectors(const Config& config) {
  std::vector<ProjectorPlan> plans;
  auto add = [&](std::string name, std::string store, std::string store_identity,
                 std::size_t batch_size) {
    ProjectorPlan plan;
    plan.store = std::move(store);
    plan.store_identity = std::move(store_identity);
    plan.projector.name = std::move(name);
    plan.projector.batch_size = batch_size;
    if (config.projection_source == "broker") {
      adapters::nats::JetStreamSource::Options broker;
      broker.nats.url = config.nats;
      broker.nats.name = "shopcqrs-" + plan.projector.name;
      broker.consumer = ConsumerName(plan.projector.name, plan.store_identity);
      broker.stream_replicas = BrokerReplicas(config);
      plan.broker = std::move(broker);
    }
    plan.outbox.conninfo = config.write_db;
    plans.push_back(std::move(plan));
  };
  const auto default_batch = cqrs::Projector::Options{}.batch_size;
  const auto read_identity = DatabaseIdentity(config.read_db);
  add(adapters::pg_read::kProjectionName, "read_pg", read_identity, default_batch);
  plans.back().projector.max_batch_size = adapters::pg_read::kCatchUpMaxBatch;
  // search lives in the read PostgreSQL too
  add(adapters::pg_read::kSearchProjectionName, "read_pg", read_identity, default_batch);
  if (!config.redis.empty()) {
    add(adapters::redis::kProjectionName, "redis", config.redis,
        adapters::redis::kRecommendedBatchSize);
  }
  return plans;
}

// ---- CommandRole ----

CommandRole::CommandRole(const Config& config, const cqrs::ConsistencyTokens& tokens)
    : write_pool_(ApiPools(config).write),
      write_store_(write_pool_, tokens),
      commands_(write_store_, clock_, ids_) {}

void CommandRole::AddRoutes(infra::http::Router& router, infra::metrics::Registry& registry,
                            std::shared_ptr<adapters::http::Authorizer> authorizer) {
  adapters::http::RegisterCommandRoutes(router, commands_, registry, std::move(authorizer));
}

void CommandRole::AddReadiness(std::vector<adapters::http::ReadinessCheck>& checks) {
  checks.push_back({"write_db", [this] { return write_pool_.Ping(); }});
}

// ---- QueryRole ----

QueryRole::QueryRole(const Config& config, const cqrs::ConsistencyTokens& tokens,
                     ProgressTrackers& trackers)
    : tokens_(tokens),
      trackers_(trackers),
      read_pool_(ApiPools(config).read),
      read_model_(read_pool_) {
  // query_source = redis: the order view and top sellers from Redis (the read PostgreSQL
  // answers the rest, and whatever Redis cannot); with query_source = read Redis is only
  // projected.
  if (config.query_source == "redis") {
    adapters::redis::RedisReadModel::Options options;
    options.endpoint = *RedisEndpointOf(config);
    // One connection per handler thread: no query waits for another's Redis round trip.
    options.connections = config.http_threads;
    redis_model_ = std::make_unique<adapters::redis::RedisReadModel>(options);
    redis_queries_ = std::make_unique<adapters::redis::RedisQueries>(*redis_model_, read_pool_);
  }
  // Single-database mode: the same queries as normalized joins on the write database, through
  // a pool of their own -- the baseline and a migration path. Every commit is visible at once.
  if (auto single = ApiPools(config).single) {
    single_pool_ = std::make_unique<infra::pg::Pool>(std::move(*single));
    single_model_ = std::make_unique<adapters::pg_single::PgSingleReadModel>(*single_pool_);
    committed_.Publish(std::numeric_limits<std::uint64_t>::max());
  }
}

QueryRole::~QueryRole() = default;

void QueryRole::AddRoutes(infra::http::Router& router, infra::metrics::Registry& registry) {
  app::ReadModel& queries = single_model_    ? static_cast<app::ReadModel&>(*single_model_)
                            : redis_queries_ ? static_cast<app::ReadModel&>(*redis_queries_)
                                             : static_cast<app::ReadModel&>(read_model_);
  adapters::http::RegisterQueryRoutes(
      router, queries, tokens_, single_model_ ? committed_ : trackers_.read_pg, registry,
      redis_model_ ? &trackers_.redis : nullptr, {}, single_model_ ? nullptr : &trackers_.search);
}

void QueryRole::AddReadiness(std::vector<adapters::http::ReadinessCheck>& checks) {
  checks.push_back({"read_db", [this] { return read_pool_.Ping(); }});
  if (redis_model_) checks.push_back({"redis", [this] { return redis_model_->Ping(); }});
  if (single_pool_) {
    checks.push_back({"write_db_queries", [this] { return single_pool_->Ping(); }});
  }
}

// ---- RelayRole ----

RelayRole::RelayRole(const Config& config) : relay_(RelayOptions(config)) {}

void RelayRole::AddReadiness(std::vector<adapters::http::ReadinessCheck>& checks) {
  checks.push_back({"relay", [this] {
                      return relay_.GetStats().role != adapters::relay::Relay::Role::kStalled;
                    }});
}

void RelayRole::AddMetrics(infra::metrics::Registry& registry) {
  using Stats = adapters::relay::Relay::Stats;
  auto stat = [this](auto field) {
    return [this, field] { return static_cast<double>(field(relay_.GetStats())); };
  };
  registry.AddCallbackGauge(
      "shopcqrs_relay_leader", "1 while this process's relay holds the relay lock and publishes.",
      stat([](const Stats& s) { return s.role == adapters::relay::Relay::Role::kLeader ? 1 : 0; }));
  registry.AddCallbackGauge("shopcqrs_relay_events_published_total",
                            "Events this process's relay appended to the JetStream stream.",
                            stat([](const Stats& s) { return s.events_published; }));
  registry.AddCallbackGauge(
      "shopcqrs_relay_resyncs_total",
      "Appends the stream refused or did not confirm; the relay re-read the stream's end.",
      stat([](const Stats& s) { return s.resyncs; }));
  registry.AddCallbackGauge("shopcqrs_relay_stream_sequence",
                            "The event stream's last sequence as the relay knows it.",
                            stat([](const Stats& s) { return s.stream_sequence; }));
  registry.AddCallbackGauge("shopcqrs_relay_lag_seconds",
                            "Commit to appended, of the last event the relay appended.",
                            stat([](const Stats& s) { return s.last_lag.count() / 1000.0; }));
}

adapters::http::ProjectionInfo RelayRole::Info(adapters::pg_outbox::OutboxReader& monitor) const {
  const auto stats = relay_.GetStats();
  auto info = Describe("relay", "nats", stats.checkpoint,
                       [&monitor](const cqrs::Checkpoint& c) { return monitor.CountAfter(c); });
  info.status = std::string(adapters::relay::ToString(stats.role));
  info.lag_ms = stats.last_lag.count();
  if (!stats.last_error.empty() && stats.role == adapters::relay::Relay::Role::kStalled) {
    info.last_error = stats.last_error;
  }
  return info;
}

// ---- ProjectorsRole ----

ProjectorsRole::ProjectorsRole(const Config& config, ProgressTrackers& trackers,
                               infra::metrics::Registry& registry)
    : metrics_(registry) {
  for (auto& plan : PlanProjectors(config)) {
    const std::string& name = plan.projector.name;
    if (name == adapters::pg_read::kProjectionName) {
      Add(std::move(plan), std::make_unique<adapters::pg_read::PgReadProjection>(config.read_db),
          trackers.read_pg);
    } else if (name == adapters::pg_read::kSearchProjectionName) {
      Add(std::move(plan), std::make_unique<adapters::pg_read::SearchProjection>(config.read_db),
          trackers.search);
    } else {
      Add(std::move(plan),
          std::make_unique<adapters::redis::RedisProjection>(
              adapters::redis::RedisProjection::Options{.endpoint = *RedisEndpointOf(config)}),
          trackers.redis);
    }
  }
}

ProjectorsRole::~ProjectorsRole() { Stop(); }

void ProjectorsRole::Add(ProjectorPlan plan, std::unique_ptr<cqrs::ProjectionStore> projection,
                         cqrs::ProgressTracker& tracker) {
  Running r;
  r.store = std::move(plan.store);
  if (plan.broker) {
    auto source = std::make_unique<adapters::nats::JetStreamSource>(std::move(*plan.broker));
    r.backlog = [broker = source.get()](const cqrs::Checkpoint&) { return broker->Backlog(); };
    r.source = std::move(source);
  } else {
    // A reader of its own counts (the projector's is busy reading).
    auto monitor = std::make_shared<adapters::pg_outbox::OutboxReader>(plan.outbox);
    r.backlog = [monitor](const cqrs::Checkpoint& c) { return monitor->CountAfter(c); };
    r.source = std::make_unique<adapters::pg_outbox::OutboxReader>(std::move(plan.outbox));
  }
  r.projection = std::move(projection);
  r.projector = std::make_unique<cqrs::Projector>(std::move(plan.projector), *r.source,
                                                  *r.projection, &tracker, &metrics_);
  running_.push_back(std::move(r));
}

void ProjectorsRole::Start() {
  for (auto& r : running_) r.projector->Start();
}

void ProjectorsRole::Stop() {
  for (auto& r : running_) r.projector->Stop();
}

void ProjectorsRole::AddReadiness(std::vector<adapters::http::ReadinessCheck>& checks) {
  for (auto& r : running_) {
    checks.push_back({"projector_" + r.projector->name(), [&r] {
                        return r.projector->Stats().status != cqrs::ProjectorStatus::kError;
                      }});
  }
}

void ProjectorsRole::AddMetrics(infra::metrics::Registry& registry) {
  registry.AddCallbackGauge(
      "shopcqrs_projection_heartbeat_age_seconds", "Time since the projector loop last turned.",
      {"projection"}, [this] {
        std::vector<infra::metrics::Sample> samples;
        const auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now());
        for (auto& r : running_) {
          const auto age = now - r.projector->Stats().heartbeat;
          samples.push_back({{r.projector->name()}, std::chrono::duration<double>(age).count()});
        }
        return samples;
      });
  registry.AddCallbackGauge(
      "shopcqrs_dead_letters",
      "Events a projection has parked (sequenced dead letters): not 0 calls for an operator.",
      {"projection"}, [this] {
        std::vector<infra::metrics::Sample> samples;
        for (auto& r : running_) {
          samples.push_back(
              {{r.projector->name()}, static_cast<double>(r.projector->Stats().dead_letters)});
        }
        return samples;
      });
}

adapters::http::DeadLetterAdmin ProjectorsRole::DeadLetterAdmin() {
  using adapters::http::ResolveOutcome;
  auto find = [this](const std::string& name) -> cqrs::Projector* {
    for (auto& r : running_) {
      if (r.projector->name() == name) return r.projector.get();
    }
    return nullptr;
  };
  return {.list = [this, find](const std::optional<std::string>& projection)
              -> std::optional<std::vector<adapters::http::DeadLetterItem>> {
            std::vector<cqrs::Projector*> projectors;
            if (projection) {
              auto* p = find(*projection);
              if (!p) return std::nullopt;
              projectors.push_back(p);
            } else {
              for (auto& r : running_) projectors.push_back(r.projector.get());
            }
            std::vector<adapters::http::DeadLetterItem> items;
            for (auto* p : projectors) {
              for (const auto& l : p->DeadLetters()) {
                items.push_back({p->name(), l.aggregate.type, l.aggregate.id, l.first_position,
                                 l.events, l.error, l.parked_at});
              }
            }
            return items;
          },
          .resolve = [find](const std::string& projection, const std::string& aggregate_id,
                            bool skip, const std::string& by) -> ResolveOutcome {
            auto* p = find(projection);
            if (!p) return {.kind = ResolveOutcome::Kind::kUnknownProjection};
            auto done = p->Resolve(
                aggregate_id,
                skip ? cqrs::Projector::Resolution::kSkip : cqrs::Projector::Resolution::kRetry,
                by);
            if (done.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
              return {.kind = ResolveOutcome::Kind::kUnavailable,
                      .error = "the projector did not get to it in 30 s (it may be stalled)"};
            }
            const auto result = done.get();
            if (!result.found) return {.kind = ResolveOutcome::Kind::kNotParked};
            if (!result.resolved) {
              const bool unavailable = result.error.starts_with("the store is unavailable");
              return {.kind = unavailable ? ResolveOutcome::Kind::kUnavailable
                                          : ResolveOutcome::Kind::kStillFailing,
                      .error = result.error};
            }
            return {.kind = ResolveOutcome::Kind::kResolved,
                    .applied = result.applied,
                    .skipped = result.skipped};
          }};
}

std::vector<adapters::http::ProjectionInfo> ProjectorsRole::Infos() const {
  std::vector<adapters::http::ProjectionInfo> items;
  for (const auto& r : running_) {
    const auto stats = r.projector->Stats();
    auto info = Describe(r.projector->name(), r.store, stats.checkpoint, r.backlog);
    info.status = std::string(cqrs::ToString(stats.status));
    // Parked events while it runs on: worth an alert (the other states say more).
    if (stats.dead_letters > 0 && (stats.status == cqrs::ProjectorStatus::kRunning ||
                                   stats.status == cqrs::ProjectorStatus::kCatchingUp)) {
      info.status = std::string(cqrs::kParkedStatus);
    }
    info.dead_letters = stats.dead_letters;
    info.lag_ms = stats.last_lag.count();
    if (!stats.last_error.empty()) info.last_error = stats.last_error;
    items.push_back(std::move(info));
  }
  return items;
}

// ---- ProgressFollowerRole ----

ProgressFollowerRole::ProgressFollowerRole(const Config& config, ProgressTrackers& trackers)
    : read_pg_(config.read_db, trackers.read_pg, adapters::pg_read::kProjectionName),
      search_(config.read_db, trackers.search, adapters::pg_read::kSearchProjectionName) {
  if (auto endpoint = RedisEndpointOf(config)) {
    // The Redis checkpoint has no change feed; follow it closely. The follower sets the bound to
    // what Redis holds, lower too: a Redis that lost writes must make token waits wait.
    redis_ = std::jthread([&tracker = trackers.redis, endpoint = *endpoint](std::stop_token stop) {
      adapters::redis::RedisProjection checkpoints({.endpoint = endpoint});
      // Of the parked events loaded last (none loaded: a value no checkpoint holds).
      constexpr auto kNone = std::numeric_limits<std::uint64_t>::max();
      std::uint64_t generation = kNone;
      while (!stop.stop_requested()) {
        try {
          // The parked events first: the bound read after them may lie past them.
          if (const auto now = checkpoints.DeadLetterGeneration(); now != generation) {
            auto letters = checkpoints.LoadDeadLetters();
            tracker.SetParked(letters.empty() ? nullptr
                                              : std::make_shared<const cqrs::ParkedIndex>(letters));
            generation = now;
          }
          tracker.Reset(checkpoints.LoadCheckpoint().bound);
        } catch (const std::exception&) {
          generation = kNone;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }
}

ProgressFollowerRole::~ProgressFollowerRole() = default;

}  // namespace shopcqrs::apps
