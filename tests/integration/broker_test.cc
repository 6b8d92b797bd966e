// The broker leg against real servers: the relay appends the outbox to a JetStream stream on a
// supervised nats-server, and projectors consume it through durable consumers.

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/nats/event_messages.h"
#include "adapters/nats/jetstream_source.h"
#include "adapters/pg_read/projection.h"
#include "adapters/relay/relay.h"
#include "cqrs/projector.h"
#include "devstack/nats_server.h"
#include "devstack/process.h"
#include "infra/nats/jetstream.h"
#include "infra/pg/connection.h"
#include "infra/pg/migrator.h"
#include "support/eventually.h"
#include "support/projector_rig.h"
#include "support/sql.h"
#include "support/stream_checks.h"
#include "support/temp_servers.h"
#include "support/test_postgres.h"
#include "support/workload.h"

namespace shopcqrs {
namespace {

using namespace std::chrono_literals;
using namespace test_support;
using namespace adapters::nats;
using namespace infra::nats;
using adapters::relay::Relay;

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

// The stream holds every outbox event once, in order (support/stream_checks.h).
void ExpectStreamMirrorsOutbox(const TempNats& nats, const std::string& write) {
  test_support::ExpectStreamMirrorsOutbox(nats.Options("reader"), write);
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
        infra::nats::MsgPtr message(connection.GetMessage(stream, last));
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
struct BrokerRig : ProjectorRig<JetStreamSource, adapters::pg_read::PgReadProjection> {
  BrokerRig(const TempNats& nats, const std::string& read,
            const std::string& consumer = "shopcqrs_read_pg", std::size_t batch = 200)
      : ProjectorRig({.nats = nats.Options(consumer), .consumer = consumer}, read,
                     {.name = "read_pg", .batch_size = batch, .max_backoff = 300ms}) {}
};

// The broker leg running: a nats-server, a write database seeded with `seed` customers and
// products, the relay from it, and a projector from the stream into a read database.
struct BrokerLeg {
  explicit BrokerLeg(int seed) : load(db.write, seed, seed) {
    relay.Start();
    rig.emplace(nats, db.read);
  }
  TempNats nats;
  Databases db;
  Workload load;
  Relay relay{RelayOptions(db.write, nats)};
  std::optional<BrokerRig> rig;
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
  const auto write = MigratedDatabase("w", "pg_write");
  Workload load(write, 5, 5);
  Relay relay(RelayOptions(write, nats));
  relay.Start();
  Writers writers(load, 4);
  std::this_thread::sleep_for(3s);
  writers.Stop();
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
  const auto write = MigratedDatabase("w", "pg_write");
  Workload load(write, 5, 5);
  Writers writers(load, 4);
  const std::string self = std::filesystem::read_symlink("/proc/self/exe");
  std::mt19937_64 rng(7);
  for (int round = 0; round < 8; ++round) {
    devstack::ChildProcess child;
    devstack::ChildProcessOptions options;
    options.argv = {self, "--gtest_filter=RelayChild.RunsUntilKilled"};
    options.env = {{"SHOPCQRS_CHILD_WRITE", write}, {"SHOPCQRS_CHILD_NATS", nats.server.Url()}};
    child.Start(options);
    std::this_thread::sleep_for(std::chrono::milliseconds(400 + rng() % 800));
    child.Kill(SIGKILL);
    child.Wait(5s);
  }
  writers.Stop();
  ASSERT_GT(Scalar(write, "SELECT count(*) FROM outbox"), 100);
  Relay relay(RelayOptions(write, nats));
  relay.Start();
  WaitStreamCaughtUp(nats, write);
  ExpectStreamMirrorsOutbox(nats, write);
}

// Two relays at once, and the leader stopped mid-stream: events are appended once.
TEST(Relay, TwoRelaysAppendOnceAndTheStandbyTakesOver) {
  TempNats nats;
  const auto write = MigratedDatabase("w", "pg_write");
  Workload load(write, 5, 5);
  auto first = std::make_unique<Relay>(RelayOptions(write, nats, 64));
  Relay second(RelayOptions(write, nats, 64));
  first->Start();
  second.Start();
  Writers writers(load, 4);
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
  writers.Stop();
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
  BrokerLeg leg(5);
  leg.load.Steps(300, 42);
  ExpectTokenSatisfied(leg.load, leg.rig->tracker, leg.db.read, 20s);
  ASSERT_TRUE(leg.rig->tracker.WaitFor(WriteBound(leg.db.write), 20s));
  ExpectReadMatchesWrite(leg.db.write, leg.db.read);
  const auto stats = leg.rig->projector.Stats();
  EXPECT_EQ(stats.errors, 0u) << stats.last_error;
  EXPECT_EQ(static_cast<std::int64_t>(stats.events_applied),
            Scalar(leg.db.write, "SELECT count(*) FROM outbox"));
}

// nats-server killed -9 twice under load (its supervisor restarts it): relay and projector
// recover by themselves and the read store converges exactly.
TEST(BrokerProjection, ConvergesAfterNatsServerKilledUnderLoad) {
  BrokerLeg leg(5);
  Writers writers(leg.load, 3);
  for (int i = 0; i < 2; ++i) {
    std::this_thread::sleep_for(1500ms);
    const pid_t pid = leg.nats.server.Pid();
    ASSERT_GT(pid, 0);
    ::kill(pid, SIGKILL);
    Eventually([&] { return leg.nats.server.Restarts() >= i + 1; }, 20s, 50ms);
    ASSERT_EQ(leg.nats.server.Restarts(), i + 1);
  }
  std::this_thread::sleep_for(1s);
  writers.Stop();
  ASSERT_TRUE(leg.rig->tracker.WaitFor(WriteBound(leg.db.write), 60s))
      << leg.rig->tracker.Bound() << " " << leg.rig->projector.Stats().last_error;
  ExpectReadMatchesWrite(leg.db.write, leg.db.read);
  ExpectStreamMirrorsOutbox(leg.nats, leg.db.write);
  EXPECT_NE(leg.rig->projector.Stats().status, cqrs::ProjectorStatus::kError);
}

// The broker dies right after a burst (deliveries may be lost in flight) and nothing follows:
// the read store still converges well within the consumer's ack wait (60 s), because an idle
// consumer that sees the stream hold more than it delivered is re-seated.
TEST(BrokerProjection, ConvergesWhenTheBrokerDiesRightAfterTheLastCommands) {
  BrokerLeg leg(3);
  std::mt19937_64 rng(11);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 40; ++i) leg.load.Step(rng);
    ::kill(leg.nats.server.Pid(), SIGKILL);
    const auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(leg.rig->tracker.WaitFor(WriteBound(leg.db.write), 30s))
        << "round " << round << ": " << leg.rig->projector.Stats().last_error;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
  }
  ExpectReadMatchesWrite(leg.db.write, leg.db.read);
  ExpectStreamMirrorsOutbox(leg.nats, leg.db.write);
}

// The read store is the truth: a durable consumer that is ahead of (or unrelated to) the
// store's checkpoint is re-seated at the checkpoint, and nothing is skipped or applied twice.
TEST(BrokerProjection, ReseatsADurableConsumerAheadOfTheStore) {
  TempNats nats;
  const auto write = MigratedDatabase("w", "pg_write");
  Workload load(write, 5, 5);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) load.Step(rng);
  Relay relay(RelayOptions(write, nats));
  relay.Start();
  WaitStreamCaughtUp(nats, write);
  const auto first_read = MigratedDatabase("r", "pg_read");
  {
    BrokerRig rig(nats, first_read, "shopcqrs_read_pg", 50);
    ASSERT_TRUE(rig.tracker.WaitFor(WriteBound(write), 30s));
  }  // the durable consumer has acked the whole stream
  // A fresh read database (checkpoint zero) behind the same consumer name.
  for (int i = 0; i < 100; ++i) load.Step(rng);
  const auto second_read = MigratedDatabase("r", "pg_read");
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
    infra::nats::MsgPtr last(probe.GetMessage(stream, probe.LastSequence(stream)));
    const auto end = adapters::nats::MessageCheckpoint(last.get());
    ASSERT_TRUE(end);
    Eventually([&] { return rig.store.LoadCheckpoint() == *end; }, 20s);
    stored = rig.store.LoadCheckpoint();
    ASSERT_EQ(stored, *end);
  }
  // A restart at the store's own checkpoint keeps the consumer where it is.
  JetStreamSource again({.nats = nats.Options("again"), .consumer = "shopcqrs_read_pg"});
  auto batch = again.FetchBatch(stored, 100);
  EXPECT_TRUE(batch.events.empty());
  EXPECT_EQ(again.Reseats(), 0u);
}

