#pragma once

#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "devstack/process.h"

namespace shopcqrs::devstack {

// Runs a local server (PostgreSQL, redis-server, nats-server) as a child process and supervises
// it: the one start/stop/restart path for every server `shopcqrs up` runs.
//
// A supervisor thread owns the child: it spawns it (so the kernel signals the child if this
// process dies -- PR_SET_PDEATHSIG is tied to the spawning thread), checks it every
// `check_interval` and starts it again (same port, same data) when it has died, retrying until
// it starts. The port of the previous run is reused when free.
//
// Before every spawn (first start and each restart) the supervisor stops what an earlier run
// left in `data_dir`: processes of the same program whose working directory is `data_dir` -- a
// server spawned by a supervisor always runs there -- such as a server whose `shopcqrs up` was
// killed -9, or the backends of a PostgreSQL postmaster that was killed -9. See StopLeftovers.
// One supervisor per data directory.
class ServerSupervisor {
 public:
  struct Options {
    std::filesystem::path data_dir;  // created on Start; the children's working directory
    std::string name;                // log prefix
    std::string program;             // e.g. "redis-server", for messages
    std::filesystem::path log_file;  // the child's stdout and stderr
    // 0: the previous run's port if free, else a free one. Restarts always keep the port.
    int port = 0;
    // Per start (and per restart) attempt, after leftovers are gone.
    std::chrono::milliseconds start_timeout{30'000};
    // How long a graceful stop (of our child or of a leftover) may take before SIGKILL.
    std::chrono::milliseconds stop_timeout{10'000};
    std::chrono::milliseconds check_interval{200};
    // Graceful stop: sent to the child on Stop() and to the main process of a leftover.
    int stop_signal = SIGTERM;
    // Sent by the kernel to the child when this process dies; 0: the child outlives us (the
    // next Start on `data_dir` then stops it as a leftover).
    int parent_death_signal = SIGKILL;
    // Added to the server's niceness (ChildProcessOptions::nice) at every start.
    int nice = 0;
    // The child's command line for `port` (log file, working dir and parent-death signal are
    // set by the supervisor).
    std::function<ChildProcessOptions(int port)> command;
    // Empty when the server on `port` is ready to serve; otherwise why not (retried every
    // 20 ms until start_timeout).
    std::function<std::string(int port)> probe;
    // Optional: run on the supervisor thread before every spawn, once leftovers are gone
    // (write configuration for `port`, remove stale lock files). Throws to fail the attempt.
    std::function<void(int port)> prepare;
    // Optional: why a child that exited during start may start on another attempt (given its
    // exit status and its log output since it was spawned); empty: it will not, the start
    // fails now. Attempts repeat until start_timeout. (A port taken by another process is
    // detected without it: on the first start with port 0 another port is chosen.)
    std::function<std::string(const ExitStatus& exit, const std::string& log)> retry_reason;
    // Optional: the port of the previous run, recorded by `prepare`. Default: the supervisor
    // keeps it in `data_dir`/port.
    std::function<std::optional<int>()> recorded_port;
    // Optional: which of the leftover processes (see StopLeftovers) are the main process of a
    // server, to be sent stop_signal; the others are waited for (and killed after
    // stop_timeout). Default: those whose parent is not a leftover as well.
    std::function<std::vector<pid_t>(const std::vector<pid_t>& leftovers)> leftover_servers;
  };

  explicit ServerSupervisor(Options options);
  ~ServerSupervisor();  // Stop(), errors logged
  ServerSupervisor(const ServerSupervisor&) = delete;
  ServerSupervisor& operator=(const ServerSupervisor&) = delete;

  // Stops leftovers, starts the server and the supervisor and waits until the probe passes.
  // No-op if running. Throws std::runtime_error (with the log tail) on failure.
  void Start();
  // Stops the supervisor, then the server (stop_signal; SIGKILL to its process group after
  // stop_timeout). No-op if not running.
  void Stop();
  // Stops the supervisor and kills the server (SIGKILL to its process group) without a graceful
  // stop, as a crash would: it is not restarted until Start() is called again (same data
  // directory; the port of the previous run when it is free). No-op if not running.
  void Kill();
  // Whether Start() succeeded and Stop() has not been called since.
  bool IsSupervising() const;
  // Whether the child is alive right now (it may be between a crash and its restart).
  bool IsRunning();
  // Valid once Start() returned; survives Stop().
  int Port() const { return port_.load(); }
  pid_t Pid() const { return child_.Pid(); }
  // How often the supervisor restarted a dead server.
  int Restarts() const { return restarts_.load(); }

 private:
  struct StartFailure {
    std::string message;
    std::string retry_reason;  // empty: another attempt will not help
    bool port_taken = false;   // another process holds the port
  };

  void Supervise();
  // Stops leftovers, (first start) chooses the port, then spawns until the probe passes or
  // start_timeout has passed. Supervisor thread only. Throws with the log tail.
  void Launch(bool first_start);
  void StopLeftovers();
  void Spawn();  // supervisor thread only
  std::optional<StartFailure> WaitReady(std::chrono::steady_clock::time_point deadline,
                                        std::uintmax_t log_offset);
  int ChoosePort() const;
  void RecordPort(int port) const;
  std::string ExecutableName();
  bool StopRequested();

  Options options_;
  std::filesystem::path canonical_dir_;  // data_dir as /proc shows it; set by Start
  std::atomic<int> port_ = 0;
  std::atomic<int> restarts_ = 0;
  ChildProcess child_;

  mutable std::mutex lifecycle_;  // serialises Start/Stop
  std::mutex mutex_;              // guards the fields below
  std::condition_variable changed_;
  bool stop_ = false;
  bool kill_ = false;     // Kill(): the supervisor ends with SIGKILL instead of a graceful stop
  bool started_ = false;  // the first start finished (ok or failed)
  std::exception_ptr start_error_;
  std::thread supervisor_;
};

// Binds port 0 on 127.0.0.1 and returns the port the kernel chose.
int FindFreePort();
// Whether a TCP listener could bind 127.0.0.1:port now (SO_REUSEADDR, like the servers).
bool IsPortFree(int port);

}  // namespace shopcqrs::devstack
