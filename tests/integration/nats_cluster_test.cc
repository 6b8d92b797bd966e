// The broker leg on a real three-node NATS JetStream cluster (devstack::NatsCluster), the event
// stream at replicas = 3: under a steady command load the stream's leader is killed -9, then a
// second node (the stream loses its quorum: the relay waits and has nothing acknowledged), then
// both are started again on their stores. Every read store (read_pg, search, Redis), fed through
// the cluster, must end exactly equal -- row for row, key for key -- to the same projections fed
// from the outbox directly; a consistency token is never satisfied by a store that does not show
// its command; and the stream mirrors the outbox: every event once, in order, each message
// naming its predecessor.

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/nats/event_messages.h"
#include "adapters/nats/jetstream_source.h"
#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_read/projection.h"
#include "adapters/pg_read/search_projection.h"
#include "adapters/redis/redis_projection.h"
#include "adapters/relay/relay.h"
#include "cqrs/projector.h"
#include "devstack/nats_cluster.h"
#include "infra/nats/jetstream.h"
#include "support/eventually.h"
#include "support/projector_rig.h"
#include "support/sql.h"
#include "support/store_dump.h"
#include "support/stream_checks.h"
#include "support/temp_dir.h"
#include "support/temp_servers.h"
#include "support/test_postgres.h"
#include "support/workload.h"

namespace shopcqrs {
namespace {

using namespace std::chrono_literals;
using namespace test_support;
using adapters::nats::JetStreamSource;
using adapters::pg_read::PgReadProjection;
using adapters::pg_read::SearchProjection;
using adapters::redis::RedisProjection;
using adapters::relay::Relay;
using Clock = std::chrono::steady_clock;

const std::string kStream(adapters::nats::kDefaultStream);

// Three nodes on loopback, started; removed at the end of the scope.
struct TempCluster {
  TempCluster() : dir("shopcqrs-nats-cluster-test-"), cluster({.data_dir = dir.Path() / "data"}) {
    cluster.Start();
  }
  infra::nats::JetStreamConnection::Options Options(std::string name) const {
    return {.url = cluster.ServerList(),
            .name = std::move(name),
            .request_timeout = 1000ms,
            .max_reconnect_wait = 500ms};
  }
  TempDir dir;
  devstack::NatsCluster cluster;
};

// The projections of one read database and one Redis prefix, fed through the cluster.
struct ClusterProjections {
  ClusterProjections(const TempCluster& nats, const std::string& read,
                     const infra::redis::RedisEndpoint& endpoint, const std::string& prefix)
      : read_pg(Source(nats, "shopcqrs_read_pg"), read, Projector("read_pg", 200)),
        search(Source(nats, "shopcqrs_search"), read,
               Projector(adapters::pg_read::kSearchProjectionName, 200)),
        redis(Source(nats, "shopcqrs_redis"),
              RedisProjection::Options{.endpoint = endpoint, .key_prefix = prefix},
              Projector("redis", 200)) {}

  static JetStreamSource::Options Source(const TempCluster& nats, std::string consumer) {
    return {.nats = nats.Options(consumer), .consumer = std::move(consumer), .stream_replicas = 3};
  }
  static cqrs::Projector::Options Projector(std::string name, std::size_t batch) {
    return {.name = std::move(name), .batch_size = batch, .max_backoff = 300ms};
  }
  std::vector<cqrs::Projector*> All() {
    return {&read_pg.projector, &search.projector, &redis.projector};
  }
  void WaitCaughtUp(const std::string& write, std::chrono::milliseconds timeout) {
    read_pg.WaitCaughtUp(write, timeout);
    search.WaitCaughtUp(write, timeout);
    redis.WaitCaughtUp(write, timeout);
  }

