#include "apps/shopcqrs/serve.h"

#include <iostream>
#include <memory>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapters/http/admin_routes.h"
#include "adapters/http/openapi.h"
#include "adapters/http/ops_routes.h"
#include "adapters/http/route_table.h"
#include "apps/shopcqrs/auth.h"
#include "apps/shopcqrs/roles.h"
#include "cqrs/consistency_token.h"
#include "infra/http/server.h"
#include "infra/nats/jetstream.h"
#include "infra/pg/migrator.h"

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

// The migrations of the databases a process's roles use: the write database's with the command
// or relay role, the read database's with the query or projector role (each role connects to
// its own databases only).
void MigrateFor(const Config& config, const RolePlan& roles) {
  if (roles.command || roles.relay) {
    const int write = infra::pg::ApplyMigrations(config.write_db, "pg_write");
    spdlog::info("write database: {} migration(s) applied", write);
  }
  if ((roles.query || roles.projectors) && !config.read_db.empty()) {
    const int read = infra::pg::ApplyMigrations(config.read_db, "pg_read");
    spdlog::info("read database: {} migration(s) applied", read);
  }
}

// Whether the broker answers, on a connection of its own (for /readyz of the roles that use it).
class NatsProbe {
 public:
  explicit NatsProbe(std::string url) : url_(std::move(url)) {}
  bool Ready() {
    std::lock_guard lock(mutex_);
    try {
      if (!nats_) {
        nats_ = std::make_unique<infra::nats::JetStreamConnection>(
            infra::nats::JetStreamConnection::Options{.url = url_, .name = "shopcqrs-monitor"});
      }
      return nats_->IsConnected();
    } catch (const std::exception&) {
      return false;
    }
  }

 private:
  std::string url_;
  std::mutex mutex_;
  std::unique_ptr<infra::nats::JetStreamConnection> nats_;
};

}  // namespace

int Serve(const Config& config, const sigset_t& signals) {
  const RolePlan roles = PlanRoles(config);
  MigrateFor(config, roles);
  const cqrs::ConsistencyTokens tokens = ConsistencyTokensOf(config);
  infra::metrics::Registry metrics;
  ProgressTrackers trackers;

  std::unique_ptr<CommandRole> command;
  if (roles.command) command = std::make_unique<CommandRole>(config, tokens);
  std::unique_ptr<QueryRole> query;
  if (roles.query) query = std::make_unique<QueryRole>(config, tokens, trackers);
  std::unique_ptr<RelayRole> relay;
  if (roles.relay) relay = std::make_unique<RelayRole>(config);
  std::unique_ptr<ProjectorsRole> projectors;
  if (roles.projectors) projectors = std::make_unique<ProjectorsRole>(config, trackers, metrics);
  std::unique_ptr<ProgressFollowerRole> follower;
  if (roles.follower) follower = std::make_unique<ProgressFollowerRole>(config, trackers);
  // The relay counts what it has not appended on the outbox (it reads the write database
  // anyway), and so do the gauges of what holds the outbox readers back.
  std::unique_ptr<adapters::pg_outbox::OutboxReader> monitor;
  if (relay || (projectors && config.projection_source == "outbox")) {
    monitor = std::make_unique<adapters::pg_outbox::OutboxReader>(
        adapters::pg_outbox::OutboxReader::Options{.conninfo = config.write_db});
  }

  // The projections this process runs, and its relay.
  auto projections = [&]() -> std::vector<adapters::http::ProjectionInfo> {
    std::vector<adapters::http::ProjectionInfo> items;
    if (projectors) items = projectors->Infos();
    if (relay) items.push_back(relay->Info(*monitor));
    return items;
  };
  if (monitor) {
    metrics.AddCallbackGauge(
        "shopcqrs_outbox_blocking_xid_age_seconds",
        "Age of the oldest transaction holding an xid on the write server: it holds back every "
        "outbox reader (xid8 snapshot bounding).",
        [&] {
          auto blocking = monitor->OldestBlockingTransaction();
          return blocking ? blocking->age.count() / 1000.0 : 0.0;
        });
    metrics.AddCallbackGauge("shopcqrs_outbox_blocking_xid",
                             "The xid of that oldest transaction (0 when none).", [&] {
                               auto blocking = monitor->OldestBlockingTransaction();
                               return blocking ? static_cast<double>(blocking->xid) : 0.0;
                             });
  }
  if (projectors || relay) {
    metrics.AddCallbackGauge(
        "shopcqrs_projection_events_behind", "Committed events a projection has not applied yet.",
        {"projection"}, [&] {
          std::vector<infra::metrics::Sample> samples;
          for (const auto& p : projections()) {
            samples.push_back({{p.name}, static_cast<double>(p.events_behind)});
          }
          return samples;
        });
  }
  if (projectors) projectors->AddMetrics(metrics);
  if (relay) relay->AddMetrics(metrics);

  // One HTTP server per process: the routes of its roles, route_not_served for the others, and
  // /healthz, /readyz (its own roles' checks), /metrics and /openapi.json.
  // Authentication and the access policy of every route (adapters/http/auth_policy.h), before
  // any handler; `auth` outlives the router and the server.
  const std::shared_ptr<adapters::http::Authorizer> auth = AuthorizerOf(config);
  infra::http::Router router;
  router.SetGuard(auth->Guard());
  if (command) command->AddRoutes(router, metrics, auth);
  if (query) query->AddRoutes(router, metrics);
  if (projectors || relay) {
    // A relay-only process runs no projection: it lists none and knows none to retry.
    adapters::http::RegisterAdminRoutes(
        router, projections,
        projectors ? projectors->DeadLetterAdmin() : adapters::http::NoDeadLetters());
  }
  const adapters::http::ServedRoles served{
      .command = roles.command, .query = roles.query, .projector = roles.projectors || roles.relay};
  adapters::http::RegisterRoutesNotServed(router, served);
  std::vector<adapters::http::ReadinessCheck> checks;
  if (command) command->AddReadiness(checks);
  if (query) query->AddReadiness(checks);
  if (relay) relay->AddReadiness(checks);
  if (projectors) projectors->AddReadiness(checks);
  NatsProbe nats(config.nats);
  if (relay || (projectors && config.projection_source == "broker")) {
    checks.push_back({"nats", [&nats] { return nats.Ready(); }});
  }
  adapters::http::RegisterOpsRoutes(router, metrics, std::move(checks), auth->enabled());
  // The OpenAPI description of exactly the routes above (adapters/http/openapi.h).
  adapters::http::RegisterOpenApiRoute(router, served);

  if (relay) relay->Start();
  if (projectors) projectors->Start();
  const auto options = HttpServerOptions(config);
  infra::http::HttpServer server(options, router);
  server.Start();
  std::cout << fmt::format("shopcqrs serving http://{}:{} (roles {})", options.host, server.port(),
                           DescribeRoles(roles))
            << std::endl;

  const int signal = WaitForStopSignal(signals);
  spdlog::info("received {}, shutting down", signal == SIGINT ? "SIGINT" : "SIGTERM");
  server.Stop();
  if (projectors) projectors->Stop();
  if (relay) relay->Stop();
  return 0;
}

}  // namespace shopcqrs::apps
