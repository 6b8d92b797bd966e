#include "apps/shopcqrs/up.h"

#include <algorithm>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "adapters/system/system.h"
#include "apps/shopcqrs/auth.h"
#include "apps/shopcqrs/config.h"
#include "apps/shopcqrs/serve.h"
#include "apps/shopcqrs/split.h"
#include "devstack/nats_cluster.h"
#include "devstack/nats_server.h"
#include "devstack/postgres_server.h"
#include "devstack/redis_server.h"

namespace shopcqrs::apps {

using apps::Config;

// The read stores (read PostgreSQL and Redis) run at this niceness: under load they yield the
// CPU to the write server, whose commands must not wait; they catch up in the gaps.
constexpr int kReadSideNice = 5;

Config UpConfig(const EnvLookup& env, const std::optional<std::string>& listen,
                const std::optional<std::string>& log_level) {
  Config config;
  config.projection_source = "broker";
  config.query_source = "redis";
  apps::ApplyEnvironment(config, env);
  if (listen) config.listen = *listen;
  if (log_level) config.log_level = *log_level;
  return config;
}

std::string UpTokenSecret(const Config& config, const std::filesystem::path& root) {
  if (!config.token_secret.empty()) return config.token_secret;
  const auto path = root / "token-secret";
  std::string secret;
  if (std::ifstream in(path); in) std::getline(in, secret);
  if (secret.size() >= apps::kMinTokenSecretLength) return secret;
  secret =
      adapters::system::NewRandomUuid().ToString() + adapters::system::NewRandomUuid().ToString();
  std::ofstream(path) << secret << '\n';
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return secret;
}

int Up(const std::filesystem::path& data_dir, const std::optional<std::string>& listen,
       const std::optional<std::string>& log_level, const sigset_t& signals,
       const std::optional<UpSplit>& split, int nats_cluster) {
  // The databases, Redis and NATS are our own (filled in below).
  Config config = UpConfig(apps::ProcessEnvironment(), listen, log_level);
  apps::ApplyLogLevel(config);

  std::filesystem::create_directories(data_dir);
  const auto root = std::filesystem::absolute(data_dir);

  devstack::PostgresServer::Options write_options;
  write_options.data_dir = root / "write-pg";
  write_options.name = "write";
  devstack::PostgresServer write_server(write_options);

  devstack::PostgresServer::Options read_options;
  read_options.data_dir = root / "read-pg";
  read_options.name = "read";
  read_options.nice = kReadSideNice;
  devstack::PostgresServer read_server(read_options);

  // initdb and start-up of the two servers overlap.
  auto read_started = std::async(std::launch::async, [&] { read_server.Start(); });
  write_server.Start();
  read_started.get();
  devstack::RedisServer::Options redis_options;
  redis_options.data_dir = root / "redis";
  redis_options.name = "redis";
  redis_options.nice = kReadSideNice;
  devstack::RedisServer redis_server(redis_options);
  redis_server.Start();
  devstack::NatsServer::Options nats_options;
  nats_options.data_dir = root / "nats";
  nats_options.name = "nats";
  std::optional<devstack::NatsServer> nats_server;
  std::optional<devstack::NatsCluster> nats_nodes;
  if (nats_cluster > 1) {
    nats_nodes.emplace(devstack::NatsCluster::Options{
        .data_dir = root / "nats-cluster", .nodes = nats_cluster, .monitoring = true});
    nats_nodes->Start();
  } else {
    nats_server.emplace(nats_options);
    nats_server->Start();
  }
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
  if (nats_nodes) {
    config.nats = nats_nodes->ServerList();
    config.broker_replicas = std::min(nats_cluster, 3);
    std::cout << fmt::format("NATS JetStream:   {} (a cluster of {} nodes, the event stream on {})",
                             config.nats, nats_cluster, config.broker_replicas)
              << std::endl;
    for (int k = 0; k < nats_nodes->Size(); ++k) {
      std::cout << fmt::format("  {}: {} (monitoring http://127.0.0.1:{}, data {})",
                               nats_nodes->ServerName(k), nats_nodes->Node(k).Url(),
                               nats_nodes->NodeMonitorPort(k),
                               nats_nodes->Node(k).DataDir().string())
                << std::endl;
    }
  } else {
    config.nats = nats_server->Url();
    std::cout << fmt::format("NATS JetStream:   {} (data {})", config.nats,
                             nats_options.data_dir.string())
              << std::endl;
  }
  config.token_secret = UpTokenSecret(config, root);
  config.auth.signing_key = UpSigningKey(config, root);  // <data-dir>/auth-key unless set
  apps::ValidateConfigOrThrow(config);
  std::cout << fmt::format("admin token:      {} (valid 30 days, renewed at each start)",
                           WriteAdminToken(config, root).string())
            << std::endl;
  std::cout << fmt::format("configuration:    {} (for status, dead-letters and token --config)",
                           WriteConfigFile(config, root, "shopcqrs.toml").string())
            << std::endl;
  // --split --read-servers N: read PostgreSQL servers 2..N, each fed by a projector of its own.
  std::vector<std::unique_ptr<devstack::PostgresServer>> more_read;
  SplitOptions layout;
  if (split) {
    layout.query_processes = split->query_processes;
    for (int k = 2; k <= split->read_servers; ++k) {
      devstack::PostgresServer::Options options = read_options;
      options.data_dir = root / fmt::format("read-pg-{}", k);
      options.name = fmt::format("read-{}", k);
      more_read.push_back(std::make_unique<devstack::PostgresServer>(options));
      more_read.back()->Start();
      layout.more_read_dbs.push_back(more_read.back()->ConnectionString());
      std::cout << fmt::format("read PostgreSQL {}: {} (data {})", k,
                               more_read.back()->ConnectionString(), options.data_dir.string())
                << std::endl;
    }
  }
  const int code = split ? ServeSplit(config, root, signals, layout) : Serve(config, signals);
  for (auto& server : more_read) server->Stop();
  if (nats_server) nats_server->Stop();
  if (nats_nodes) nats_nodes->Stop();
  redis_server.Stop();
  read_server.Stop();
  write_server.Stop();
  std::cout << "shopcqrs stopped its servers" << std::endl;
  return code;
}

}  // namespace shopcqrs::apps
