#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "devstack/supervised_server.h"
#include "infra/redis/redis_client.h"

namespace shopcqrs::devstack {

// A local redis-server run as a child process and supervised: a supervisor thread owns the
// child (it spawns it, so the kernel kills the child if this process dies -- PR_SET_PDEATHSIG
// is tied to the spawning thread), checks it every `check_interval` and starts it again
// (same port, same data) when it has died. Data lives in `data_dir` with appendonly yes
// (AOF, appendfsync as configured) and no RDB snapshots (save ""). Runs as the current user.
//
// Start() waits until the server answers PING (once it has loaded its data); Stop() sends
// SIGTERM (Redis flushes the AOF).
//
// Files in the data directory: appendonlydir/ (the AOF), redis.log (stdout/stderr), port (the
// port of the previous run, reused when free).
class RedisServer final : public SupervisedServer {
 public:
  struct Options {
    std::filesystem::path data_dir;
    std::string name = "redis";  // for log messages
    // 0: the port of the previous run if it is free, else a free one.
    int port = 0;
    std::string bind = "127.0.0.1";  // protected-mode is off only when this is loopback
    std::filesystem::path binary = "/usr/bin/redis-server";
    std::string appendfsync = "everysec";  // always | everysec | no
    // Extra redis.conf settings passed as --name value, after (so overriding) the defaults.
    std::vector<std::pair<std::string, std::string>> settings;
    std::chrono::milliseconds start_timeout{30'000};
    std::chrono::milliseconds stop_timeout{10'000};
    std::chrono::milliseconds check_interval{200};
    // > 0: the server runs at a lower CPU priority (ServerSupervisor::Options::nice).
    int nice = 0;
  };

  explicit RedisServer(Options options);
  ~RedisServer();  // Stop()

  infra::redis::RedisEndpoint Endpoint() const;

 private:
  ChildProcessOptions Command(int port) const override;
  std::string Probe(int port) const override;

  Options options_;
};

}  // namespace shopcqrs::devstack
