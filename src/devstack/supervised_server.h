#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "devstack/server_supervisor.h"

namespace shopcqrs::devstack {

// What the server wrappers (PostgresServer, RedisServer, NatsServer) have in common: an absolute
// data directory, the server's log file in it, and the ServerSupervisor that runs the server.
// Each wrapper adds its Options, the server's command line and readiness probe, and whatever
// else is specific to its server (PostgresServer: its own Start and Stop).
//
// The supervisor's hooks use the wrapper's members, which are destroyed before this base: a
// wrapper's destructor stops the supervisor first.
class SupervisedServer {
 public:
  SupervisedServer(const SupervisedServer&) = delete;
  SupervisedServer& operator=(const SupervisedServer&) = delete;

  // Starts the server under its supervisor and waits until it is ready (Probe passes). No-op if
  // running. Throws std::runtime_error (with the tail of the log) on failure.
  virtual void Start();
  // Stops the supervisor, then the server (its graceful stop signal; SIGKILL after
  // stop_timeout). No-op if not running.
  virtual void Stop() { supervisor_.Stop(); }
  // Kills the server with SIGKILL and stops supervising it (no restart) until Start() is called
  // again on the same data directory. No-op if not running.
  void Kill() { supervisor_.Kill(); }

  // Whether the server is alive right now (it may be between a crash and its restart).
  bool IsRunning() { return supervisor_.IsRunning(); }
  // Valid once started; the port survives Stop() and restarts.
  int Port() const { return supervisor_.Port(); }
  // The server's pid (the latest one after a restart), 0 if not started.
  pid_t Pid() const { return supervisor_.Pid(); }
  // How often the supervisor restarted a server that had died.
  int Restarts() const { return supervisor_.Restarts(); }
  const std::filesystem::path& DataDir() const { return data_dir_; }
  // The server's stdout and stderr.
  std::filesystem::path LogFile() const { return data_dir_ / log_name_; }

 protected:
  // `options` is the wrapper's Options: its data_dir, name, port, start_timeout, stop_timeout
  // and check_interval go to the supervisor, with the data directory, the log file `log_name`
  // in it, and Command and Probe as its hooks. `supervisor` gives the rest (program, signals,
  // optional hooks). `wrapper` names the wrapper in errors ("RedisServer: data_dir is empty").
  template <typename ServerOptions>
  SupervisedServer(std::string_view wrapper, const ServerOptions& options, std::string log_name,
                   ServerSupervisor::Options supervisor)
      : data_dir_(AbsoluteDataDir(wrapper, options.data_dir)),
        log_name_(std::move(log_name)),
        name_(options.name),
        program_(supervisor.program),
        supervisor_([&] {
          supervisor.data_dir = data_dir_;
          supervisor.name = options.name;
          supervisor.log_file = LogFile();
          supervisor.port = options.port;
          supervisor.start_timeout = options.start_timeout;
          supervisor.stop_timeout = options.stop_timeout;
          supervisor.check_interval = options.check_interval;
          supervisor.nice = options.nice;
          supervisor.command = [this](int port) { return Command(port); };
          supervisor.probe = [this](int port) { return Probe(port); };
          return std::move(supervisor);
        }()) {}
  ~SupervisedServer() = default;

  // Supervisor hooks (supervisor thread): the server's command line for `port` (log file,
  // working directory and parent-death signal are the supervisor's), and why the server on
  // `port` is not ready to serve yet (empty once it is).
  virtual ChildProcessOptions Command(int port) const = 0;
  virtual std::string Probe(int port) const = 0;
  // Where clients reach the server, for the log line of Start.
  virtual std::string Address() const;

  std::filesystem::path data_dir_;  // absolute; a wrapper may make it canonical
  const std::string log_name_;
  const std::string name_;
  const std::string program_;
  ServerSupervisor supervisor_;

 private:
  static std::filesystem::path AbsoluteDataDir(std::string_view wrapper,
                                               const std::filesystem::path& data_dir);
};

}  // namespace shopcqrs::devstack
