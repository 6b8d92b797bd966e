// The logical-decoding outbox reader (pgoutput over the replication protocol) against a real write
// server with wal_level=logical (the shared test server) and, for the refusal, one without.
#include "adapters/pg_outbox/logical_reader.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "adapters/pg_outbox/outbox_reader.h"
#include "cqrs/projector.h"
#include "devstack/postgres_server.h"
#include "infra/pg/connection.h"
#include "infra/pg/migrator.h"
#include "infra/pg/replication_stream.h"
#include "support/eventually.h"
#include "support/sql.h"
#include "support/temp_dir.h"
#include "support/test_postgres.h"

namespace shopcqrs {
namespace {

using adapters::pg_outbox::LogicalOutboxNames;
using adapters::pg_outbox::LogicalOutboxReader;
using cqrs::Checkpoint;
using cqrs::StoredEvent;
using infra::pg::Connection;
using std::chrono::milliseconds;
using test_support::Eventually;

// Appends one event to the outbox on `c` (in its current transaction, if any); answers its
// event id.
std::string InsertEvent(Connection& c, const std::string& payload = R"({"n":1})") {
  return c
      .Exec(
          "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, "
          "aggregate_id, aggregate_version, occurred_at, payload) VALUES (gen_random_uuid(), "
          "'CustomerRegistered', 1, 'Customer', gen_random_uuid(), 1, "
          "'2023-11-14 22:13:20.123+00', $1) RETURNING event_id::text",
          infra::pg::Params().Add(payload))
      .String(0, 0);
}

// `n` events in one transaction of their own.
std::vector<std::string> InsertTransaction(const std::string& conninfo, int n) {
  Connection c(conninfo);
  c.Exec("BEGIN");
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(InsertEvent(c));
  c.Exec("COMMIT");
  return ids;
}

std::vector<std::string> Ids(const std::vector<StoredEvent>& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.envelope.event_id);
  return ids;
}

// Fetches from `from` until at least `count` events came or `timeout` passed; answers them and
// leaves the last checkpoint in `from`. Checks that the ordering keys grow strictly.
std::vector<StoredEvent> Collect(cqrs::EventSource& source, Checkpoint& from, std::size_t count,
                                 milliseconds timeout = milliseconds(10'000),
                                 std::size_t batch = 100) {
  std::vector<StoredEvent> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    auto b = source.FetchBatch(from, batch);
    for (auto& e : b.events) {
      EXPECT_GT(std::tie(e.xid, e.position), std::tie(from.xid, from.position));
      from.xid = e.xid;
      from.position = e.position;
      out.push_back(std::move(e));
    }
    EXPECT_GE(b.next.bound, from.bound);
    from = b.next;
    if (out.size() < count) source.WaitForChange(milliseconds(100));
  }
  return out;
}

class LogicalReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    conninfo_ = test_support::MigratedDatabase("logical", "pg_write");
    names_.slot = "s_" + test_support::Column(conninfo_, "SELECT current_database()")[0];
    ASSERT_TRUE(adapters::pg_outbox::EnsureLogicalOutbox(conninfo_, names_));
  }
  void TearDown() override {
    reader_.reset();
    // The walsender ends shortly after its client; then the slot can go.
    Eventually(
        [&] {
          try {
            adapters::pg_outbox::DropLogicalOutbox(conninfo_, names_);
            return true;
          } catch (const std::exception&) {
            return false;
          }
        },
        milliseconds(5000));
  }

  LogicalOutboxReader& Reader() {
    if (!reader_) reader_ = NewReader();
    return *reader_;
  }
  std::unique_ptr<LogicalOutboxReader> NewReader() {
    return std::make_unique<LogicalOutboxReader>(
        LogicalOutboxReader::Options{.conninfo = conninfo_, .names = names_});
  }
  // Waits until no session streams from the slot (a closed reader's walsender has ended).
  void WaitUntilSlotIdle(LogicalOutboxReader& any) {
    ASSERT_TRUE(Eventually([&] { return !any.Slot().active; }, milliseconds(5000)));
  }
  std::uint64_t CurrentLsn() {
    return infra::pg::ParseLsn(
        test_support::Column(conninfo_, "SELECT pg_current_wal_lsn()::text")[0]);
  }

  std::string conninfo_;
  LogicalOutboxNames names_;
  std::unique_ptr<LogicalOutboxReader> reader_;
};

