#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "adapters/local/process.h"

namespace shopcqrs::adapters::local {

// Runs a local server (redis-server, nats-server) as a child process and supervises it: a
// supervisor thread owns the child (it spawns it, so the kernel kills the child if this process
// dies -- PR_SET_PDEATHSIG is tied to the spawning thread), checks it every `check_interval`
// and starts it again (same port, same data) when it has died. The port of the previous run is
// kept in `data_dir`/port and reused when free.
class ServerSupervisor {
 public:
  struct Options {
    std::filesystem::path data_dir;  // created on Start; holds the "port" file
    std::string name;                // log prefix
    std::string program;             // e.g. "redis-server", for messages
    std::filesystem::path log_file;  // the child's stdout and stderr
    int port = 0;                    // 0: the previous run's port if free, else a free one
    std::chrono::milliseconds start_timeout{30'000};
    std::chrono::milliseconds stop_timeout{10'000};
    std::chrono::milliseconds check_interval{200};
    // The child's command line for `port` (log file, working dir and parent-death signal are
    // set by the supervisor).
    std::function<ChildProcessOptions(int port)> command;
    // Empty when the server on `port` is ready to serve; otherwise why not (retried every
    // 20 ms until start_timeout).
    std::function<std::string(int port)> probe;
  };

  explicit ServerSupervisor(Options options);
  ~ServerSupervisor();  // Stop(), errors logged
  ServerSupervisor(const ServerSupervisor&) = delete;
  ServerSupervisor& operator=(const ServerSupervisor&) = delete;

  // Starts the server and the supervisor and waits until the probe passes. No-op if running.
  // Throws std::runtime_error (with the log tail) on failure.
  void Start();
  // Stops the supervisor, then the server (SIGTERM; SIGKILL after stop_timeout). No-op if not
  // running.
  void Stop();
  // Whether the child is alive right now (it may be between a crash and its restart).
  bool IsRunning();
  int Port() const { return port_.load(); }
  pid_t Pid() const { return child_.Pid(); }
  // How often the supervisor restarted a dead server.
  int Restarts() const { return restarts_.load(); }

 private:
  void Supervise();
  void Spawn();      // supervisor thread only
  void WaitReady();  // throws with the log tail
  int ChoosePort() const;

  Options options_;
  std::atomic<int> port_ = 0;
  std::atomic<int> restarts_ = 0;
  ChildProcess child_;

  std::mutex lifecycle_;  // serialises Start/Stop
  std::mutex mutex_;      // guards the fields below
  std::condition_variable changed_;
  bool stop_ = false;
  bool started_ = false;  // the first start finished (ok or failed)
  std::exception_ptr start_error_;
  std::thread supervisor_;
};

}  // namespace shopcqrs::adapters::local
