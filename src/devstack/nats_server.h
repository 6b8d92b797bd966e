#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "devstack/supervised_server.h"

namespace shopcqrs::devstack {

// A local nats-server with JetStream run as a child process and supervised: a supervisor
// thread owns the child (it spawns it, so the kernel kills the child if this process dies --
// PR_SET_PDEATHSIG is tied to the spawning thread), checks it every `check_interval` and starts
// it again (same port, same data) when it has died. JetStream keeps its streams in file
// storage under `data_dir`; a restarted server recovers them before it accepts clients. Runs
// as the current user, without authentication; HTTP monitoring and clustering only when asked
// (a node of a NatsCluster: cluster_name, cluster_port, routes, server_name).
//
// Start() waits until a client can connect and JetStream answers (after its streams have
// been recovered from disk); Stop() sends SIGTERM (JetStream flushes its store).
//
// Files in the data directory: jetstream/ (the JetStream store), nats.log (stdout/stderr),
// port (the port of the previous run, reused when free).
class NatsServer final : public SupervisedServer {
 public:
  struct Options {
    std::filesystem::path data_dir;
    std::string name = "nats";  // for log messages
    // 0: the port of the previous run if it is free, else a free one.
    int port = 0;
    std::string bind = "127.0.0.1";
    std::filesystem::path binary = "/usr/sbin/nats-server";
    std::chrono::milliseconds start_timeout{30'000};
    std::chrono::milliseconds stop_timeout{10'000};
    std::chrono::milliseconds check_interval{200};
    // > 0: the server runs at a lower CPU priority (ServerSupervisor::Options::nice).
    int nice = 0;
    // > 0: the HTTP monitoring endpoint (/varz, /connz, ...) on this port of the bind address.
    int monitor_port = 0;
    // Clustering (see NatsCluster): a non-empty cluster_name makes this server a node of that
    // JetStream cluster, listening for routes on cluster_port (> 0) and soliciting `routes`
    // (nats://HOST:PORT of the other nodes' cluster ports). server_name (unique in the cluster,
    // stable across restarts: JetStream's replicas are placed by it) is given to the server
    // when non-empty. A node is ready once it accepts clients: JetStream answers only when a
    // quorum of the cluster runs, which one node cannot wait for.
    std::string server_name;
    std::string cluster_name;
    int cluster_port = 0;
    std::vector<std::string> routes;
  };

  explicit NatsServer(Options options);
  ~NatsServer();  // Stop()

  // "nats://127.0.0.1:<port>" (the bind address instead when it is not a loopback/any one).
  std::string Url() const;

 private:
  ChildProcessOptions Command(int port) const override;
  std::string Probe(int port) const override;
  std::string Address() const override { return Url(); }

  Options options_;
};

}  // namespace shopcqrs::devstack
