#include "apps/shopcqrs/serve.h"

#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapters/http/admin_routes.h"
#include "adapters/http/command_routes.h"
#include "adapters/http/ops_routes.h"
#include "adapters/http/query_routes.h"
#include "adapters/pg_read/read_model.h"
#include "adapters/pg_single/read_model.h"
#include "adapters/pg_write/write_store.h"
#include "adapters/redis/redis_read_model.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "apps/shopcqrs/auth.h"
#include "apps/shopcqrs/catalogue.h"
#include "apps/shopcqrs/roles.h"
#include "cqrs/consistency_token.h"
#include "infra/http/server.h"
#include "infra/nats/jetstream.h"
#include "infra/pg/migrator.h"
#include "infra/pg/pool.h"

namespace shopcqrs::apps {

using apps::Config;

void Migrate(const Config& config) {
  const int write = infra::pg::ApplyMigrations(config.write_db, "pg_write");
  spdlog::info("write database: {} migration(s) applied", write);
  if (!config.read_db.empty()) {
    const int read = infra::pg::ApplyMigrations(config.read_db, "pg_read");
    spdlog::info("read database: {} migration(s) applied", read);
  }
}

namespace {

int WaitForStopSignal(const sigset_t& set) {
  int signal = 0;
  sigwait(&set, &signal);
  return signal;
}

// The HTTP API: commands on the write database, queries on the read stores (or, with
// query_source = write, on the write database: single-database mode), admin and operations.
class ApiRole {
 public:
  ApiRole(const Config& config, const cqrs::ConsistencyTokens& tokens, ProgressTrackers& trackers,
          infra::metrics::Registry& metrics)
      : config_(config),
        auth_(AuthorizerOf(config)),
        write_pool_(ApiPools(config).write),
        write_store_(write_pool_, tokens),
        commands_(write_store_, clock_, ids_),
        read_pool_(ApiPools(config).read),
        read_model_(read_pool_) {
    // query_source = redis: the order view and top sellers from Redis (the read PostgreSQL
    // answers the rest, and whatever Redis cannot); with query_source = read Redis is only
    // projected.
    if (config.query_source == "redis") {
      adapters::redis::RedisReadModel::Options options;
      options.endpoint = *RedisEndpointOf(config);
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
    app::ReadModel& queries = single_model_    ? static_cast<app::ReadModel&>(*single_model_)
                              : redis_queries_ ? static_cast<app::ReadModel&>(*redis_queries_)
                                               : static_cast<app::ReadModel&>(read_model_);
    router_.SetGuard(auth_->Guard());  // authentication: every route's policy, before its handler
    adapters::http::RegisterCommandRoutes(router_, commands_, metrics, auth_);
    adapters::http::RegisterQueryRoutes(
        router_, queries, tokens, single_model_ ? committed_ : trackers.read_pg, metrics,
        redis_model_ ? &trackers.redis : nullptr, {}, single_model_ ? nullptr : &trackers.search);
  }

  void AddAdmin(std::function<std::vector<adapters::http::ProjectionInfo>()> projections) {
    adapters::http::RegisterAdminRoutes(router_, std::move(projections));
  }

  void AddReadiness(std::vector<adapters::http::ReadinessCheck>& checks) {
    checks.push_back({"write_db", [this] { return write_pool_.Ping(); }});
    checks.push_back({"read_db", [this] { return read_pool_.Ping(); }});
    if (redis_model_) checks.push_back({"redis", [this] { return redis_model_->Ping(); }});
    if (single_pool_) {
      checks.push_back({"write_db_queries", [this] { return single_pool_->Ping(); }});
    }
    if (!config_.nats.empty()) checks.push_back({"nats", [this] { return NatsReady(); }});
  }

  void Start(infra::metrics::Registry& metrics,
             std::vector<adapters::http::ReadinessCheck> checks) {
    adapters::http::RegisterOpsRoutes(router_, metrics, std::move(checks), auth_->enabled());
    const auto options = HttpServerOptions(config_);
    server_ = std::make_unique<infra::http::HttpServer>(options, router_);
    server_->Start();
    std::cout << fmt::format("shopcqrs serving http://{}:{}", options.host, server_->port())
              << std::endl;
  }

  void Stop() {
    if (server_) server_->Stop();
  }

 private:
  // A connection of its own tells /readyz whether the broker answers.
  bool NatsReady() {
    std::lock_guard lock(nats_mutex_);
    try {
      if (!nats_) {
        nats_ = std::make_unique<infra::nats::JetStreamConnection>(
            infra::nats::JetStreamConnection::Options{.url = config_.nats,
                                                      .name = "shopcqrs-monitor"});
      }
      return nats_->IsConnected();
    } catch (const std::exception&) {
      return false;
    }
  }

  const Config& config_;
  std::shared_ptr<adapters::http::Authorizer> auth_;  // outlives router_ and server_
  adapters::system::SystemClock clock_;
  adapters::system::RandomIds ids_;
  infra::pg::Pool write_pool_;  // commands only
  adapters::pg_write::PgWriteStore write_store_;
  app::CommandService commands_;
  infra::pg::Pool read_pool_;  // queries only: nothing here holds a write connection
  adapters::pg_read::PgReadModel read_model_;
  std::unique_ptr<adapters::redis::RedisReadModel> redis_model_;
  std::unique_ptr<adapters::redis::RedisQueries> redis_queries_;
  std::unique_ptr<infra::pg::Pool> single_pool_;
  std::unique_ptr<adapters::pg_single::PgSingleReadModel> single_model_;
  cqrs::ProgressTracker committed_;
  infra::http::Router router_;
  std::unique_ptr<infra::http::HttpServer> server_;
  std::mutex nats_mutex_;
  std::unique_ptr<infra::nats::JetStreamConnection> nats_;
};

}  // namespace

int Serve(const Config& config, const sigset_t& signals) {
  Migrate(config);
  const cqrs::ConsistencyTokens tokens = ConsistencyTokensOf(config);
  infra::metrics::Registry metrics;
  ProgressTrackers trackers;
  adapters::pg_outbox::OutboxReader monitor({config.write_db});

  const RolePlan roles = PlanRoles(config);
  std::unique_ptr<RelayRole> relay;
  if (roles.relay) relay = std::make_unique<RelayRole>(config);
  std::unique_ptr<ProjectorsRole> projectors;
  if (roles.projectors) projectors = std::make_unique<ProjectorsRole>(config, trackers, metrics);
  std::unique_ptr<ProgressFollowerRole> follower;
  if (roles.follower) follower = std::make_unique<ProgressFollowerRole>(config, trackers);

  // The projections as this process sees them: its own running ones and relay, or the stored
  // checkpoints of the catalogue's when it runs none.
  auto projections = [&]() -> std::vector<adapters::http::ProjectionInfo> {
    std::vector<adapters::http::ProjectionInfo> items;
    if (projectors) {
      items = projectors->Infos(monitor);
    } else {
      for (const auto& entry : ProjectionCatalogue(config)) {
        if (entry.store == "redis") continue;  // followed, not listed, from an API process
        auto info = Describe(entry.name, entry.store, entry.load_checkpoint(), monitor);
        info.status = "remote";
        items.push_back(std::move(info));
      }
    }
    if (relay) items.push_back(relay->Info(monitor));
    return items;
  };
  metrics.AddCallbackGauge(
      "shopcqrs_outbox_blocking_xid_age_seconds",
      "Age of the oldest transaction holding an xid on the write server: it holds back every "
      "outbox reader (xid8 snapshot bounding).",
      [&] {
        auto blocking = monitor.OldestBlockingTransaction();
        return blocking ? blocking->age.count() / 1000.0 : 0.0;
      });
  metrics.AddCallbackGauge("shopcqrs_outbox_blocking_xid",
                           "The xid of that oldest transaction (0 when none).", [&] {
                             auto blocking = monitor.OldestBlockingTransaction();
                             return blocking ? static_cast<double>(blocking->xid) : 0.0;
                           });
  metrics.AddCallbackGauge("shopcqrs_projection_events_behind",
                           "Committed events a projection has not applied yet.", {"projection"},
                           [&] {
                             std::vector<infra::metrics::Sample> samples;
                             for (const auto& p : projections()) {
                               samples.push_back({{p.name}, static_cast<double>(p.events_behind)});
                             }
                             return samples;
                           });
  if (projectors) projectors->AddMetrics(metrics);
  if (relay) relay->AddMetrics(metrics);

  std::unique_ptr<ApiRole> api;
  if (roles.api) {
    api = std::make_unique<ApiRole>(config, tokens, trackers, metrics);
    api->AddAdmin(projections);
  }
  if (relay) relay->Start();
  if (projectors) projectors->Start();
  if (api) {
    std::vector<adapters::http::ReadinessCheck> checks;
    api->AddReadiness(checks);
    if (relay) relay->AddReadiness(checks);
    if (projectors) projectors->AddReadiness(checks);
    api->Start(metrics, std::move(checks));
  }

  const int signal = WaitForStopSignal(signals);
  spdlog::info("received {}, shutting down", signal == SIGINT ? "SIGINT" : "SIGTERM");
  if (api) api->Stop();
  if (projectors) projectors->Stop();
  if (relay) relay->Stop();
  return 0;
}

}  // namespace shopcqrs::apps
