// The shopcqrs binary: composition root of every layer and its subcommands.
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>

#include <libpq-fe.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "adapters/http/admin_routes.h"
#include "adapters/http/command_routes.h"
#include "adapters/http/ops_routes.h"
#include "adapters/http/query_routes.h"
#include "adapters/http/server.h"
#include "adapters/local/config.h"
#include "adapters/local/postgres_server.h"
#include "adapters/metrics/projection_metrics.h"
#include "adapters/metrics/registry.h"
#include "adapters/nats/jetstream.h"
#include "adapters/nats/jetstream_source.h"
#include "adapters/nats/nats_server.h"
#include "adapters/nats/relay.h"
#include "adapters/pg/migrator.h"
#include "adapters/pg/pool.h"
#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_read/progress_listener.h"
#include "adapters/pg_read/projection.h"
#include "adapters/pg_read/read_model.h"
#include "adapters/pg_read/search_projection.h"
#include "adapters/pg_single/read_model.h"
#include "adapters/pg_write/write_store.h"
#include "adapters/redis/redis_projection.h"
#include "adapters/redis/redis_read_model.h"
#include "adapters/redis/redis_server.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "cqrs/consistency_token.h"
#include "cqrs/projector.h"

namespace shopcqrs::apps {
namespace {

using adapters::local::Config;

// SIGINT/SIGTERM are blocked in every thread and taken synchronously by the main thread.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int WaitForStopSignal(const sigset_t& set) {
  int signal = 0;
  sigwait(&set, &signal);
  return signal;
}

void Migrate(const Config& config) {
  const int write = adapters::pg::ApplyMigrations(config.write_db, "pg_write");
  spdlog::info("write database: {} migration(s) applied", write);
  if (!config.read_db.empty()) {
    const int read = adapters::pg::ApplyMigrations(config.read_db, "pg_read");
    spdlog::info("read database: {} migration(s) applied", read);
  }
}

// host:port/dbname of a libpq conninfo (what identifies the database a projection writes to).
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

// The durable consumer of a projection: one per projection and store, so processes feeding
// different stores (a second read database, say) never share one.
std::string ConsumerName(std::string_view projection, std::string_view store_identity) {
  std::uint32_t hash = 2166136261u;  // FNV-1a: stable across builds and runs
  for (const unsigned char c : store_identity) hash = (hash ^ c) * 16777619u;
  return fmt::format("shopcqrs_{}_{:08x}", projection, hash);
}

// What the admin API and `status` say about a projection whose checkpoint is `checkpoint`.
adapters::http::ProjectionInfo Describe(std::string name, std::string store,
                                        const cqrs::Checkpoint& checkpoint,
                                        adapters::pg_outbox::OutboxReader& monitor) {
  adapters::http::ProjectionInfo info;
  info.name = std::move(name);
  info.store = std::move(store);
  info.position = checkpoint.position;
  try {
    info.events_behind = monitor.CountAfter(checkpoint);
  } catch (const std::exception& error) {
    info.events_behind = -1;
    info.last_error = error.what();
  }
  return info;
}

// Runs the configured parts until SIGINT/SIGTERM, then shuts them down gracefully.
int Serve(const Config& config, const sigset_t& signals) {
  Migrate(config);

  cqrs::ConsistencyTokens tokens(config.token_secret);
  adapters::metrics::Registry metrics;
  adapters::system::SystemClock clock;
  adapters::system::RandomIds ids;

  // Write side: its own pool, used by commands only.
  adapters::pg::Pool write_pool(
      adapters::pg_write::WritePoolOptions(config.write_db, config.write_pool_size));
  adapters::pg_write::PgWriteStore write_store(write_pool, tokens);
  app::CommandService commands(write_store, clock, ids);

  // Read side: its own pool, used by queries only; nothing here holds a write connection.
  adapters::pg::Pool read_pool(
      adapters::pg_read::ReadPoolOptions(config.read_db, config.read_pool_size));
  adapters::pg_read::PgReadModel read_model(read_pool);
  cqrs::ProgressTracker progress;

  // Redis (optional): order views and top sellers, with the read PostgreSQL as fallback.
  std::optional<adapters::redis::RedisEndpoint> redis_endpoint;
  if (!config.redis.empty()) {
    auto address = adapters::local::ParseListenAddress(config.redis);
    if (!address) throw std::runtime_error(address.error());
    redis_endpoint = adapters::redis::RedisEndpoint{.host = address->host, .port = address->port};
  }
  std::unique_ptr<adapters::redis::RedisReadModel> redis_model;
  std::unique_ptr<adapters::redis::RedisQueries> redis_queries;
  cqrs::ProgressTracker redis_progress;
  cqrs::ProgressTracker search_progress;
  // query_source = redis: the order view and top sellers from Redis (the read PostgreSQL answers
  // the rest, and whatever Redis cannot); with query_source = read Redis is only projected.
  if (redis_endpoint && config.query_source == "redis") {
    adapters::redis::RedisReadModel::Options options;
    options.endpoint.host = redis_endpoint->host;
    options.endpoint.port = redis_endpoint->port;
    redis_model = std::make_unique<adapters::redis::RedisReadModel>(options);
    redis_queries = std::make_unique<adapters::redis::RedisQueries>(*redis_model, read_model);
  }
  // Single-database mode (query_source = write): the same queries as normalized joins on the
  // write database, through a pool of their own -- the baseline and a migration path.
  std::unique_ptr<adapters::pg::Pool> single_pool;
  std::unique_ptr<adapters::pg_single::PgSingleReadModel> single_model;
  if (config.query_source == "write") {
    single_pool = std::make_unique<adapters::pg::Pool>(
        adapters::pg_single::SinglePoolOptions(config.write_db, config.read_pool_size));
    single_model = std::make_unique<adapters::pg_single::PgSingleReadModel>(*single_pool);
  }
  app::ReadModel& queries = single_model    ? static_cast<app::ReadModel&>(*single_model)
                            : redis_queries ? static_cast<app::ReadModel&>(*redis_queries)
                                            : static_cast<app::ReadModel&>(read_model);
  // Queries on the write database see every commit at once.
  cqrs::ProgressTracker committed;
  committed.Publish(std::numeric_limits<std::uint64_t>::max());

  // One projector per read store, each with its own outbox reader and checkpoint. An
  // API-only process follows their progress from the stores instead.
  adapters::metrics::ProjectionMetrics projection_metrics(metrics);
  adapters::pg_outbox::OutboxReader monitor({config.write_db});
  // The relay (with a broker): appends the outbox to the JetStream event stream. Any number of
  // processes may run it; one leads at a time.
  std::unique_ptr<adapters::nats::Relay> relay;
  if (!config.nats.empty() && config.run_relay) {
    adapters::nats::Relay::Options options;
    options.write_db = config.write_db;
    options.nats.url = config.nats;
    options.nats.name = "shopcqrs-relay";
    relay = std::make_unique<adapters::nats::Relay>(options);
    relay->Start();
  }
  struct Running {
    std::string store;
    std::unique_ptr<cqrs::EventSource> reader;
    std::unique_ptr<cqrs::ProjectionStore> store_impl;
    std::unique_ptr<cqrs::Projector> projector;
  };
  std::vector<Running> running;
  std::unique_ptr<adapters::pg_read::ProgressListener> listener;
  std::unique_ptr<adapters::pg_read::ProgressListener> search_listener;
  std::jthread redis_follower;
  auto start_projector = [&](std::string name, std::unique_ptr<cqrs::ProjectionStore> store,
                             const std::string& store_identity, cqrs::ProgressTracker& tracker,
                             std::size_t batch_size) {
    Running r;
    r.store = name == "search" ? "read_pg" : name;  // search lives in the read PostgreSQL
    if (config.projection_source == "broker") {
      // A durable consumer of its own per projection.
      adapters::nats::JetStreamSource::Options options;
      options.nats.url = config.nats;
      options.nats.name = "shopcqrs-" + name;
      options.consumer = ConsumerName(name, store_identity);
      r.reader = std::make_unique<adapters::nats::JetStreamSource>(options);
    } else {
      r.reader = std::make_unique<adapters::pg_outbox::OutboxReader>(
          adapters::pg_outbox::OutboxReader::Options{config.write_db});
    }
    r.store_impl = std::move(store);
    cqrs::Projector::Options options;
    options.name = std::move(name);
    options.batch_size = batch_size;
    r.projector = std::make_unique<cqrs::Projector>(options, *r.reader, *r.store_impl, &tracker,
                                                    &projection_metrics);
    r.projector->Start();
    running.push_back(std::move(r));
  };
  if (config.run_projectors) {
    start_projector(
        "read_pg", std::make_unique<adapters::pg_read::PgReadProjection>(config.read_db),
        DatabaseIdentity(config.read_db), progress, cqrs::Projector::Options{}.batch_size);
    start_projector("search", std::make_unique<adapters::pg_read::SearchProjection>(config.read_db),
                    DatabaseIdentity(config.read_db), search_progress,
                    cqrs::Projector::Options{}.batch_size);
    if (redis_endpoint) {
      adapters::redis::RedisProjection::Options options;
      options.endpoint = *redis_endpoint;
      start_projector("redis", std::make_unique<adapters::redis::RedisProjection>(options),
                      config.redis, redis_progress, adapters::redis::kRecommendedBatchSize);
    }
  } else {
    listener = std::make_unique<adapters::pg_read::ProgressListener>(config.read_db, progress);
    search_listener = std::make_unique<adapters::pg_read::ProgressListener>(
        config.read_db, search_progress, adapters::pg_read::kSearchProjectionName);
    if (redis_endpoint) {
      // The Redis checkpoint has no change feed; follow it closely. The follower sets the bound
      // to what Redis holds, lower too: a Redis that lost writes must make token waits wait.
      redis_follower = std::jthread([&, endpoint = *redis_endpoint](std::stop_token stop) {
        adapters::redis::RedisProjection::Options options;
        options.endpoint = endpoint;
        adapters::redis::RedisProjection checkpoints(options);
        while (!stop.stop_requested()) {
          try {
            redis_progress.Reset(checkpoints.LoadCheckpoint().bound);
          } catch (const std::exception&) {
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      });
    }
  }
  auto projections = [&]() -> std::vector<adapters::http::ProjectionInfo> {
    std::vector<adapters::http::ProjectionInfo> items;
    for (auto& r : running) {
      const auto stats = r.projector->Stats();
      auto info = Describe(r.projector->name(), r.store, stats.checkpoint, monitor);
      info.status = std::string(cqrs::ToString(stats.status));
      info.lag_ms = stats.last_lag.count();
      if (!stats.last_error.empty()) info.last_error = stats.last_error;
      items.push_back(std::move(info));
    }
    if (relay) {
      const auto stats = relay->GetStats();
      auto info = Describe("relay", "nats", stats.checkpoint, monitor);
      info.status = std::string(adapters::nats::ToString(stats.role));
      info.lag_ms = stats.last_lag.count();
      if (!stats.last_error.empty() && stats.role == adapters::nats::Relay::Role::kStalled) {
        info.last_error = stats.last_error;
      }
      items.push_back(std::move(info));
    }
    if (running.empty()) {
      adapters::pg_read::PgReadProjection remote(config.read_db);
      auto info = Describe("read_pg", "read_pg", remote.LoadCheckpoint(), monitor);
      info.status = "remote";
      items.push_back(std::move(info));
      adapters::pg_read::SearchProjection remote_search(config.read_db);
      auto search = Describe("search", "read_pg", remote_search.LoadCheckpoint(), monitor);
      search.status = "remote";
      items.push_back(std::move(search));
    }
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
                             std::vector<adapters::metrics::Sample> samples;
                             for (const auto& p : projections()) {
                               samples.push_back({{p.name}, static_cast<double>(p.events_behind)});
                             }
                             return samples;
                           });
  metrics.AddCallbackGauge(
      "shopcqrs_projection_heartbeat_age_seconds", "Time since the projector loop last turned.",
      {"projection"}, [&] {
        std::vector<adapters::metrics::Sample> samples;
        for (auto& r : running) {
          auto age = clock.Now() - r.projector->Stats().heartbeat;
          samples.push_back({{r.projector->name()}, std::chrono::duration<double>(age).count()});
        }
        return samples;
      });

  if (relay) {
    auto relay_stat = [&](auto field) {
      return [&, field] { return static_cast<double>(field(relay->GetStats())); };
    };
    metrics.AddCallbackGauge("shopcqrs_relay_leader",
                             "1 while this process's relay holds the relay lock and publishes.",
                             relay_stat([](const adapters::nats::Relay::Stats& s) {
                               return s.role == adapters::nats::Relay::Role::kLeader ? 1 : 0;
                             }));
    metrics.AddCallbackGauge(
        "shopcqrs_relay_events_published_total",
        "Events this process's relay appended to the JetStream stream.",
        relay_stat([](const adapters::nats::Relay::Stats& s) { return s.events_published; }));
    metrics.AddCallbackGauge(
        "shopcqrs_relay_resyncs_total",
        "Appends the stream refused or did not confirm; the relay re-read the stream's end.",
        relay_stat([](const adapters::nats::Relay::Stats& s) { return s.resyncs; }));
    metrics.AddCallbackGauge(
        "shopcqrs_relay_stream_sequence", "The event stream's last sequence as the relay knows it.",
        relay_stat([](const adapters::nats::Relay::Stats& s) { return s.stream_sequence; }));
    metrics.AddCallbackGauge("shopcqrs_relay_lag_seconds",
                             "Commit to appended, of the last event the relay appended.",
                             relay_stat([](const adapters::nats::Relay::Stats& s) {
                               return s.last_lag.count() / 1000.0;
                             }));
  }
  // A connection of its own to tell /readyz whether the broker answers.
  std::unique_ptr<adapters::nats::JetStreamConnection> nats_monitor;
  std::mutex nats_monitor_mutex;
  auto nats_ready = [&]() -> bool {
    std::lock_guard lock(nats_monitor_mutex);
    try {
      if (!nats_monitor) {
        nats_monitor = std::make_unique<adapters::nats::JetStreamConnection>(
            adapters::nats::JetStreamConnection::Options{.url = config.nats,
                                                         .name = "shopcqrs-monitor"});
      }
      return nats_monitor->IsConnected();
    } catch (const std::exception&) {
      return false;
    }
  };

  std::unique_ptr<adapters::http::HttpServer> server;
  adapters::http::Router router;
  if (config.run_api) {
    adapters::http::RegisterCommandRoutes(router, commands, metrics);
    adapters::http::RegisterQueryRoutes(router, queries, tokens,
                                        single_model ? committed : progress, metrics,
                                        redis_model && !single_model ? &redis_progress : nullptr,
                                        {}, single_model ? nullptr : &search_progress);
    adapters::http::RegisterAdminRoutes(router, projections);
    std::vector<adapters::http::ReadinessCheck> checks;
    checks.push_back({"write_db", [&] { return write_pool.Ping(); }});
    checks.push_back({"read_db", [&] { return read_pool.Ping(); }});
    if (redis_model) checks.push_back({"redis", [&] { return redis_model->Ping(); }});
    if (single_pool) checks.push_back({"write_db_queries", [&] { return single_pool->Ping(); }});
    if (!config.nats.empty()) checks.push_back({"nats", nats_ready});
    if (relay) {
      checks.push_back({"relay", [&] {
                          return relay->GetStats().role != adapters::nats::Relay::Role::kStalled;
                        }});
    }
    for (auto& r : running) {
      checks.push_back({"projector_" + r.projector->name(), [&r] {
                          return r.projector->Stats().status != cqrs::ProjectorStatus::kError;
                        }});
    }
    adapters::http::RegisterOpsRoutes(router, metrics, std::move(checks));

    auto listen = adapters::local::ParseListenAddress(config.listen);
    if (!listen) throw std::runtime_error(listen.error());
    adapters::http::HttpServer::Options options;
    options.host = listen->host;
    options.port = listen->port;
    options.io_threads = 1;
    options.worker_threads = config.http_threads;
    server = std::make_unique<adapters::http::HttpServer>(options, router);
    server->Start();
    std::cout << fmt::format("shopcqrs serving http://{}:{}", options.host, server->port())
              << std::endl;
  }

  const int signal = WaitForStopSignal(signals);
  spdlog::info("received {}, shutting down", signal == SIGINT ? "SIGINT" : "SIGTERM");
  if (server) server->Stop();
  for (auto& r : running) r.projector->Stop();
  if (relay) relay->Stop();
  return 0;
}

// `shopcqrs status`: each projection's position, what it still has to apply, and what holds
// the outbox readers back.
int Status(const Config& config) {
  adapters::pg_outbox::OutboxReader monitor({config.write_db});
  std::vector<std::pair<adapters::http::ProjectionInfo, cqrs::Checkpoint>> rows;
  {
    adapters::pg_read::PgReadProjection projection(config.read_db);
    const auto checkpoint = projection.LoadCheckpoint();
    rows.emplace_back(Describe("read_pg", "read_pg", checkpoint, monitor), checkpoint);
  }
  {
    adapters::pg_read::SearchProjection projection(config.read_db);
    const auto checkpoint = projection.LoadCheckpoint();
    rows.emplace_back(Describe("search", "read_pg", checkpoint, monitor), checkpoint);
  }
  if (!config.redis.empty()) {
    auto address = adapters::local::ParseListenAddress(config.redis);
    adapters::redis::RedisProjection::Options options;
    options.endpoint = {.host = address->host, .port = address->port};
    try {
      adapters::redis::RedisProjection projection(options);
      const auto checkpoint = projection.LoadCheckpoint();
      rows.emplace_back(Describe("redis", "redis", checkpoint, monitor), checkpoint);
    } catch (const std::exception& error) {
      std::cout << "redis: " << error.what() << "\n";
    }
  }
  std::cout << fmt::format("{:<12} {:<10} {:>12} {:>14} {:>16}\n", "projection", "store",
                           "position", "events_behind", "bound");
  bool behind = false;
  for (const auto& [info, checkpoint] : rows) {
    std::cout << fmt::format("{:<12} {:<10} {:>12} {:>14} {:>16}\n", info.name, info.store,
                             info.position, info.events_behind, checkpoint.bound);
    behind = behind || info.events_behind != 0;
  }
  if (auto blocking = monitor.OldestBlockingTransaction()) {
    std::cout << fmt::format(
        "oldest transaction holding an xid on the write server: xid {} (pid {}, {}, {}), open "
        "{} ms\n",
        blocking->xid, blocking->pid, blocking->database, blocking->state, blocking->age.count());
  }
  return behind ? 3 : 0;
}

// The token secret of a local installation lives in its data dir, so tokens survive restarts.
std::string LocalTokenSecret(const std::filesystem::path& root) {
  const auto path = root / "token-secret";
  std::string secret;
  if (std::ifstream in(path); in) std::getline(in, secret);
  if (secret.size() >= adapters::local::kMinTokenSecretLength) return secret;
  secret =
      adapters::system::NewRandomUuid().ToString() + adapters::system::NewRandomUuid().ToString();
  std::ofstream(path) << secret << '\n';
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return secret;
}

int Up(const std::filesystem::path& data_dir, const std::optional<std::string>& listen,
       const std::optional<std::string>& log_level, const sigset_t& signals) {
  // Defaults (a local stack's: the broker path, and Redis answering the order view and top
  // sellers), then SHOPCQRS_* environment, then flags; the databases are our own.
  Config config;
  config.projection_source = "broker";
  config.query_source = "redis";
  adapters::local::ApplyEnvironment(config, adapters::local::ProcessEnvironment());
  if (listen) config.listen = *listen;
  if (log_level) config.log_level = *log_level;
  spdlog::set_level(spdlog::level::from_str(config.log_level));

  std::filesystem::create_directories(data_dir);
  const auto root = std::filesystem::absolute(data_dir);

  adapters::local::PostgresServer::Options write_options;
  write_options.data_dir = root / "write-pg";
  write_options.name = "write";
  adapters::local::PostgresServer write_server(write_options);

  adapters::local::PostgresServer::Options read_options;
  read_options.data_dir = root / "read-pg";
  read_options.name = "read";
  adapters::local::PostgresServer read_server(read_options);

  // initdb and start-up of the two servers overlap.
  auto read_started = std::async(std::launch::async, [&] { read_server.Start(); });
  write_server.Start();
  read_started.get();
  adapters::redis::RedisServer::Options redis_options;
  redis_options.data_dir = root / "redis";
  redis_options.name = "redis";
  adapters::redis::RedisServer redis_server(redis_options);
  redis_server.Start();
  adapters::nats::NatsServer::Options nats_options;
  nats_options.data_dir = root / "nats";
  nats_options.name = "nats";
  adapters::nats::NatsServer nats_server(nats_options);
  nats_server.Start();
  std::cout << fmt::format("write PostgreSQL: {} (data {})", write_server.ConnectionString(),
                           write_options.data_dir.string())
            << std::endl;
  std::cout << fmt::format("read PostgreSQL:  {} (data {})", read_server.ConnectionString(),
                           read_options.data_dir.string())
            << std::endl;

  config.write_db = write_server.ConnectionString();
  config.read_db = read_server.ConnectionString();
  config.redis = fmt::format("127.0.0.1:{}", redis_server.Port());
  std::cout << fmt::format("Redis:            {} (data {})", config.redis,
                           redis_options.data_dir.string())
            << std::endl;
  config.nats = nats_server.Url();
  std::cout << fmt::format("NATS JetStream:   {} (data {})", config.nats,
                           nats_options.data_dir.string())
            << std::endl;
  config.token_secret = LocalTokenSecret(root);
  adapters::local::ValidateConfigOrThrow(config);
  const int code = Serve(config, signals);
  nats_server.Stop();
  redis_server.Stop();
  read_server.Stop();
  write_server.Stop();
  std::cout << "shopcqrs stopped its servers" << std::endl;
  return code;
}

}  // namespace
}  // namespace shopcqrs::apps

