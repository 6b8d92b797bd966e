#pragma once

#include <signal.h>

#include <filesystem>
#include <optional>
#include <string>

#include "apps/shopcqrs/config.h"

namespace shopcqrs::apps {

// The configuration `up` starts from, before its servers fill in write_db, read_db, redis and
// nats: a local stack's defaults (projection_source = broker, query_source = redis), then the
// SHOPCQRS_* environment, then the --listen and --log-level flags.
Config UpConfig(const EnvLookup& env, const std::optional<std::string>& listen,
                const std::optional<std::string>& log_level);

// The token secret of a local installation: token_secret when it is set (SHOPCQRS_TOKEN_SECRET),
// else the one kept in `root`/token-secret (created on first use), so tokens survive restarts.
std::string UpTokenSecret(const Config& config, const std::filesystem::path& root);

// `up --split`: how many query processes and read PostgreSQL servers.
struct UpSplit {
  int query_processes = 1;
  int read_servers = 1;
};

// `shopcqrs up`: zero configuration. Starts local write and read PostgreSQL servers,
// redis-server and nats-server (JetStream) under `data_dir`, each supervised (restarted on its
// port when it dies; what a killed predecessor left running is stopped first), then serves every
// role in this process (Serve) -- or, with `split`, each role in a supervised child process of
// its own (ServeSplit: `query_processes` query processes, and `read_servers` read PostgreSQL
// servers, each fed by a projector process of its own) -- until SIGINT/SIGTERM, and stops the
// servers. With `nats_cluster` > 1, NATS is a JetStream cluster of that many nodes on loopback
// (devstack::NatsCluster, under `data_dir`/nats-cluster), the event stream on min(N, 3) of them.
int Up(const std::filesystem::path& data_dir, const std::optional<std::string>& listen,
       const std::optional<std::string>& log_level, const sigset_t& signals,
       const std::optional<UpSplit>& split = std::nullopt, int nats_cluster = 1);

}  // namespace shopcqrs::apps
