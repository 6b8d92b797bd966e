// The broker leg against real servers: the relay appends the outbox to a JetStream stream on a
// supervised nats-server, and projectors consume it through durable consumers.

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/local/process.h"
#include "adapters/nats/jetstream.h"
#include "adapters/nats/jetstream_source.h"
#include "adapters/nats/nats_server.h"
#include "adapters/nats/relay.h"
#include "adapters/pg/connection.h"
#include "adapters/pg/migrator.h"
#include "adapters/pg_read/projection.h"
#include "cqrs/projector.h"
#include "support/sql.h"
#include "support/test_postgres.h"
#include "support/workload.h"

namespace shopcqrs {
namespace {

using namespace std::chrono_literals;
using adapters::nats::JetStreamConnection;
using adapters::nats::JetStreamSource;
using adapters::nats::NatsServer;
using adapters::nats::Relay;
using adapters::pg::Connection;
using test_support::Column;
using test_support::Dump;
using test_support::Scalar;
using test_support::Workload;
using test_support::WriteBound;

// A nats-server of its own in a temporary directory.
struct TempNats {
  TempNats()
      : root(std::filesystem::temp_directory_path() /
             fmt::format("shopcqrs-nats-test-{}-{}", ::getpid(), counter++)),
        server({.data_dir = root / "data", .name = "test-nats"}) {
    server.Start();
  }
  ~TempNats() {
    server.Stop();
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  JetStreamConnection::Options Options(std::string name = "test") const {
    return {.url = server.Url(), .name = std::move(name)};
  }
  static inline std::atomic<int> counter = 0;
  std::filesystem::path root;
  NatsServer server;
};

Relay::Options RelayOptions(const std::string& write, const TempNats& nats,
                            std::size_t batch = 512) {
  Relay::Options options;
  options.write_db = write;
  options.nats = nats.Options("relay");
  options.batch_size = batch;
  options.max_backoff = 300ms;
  options.standby_poll = 50ms;
  return options;
}

struct StreamEntry {
  bool event = false;
  std::string id;  // Nats-Msg-Id
  cqrs::Checkpoint checkpoint;
};

// Every message of the stream, in sequence order.
std::vector<StreamEntry> ReadStream(const TempNats& nats) {
  JetStreamConnection connection(nats.Options("reader"));
  const auto stream = std::string(adapters::nats::kDefaultStream);
  const auto last = connection.LastSequence(stream);
  std::vector<StreamEntry> entries;
  for (std::uint64_t seq = 1; seq <= last; ++seq) {
    adapters::nats::MsgPtr message(connection.GetMessage(stream, seq));
    EXPECT_TRUE(message) << "stream message #" << seq << " missing";
    if (!message) continue;
    StreamEntry entry;
    auto event = adapters::nats::DecodeEvent(message.get());
    entry.event = event.has_value();
    const char* id = nullptr;
    if (natsMsgHeader_Get(message.get(), "Nats-Msg-Id", &id) == NATS_OK && id) entry.id = id;
    auto checkpoint = adapters::nats::MessageCheckpoint(message.get());
    EXPECT_TRUE(checkpoint) << "#" << seq;
    if (checkpoint) entry.checkpoint = *checkpoint;
    if (event) {
      EXPECT_EQ(event->envelope.event_id, entry.id);
      EXPECT_EQ(event->xid, entry.checkpoint.xid);
      EXPECT_EQ(event->position, entry.checkpoint.position);
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

// The stream holds every outbox event exactly once, in (xid, position) order, with bounds that
// never go back; a bound message names the event before it.
void ExpectStreamMirrorsOutbox(const TempNats& nats, const std::string& write) {
  const auto outbox = Column(write, "SELECT event_id::text FROM outbox ORDER BY xid, position");
  const auto entries = ReadStream(nats);
  std::vector<std::string> events;
  cqrs::Checkpoint previous;
  for (const auto& entry : entries) {
    if (entry.event) {
      events.push_back(entry.id);
      EXPECT_TRUE(adapters::nats::PositionBefore(previous, entry.checkpoint))
          << adapters::nats::FormatCheckpoint(entry.checkpoint) << " after "
          << adapters::nats::FormatCheckpoint(previous);
    } else {
      EXPECT_EQ(entry.checkpoint.xid, previous.xid);
      EXPECT_EQ(entry.checkpoint.position, previous.position);
      EXPECT_GT(entry.checkpoint.bound, previous.bound);
    }
    EXPECT_GE(entry.checkpoint.bound, previous.bound);
    previous = entry.checkpoint;
  }
  ASSERT_EQ(events.size(), outbox.size());
  EXPECT_EQ(events, outbox);
}

// Waits until the stream covers every transaction committed so far.
void WaitStreamCaughtUp(const TempNats& nats, const std::string& write,
                        std::chrono::milliseconds timeout = 60s) {
  const auto target = WriteBound(write);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto stream = std::string(adapters::nats::kDefaultStream);
  std::uint64_t bound = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      JetStreamConnection connection(nats.Options("probe"));
      if (const auto last = connection.LastSequence(stream); last > 0) {
        adapters::nats::MsgPtr message(connection.GetMessage(stream, last));
        if (auto checkpoint = adapters::nats::MessageCheckpoint(message.get())) {
          bound = checkpoint->bound;
        }
      }
      if (bound >= target) return;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(50ms);
  }
  FAIL() << "stream bound " << bound << " < " << target;
}

// A projector reading the broker into the read PostgreSQL, wired like the binary.
struct BrokerRig {
  BrokerRig(const TempNats& nats, const std::string& read,
            std::string consumer = "shopcqrs_read_pg", std::size_t batch = 200)
      : source({.nats = nats.Options(consumer), .consumer = std::move(consumer)}),
        store(read),
        projector({.name = "read_pg", .batch_size = batch, .max_backoff = 300ms}, source, store,
                  &tracker) {
    projector.Start();
  }
  JetStreamSource source;
  adapters::pg_read::PgReadProjection store;
  cqrs::ProgressTracker tracker;
  cqrs::Projector projector;
};

// The read model agrees with the write model (the fields every event touches).
void ExpectReadMatchesWrite(const std::string& write, const std::string& read) {
  EXPECT_EQ(
      Column(write, "SELECT id || '|' || status || '|' || version FROM orders ORDER BY id"),
      Column(read, "SELECT id || '|' || status || '|' || version FROM order_views ORDER BY id"));
  EXPECT_EQ(
      Column(write, "SELECT id || '|' || name || '|' || version FROM customers ORDER BY id"),
      Column(read, "SELECT id || '|' || name || '|' || version FROM customer_views ORDER BY id"));
  EXPECT_EQ(
      Column(write, "SELECT id || '|' || stock || '|' || version FROM products ORDER BY id"),
      Column(read, "SELECT id || '|' || stock || '|' || version FROM product_views ORDER BY id"));
}

TEST(Relay, AppendsEveryEventOnceInCommitOrder) {
  TempNats nats;
  const auto write = test_support::MigratedDatabase("w", "pg_write");
  Workload load(write);
  load.Seed(5, 5);
  Relay relay(RelayOptions(write, nats));
  relay.Start();
  std::atomic<bool> stop = false;
  std::thread writers([&] { load.Run(4, stop); });
  std::this_thread::sleep_for(3s);
  stop = true;
  writers.join();
  WaitStreamCaughtUp(nats, write);
  ExpectStreamMirrorsOutbox(nats, write);
  const auto stats = relay.GetStats();
  EXPECT_EQ(stats.role, Relay::Role::kLeader);
  EXPECT_EQ(static_cast<std::int64_t>(stats.events_published),
            Scalar(write, "SELECT count(*) FROM outbox"));
  EXPECT_EQ(stats.takeovers, 1u);
}

// Body of the child process of RelayCrash (skipped when run normally).
TEST(RelayChild, RunsUntilKilled) {
  const char* write = std::getenv("SHOPCQRS_CHILD_WRITE");
  const char* url = std::getenv("SHOPCQRS_CHILD_NATS");
  if (!write || !url) GTEST_SKIP() << "only run as a child of RelayCrash";
  Relay::Options options;
  options.write_db = write;
  options.nats.url = url;
  options.batch_size = 64;  // small batches: kills land mid-batch
  Relay relay(options);
  relay.Start();
  std::this_thread::sleep_for(60s);
}

// The relay is killed -9 again and again while commands commit: the stream still holds every
// event once, in order.
TEST(RelayCrash, KilledRepeatedlyMidStream) {
  TempNats nats;
  const auto write = test_support::MigratedDatabase("w", "pg_write");
  Workload load(write);
  load.Seed(5, 5);
  std::atomic<bool> stop = false;
  std::thread writers([&] { load.Run(4, stop); });
  const std::string self = std::filesystem::read_symlink("/proc/self/exe");
  std::mt19937_64 rng(7);
  for (int round = 0; round < 8; ++round) {
    adapters::local::ChildProcess child;
    adapters::local::ChildProcessOptions options;
    options.argv = {self, "--gtest_filter=RelayChild.RunsUntilKilled"};
    options.env = {{"SHOPCQRS_CHILD_WRITE", write}, {"SHOPCQRS_CHILD_NATS", nats.server.Url()}};
    child.Start(options);
    std::this_thread::sleep_for(std::chrono::milliseconds(400 + rng() % 800));
    child.Kill(SIGKILL);
    child.Wait(5s);
  }
  stop = true;
  writers.join();
  ASSERT_GT(Scalar(write, "SELECT count(*) FROM outbox"), 100);
  Relay relay(RelayOptions(write, nats));
  relay.Start();
  WaitStreamCaughtUp(nats, write);
  ExpectStreamMirrorsOutbox(nats, write);
}

// Two relays at once, and the leader stopped mid-stream: events are appended once.
TEST(Relay, TwoRelaysAppendOnceAndTheStandbyTakesOver) {
  TempNats nats;
  const auto write = test_support::MigratedDatabase("w", "pg_write");
  Workload load(write);
  load.Seed(5, 5);
  auto first = std::make_unique<Relay>(RelayOptions(write, nats, 64));
  Relay second(RelayOptions(write, nats, 64));
  first->Start();
  second.Start();
  std::atomic<bool> stop = false;
  std::thread writers([&] { load.Run(4, stop); });
  std::this_thread::sleep_for(1500ms);
  const auto a = first->GetStats();
  const auto b = second.GetStats();
  EXPECT_EQ((a.role == Relay::Role::kLeader) + (b.role == Relay::Role::kLeader), 1)
      << ToString(a.role) << " / " << ToString(b.role);
  // Stop whichever leads; the other takes over.
  if (a.role == Relay::Role::kLeader) {
    first->Stop();
    first.reset();
  } else {
    second.Stop();
  }
  std::this_thread::sleep_for(1500ms);
  stop = true;
  writers.join();
  if (first) {
    EXPECT_EQ(first->GetStats().role, Relay::Role::kLeader);
  } else {
    EXPECT_EQ(second.GetStats().role, Relay::Role::kLeader);
  }
  WaitStreamCaughtUp(nats, write);
  ExpectStreamMirrorsOutbox(nats, write);
}

// Tokens through the broker: a projector fed by JetStream reaches the bound of a command.
TEST(BrokerProjection, ProjectsThroughTheStreamAndSatisfiesTokens) {
  TempNats nats;
  const auto write = test_support::MigratedDatabase("w", "pg_write");
  const auto read = test_support::MigratedDatabase("r", "pg_read");
  Workload load(write);
  load.Seed(5, 5);
  Relay relay(RelayOptions(write, nats));
  relay.Start();
  BrokerRig rig(nats, read);
  std::mt19937_64 rng(42);
  for (int i = 0; i < 300; ++i) load.Step(rng);
  auto r = load.commands.Handle(app::RegisterCustomer{"Last", "last-" + Workload::Suffix() + "@x"});
  ASSERT_TRUE(r.has_value());
  const auto bound = load.tokens.Decode(r->consistency_token);
  ASSERT_TRUE(bound.has_value());
  ASSERT_TRUE(rig.tracker.WaitFor(*bound, 20s)) << rig.tracker.Bound() << " < " << *bound;
  EXPECT_EQ(Scalar(read, fmt::format("SELECT count(*) FROM customer_views WHERE id = '{}'", r->id)),
            1);
  ASSERT_TRUE(rig.tracker.WaitFor(WriteBound(write), 20s));
  ExpectReadMatchesWrite(write, read);
  const auto stats = rig.projector.Stats();
  EXPECT_EQ(stats.errors, 0u) << stats.last_error;
  EXPECT_EQ(static_cast<std::int64_t>(stats.events_applied),
            Scalar(write, "SELECT count(*) FROM outbox"));
}

// nats-server killed -9 twice under load (its supervisor restarts it): relay and projector
// recover by themselves and the read store converges exactly.
TEST(BrokerProjection, ConvergesAfterNatsServerKilledUnderLoad) {
  TempNats nats;
  const auto write = test_support::MigratedDatabase("w", "pg_write");
  const auto read = test_support::MigratedDatabase("r", "pg_read");
  Workload load(write);
  load.Seed(5, 5);
  Relay relay(RelayOptions(write, nats));
  relay.Start();
  BrokerRig rig(nats, read);
  std::atomic<bool> stop = false;
  std::thread writers([&] { load.Run(3, stop); });
  for (int i = 0; i < 2; ++i) {
    std::this_thread::sleep_for(1500ms);
    const pid_t pid = nats.server.Pid();
    ASSERT_GT(pid, 0);
    ::kill(pid, SIGKILL);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (nats.server.Restarts() < i + 1 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(nats.server.Restarts(), i + 1);
  }
  std::this_thread::sleep_for(1s);
  stop = true;
  writers.join();
  ASSERT_TRUE(rig.tracker.WaitFor(WriteBound(write), 60s))
      << rig.tracker.Bound() << " " << rig.projector.Stats().last_error;
  ExpectReadMatchesWrite(write, read);
  ExpectStreamMirrorsOutbox(nats, write);
  EXPECT_NE(rig.projector.Stats().status, cqrs::ProjectorStatus::kError);
}

// The broker dies right after a burst (deliveries may be lost in flight) and nothing follows:
// the read store still converges well within the consumer's ack wait (60 s), because an idle
// consumer that sees the stream hold more than it delivered is re-seated.
TEST(BrokerProjection, ConvergesWhenTheBrokerDiesRightAfterTheLastCommands) {
  TempNats nats;
  const auto write = test_support::MigratedDatabase("w", "pg_write");
  const auto read = test_support::MigratedDatabase("r", "pg_read");
  Workload load(write);
  load.Seed(3, 3);
  Relay relay(RelayOptions(write, nats));
  relay.Start();
  BrokerRig rig(nats, read);
  std::mt19937_64 rng(11);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 40; ++i) load.Step(rng);
    ::kill(nats.server.Pid(), SIGKILL);
    const auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(rig.tracker.WaitFor(WriteBound(write), 30s))
        << "round " << round << ": " << rig.projector.Stats().last_error;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
  }
  ExpectReadMatchesWrite(write, read);
  ExpectStreamMirrorsOutbox(nats, write);
}

// The read store is the truth: a durable consumer that is ahead of (or unrelated to) the
// store's checkpoint is re-seated at the checkpoint, and nothing is skipped or applied twice.
TEST(BrokerProjection, ReseatsADurableConsumerAheadOfTheStore) {
  TempNats nats;
  const auto write = test_support::MigratedDatabase("w", "pg_write");
  Workload load(write);
  load.Seed(5, 5);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) load.Step(rng);
  Relay relay(RelayOptions(write, nats));
  relay.Start();
  WaitStreamCaughtUp(nats, write);
  const auto first_read = test_support::MigratedDatabase("r", "pg_read");
  {
    BrokerRig rig(nats, first_read, "shopcqrs_read_pg", 50);
    ASSERT_TRUE(rig.tracker.WaitFor(WriteBound(write), 30s));
  }  // the durable consumer has acked the whole stream
  // A fresh read database (checkpoint zero) behind the same consumer name.
  for (int i = 0; i < 100; ++i) load.Step(rng);
  const auto second_read = test_support::MigratedDatabase("r", "pg_read");
  cqrs::Checkpoint stored;
  {
    BrokerRig rig(nats, second_read, "shopcqrs_read_pg", 50);
    ASSERT_TRUE(rig.tracker.WaitFor(WriteBound(write), 30s));
    ExpectReadMatchesWrite(write, second_read);
    EXPECT_GE(rig.source.Reseats(), 1u);
    EXPECT_EQ(static_cast<std::int64_t>(rig.projector.Stats().events_applied),
              Scalar(write, "SELECT count(*) FROM outbox"));
    // Nothing more arrives; the projector takes the stream's last message and stops.
    relay.Stop();
    JetStreamConnection probe(nats.Options("probe"));
    const auto stream = std::string(adapters::nats::kDefaultStream);
    adapters::nats::MsgPtr last(probe.GetMessage(stream, probe.LastSequence(stream)));
    const auto end = adapters::nats::MessageCheckpoint(last.get());
    ASSERT_TRUE(end);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (rig.store.LoadCheckpoint() != *end && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    stored = rig.store.LoadCheckpoint();
    ASSERT_EQ(stored, *end);
  }
  // A restart at the store's own checkpoint keeps the consumer where it is.
  JetStreamSource again({.nats = nats.Options("again"), .consumer = "shopcqrs_read_pg"});
  auto batch = again.FetchBatch(stored, 100);
  EXPECT_TRUE(batch.events.empty());
  EXPECT_EQ(again.Reseats(), 0u);
}

}  // namespace
}  // namespace shopcqrs