  ProjectorRig<JetStreamSource, PgReadProjection> read_pg;
  ProjectorRig<JetStreamSource, SearchProjection> search;
  ProjectorRig<JetStreamSource, RedisProjection> redis;
};

// The same projections fed from the outbox directly: what the write database implies.
struct ReferenceProjections {
  ReferenceProjections(const std::string& write, const std::string& read,
                       const infra::redis::RedisEndpoint& endpoint, const std::string& prefix)
      : read_pg(write, read, "read_pg"),
        search(write, read, adapters::pg_read::kSearchProjectionName),
        redis({write}, RedisProjection::Options{.endpoint = endpoint, .key_prefix = prefix},
              {.name = "redis", .batch_size = 500, .max_backoff = 300ms}) {
    read_pg.WaitCaughtUp(write, 60s);
    search.WaitCaughtUp(write, 60s);
    redis.WaitCaughtUp(write, 60s);
  }
  OutboxRig<PgReadProjection> read_pg;
  OutboxRig<SearchProjection> search;
  ProjectorRig<adapters::pg_outbox::OutboxReader, RedisProjection> redis;
};

// Commands whose tokens are checked against the read_pg and search stores while everything else
// happens: a token that a store's tracker reports as reached must find the command's customer in
// that store. Counts the tokens seen satisfied and the violations.
class TokenProbe {
 public:
  TokenProbe(Workload& load, const cqrs::ProgressTracker& read_pg,
             const cqrs::ProgressTracker& search, std::string read)
      : thread_([this, &load, &read_pg, &search, read = std::move(read)] {
          while (!stop_) {
            try {
              auto r = load.commands.Handle(
                  app::RegisterCustomer{"Token Probe", "probe-" + Workload::Suffix() + "@x"});
              if (!r) continue;
              const auto bound = load.tokens.Decode(r->consistency_token);
              if (!bound) {
                ++violations_;
                continue;
              }
              for (const auto* tracker : {&read_pg, &search}) {
                if (!tracker->WaitFor(*bound, 1000ms)) continue;  // not there yet: no claim made
                const char* table = tracker == &read_pg ? "customer_views" : "search_customers";
                const auto rows = Scalar(
                    read, fmt::format("SELECT count(*) FROM {} WHERE id = '{}'", table, r->id));
                if (rows == 1) {
                  ++satisfied_;
                } else {
                  ++violations_;
                  ADD_FAILURE() << "token of customer " << r->id << " satisfied by " << table
                                << " without it";
                }
              }
            } catch (const std::exception&) {
              std::this_thread::sleep_for(50ms);
            }
          }
        }) {}
  ~TokenProbe() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int satisfied() const { return satisfied_; }
  int violations() const { return violations_; }

