#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "devstack/process.h"
#include "devstack/supervised_server.h"

namespace shopcqrs::devstack {

// One local PostgreSQL server run as a child process of this one, from the system's
// binaries, with its data in `data_dir` (created and initialised on first start), supervised
// by a ServerSupervisor -- the same start/stop/restart path as redis-server and nats-server:
// a postmaster that dies (kill -9 included) is started again on the same port with its data
// (crash recovery replays the WAL), and a server left running in `data_dir` by a previous,
// killed run is shut down first and started again under this supervisor.
//
// What is specific to PostgreSQL stays here: initdb, the data directory (owned by the
// `postgres` system user when running as root), the settings file, the stale lock files of a
// killed server, and creating `database`.
//
// Files shopcqrs keeps in the data directory:
//   shopcqrs.conf  settings written before every start (included from postgresql.conf); its
//                  `port` line is the port of the previous run, reused when free.
//   server.log     the server's stdout/stderr (and initdb's output); moved to server.log.old
//                  at start once it exceeds 16 MiB.
//
// When this process runs as root the server runs as the `postgres` system user: the data
// directory is chowned to it, and every parent directory must be traversable by it.
//
// Thread-safe. Start/Stop may be called repeatedly.
class PostgresServer final : public SupervisedServer {
 public:
  struct Options {
    std::filesystem::path data_dir;
    std::string name = "postgres";  // for log messages, e.g. "write"
    // 0: the port recorded in the data dir by the previous run if it is free, else a free one.
    int port = 0;
    // Extra postgresql.conf settings, applied after (so overriding) the defaults.
    std::vector<std::pair<std::string, std::string>> settings;
    std::string database = "shopcqrs";  // created on start if missing
    // false: fsync, synchronous_commit and full_page_writes off (tests, throwaway data).
    bool fsync = true;
    // Directory with initdb/postgres; empty: SHOPCQRS_PG_BINDIR, /usr/lib/postgresql/15/bin,
    // `pg_config --bindir`, the newest /usr/lib/postgresql/*/bin.
    std::filesystem::path bin_dir;
    // Per start or restart attempt (crash recovery included).
    std::chrono::milliseconds start_timeout{60'000};
    // Fast shutdown may take this long (on Stop, and for a leftover of a previous run) before
    // the server's processes are killed.
    std::chrono::milliseconds stop_timeout{30'000};
    // How often the supervisor checks that the postmaster is alive.
    std::chrono::milliseconds check_interval{200};
    // > 0: the server (postmaster and every backend it forks) runs at a lower CPU priority,
    // e.g. a read server, so that it never takes the CPU the write server's commands need.
    int nice = 0;
    // The kernel fast-shuts-down the server (SIGINT) when this process dies (PR_SET_PDEATHSIG,
    // tied to the supervisor thread, which lives as long as the server is supervised).
    // false: the server outlives a killed process, unsupervised until the next Start on the
    // data dir stops it.
    bool stop_with_parent = true;
  };

  explicit PostgresServer(Options options);
  ~PostgresServer();  // Stop(), errors logged

  // Creates and initialises (initdb) the data dir if it has no PG_VERSION, without starting
  // the server. Start() does this itself. No-op while started.
  void Initialize();
  // Initialises the data dir if needed, stops what a previous run left running on it, starts
  // the server under its supervisor, waits until it accepts connections and creates
  // `database`. No-op if already started (even while the supervisor is restarting it).
  // Throws std::runtime_error (with the tail of the server log) on failure.
  void Start() override;
  // Stops the supervisor, then the server: fast shutdown (SIGINT); after stop_timeout SIGKILL
  // to all its processes. No-op if not running.
  void Stop() override;

  // "host=127.0.0.1 port=N dbname=<database> user=postgres"
  std::string ConnectionString() const;
  std::string ConnectionString(std::string_view database) const;
  const Options& GetOptions() const { return options_; }

  // CREATE DATABASE `name` unless it exists (safe against concurrent creation).
  void CreateDatabase(std::string_view name);
  // DROP DATABASE IF EXISTS `name` WITH (FORCE).
  void DropDatabase(std::string_view name);

 private:
  void InitializeLocked();
  void PrepareDataDir();
  void InitDb();
  // Supervisor hooks (supervisor thread).
  ChildProcessOptions Command(int port) const override;
  std::string Probe(int port) const override;
  void Prepare(int port);
  std::vector<pid_t> LeftoverPostmaster(const std::vector<pid_t>& leftovers) const;
  static std::string RetryReason(const std::string& log);
  void RemoveStaleLockFiles();
  void WriteSettings(int port);
  void VerifyAndCreateDatabase();

  Options options_;
  std::filesystem::path bin_dir_;
  std::string run_as_user_;   // "postgres" when root, else empty
  mutable std::mutex mutex_;  // serialises Initialize/Start/Stop
  bool started_ = false;
};

// See PostgresServer::Options::bin_dir. Throws std::runtime_error if none is found.
std::filesystem::path FindPostgresBinDir();
// Quotes a libpq conninfo value when needed ("it's" -> 'it\'s').
std::string QuoteConninfoValue(std::string_view value);

}  // namespace shopcqrs::devstack