int main(int argc, char** argv) {
  using namespace shopcqrs;
  const sigset_t signals = apps::BlockStopSignals();
  // A closed stdout (e.g. `shopcqrs up | head -1`) must not kill us before we stop our servers.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App cli{"shopcqrs: an e-commerce order service with physically separated CQRS stores"};
  cli.require_subcommand(1);

  std::string data_dir = "./var";
  std::optional<std::string> listen, log_level;
  auto* up = cli.add_subcommand("up",
                                "start local write and read PostgreSQL, Redis and NATS JetStream "
                                "servers and every part in one process");
  up->add_option("--data-dir", data_dir, "where the local servers keep their data");
  up->add_option("--listen", listen, "HOST:PORT to serve HTTP on (default 127.0.0.1:8080)");
  up->add_option("--log-level", log_level, "trace, debug, info, warn or error");

  // serve/migrate/status: file, then SHOPCQRS_* environment, then these flags.
  std::string config_file;
  std::optional<std::string> flag_listen, flag_write_db, flag_read_db, flag_log_level;
  std::optional<bool> flag_api, flag_projectors;
  auto add_config_options = [&](CLI::App* command) {
    command->add_option("--config", config_file, "TOML configuration file");
    command->add_option("--listen", flag_listen, "HOST:PORT to serve HTTP on");
    command->add_option("--write-db", flag_write_db, "libpq conninfo of the write database");
    command->add_option("--read-db", flag_read_db, "libpq conninfo of the read database");
    command->add_option("--log-level", flag_log_level, "trace, debug, info, warn or error");
  };
  auto* serve = cli.add_subcommand("serve", "run the configured parts against existing servers");
  add_config_options(serve);
  serve->add_option("--api", flag_api, "serve the HTTP API (true/false)");
  serve->add_option("--projectors", flag_projectors, "run the projectors (true/false)");
  auto* migrate = cli.add_subcommand("migrate", "apply pending migrations and exit");
  add_config_options(migrate);
  auto* status = cli.add_subcommand(
      "status", "print each projection's position and backlog (exit 3 while behind)");
  add_config_options(status);

  CLI11_PARSE(cli, argc, argv);

  try {
    if (*up) {
      return apps::Up(data_dir, listen, log_level, signals);
    }
    auto config = adapters::local::LoadConfig(
        config_file.empty() ? std::nullopt : std::optional<std::filesystem::path>(config_file));
    if (flag_listen) config.listen = *flag_listen;
    if (flag_write_db) config.write_db = *flag_write_db;
    if (flag_read_db) config.read_db = *flag_read_db;
    if (flag_log_level) config.log_level = *flag_log_level;
    if (flag_api) config.run_api = *flag_api;
    if (flag_projectors) config.run_projectors = *flag_projectors;
    adapters::local::ValidateConfigOrThrow(config);
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    spdlog::info("configuration: {}", adapters::local::DescribeConfig(config));
    if (*migrate) {
      apps::Migrate(config);
      return 0;
    }
    if (*status) return apps::Status(config);
    return apps::Serve(config, signals);
  } catch (const std::exception& error) {
    spdlog::error("{}", error.what());
    std::cerr << "shopcqrs: " << error.what() << std::endl;
    return 1;
  }
}
