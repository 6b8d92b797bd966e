// The shopcqrs binary: its subcommands. The composition of the roles is in serve.cc, the local
// stack of `up` in up.cc, the projection catalogue and `status` in catalogue.cc.
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "apps/shopcqrs/admin_cli.h"
#include "apps/shopcqrs/auth.h"
#include "apps/shopcqrs/catalogue.h"
#include "apps/shopcqrs/config.h"
#include "apps/shopcqrs/serve.h"
#include "apps/shopcqrs/up.h"

namespace shopcqrs::apps {
namespace {

// SIGINT/SIGTERM are blocked in every thread and taken synchronously by the main thread.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
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
  bool split = false;
  up->add_flag("--split", split,
               "run each role (command, query, relay, projector) in a supervised process of its "
               "own, each on its own address");
  apps::UpSplit layout;
  up->add_option("--query-processes", layout.query_processes,
                 "with --split: how many query processes (each on its own address)")
      ->check(CLI::Range(1, 64));
  up->add_option("--read-servers", layout.read_servers,
                 "with --split: how many read PostgreSQL servers, each fed by a projector "
                 "process of its own")
      ->check(CLI::Range(1, 8));
  int nats_cluster = 1;
  up->add_option("--nats-cluster", nats_cluster,
                 "run NATS as a JetStream cluster of this many nodes on loopback (the event "
                 "stream replicated on min(N, 3) of them); 1: one nats-server")
      ->check(CLI::Range(1, 7));

  // serve/migrate/status: file, then SHOPCQRS_* environment, then these flags.
  std::string config_file;
  std::optional<std::string> flag_listen, flag_write_db, flag_read_db, flag_log_level;
  std::optional<bool> flag_api, flag_projectors;
  std::optional<std::string> flag_roles, flag_nats;
  std::optional<int> flag_broker_replicas;
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
  serve->add_option("--nats", flag_nats,
                    "the nats-server URL, or the URLs of a JetStream cluster's nodes, "
                    "comma-separated");
  serve->add_option("--broker-replicas", flag_broker_replicas,
                    "the event stream's replicas on a JetStream cluster (0: one per --nats URL, "
                    "at most 3)");
  serve->add_option("--role", flag_roles,
                    "the roles to run, comma-separated: command, query, relay, projector "
                    "(default all)");
  auto* migrate = cli.add_subcommand("migrate", "apply pending migrations and exit");
  add_config_options(migrate);
  auto* status = cli.add_subcommand(
      "status", "print each projection's position and backlog (exit 3 while behind)");
  add_config_options(status);

  // dead-letters: the parked aggregates of a running projector process, retry and skip.
  apps::DeadLetterCommand dead_letters;
  auto* dead = cli.add_subcommand(
      "dead-letters",
      "list (exit 3 when any), retry or skip the parked events of a running process's "
      "projections");
  add_config_options(dead);
  dead->add_option("action", dead_letters.action, "list, retry or skip")
      ->required()
      ->check(CLI::IsMember({"list", "retry", "skip"}));
  dead->add_option("projection_name", dead_letters.projection,
                   "retry/skip: the projection (read_pg, search, redis)");
  dead->add_option("aggregate_id", dead_letters.aggregate_id, "retry/skip: the parked aggregate");
  dead->add_option("--projection", dead_letters.projection, "list: only this projection");
  dead->add_option("--url", dead_letters.url,
                   "http://HOST:PORT of the projector process (default: the configured listen)");

  // token: mints an access token with the configured signing key (or `up`'s, --data-dir).
  std::optional<std::string> token_customer, token_data_dir;
  bool token_admin = false, token_payments = false;
  long long token_ttl = 24 * 3600;
  auto* token = cli.add_subcommand("token", "print a signed access token (admin by default)");
  token->add_option("--config", config_file, "TOML configuration file (its auth.signing_key)");
  token->add_option("--data-dir", token_data_dir,
                    "use the signing key `up` keeps in this directory");
  auto* token_customer_option =
      token->add_option("--customer", token_customer, "a customer token for this customer id");
  token->add_flag("--admin", token_admin, "an admin token (the default)")
      ->excludes(token_customer_option);
  token->add_flag("--payments", token_payments, "a payments token")
      ->excludes(token_customer_option);
  token->add_option("--ttl", token_ttl, "lifetime in seconds (default 86400)");

  CLI11_PARSE(cli, argc, argv);

  try {
    if (*up) {
      return apps::Up(data_dir, listen, log_level, signals,
                      split ? std::optional<apps::UpSplit>(layout) : std::nullopt, nats_cluster);
    }
    auto config = apps::LoadConfig(
        config_file.empty() ? std::nullopt : std::optional<std::filesystem::path>(config_file));
    if (flag_listen) config.listen = *flag_listen;
    if (flag_write_db) config.write_db = *flag_write_db;
    if (flag_read_db) config.read_db = *flag_read_db;
    if (flag_log_level) config.log_level = *flag_log_level;
    if (flag_api) config.run_api = *flag_api;
    if (flag_projectors) config.run_projectors = *flag_projectors;
    if (flag_roles) config.roles = apps::ParseRoles(*flag_roles, "--role");
    if (flag_nats) config.nats = *flag_nats;
    if (flag_broker_replicas) config.broker_replicas = *flag_broker_replicas;
    if (*token) {  // needs a signing key only (no databases)
      if (token_data_dir) {
        std::ifstream in(std::filesystem::path(*token_data_dir) / "auth-key");
        if (!in || !std::getline(in, config.auth.signing_key)) {
          throw apps::ConfigError("--data-dir: no auth-key there (has `shopcqrs up` run on it?)");
        }
      }
      if (token_admin && token_payments) {
        throw apps::ConfigError("--admin and --payments exclude each other");
      }
      std::cout << apps::MintToken(config, token_customer, token_payments ? "payments" : "admin",
                                   std::chrono::seconds(token_ttl))
                << std::endl;
      return 0;
    }
    apps::ValidateConfigOrThrow(config);
    apps::ApplyLogLevel(config);
    spdlog::info("configuration: {}", apps::DescribeConfig(config));
    if (*migrate) {
      apps::Migrate(config);
      return 0;
    }
    if (*status) return apps::Status(config);
    if (*dead) return apps::DeadLetters(config, dead_letters);
    // Every process serves HTTP behind the access policy (/metrics and the admin routes at
    // least), so each needs a signing key (or auth off).
    if (auto errors = apps::ServingAuthErrors(config); !errors.empty()) {
      throw apps::ConfigError(errors.front());
    }
    return apps::Serve(config, signals);
  } catch (const std::exception& error) {
    spdlog::error("{}", error.what());
    std::cerr << "shopcqrs: " << error.what() << std::endl;
    return 1;
  }
}
