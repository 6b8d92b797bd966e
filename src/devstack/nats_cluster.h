#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "devstack/nats_server.h"

namespace shopcqrs::devstack {

// N local nats-server nodes on loopback run as one JetStream cluster: each node is a supervised
// NatsServer (restarted on its ports with its store when it dies) with a store directory of its
// own (`data_dir`/node-<k>), its own client, cluster (route) and, optionally, monitoring ports,
// and a stable server name ("<name>-<k>", k from 1), soliciting routes to every other node.
//
// The ports are chosen on the first start and kept in `data_dir`/ports, so that a node
// restarted later (Kill, then StartNode), or the whole cluster started again on the same
// directory, keeps its addresses: clients list the nodes' URLs, and the nodes list each
// other's routes. Should one of them be taken on a later start, every node gets new ports (the
// nodes' JetStream state is kept by server name, not by address).
//
// Start() waits until every node accepts clients and JetStream answers through them (a meta
// leader was elected); streams are the clients' to create, with their replicas.
class NatsCluster {
 public:
  struct Options {
    std::filesystem::path data_dir;
    int nodes = 3;
    std::string name = "shopcqrs";  // the cluster's name; the nodes are <name>-1 ...
    std::string bind = "127.0.0.1";
    std::filesystem::path binary = "/usr/sbin/nats-server";
    // Each node with an HTTP monitoring port (/varz, /jsz, ...): NodeMonitorPort.
    bool monitoring = false;
    int nice = 0;
    std::chrono::milliseconds start_timeout{60'000};
    std::chrono::milliseconds stop_timeout{10'000};
    std::chrono::milliseconds check_interval{200};
  };

  explicit NatsCluster(Options options);
  ~NatsCluster();  // Stop()
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  // Starts every node and waits for the cluster (see above). Throws std::runtime_error.
  void Start();
  // Stops every node (SIGTERM).
  void Stop();

  int Size() const { return static_cast<int>(nodes_.size()); }
  // Node k (0-based).
  NatsServer& Node(int k) { return *nodes_.at(k); }
  std::string ServerName(int k) const;
  int NodeMonitorPort(int k) const;
  // The nodes' client URLs, and the same joined with commas (the form of the `nats` setting).
  std::vector<std::string> Urls() const;
  std::string ServerList() const;

  // Kills node k with SIGKILL and keeps it down (not restarted) until StartNode(k).
  void KillNode(int k);
  // Starts node k again on its ports and store (after KillNode or StopNode).
  void StartNode(int k);
  void StopNode(int k);

  // The index of the node leading `stream` (from the stream's cluster information, asked
  // through any live node); -1 when there is no leader or the stream cannot be asked.
  int StreamLeader(std::string_view stream) const;
  // The index of the node called `server_name`; -1 when none.
  int NodeNamed(std::string_view server_name) const;

 private:
  struct Ports {
    int client = 0;
    int cluster = 0;
    int monitor = 0;
  };
  std::vector<Ports> ChoosePorts() const;
  void WaitForJetStream() const;

  Options options_;
  std::vector<Ports> ports_;
  std::vector<std::unique_ptr<NatsServer>> nodes_;
};

}  // namespace shopcqrs::devstack
