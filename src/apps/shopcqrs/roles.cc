#include "apps/shopcqrs/roles.h"

#include <libpq-fe.h>

#include <fmt/format.h>

#include "adapters/nats/jetstream_source.h"
#include "adapters/pg_read/projection.h"
#include "adapters/pg_read/search_projection.h"
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

// ---- RelayRole ----

namespace {

adapters::relay::Relay::Options RelayOptions(const Config& config) {
  adapters::relay::Relay::Options options;
  options.write_db = config.write_db;
  options.nats.url = config.nats;
  options.nats.name = "shopcqrs-relay";
  return options;
}

}  // namespace

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
  auto info = Describe("relay", "nats", stats.checkpoint, monitor);
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
  const auto default_batch = cqrs::Projector::Options{}.batch_size;
  const auto read_identity = DatabaseIdentity(config.read_db);
  Add(config, adapters::pg_read::kProjectionName, "read_pg",
      std::make_unique<adapters::pg_read::PgReadProjection>(config.read_db), read_identity,
      trackers.read_pg, default_batch);
  // search lives in the read PostgreSQL too
  Add(config, adapters::pg_read::kSearchProjectionName, "read_pg",
      std::make_unique<adapters::pg_read::SearchProjection>(config.read_db), read_identity,
      trackers.search, default_batch);
  if (auto endpoint = RedisEndpointOf(config)) {
    Add(config, adapters::redis::kProjectionName, "redis",
        std::make_unique<adapters::redis::RedisProjection>(
            adapters::redis::RedisProjection::Options{.endpoint = *endpoint}),
        config.redis, trackers.redis, adapters::redis::kRecommendedBatchSize);
  }
}

ProjectorsRole::~ProjectorsRole() { Stop(); }

void ProjectorsRole::Add(const Config& config, std::string name, std::string store,
                         std::unique_ptr<cqrs::ProjectionStore> projection,
                         const std::string& store_identity, cqrs::ProgressTracker& tracker,
                         std::size_t batch_size) {
  Running r;
  r.store = std::move(store);
  if (config.projection_source == "broker") {
    // A durable consumer of its own per projection and store.
    adapters::nats::JetStreamSource::Options options;
    options.nats.url = config.nats;
    options.nats.name = "shopcqrs-" + name;
    options.consumer = ConsumerName(name, store_identity);
    r.source = std::make_unique<adapters::nats::JetStreamSource>(options);
  } else {
    r.source = std::make_unique<adapters::pg_outbox::OutboxReader>(
        adapters::pg_outbox::OutboxReader::Options{config.write_db});
  }
  r.projection = std::move(projection);
  cqrs::Projector::Options options;
  options.name = std::move(name);
  options.batch_size = batch_size;
  r.projector =
      std::make_unique<cqrs::Projector>(options, *r.source, *r.projection, &tracker, &metrics_);
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
}

std::vector<adapters::http::ProjectionInfo> ProjectorsRole::Infos(
    adapters::pg_outbox::OutboxReader& monitor) const {
  std::vector<adapters::http::ProjectionInfo> items;
  for (const auto& r : running_) {
    const auto stats = r.projector->Stats();
    auto info = Describe(r.projector->name(), r.store, stats.checkpoint, monitor);
    info.status = std::string(cqrs::ToString(stats.status));
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
      while (!stop.stop_requested()) {
        try {
          tracker.Reset(checkpoints.LoadCheckpoint().bound);
        } catch (const std::exception&) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }
}

ProgressFollowerRole::~ProgressFollowerRole() = default;

}  // namespace shopcqrs::apps