 private:
  std::atomic<bool> stop_ = false;
  std::atomic<int> satisfied_ = 0;
  std::atomic<int> violations_ = 0;
  std::thread thread_;
};

// A steady command load in the background: the random mix of `load`, one command about every
// 3 ms (a few hundred per second: enough to keep appends in flight at every kill, few enough to
// compare every store in time).
class SteadyLoad {
 public:
  explicit SteadyLoad(Workload& load)
      : thread_([this, &load] {
          std::mt19937_64 rng(2026);
          while (!stop_) {
            try {
              load.Step(rng);
            } catch (const std::exception&) {
              std::this_thread::sleep_for(50ms);
            }
            std::this_thread::sleep_for(3ms);
          }
        }) {}
  ~SteadyLoad() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_ = false;
  std::thread thread_;
};

// The stream sequence the relay has had confirmed, once it moved past `above` (nullopt when it
// did not within `timeout`).
std::optional<std::uint64_t> RelayPasses(const Relay& relay, std::uint64_t above,
                                         std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    const auto sequence = relay.GetStats().stream_sequence;
    if (sequence > above) return sequence;
    std::this_thread::sleep_for(50ms);
  }
  return std::nullopt;
}

// The stream's leader, as the cluster reports it (-1 while it has none).
int WaitForLeader(const devstack::NatsCluster& cluster, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  int leader = -1;
  while ((leader = cluster.StreamLeader(kStream)) < 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  return leader;
}

TEST(NatsCluster, StreamIsReplicatedOnThreeNodesAndFollowsALeaderKill) {
  TempCluster nats;
  ASSERT_EQ(nats.cluster.Size(), 3);
  infra::nats::JetStreamConnection client(nats.Options("test"));
  // Created at R1; asked for R3 without reconciling (a default), it stays; reconciled (the
  // relay with broker.replicas set), it moves to R3.
  adapters::nats::EnsureEventStream(client, kStream, 1);
  EXPECT_EQ(client.StreamPlacement(kStream).first, 1);
  adapters::nats::EnsureEventStream(client, kStream, 3);
  EXPECT_EQ(client.StreamPlacement(kStream).first, 1);
  adapters::nats::EnsureEventStream(client, kStream, 3, /*reconcile_replicas=*/true);
  const auto [replicas, leader_name] = client.StreamPlacement(kStream);
  EXPECT_EQ(replicas, 3);
  const int leader = WaitForLeader(nats.cluster, 20s);
  ASSERT_GE(leader, 0);
  // kill -9 the leader: the supervisor starts it again on its ports and store; meanwhile another
  // node leads.
  const int restarts = nats.cluster.Node(leader).Restarts();
  const auto urls = nats.cluster.Urls();
  ::kill(nats.cluster.Node(leader).Pid(), SIGKILL);
  Eventually([&] { return nats.cluster.Node(leader).Restarts() > restarts; }, 30s, 50ms);
  EXPECT_GT(nats.cluster.Node(leader).Restarts(), restarts);
  EXPECT_GE(WaitForLeader(nats.cluster, 30s), 0);
  EXPECT_EQ(nats.cluster.Urls(), urls) << "a restarted node keeps its address";
  // The stream is still there, with its three replicas, through the restarted node.
  // (Asked once it answers: while the stream elects a leader, a replica that is behind may answer
  // the stream's info, with its older configuration, so a second question can differ.)
  infra::nats::JetStreamConnection restarted({.url = urls[leader], .name = "restarted"});
  EXPECT_TRUE(Eventually(
      [&] {
        try {
          return restarted.StreamPlacement(kStream).first == 3;
        } catch (const std::exception&) {
          return false;
        }
      },
      30s, 100ms))
      << "the stream is not at three replicas through the restarted node";
}

TEST(NatsCluster, LeaderKillAndQuorumLossUnderLoadLeaveEveryStoreExact) {
  TempCluster nats;
  TempRedis redis;
  const auto endpoint = redis.server.Endpoint();
  const Databases db;
  Workload load(db.write, 6, 6);

  Relay::Options relay_options;
  relay_options.write_db = db.write;
  relay_options.nats = nats.Options("relay");
  relay_options.stream_replicas = 3;
  relay_options.batch_size = 256;
  relay_options.max_backoff = 300ms;
  Relay relay(relay_options);
  relay.Start();
  ClusterProjections projections(nats, db.read, endpoint, redis.prefix + "live:");

  SteadyLoad writers(load);
  TokenProbe tokens(load, projections.read_pg.tracker, projections.search.tracker, db.read);
  std::this_thread::sleep_for(2s);

  // 1. kill -9 the stream's leader (kept down): the other two elect a new one, the relay goes on.
  const int first = WaitForLeader(nats.cluster, 20s);
  ASSERT_GE(first, 0);
  {
    infra::nats::JetStreamConnection client(nats.Options("test"));
    EXPECT_EQ(client.StreamPlacement(kStream).first, 3);
  }
  const auto before_first = relay.GetStats().stream_sequence;
  ASSERT_GT(before_first, 0u);
  nats.cluster.KillNode(first);
  const auto after_first = RelayPasses(relay, before_first + 50, 30s);
  ASSERT_TRUE(after_first) << "the relay did not go on after the leader was killed: "
                           << relay.GetStats().last_error;
  const int second = WaitForLeader(nats.cluster, 20s);
  ASSERT_GE(second, 0);
  ASSERT_NE(second, first);

  // 2. kill -9 the new leader: one node of three is left, the stream has no quorum. The relay
  // waits; nothing is confirmed to it (its stream sequence stands still) while commands go on.
  nats.cluster.KillNode(second);
  std::this_thread::sleep_for(2s);  // appends in flight at the kill are answered or time out
  const auto stalled_at = relay.GetStats().stream_sequence;
  const auto outbox_at = Scalar(db.write, "SELECT count(*) FROM outbox");
  std::this_thread::sleep_for(3s);
  const auto stalled = relay.GetStats();
  EXPECT_EQ(stalled.stream_sequence, stalled_at)
      << "the relay had appends confirmed by a stream without quorum";
  EXPECT_NE(stalled.role, Relay::Role::kStopped);
  EXPECT_FALSE(stalled.last_error.empty());
  EXPECT_GT(Scalar(db.write, "SELECT count(*) FROM outbox"), outbox_at)
      << "commands stopped while the broker had no quorum";

  // 3. Both killed nodes again, on their stores: the stream has its quorum back and the relay
  // catches up.
  nats.cluster.StartNode(first);
  nats.cluster.StartNode(second);
  ASSERT_TRUE(RelayPasses(relay, stalled_at + 50, 60s))
      << "the relay did not resume: " << relay.GetStats().last_error;
  std::this_thread::sleep_for(1s);
  writers.Stop();
  tokens.Stop();

  projections.WaitCaughtUp(db.write, 60s);
  // With everything back, a new command's token is satisfied, by a store that shows it.
  ExpectTokenSatisfied(load, projections.read_pg.tracker, db.read, 20s);
  projections.WaitCaughtUp(db.write, 20s);
  relay.Stop();
  for (const auto* projector : projections.All()) {
    EXPECT_EQ(projector->Stats().status, cqrs::ProjectorStatus::kRunning)
        << projector->name() << ": " << projector->Stats().last_error;
  }
  EXPECT_EQ(tokens.violations(), 0);
  EXPECT_GT(tokens.satisfied(), 0);

  // The stream: every outbox event once, in order, each message naming its predecessor.
  ExpectStreamMirrorsOutbox(nats.Options("reader"), db.write);

  // Every store equals what the outbox implies, projected directly.
  const auto reference = MigratedDatabase("reference", "pg_read");
  { ReferenceProjections direct(db.write, reference, endpoint, redis.prefix + "reference:"); }
  for (const char* table : kReadTables) {
    const auto expected = Dump(reference, fmt::format("SELECT * FROM {} ORDER BY 1", table));
    EXPECT_FALSE(expected.empty()) << table;
    EXPECT_EQ(Dump(db.read, fmt::format("SELECT * FROM {} ORDER BY 1", table)), expected) << table;
  }
  EXPECT_EQ(Dump(db.read, "SELECT name, events FROM projection_checkpoints ORDER BY name"),
            Dump(reference, "SELECT name, events FROM projection_checkpoints ORDER BY name"));
  const auto expected_keys = RedisDump(endpoint, redis.prefix + "reference:");
  EXPECT_GT(expected_keys.size(), 10u);
  EXPECT_EQ(RedisDump(endpoint, redis.prefix + "live:"), expected_keys);
}

}  // namespace
}  // namespace shopcqrs
