#pragma once

#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace shopcqrs::apps {

// Authentication of the HTTP API (API.md "Authentication and authorization";
// docs/CONFIGURATION.md "Authentication"). `mode` comes from the file only.
struct AuthConfig {
  struct Key {
    std::string kid;
    std::string key;
    friend bool operator==(const Key&, const Key&) = default;
  };
  std::string mode = "on";                  // "on" or "off"
  std::string signing_key;                  // >= 32 bytes; its kid is derived from it
  std::vector<Key> signing_keys;            // more keys by kid, newest first
  std::int64_t max_ttl_s = 30 * 24 * 3600;  // the longest token POST /v1/admin/tokens mints
  friend bool operator==(const AuthConfig&, const AuthConfig&) = default;
};

// Process configuration. Layout of the file and precedence: docs/CONFIGURATION.md.
// Precedence (lowest to highest): defaults, TOML file, SHOPCQRS_* environment, CLI flags
// (flags are applied by the caller after LoadConfig, then ValidateConfig is called).
struct Config {
  std::string listen = "127.0.0.1:8080";
  std::string write_db;  // libpq conninfo (key=value or postgresql:// URI)
  std::string read_db;   // libpq conninfo
  int write_pool_size = 16;
  int read_pool_size = 16;
  // Handlers block on PostgreSQL, so this bounds the commands in flight: keep it at least the
  // write pool size (with 2 threads commits could not be grouped; see bench/README.md).
  int http_threads = 16;
  bool run_api = true;
  bool run_projectors = true;
  std::string log_level = "info";
  std::string query_source = "read";
  std::string token_secret;
  // Redis as HOST:PORT; when set, the Redis projection runs and the order view and top
  // sellers are answered from Redis (falling back to the read PostgreSQL). Empty: no Redis.
  std::string redis;
  // nats-server URL (nats://HOST:PORT); when set, the relay publishes the outbox to the
  // JetStream event stream. Empty: no broker. The nodes of a JetStream cluster as several URLs
  // separated by commas (in the file also an array of URLs): clients connect to the first that
  // answers and fail over to the others.
  std::string nats;
  // broker.replicas: how many nodes hold the event stream (1..5); 0: one per URL in `nats`, at
  // most 3 (BrokerReplicas). A stream is created with them; only a value set here (not 0) makes
  // the relay move an existing stream to other replicas.
  int broker_replicas = 0;
  // Where projectors read events: "broker" (the JetStream stream; needs `nats`) or "outbox"
  // (the write database's outbox, directly).
  std::string projection_source = "outbox";
  // Run the relay in this process (with `nats` set). Several may run: one leads at a time.
  bool run_relay = true;
  // The process roles (API.md "Process roles"): some of command, query, relay, projector.
  // Empty: the switches above decide (api: command and query; projectors; relay with nats).
  std::vector<std::string> roles;
  AuthConfig auth;

  friend bool operator==(const Config&, const Config&) = default;
};

// A config file or environment variable that cannot be read or has a wrong type. The
// message names the file/line or the variable.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Looks up one environment variable; nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
// The real process environment (getenv).
EnvLookup ProcessEnvironment();
// A fixed environment, for tests.
EnvLookup MapEnvironment(std::map<std::string, std::string, std::less<>> vars);

// Defaults, then the TOML file if given (it must exist), then the environment.
// Throws ConfigError. Does not validate values: call ValidateConfig on the final Config.
Config LoadConfig(const std::optional<std::filesystem::path>& file,
                  const EnvLookup& env = ProcessEnvironment());
// Applies TOML text on top of `config`. `source` names it in error messages.
// Unknown keys and wrong types are errors. Throws ConfigError.
void ApplyToml(Config& config, std::string_view toml_text, std::string_view source = "config");
// `config` as a configuration file: ApplyToml of it onto a default Config gives `config` back.
// It holds the secrets (token_secret, passwords in conninfo): write it where only we can read.
std::string ConfigToml(const Config& config);
// Applies the SHOPCQRS_* variables that are set and non-empty. Throws ConfigError on
// an unparsable integer or boolean.
void ApplyEnvironment(Config& config, const EnvLookup& env);

// Every problem with the final configuration, one clear message each; empty when valid.
std::vector<std::string> ValidateConfig(const Config& config);
// What serving the API (and minting tokens) needs beyond ValidateConfig: a signing key while
// auth.mode is on. (migrate and status need none.)
std::vector<std::string> ServingAuthErrors(const Config& config);
// Throws ConfigError listing every problem ValidateConfig finds.
void ValidateConfigOrThrow(const Config& config);

// Valid ranges, also used by ValidateConfig.
inline constexpr int kMinPoolSize = 1;
inline constexpr int kMaxPoolSize = 500;
inline constexpr int kMinHttpThreads = 1;
inline constexpr int kMaxHttpThreads = 256;
inline constexpr std::size_t kMinTokenSecretLength = 16;
inline constexpr std::size_t kMinSigningKeyLength = 32;
inline constexpr std::int64_t kMaxTokenTtlLimit = 366LL * 24 * 3600;
// spdlog level names accepted by log_level.
inline constexpr std::string_view kLogLevels[] = {"trace",   "debug", "info",     "warn",
                                                  "warning", "error", "critical", "off"};
// Stores that can serve queries: the read PostgreSQL ("read"), the Redis cache ("redis"), or
// the write PostgreSQL itself ("write": single-database mode, normalized joins on the write
// database; the benchmarks' baseline and a migration path, see adapters/pg_single).
inline constexpr std::string_view kQuerySources[] = {"read", "redis", "write"};
// The process roles, in their canonical order (see Config::roles).
inline constexpr std::string_view kRoles[] = {"command", "query", "relay", "projector"};
// "command,query" (or "command, query") as roles; a ConfigError for an empty or unknown name.
std::vector<std::string> ParseRoles(std::string_view text, std::string_view source);

// The replicas of the event stream `config` asks for: broker_replicas, or when it is 0,
// min(number of URLs in nats, 3).
int BrokerReplicas(const Config& config);
inline constexpr int kMaxBrokerReplicas = 5;  // JetStream's limit

// Where projectors read events (see Config::projection_source).
inline constexpr std::string_view kProjectionSources[] = {"broker", "outbox"};

struct ListenAddress {
  std::string host;        // without brackets for IPv6
  std::uint16_t port = 0;  // 0: any free port
};
// "HOST:PORT", "[IPv6]:PORT". The host is an IPv4/IPv6 literal or a DNS name.
std::expected<ListenAddress, std::string> ParseListenAddress(std::string_view text);

// Parses "true/false/1/0/yes/no/on/off" (case-insensitive).
std::optional<bool> ParseBool(std::string_view text);

// Sets the level of the process's logging (spdlog's default logger and every logger made
// after) to log_level; messages below it are dropped. Call it on a validated Config.
void ApplyLogLevel(const Config& config);

// The conninfo with any password replaced by "***" (for logs).
std::string RedactConninfo(std::string_view conninfo);
// One line describing the configuration for logs, secrets redacted.
std::string DescribeConfig(const Config& config);

}  // namespace shopcqrs::apps