// A hand-made event for stream tests: (xid, position) and an aggregate of its own.
cqrs::StoredEvent StreamEvent(std::uint64_t xid, std::int64_t position) {
  cqrs::StoredEvent event;
  event.xid = xid;
  event.position = position;
  event.envelope.event_id = fmt::format("event-{}-{}", xid, position);
  event.envelope.type = "CustomerRegistered";
  event.envelope.schema_version = 1;
  event.envelope.aggregate_type = "Customer";
  event.envelope.aggregate_id = fmt::format("c{}", position);
  event.envelope.aggregate_version = 1;
  event.envelope.payload = "{}";
  return event;
}

// Appends events (xid 1, the given positions) as the relay would, each naming `prev` chained
// from the one given; answers whether AppendChain confirmed them all.
bool AppendEvents(JetStreamConnection& nats, std::uint64_t last_sequence, cqrs::Checkpoint prev,
                  std::initializer_list<std::int64_t> positions) {
  std::vector<natsMsg*> messages;
  for (const auto position : positions) {
    const cqrs::Checkpoint after{1, position, 1};
    messages.push_back(adapters::nats::EncodeEvent(StreamEvent(1, position), after, prev));
    prev = after;
  }
  std::string error;
  return infra::nats::AppendChain(nats, messages, last_sequence, &error);
}