TEST_F(LogicalReaderTest, SetupIsIdempotent) {
  EXPECT_FALSE(adapters::pg_outbox::EnsureLogicalOutbox(conninfo_, names_));
  auto slot = Reader().Slot();
  EXPECT_TRUE(slot.exists);
  EXPECT_FALSE(slot.active);
  EXPECT_TRUE(slot.confirmed_flush_lsn.has_value());
}

TEST_F(LogicalReaderTest, DeliversEventsInCommitOrderNotXidOrder) {
  Checkpoint cp;
  EXPECT_TRUE(Reader().FetchBatch(cp, 10).events.empty());  // streaming from here on

  Connection first(conninfo_), second(conninfo_);
  first.Exec("BEGIN");
  const auto a1 = InsertEvent(first);  // takes the smaller xid and position
  second.Exec("BEGIN");
  const auto b = InsertEvent(second);
  second.Exec("COMMIT");  // ... but commits first
  const auto a2 = InsertEvent(first);
  first.Exec("COMMIT");
  const auto c = InsertTransaction(conninfo_, 1)[0];

  auto xid_position = test_support::Dump(
      conninfo_, "SELECT event_id, xid, position FROM outbox ORDER BY xid, position");
  ASSERT_EQ(xid_position.size(), 4u);
  EXPECT_TRUE(xid_position[0].starts_with(a1)) << "a1 has the smallest xid";
  EXPECT_TRUE(xid_position[2].starts_with(b)) << "b has a larger xid than a1 and a2";

  auto events = Collect(Reader(), cp, 4);
  EXPECT_EQ(Ids(events), (std::vector<std::string>{b, a1, a2, c}));
  ASSERT_EQ(events.size(), 4u);
  // One ordering key (the commit LSN) per transaction.
  EXPECT_LT(events[0].xid, events[1].xid);
  EXPECT_EQ(events[1].xid, events[2].xid);
  EXPECT_LT(events[1].position, events[2].position);
  EXPECT_LT(events[2].xid, events[3].xid);
  EXPECT_GT(cp.bound, events[3].xid);  // the last commit's end
  // The row itself, as the snapshot reader reads it.
  EXPECT_EQ(events[0].envelope.type, "CustomerRegistered");
  EXPECT_EQ(events[0].envelope.aggregate_type, "Customer");
  EXPECT_EQ(events[0].envelope.schema_version, 1);
  EXPECT_EQ(events[0].envelope.aggregate_version, 1);
  EXPECT_EQ(events[0].envelope.payload, R"({"n":1})");
  EXPECT_EQ(events[0].envelope.occurred_at.time_since_epoch().count(), 1'700'000'000'123);
  EXPECT_GT(events[0].committed_at.time_since_epoch().count(), 1'700'000'000'123);
}

TEST_F(LogicalReaderTest, FetchBatchAloneReadsWhatHasArrived) {
  Checkpoint cp;
  cp = Reader().FetchBatch(cp, 10).next;
  const auto id = InsertTransaction(conninfo_, 1)[0];
  std::vector<StoredEvent> events;
  ASSERT_TRUE(Eventually(
      [&] {
        auto b = Reader().FetchBatch(cp, 10);  // no WaitForChange in between
        cp = b.next;
        events.insert(events.end(), b.events.begin(), b.events.end());
        return !events.empty();
      },
      milliseconds(5000)));
  EXPECT_EQ(Ids(events), std::vector<std::string>{id});
}

