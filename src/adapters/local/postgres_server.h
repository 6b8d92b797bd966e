#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/local/process.h"

namespace shopcqrs::adapters::local {

// One local PostgreSQL server run as a child process of this one, from the system's
// binaries, with its data in `data_dir` (created and initialised on first start).
//
// Files shopcqrs keeps in the data directory:
//   shopcqrs.conf  settings written on every start (included from postgresql.conf); its
//                  `port` line is the port of the previous run, reused when free.
//   server.log     the server's stdout/stderr (and initdb's output); moved to server.log.old
//                  at start once it exceeds 16 MiB.
//
// When this process runs as root the server runs as the `postgres` system user: the data
// directory is chowned to it, and every parent directory must be traversable by it.
//
// Thread-safe. Start/Stop may be called repeatedly.
class PostgresServer {
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
    std::chrono::milliseconds start_timeout{60'000};
    std::chrono::milliseconds stop_timeout{30'000};
    // Ask the kernel to fast-shutdown the server when the thread that started it exits
    // (PR_SET_PDEATHSIG). Useful for tests; only safe if Start runs on a long-lived thread.
    bool stop_with_parent = false;
  };

  explicit PostgresServer(Options options);
  ~PostgresServer();  // Stop(), errors logged
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Creates and initialises (initdb) the data dir if it has no PG_VERSION, without starting
  // the server. Start() does this itself.
  void Initialize();
  // Initialises the data dir if needed, starts the server, waits until it accepts
  // connections and creates `database`. No-op if already running.
  // Throws std::runtime_error (with the tail of the server log) on failure.
  void Start();
  // Fast shutdown (SIGINT); after stop_timeout immediate (SIGQUIT), then SIGKILL.
  // No-op if not running.
  void Stop();
  // Whether the server process started by Start() is still alive.
  bool IsRunning();

  // Valid after Start(); the port survives Stop().
  int Port() const;
  // "host=127.0.0.1 port=N dbname=<database> user=postgres"
  std::string ConnectionString() const;
  std::string ConnectionString(std::string_view database) const;
  // The postmaster's pid, 0 if not started.
  pid_t Pid() const;
  const std::filesystem::path& DataDir() const { return data_dir_; }
  std::filesystem::path LogFile() const { return data_dir_ / "server.log"; }
  const Options& GetOptions() const { return options_; }

  // CREATE DATABASE `name` unless it exists (safe against concurrent creation).
  void CreateDatabase(std::string_view name);
  // DROP DATABASE IF EXISTS `name` WITH (FORCE).
  void DropDatabase(std::string_view name);

 private:
  void StartLocked();
  void InitializeLocked();
  void StopLocked();
  void PrepareDataDir();
  void InitDb();
  void HandleLeftovers();
  void WriteSettings(int port);
  int ChoosePort() const;
  bool SpawnAndWait(int attempt, std::string* retry_reason);
  void VerifyAndCreateDatabase();
  std::string LogTail(std::uintmax_t from) const;

  Options options_;
  std::filesystem::path data_dir_;  // absolute
  std::filesystem::path bin_dir_;
  std::string run_as_user_;  // "postgres" when root, else empty
  mutable std::mutex mutex_;
  ChildProcess postmaster_;
  std::atomic<int> port_ = 0;
};

// Binds port 0 on 127.0.0.1 and returns the port the kernel chose.
int FindFreePort();
// Whether a TCP listener could bind 127.0.0.1:port now (SO_REUSEADDR, like PostgreSQL).
bool IsPortFree(int port);
// See PostgresServer::Options::bin_dir. Throws std::runtime_error if none is found.
std::filesystem::path FindPostgresBinDir();
// Quotes a libpq conninfo value when needed ("it's" -> 'it\'s').
std::string QuoteConninfoValue(std::string_view value);

}  // namespace shopcqrs::adapters::local
