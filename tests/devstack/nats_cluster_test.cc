// devstack::NatsCluster against the real binary: three nodes form one JetStream cluster, a
// replicated stream survives a node killed and started again and the whole cluster stopped and
// started again on the same directory, which keeps every node's ports.

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "devstack/nats_cluster.h"
#include "infra/nats/jetstream.h"
#include "support/eventually.h"
#include "support/temp_dir.h"

namespace shopcqrs {
namespace {

using namespace std::chrono_literals;
using devstack::NatsCluster;
using test_support::Eventually;
using test_support::TempDir;

constexpr const char* kStream = "CLUSTER_TEST";

infra::nats::JetStreamConnection::Options ClientOf(const NatsCluster& cluster) {
  return {.url = cluster.ServerList(), .name = "cluster-test", .request_timeout = 1000ms};
}

// Publishes one message to the stream and answers its sequence (retried while the stream has no
// leader yet).
std::uint64_t Append(const NatsCluster& cluster) {
  std::uint64_t sequence = 0;
  Eventually(
      [&] {
        try {
          infra::nats::JetStreamConnection client(ClientOf(cluster));
          jsPubAck* ack = nullptr;
          jsErrCode code = static_cast<jsErrCode>(0);
          const natsStatus status =
              js_Publish(&ack, client.js(), "cluster.test", "x", 1, nullptr, &code);
          if (status == NATS_OK && ack != nullptr) sequence = ack->Sequence;
          jsPubAck_Destroy(ack);
          return status == NATS_OK;
        } catch (const std::exception&) {
          return false;
        }
      },
      30s, 100ms);
  return sequence;
}

// The stream's last sequence once it reads `expected` (within 30 s), else the last one read.
// Right after the whole cluster started again, before the stream has a leader, the stream's
// information may come from a replica that had not caught up (a node killed and restarted
// shortly before the stop): it is not the replicated state until a leader answers.
std::uint64_t LastSequence(const NatsCluster& cluster, std::uint64_t expected) {
  std::uint64_t last = 0;
  Eventually(
      [&] {
        try {
          infra::nats::JetStreamConnection client(ClientOf(cluster));
          last = client.LastSequence(kStream);
          return last == expected;
        } catch (const std::exception&) {
          return false;
        }
      },
      30s, 100ms);
  return last;
}

TEST(NatsClusterDevstack, ThreeNodesKeepAReplicatedStreamAcrossKillsAndRestarts) {
  TempDir dir("shopcqrs-nats-cluster-devstack-");
  std::vector<std::string> urls;
  {
    NatsCluster cluster({.data_dir = dir.Path() / "nats", .monitoring = true});
    cluster.Start();
    ASSERT_EQ(cluster.Size(), 3);
    urls = cluster.Urls();
    EXPECT_EQ(cluster.ServerList(), urls[0] + "," + urls[1] + "," + urls[2]);
    EXPECT_EQ(cluster.ServerName(1), "shopcqrs-2");
    EXPECT_EQ(cluster.NodeNamed("shopcqrs-3"), 2);
    EXPECT_GT(cluster.NodeMonitorPort(0), 0);
    {
      infra::nats::JetStreamConnection client(ClientOf(cluster));
      client.EnsureStream({.name = kStream, .subjects = {"cluster.test"}, .replicas = 3});
      EXPECT_EQ(client.StreamPlacement(kStream).first, 3);
    }
    EXPECT_EQ(Append(cluster), 1u);
    int leader = -1;
    Eventually([&] { return (leader = cluster.StreamLeader(kStream)) >= 0; }, 20s, 100ms);
    ASSERT_GE(leader, 0);

    // A node killed -9 stays down until started again; the other two go on.
    cluster.KillNode(leader);
    EXPECT_FALSE(cluster.Node(leader).IsRunning());
    EXPECT_EQ(Append(cluster), 2u);
    cluster.StartNode(leader);
    EXPECT_TRUE(cluster.Node(leader).IsRunning());
    EXPECT_EQ(cluster.Urls(), urls);
    EXPECT_EQ(Append(cluster), 3u);
    cluster.Stop();
  }
  // The whole cluster again on the same directory: the same ports, the stream with its messages.
  NatsCluster again({.data_dir = dir.Path() / "nats", .monitoring = true});
  again.Start();
  EXPECT_EQ(again.Urls(), urls);
  EXPECT_EQ(LastSequence(again, 3), 3u);
  EXPECT_EQ(Append(again), 4u);
}

}  // namespace
}  // namespace shopcqrs