TEST_F(LogicalReaderTest, ATransactionLargerThanTheBatchComesWhole) {
  Checkpoint cp;
  Reader().FetchBatch(cp, 10);
  const auto big = InsertTransaction(conninfo_, 5);
  const auto small = InsertTransaction(conninfo_, 1);
  const auto small2 = InsertTransaction(conninfo_, 1);
  std::vector<std::vector<std::string>> batches;
  ASSERT_TRUE(Eventually(
      [&] {
        auto b = Reader().FetchBatch(cp, 2);
        if (!b.events.empty()) batches.push_back(Ids(b.events));
        cp = b.next;
        Reader().WaitForChange(milliseconds(50));
        std::size_t n = 0;
        for (const auto& batch : batches) n += batch.size();
        return n >= 7;
      },
      milliseconds(10'000)));
  ASSERT_GE(batches.size(), 2u);
  EXPECT_EQ(batches[0], big);  // whole, though larger than 2
  std::vector<std::string> rest;
  for (std::size_t i = 1; i < batches.size(); ++i) {
    EXPECT_LE(batches[i].size(), 2u);
    rest.insert(rest.end(), batches[i].begin(), batches[i].end());
  }
  EXPECT_EQ(rest, (std::vector<std::string>{small[0], small2[0]}));
}

TEST_F(LogicalReaderTest, AnIdleTransactionElsewhereStallsTheSnapshotReaderButNotThisOne) {
  Checkpoint cp;
  Reader().FetchBatch(cp, 10);
  adapters::pg_outbox::OutboxReader snapshot({conninfo_});
  Checkpoint snapshot_cp;
  snapshot.FetchBatch(snapshot_cp, 10);

  // Another database of the same server: BEGIN; take an xid; stay idle in transaction.
  const auto other = test_support::FreshDatabase("idle");
  Connection idle(other);
  idle.Exec("BEGIN");
  idle.Exec("SELECT txid_current()");

  const auto id = InsertTransaction(conninfo_, 1)[0];
  const auto start = std::chrono::steady_clock::now();
  auto events = Collect(Reader(), cp, 1, milliseconds(5000));
  const auto took =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
  ASSERT_EQ(Ids(events), std::vector<std::string>{id});
  EXPECT_LT(took.count(), 1000) << "delivered in " << took.count() << " ms";
  std::printf("logical reader delivered the commit in %lld ms despite the idle transaction\n",
              static_cast<long long>(took.count()));

  // For contrast: the snapshot reader sees nothing while the idle transaction holds the xmin.
  auto stalled = Collect(snapshot, snapshot_cp, 1, milliseconds(300));
  EXPECT_TRUE(stalled.empty());
  auto blocking = snapshot.OldestBlockingTransaction();
  ASSERT_TRUE(blocking.has_value());
  EXPECT_EQ(blocking->state, "idle in transaction");

  // Later commits still flow through the logical reader.
  const auto id2 = InsertTransaction(conninfo_, 1)[0];
  EXPECT_EQ(Ids(Collect(Reader(), cp, 1, milliseconds(5000))), std::vector<std::string>{id2});

  idle.Exec("COMMIT");
  EXPECT_EQ(Ids(Collect(snapshot, snapshot_cp, 2, milliseconds(5000))),
            (std::vector<std::string>{id, id2}));
}

TEST_F(LogicalReaderTest, ANewReaderDeliversExactlyWhatWasNotAcknowledged) {
  Checkpoint cp;
  Reader().FetchBatch(cp, 10);
  const auto t1 = InsertTransaction(conninfo_, 2);
  const auto t2 = InsertTransaction(conninfo_, 1);
  auto first = Collect(Reader(), cp, 3);
  ASSERT_EQ(first.size(), 3u);
  const Checkpoint acknowledged = cp;
  Reader().Acknowledge(acknowledged);
  ASSERT_TRUE(Eventually(
      [&] { return Reader().Slot().confirmed_flush_lsn.value_or(0) >= acknowledged.bound; },
      milliseconds(5000)));

  const auto t3 = InsertTransaction(conninfo_, 2);
  auto unacknowledged = Collect(Reader(), cp, 2);
  ASSERT_EQ(Ids(unacknowledged), t3);
  reader_.reset();  // gone without acknowledging t3

  // From the store's checkpoint: t3 again, nothing before it, nothing twice.
  auto second = NewReader();
  WaitUntilSlotIdle(*second);
  Checkpoint from = acknowledged;
  EXPECT_EQ(Ids(Collect(*second, from, 2)), t3);
  const auto t4 = InsertTransaction(conninfo_, 1);
  auto more = Collect(*second, from, 2, milliseconds(1500));
  EXPECT_EQ(Ids(more), t4);
  second.reset();

  // A fresh store (zero checkpoint) starts at the slot's confirmed position: t3 and t4.
  auto third = NewReader();
  WaitUntilSlotIdle(*third);
  Checkpoint zero;
  auto fresh = Collect(*third, zero, 3, milliseconds(1500));
  std::vector<std::string> t3_t4 = t3;
  t3_t4.push_back(t4[0]);
  EXPECT_EQ(Ids(fresh), t3_t4);
  third.reset();

  // The checkpoint comparison skips what the store has, even inside a resent transaction.
  auto fourth = NewReader();
  WaitUntilSlotIdle(*fourth);
  Checkpoint mid{.xid = unacknowledged[0].xid,
                 .position = unacknowledged[0].position,
                 .bound = acknowledged.bound};
  EXPECT_EQ(Ids(Collect(*fourth, mid, 2, milliseconds(1500))),
            (std::vector<std::string>{t3[1], t4[0]}));
  fourth.reset();

  // A checkpoint behind what the slot has confirmed cannot be served.
  auto fifth = NewReader();
  WaitUntilSlotIdle(*fifth);
  Checkpoint behind{.bound = acknowledged.bound - 1};
  EXPECT_THROW(fifth->FetchBatch(behind, 10), adapters::pg_outbox::CheckpointBehindSlot);
  // Nor one that is no LSN of this server (a snapshot reader's epoch-composed bound).
  Checkpoint foreign{.bound = std::uint64_t{1} << 60};
  EXPECT_THROW(fifth->FetchBatch(foreign, 10), adapters::pg_outbox::CheckpointBehindSlot);
}

TEST_F(LogicalReaderTest, IdleKeepalivesAdvanceTheBoundAndTheConfirmedPosition) {
  Checkpoint cp;
  cp = Reader().FetchBatch(cp, 10).next;
  Reader().Acknowledge(cp);
  const auto start = cp.bound;

  // WAL that carries no outbox row: another table of this database, another database.
  test_support::Column(conninfo_,
                       "CREATE TABLE unrelated (x int); INSERT INTO unrelated VALUES (1)");
  const auto other = test_support::FreshDatabase("other");
  test_support::Column(other, "CREATE TABLE t (x int); INSERT INTO t VALUES (1) RETURNING x");
  const auto written = CurrentLsn();

  ASSERT_TRUE(Eventually(
      [&] {
        Reader().WaitForChange(milliseconds(100));
        auto b = Reader().FetchBatch(cp, 10);
        EXPECT_TRUE(b.events.empty());
        cp = b.next;
        Reader().Acknowledge(cp);
        return cp.bound >= written;
      },
      milliseconds(10'000)))
      << "bound " << cp.bound << " start " << start << " written " << written;
  EXPECT_GT(cp.bound, start);
  ASSERT_TRUE(Eventually([&] { return Reader().Slot().confirmed_flush_lsn.value_or(0) >= written; },
                         milliseconds(5000)));
  EXPECT_EQ(Reader().Confirmed(), cp.bound);
}

TEST_F(LogicalReaderTest, RetainedWalGrowsUntilAcknowledgedAndDropsAfter) {
  Checkpoint cp;
  cp = Reader().FetchBatch(cp, 10).next;
  const std::string payload = fmt::format(R"({{"pad":"{}"}})", std::string(2000, 'x'));
  {
    Connection c(conninfo_);
    c.Exec("BEGIN");
    for (int i = 0; i < 300; ++i) InsertEvent(c, payload);
    c.Exec("COMMIT");
  }
  auto events = Collect(Reader(), cp, 300, milliseconds(20'000), 1000);
  ASSERT_EQ(events.size(), 300u);
  const auto before = Reader().Slot();
  EXPECT_GT(before.retained_wal_bytes, 100'000) << "unacknowledged: the slot keeps the WAL";
  EXPECT_GT(before.confirmed_lag_bytes, 100'000);

  Reader().Acknowledge(cp);
  // (The payloads compress: 300 of them take some 150 kB of WAL.)
  // restart_lsn moves at the next running-transactions record the walsender decodes once the
  // confirmed position has passed it (a checkpoint writes one).
  adapters::pg_outbox::SlotStatus after;
  ASSERT_TRUE(Eventually(
      [&] {
        test_support::Column(conninfo_, "CHECKPOINT");
        Reader().WaitForChange(milliseconds(100));
        cp = Reader().FetchBatch(cp, 10).next;
        Reader().Acknowledge(cp);
        after = Reader().Slot();
        return after.retained_wal_bytes < before.retained_wal_bytes / 4;
      },
      milliseconds(30'000)))
      << "retained " << after.retained_wal_bytes << " (was " << before.retained_wal_bytes << ")";
  EXPECT_LT(after.confirmed_lag_bytes, before.confirmed_lag_bytes);
  std::printf("retained WAL: %lld bytes unacknowledged, %lld after acknowledge\n",
              static_cast<long long>(before.retained_wal_bytes),
              static_cast<long long>(after.retained_wal_bytes));
}

TEST_F(LogicalReaderTest, ADroppedSlotIsReportedAsLost) {
  Checkpoint cp;
  Reader().FetchBatch(cp, 10);
  Reader().Reset();
  WaitUntilSlotIdle(Reader());
  test_support::Column(conninfo_,
                       fmt::format("SELECT pg_drop_replication_slot('{}')::text", names_.slot));
  try {
    Reader().FetchBatch(cp, 10);
    FAIL() << "no error";
  } catch (const adapters::pg_outbox::ReplicationSlotLost& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(Reader().Slot().exists);
  adapters::pg_outbox::EnsureLogicalOutbox(conninfo_, names_);  // for TearDown
}

TEST_F(LogicalReaderTest, TheStreamAnswersKeepalivesThatAskForAReply) {
  // A walsender that drops a client silent for 1 s asks for a reply after 0.5 s.
  infra::pg::ReplicationStream stream(
      {.conninfo = conninfo_, .session = {.settings = {{"wal_sender_timeout", "1s"}}}});
  const auto identity = stream.IdentifySystem();
  EXPECT_FALSE(identity.system_id.empty());
  EXPECT_GT(identity.timeline, 0);
  EXPECT_GT(identity.xlogpos, 0u);
  EXPECT_EQ(identity.dbname, test_support::Column(conninfo_, "SELECT current_database()")[0]);
  const auto confirmed = Reader().Slot().confirmed_flush_lsn.value_or(0);
  stream.StartLogical(names_.slot, 0, confirmed,
                      {{"proto_version", "1"}, {"publication_names", names_.publication}});

  int asked = 0;
  const auto until = std::chrono::steady_clock::now() + milliseconds(3000);
  while (std::chrono::steady_clock::now() < until) {
    auto message = stream.Read(milliseconds(100));  // throws if the server gave up on us
    if (message && std::holds_alternative<infra::pg::Keepalive>(*message)) {
      if (std::get<infra::pg::Keepalive>(*message).reply_requested) ++asked;
    }
  }
  EXPECT_GE(asked, 2) << "keepalives asking for a reply, answered";

  // Silent for longer than the timeout: the server ends the session.
  std::this_thread::sleep_for(milliseconds(2500));
  EXPECT_THROW(
      {
        for (int i = 0; i < 50; ++i) stream.Read(milliseconds(100));
      },
      infra::pg::ConnectionLost);
  EXPECT_TRUE(stream.IsBroken());
}

// A projection store in memory: the checkpoint is a compare-and-set, like the real stores'.
class MemoryStore final : public cqrs::ProjectionStore {
 public:
  Checkpoint LoadCheckpoint() override {
    std::lock_guard lock(mutex_);
    return checkpoint_;
  }
  void Apply(const Checkpoint& from, const std::vector<StoredEvent>& events,
             const Checkpoint& to) override {
    std::lock_guard lock(mutex_);
    if (from != checkpoint_) throw std::runtime_error("checkpoint moved");
    events_.insert(events_.end(), events.begin(), events.end());
    checkpoint_ = to;
  }
  std::vector<StoredEvent> Events() {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  std::mutex mutex_;
  Checkpoint checkpoint_;
  std::vector<StoredEvent> events_;
};

TEST_F(LogicalReaderTest, AProjectorAppliesConcurrentCommitsExactlyOnceAcrossALostSession) {
  MemoryStore store;
  cqrs::ProgressTracker tracker;
  cqrs::Projector projector({.name = "logical",
                             .batch_size = 7,
                             .idle_wait = milliseconds(100),
                             .initial_backoff = milliseconds(20),
                             .max_backoff = milliseconds(200)},
                            Reader(), store, &tracker);
  projector.Start();

  std::mutex mutex;
  std::set<std::string> written;
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int t = 0; t < 40; ++t) {
        auto ids = InsertTransaction(conninfo_, 1 + (w + t) % 3);
        std::lock_guard lock(mutex);
        written.insert(ids.begin(), ids.end());
      }
    });
  }
  // Mid-way, the walsender session dies: the projector reconnects from its checkpoint.
  ASSERT_TRUE(Eventually([&] { return store.Events().size() > 20; }, milliseconds(10'000)));
  test_support::Column(conninfo_, fmt::format("SELECT pg_terminate_backend(active_pid)::text FROM "
                                              "pg_replication_slots WHERE slot_name = '{}'",
                                              names_.slot));
  for (auto& writer : writers) writer.join();

  ASSERT_TRUE(
      Eventually([&] { return store.Events().size() >= written.size(); }, milliseconds(20'000)))
      << store.Events().size() << " of " << written.size() << ": " << projector.Stats().last_error;
  std::this_thread::sleep_for(milliseconds(300));  // nothing more may come
  projector.Stop();
  const auto events = store.Events();
  std::set<std::string> applied;
  for (std::size_t i = 0; i < events.size(); ++i) {
    applied.insert(events[i].envelope.event_id);
    if (i > 0) {
      EXPECT_LT(std::tie(events[i - 1].xid, events[i - 1].position),
                std::tie(events[i].xid, events[i].position));
    }
  }
  EXPECT_EQ(events.size(), written.size()) << "an event applied twice";
  EXPECT_EQ(applied, written);
  EXPECT_GE(projector.Stats().errors, 1u) << "the lost session was noticed";
  const auto bound = store.LoadCheckpoint().bound;
  EXPECT_EQ(tracker.Bound(), bound);
  EXPECT_GE(Reader().Slot().confirmed_flush_lsn.value_or(0), events.back().xid);
}

// A server that keeps at most 1 MB of WAL for slots: a slot that falls further behind is
// invalidated at the next checkpoint (wal_status 'lost').
TEST(LogicalReaderOnASmallWalBudget, AnInvalidatedSlotIsReportedAsLost) {
  test_support::TempDir dir("shopcqrs-small-wal-");
  devstack::PostgresServer server({.data_dir = dir.Path() / "data",
                                   .name = "small-wal",
                                   .settings = {{"wal_level", "logical"},
                                                {"max_replication_slots", "4"},
                                                {"max_wal_senders", "4"},
                                                {"max_slot_wal_keep_size", "1MB"},
                                                {"log_min_messages", "warning"}},
                                   .database = "shopcqrs",
                                   .fsync = false});
  server.Start();
  const auto conninfo = server.ConnectionString();
  infra::pg::ApplyMigrations(conninfo, "pg_write");
  adapters::pg_outbox::EnsureLogicalOutbox(conninfo);
  LogicalOutboxReader reader({.conninfo = conninfo});
  Checkpoint cp;
  cp = reader.FetchBatch(cp, 10).next;  // streaming, never acknowledging

  // Some 40 MB of WAL (more than two segments past the slot), then a checkpoint.
  test_support::Column(conninfo,
                       "CREATE TABLE filler AS SELECT g, md5(g::text) AS m FROM "
                       "generate_series(1, 400000) g");
  test_support::Column(conninfo, "SELECT pg_switch_wal()::text");
  test_support::Column(conninfo, "CHECKPOINT");
  ASSERT_TRUE(Eventually([&] { return reader.Slot().wal_status == "lost"; }, milliseconds(20'000)))
      << reader.Slot().wal_status;

  // The checkpointer ends the slot's session; the next one is refused as lost.
  bool lost = false;
  Eventually(
      [&] {
        try {
          reader.WaitForChange(milliseconds(50));
          cp = reader.FetchBatch(cp, 10).next;
        } catch (const adapters::pg_outbox::ReplicationSlotLost& e) {
          EXPECT_NE(std::string(e.what()).find("invalidated"), std::string::npos) << e.what();
          lost = true;
        } catch (const std::exception&) {
          // the session ending, or the slot still held by the ending walsender
        }
        return lost;
      },
      milliseconds(20'000));
  EXPECT_TRUE(lost);
  server.Stop();
}

TEST(LogicalReaderWithoutLogicalWal, RefusesClearlyAtStart) {
  test_support::TempDir dir("shopcqrs-replica-wal-");
  devstack::PostgresServer server({.data_dir = dir.Path() / "data",
                                   .name = "replica-wal",
                                   .settings = {{"wal_level", "replica"}},
                                   .database = "shopcqrs",
                                   .fsync = false});
  server.Start();
  const auto conninfo = server.ConnectionString();
  infra::pg::ApplyMigrations(conninfo, "pg_write");
  try {
    adapters::pg_outbox::EnsureLogicalOutbox(conninfo);
    FAIL() << "no error";
  } catch (const adapters::pg_outbox::LogicalDecodingUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("wal_level is 'replica'"), std::string::npos) << e.what();
  }
  LogicalOutboxReader reader({.conninfo = conninfo});
  EXPECT_THROW(reader.FetchBatch({}, 10), adapters::pg_outbox::LogicalDecodingUnavailable);
  // Fatal for a projector: no retry cures it.
  EXPECT_THROW(reader.FetchBatch({}, 10), cqrs::FatalProjectionError);
  server.Stop();
}

}  // namespace
}  // namespace shopcqrs
