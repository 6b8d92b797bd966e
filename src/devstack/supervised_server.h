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
// Each wrapper adds its Options, its Start/Stop and what is specific to its server.
//
// The supervisor's hooks use the wrapper's members, which are destroyed before this base: a
// wrapper's destructor stops the supervisor first.
class SupervisedServer {
 public:
  SupervisedServer(const SupervisedServer&) = delete;
  SupervisedServer& operator=(const SupervisedServer&) = delete;

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
  // and check_interval go to the supervisor, with the data directory and the log file
  // `log_name` in it. `supervisor` gives the rest (program, hooks, signals). `wrapper` names
  // the wrapper in errors ("RedisServer: data_dir is empty").
  template <typename ServerOptions>
  SupervisedServer(std::string_view wrapper, const ServerOptions& options, std::string log_name,
                   ServerSupervisor::Options supervisor)
      : data_dir_(AbsoluteDataDir(wrapper, options.data_dir)),
        log_name_(std::move(log_name)),
        supervisor_([&] {
          supervisor.data_dir = data_dir_;
          supervisor.name = options.name;
          supervisor.log_file = LogFile();
          supervisor.port = options.port;
          supervisor.start_timeout = options.start_timeout;
          supervisor.stop_timeout = options.stop_timeout;
          supervisor.check_interval = options.check_interval;
          return std::move(supervisor);
        }()) {}
  ~SupervisedServer() = default;

  std::filesystem::path data_dir_;  // absolute; a wrapper may make it canonical
  const std::string log_name_;
  ServerSupervisor supervisor_;

 private:
  static std::filesystem::path AbsoluteDataDir(std::string_view wrapper,
                                               const std::filesystem::path& data_dir);
};

}  // namespace shopcqrs::devstack