// A foreign message lands where the relay's next append was to go (a second leader during the
// lock check, a late bound message): the refused append must take every later append of the run
// down with it, or the stream would hold the second event without the first.
TEST(Broker, NoAppendIsStoredAfterARefusedOne) {
  TempNats nats;
  JetStreamConnection connection(nats.Options("appender"));
  const auto stream = std::string(adapters::nats::kDefaultStream);
  adapters::nats::EnsureEventStream(connection, stream);
  ASSERT_TRUE(AppendEvents(connection, 0, {}, {1}));
  ASSERT_EQ(connection.LastSequence(stream), 1u);
  // An append that expects an empty stream is refused on this one.
  EXPECT_FALSE(AppendEvents(connection, 0, {}, {7}));
  EXPECT_EQ(connection.LastSequence(stream), 1u);

  // The foreign message: a valid-looking bound message, appended without expectations.
  natsMsg* foreign = adapters::nats::EncodeBound({1, 1, 5}, {1, 1, 1});
  jsPubAck* ack = nullptr;
  ASSERT_EQ(js_PublishMsg(&ack, connection.js(), foreign, nullptr, nullptr), NATS_OK);
  jsPubAck_Destroy(ack);
  natsMsg_Destroy(foreign);
  ASSERT_EQ(connection.LastSequence(stream), 2u);

  // The relay still believes the stream ends at #1: events 2 and 3 expect #1 and #2.
  EXPECT_FALSE(AppendEvents(connection, 1, {1, 1, 1}, {2, 3}));
  EXPECT_EQ(connection.LastSequence(stream), 2u) << "an event was stored without its predecessor";
}

// Collects what a projector applies (positions), for stream tests.
class PositionStore final : public cqrs::ProjectionStore {
 public:
  cqrs::Checkpoint LoadCheckpoint() override {
    std::lock_guard lock(mutex_);
    return checkpoint_;
  }
  void Apply(const cqrs::Checkpoint& from, const std::vector<cqrs::StoredEvent>& events,
             const cqrs::Checkpoint& to) override {
    std::lock_guard lock(mutex_);
    if (!(from == checkpoint_)) throw std::runtime_error("checkpoint moved");
    for (const auto& event : events) positions_.push_back(event.position);
    checkpoint_ = to;
  }
  std::vector<std::int64_t> Positions() {
    std::lock_guard lock(mutex_);
    return positions_;
  }

 private:
  std::mutex mutex_;
  cqrs::Checkpoint checkpoint_;
  std::vector<std::int64_t> positions_;
};

// A stream with a hole whose sequence numbers are contiguous (#3 names position 3, which the
// stream never got): the consumer applies what precedes the hole, then stops loudly -- status
// error, the reason named -- and never applies anything after it.
TEST(BrokerProjection, StopsLoudlyAtAHoleTheSequenceNumbersHide) {
  TempNats nats;
  JetStreamConnection connection(nats.Options("appender"));
  const auto stream = std::string(adapters::nats::kDefaultStream);
  adapters::nats::EnsureEventStream(connection, stream);
  ASSERT_TRUE(AppendEvents(connection, 0, {}, {1, 2}));
  ASSERT_TRUE(AppendEvents(connection, 2, {1, 3, 1}, {4, 5}));  // follows 3, which is missing
  ASSERT_EQ(connection.LastSequence(stream), 4u);

  JetStreamSource source({.nats = nats.Options("consumer"), .consumer = "shopcqrs_hole"});
  PositionStore store;
  cqrs::Projector projector({.name = "hole", .batch_size = 100, .max_backoff = 100ms}, source,
                            store);
  projector.Start();
  Eventually([&] { return projector.Stats().status == cqrs::ProjectorStatus::kError; }, 20s);
  const auto stats = projector.Stats();
  projector.Stop();
  EXPECT_EQ(stats.status, cqrs::ProjectorStatus::kError);
  EXPECT_NE(stats.last_error.find("does not continue from checkpoint 1.2"), std::string::npos)
      << stats.last_error;
  EXPECT_EQ(store.Positions(), (std::vector<std::int64_t>{1, 2}));
}

// The relay checks the chain at the stream's end before it appends: after a hole it stalls,
// saying so, and appends nothing.
TEST(Relay, RefusesToAppendAfterAHoleAtTheStreamsEnd) {
  TempNats nats;
  const auto write = MigratedDatabase("w", "pg_write");
  Workload load(write, 2, 2);
  JetStreamConnection connection(nats.Options("appender"));
  const auto stream = std::string(adapters::nats::kDefaultStream);
  adapters::nats::EnsureEventStream(connection, stream);
  ASSERT_TRUE(AppendEvents(connection, 0, {}, {1}));
  ASSERT_TRUE(AppendEvents(connection, 1, {1, 2, 1}, {3}));
  Relay relay(RelayOptions(write, nats));
  relay.Start();
  Eventually([&] { return relay.GetStats().last_error.find("hole") != std::string::npos; }, 20s);
  const auto stats = relay.GetStats();
  relay.Stop();
  EXPECT_NE(stats.last_error.find("the stream has a hole"), std::string::npos) << stats.last_error;
  EXPECT_EQ(connection.LastSequence(stream), 2u);
}

}  // namespace
}  // namespace shopcqrs
