#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "adapters/redis/redis_client.h"
#include "devstack/supervised_server.h"

namespace shopcqrs::devstack {

// A local redis-server run as a child process and supervised: a supervisor thread owns the
// child (it spawns it, so the kernel kills the child if this process dies -- PR_SET_PDEATHSIG
// is tied to the spawning thread), checks it every `check_interval` and starts it again
// (same port, same data) when it has died. Data lives in `data_dir` with appendonly yes
// (AOF, appendfsync as configured) and no RDB snapshots (save ""). Runs as the current user.
//
// Files in the data directory: appendonlydir/ (the AOF), redis.log (stdout/stderr), port (the
// port of the previous run, reused when free).
class RedisServer : public SupervisedServer {
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
  };

  explicit RedisServer(Options options);
  ~RedisServer();  // Stop()

  // Starts the server and its supervisor, and waits until it answers PING (and has loaded its
  // data). No-op if running. Throws std::runtime_error (with the log tail) on failure.
  void Start();
  // Stops the supervisor, then the server (SIGTERM: Redis flushes the AOF; SIGKILL after
  // stop_timeout). No-op if not running.
  void Stop();

  adapters::redis::RedisEndpoint Endpoint() const;

 private:
  std::string Probe(int port);

  Options options_;
};

}  // namespace shopcqrs::devstack
