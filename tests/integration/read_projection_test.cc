// The read side against real servers: outbox reader, projector runtime and the read_pg
// projection. Write and read databases are separate databases (or separate servers).

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_read/progress_listener.h"
#include "adapters/pg_read/projection.h"
#include "adapters/pg_read/projection_support.h"
#include "adapters/pg_read/queries.h"
#include "adapters/pg_read/read_model.h"
#include "adapters/pg_read/search_projection.h"
#include "adapters/pg_write/write_store.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "cqrs/consistency_token.h"
#include "cqrs/projector.h"
#include "devstack/postgres_server.h"
#include "devstack/process.h"
#include "infra/pg/connection.h"
#include "infra/pg/migrator.h"
#include "infra/pg/pool.h"
#include "support/events.h"
#include "support/eventually.h"
#include "support/projector_rig.h"
#include "support/read_checks.h"
#include "support/search.h"
#include "support/sql.h"
#include "support/temp_dir.h"
#include "support/test_postgres.h"
#include "support/workload.h"

namespace shopcqrs {
namespace {

using namespace std::chrono_literals;
using namespace test_support;
using infra::pg::Connection;

// Outbox reader + read_pg projection + projector, wired like the binary does.
struct ReadPgRig : OutboxRig<adapters::pg_read::PgReadProjection> {
  ReadPgRig(const std::string& write, const std::string& read, std::size_t batch = 500)
      : OutboxRig(write, read, "read_pg", batch) {}
};

// A backlog projected in large batches takes the COPY path for order rows (and its text-format
// escaping): the result equals the write model, names with backslashes and quotes included.
TEST(ProjectorCatchUp, LargeBatchesThroughCopyMatchTheWriteModel) {
  Databases db;
  Workload load(db.write, 8, 6);
  auto product = load.commands.Handle(
      app::AddProduct{"ESC-" + Workload::Suffix(), "Tab\\t and \\\\ product", 100, 1000});
  ASSERT_TRUE(product.has_value());
  std::vector<std::string> special_orders;
  for (const char* name : {"Back\\slash \\N", "Quote ' \" and \\t"}) {
    auto customer = load.commands.Handle(
        app::RegisterCustomer{name, fmt::format("esc{}@x", Workload::Suffix())});
    ASSERT_TRUE(customer.has_value());
    auto order = load.commands.Handle(app::PlaceOrder{
        *domain::CustomerId::Parse(customer->id), {{*domain::ProductId::Parse(product->id), 2}}});
    ASSERT_TRUE(order.has_value());
    special_orders.push_back(order->id);
  }
  load.Steps(1500, 5);
  ASSERT_GT(Scalar(db.write, "SELECT count(*) FROM orders"), 256);
  ReadPgRig rig(db.write, db.read, 2000);
  rig.WaitCaughtUp(db.write, 60s);
  ExpectReadMatchesWrite(db.write, db.read);
  EXPECT_EQ(rig.projector.Stats().errors, 0u) << rig.projector.Stats().last_error;
  for (const auto& id : special_orders) {
    EXPECT_EQ(Dump(db.write, fmt::format("SELECT c.name, p.name FROM orders o JOIN customers c ON "
                                         "c.id = o.customer_id JOIN order_lines l ON l.order_id = "
                                         "o.id JOIN products p ON p.id = l.product_id WHERE o.id = "
                                         "'{}'",
                                         id)),
              Dump(db.read, fmt::format("SELECT customer_name, lines->0->>'product_name' FROM "
                                        "order_views WHERE id = '{}'",
                                        id)));
  }
}

// Live batches: the rows a batch touches come from the projection's row cache (written by
// earlier batches) or are new, so the batch is one round trip with no loads. The cache is never
// older than the store: two projection instances of one name take turns on the same read
// database (each batch starts where the other left the store), a batch from a checkpoint the
// store no longer holds is refused, and the result is exactly the write model.
TEST(ReadProjection, RowCacheMakesLiveBatchesOneRoundTripAndIsNeverStale) {
  Databases db;
  Workload load(db.write, 6, 8);
  adapters::pg_outbox::OutboxReader reader({.conninfo = db.write});
  adapters::pg_read::PgReadProjection first(db.read), second(db.read);
  auto project = [&](adapters::pg_read::PgReadProjection& p, std::size_t max) {
    const auto from = p.LoadCheckpoint();
    auto batch = reader.FetchBatch(from, max);
    p.Apply(from, batch.events, batch.next);
    return batch.events.size();
  };
  while (project(first, 1000) > 0) {
  }
  // Alone: a mix of small batches needs no loads once the seed's rows are cached.
  load.Steps(60, 1);
  const auto before = first.GetTimings();
  std::size_t live_batches = 0;
  while (project(first, 2) > 0) ++live_batches;
  const auto alone = first.GetTimings();
  ASSERT_GT(live_batches, 20u);
  EXPECT_EQ(alone.load_trips - before.load_trips, 0u) << "of " << live_batches << " live batches";
  ExpectReadMatchesWrite(db.write, db.read);
  // Taking turns: every batch starts from a checkpoint the other instance committed, so neither
  // may use what it cached before.
  load.Steps(200, 2);
  bool turn = false;
  while (project(turn ? first : second, 3) > 0) turn = !turn;
  ExpectReadMatchesWrite(db.write, db.read);
  // A batch from a checkpoint the store no longer holds changes nothing.
  load.Steps(20, 3);
  const auto stale = first.LoadCheckpoint();
  project(second, 5);
  auto batch = reader.FetchBatch(stale, 5);
  ASSERT_FALSE(batch.events.empty());
  EXPECT_ANY_THROW(first.Apply(stale, batch.events, batch.next));
  while (project(first, 4) > 0) {
  }
  ExpectReadMatchesWrite(db.write, db.read);
}

// Everything the read_pg projection stores, in a comparable form (ids and values).
std::vector<std::string> ReadPgState(const std::string& read) {
  std::vector<std::string> all;
  for (const char* sql :
       {"SELECT o.*, o.lines::text FROM order_views o ORDER BY id",
        "SELECT * FROM customer_views ORDER BY id", "SELECT * FROM product_views ORDER BY id",
        "SELECT * FROM daily_sales ORDER BY date",
        "SELECT name, xid, position, events FROM projection_checkpoints ORDER BY name",
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename IN "
        "('order_views', 'customer_views', 'product_views', 'daily_sales') ORDER BY indexname"}) {
    auto rows = Dump(read, sql);
    all.push_back(fmt::format("-- {} ({} rows)", sql, rows.size()));
    all.insert(all.end(), rows.begin(), rows.end());
  }
  return all;
}

std::int64_t DeferredIndexes(const std::string& read) {
  return Scalar(read, "SELECT count(*) FROM projection_deferred_indexes");
}

std::int64_t IndexOid(const std::string& read, const char* name) {
  return Scalar(read, fmt::format("SELECT '{}'::regclass::oid::bigint", name));
}

// Built from zero in large batches, read_pg defers the secondary indexes of order_views until it
// has caught up: the result, indexes included, equals an incremental build in small batches.
TEST(ProjectorCatchUp, BuildFromZeroDefersIndexesAndEqualsIncrementalBuild) {
  Databases db;
  Workload load(db.write, 20, 10);
  load.Steps(4000, 11);
  ASSERT_GT(Scalar(db.write, "SELECT count(*) FROM outbox"),
            static_cast<std::int64_t>(2 * adapters::pg_read::kBuildFromZeroEvents));
  const auto incremental = MigratedDatabase("r", "pg_read");
  const auto status_idx = IndexOid(db.read, "order_views_status_idx");
  {
    ReadPgRig bulk(db.write, db.read, 2000);
    ReadPgRig small(db.write, incremental, 100);
    bulk.WaitCaughtUp(db.write, 60s);
    small.WaitCaughtUp(db.write, 60s);
    EXPECT_TRUE(Eventually([&] { return DeferredIndexes(db.read) == 0; }, 30s, 10ms));
    EXPECT_EQ(bulk.projector.Stats().errors, 0u) << bulk.projector.Stats().last_error;
  }
  // The bulk build dropped and recreated the index; the incremental one never touched it.
  EXPECT_NE(IndexOid(db.read, "order_views_status_idx"), status_idx);
  EXPECT_EQ(DeferredIndexes(incremental), 0);
  ExpectReadMatchesWrite(db.write, db.read);
  EXPECT_EQ(ReadPgState(db.read), ReadPgState(incremental));
}

// A projector killed (SIGKILL) in the middle of a build from zero leaves the indexes deferred;
// the next one resumes from the stored checkpoint, creates them once caught up and ends with
// exactly what an incremental build holds.
TEST(ProjectorCrash, KilledMidBuildFromZeroResumesExactly) {
  Databases db;
  {
    Connection c(db.write);
    InsertCatchUpBacklog(c);
  }
  const auto total = Scalar(db.write, "SELECT count(*) FROM outbox");
  char self[4096] = {};
  const auto len = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(len, 0);
  devstack::ChildProcess child;
  devstack::ChildProcessOptions options;
  options.argv = {self, "--gtest_filter=ProjectorChild.RunsUntilKilled"};
  options.env = {{"SHOPCQRS_CHILD_WRITE", db.write},
                 {"SHOPCQRS_CHILD_READ", db.read},
                 {"SHOPCQRS_CHILD_BATCH", "2000"}};
  child.Start(options);
  const auto applied = [&] {
    return Scalar(db.read,
                  "SELECT coalesce(max(events), 0) FROM projection_checkpoints "
                  "WHERE name = 'read_pg'");
  };
  ASSERT_TRUE(Eventually([&] { return applied() >= 10'000; }, 60s, 2ms));
  child.Kill(SIGKILL);
  child.Wait(5s);
  ASSERT_LT(applied(), total) << "the build ended before the kill";
  EXPECT_GT(DeferredIndexes(db.read), 0);
  EXPECT_EQ(Scalar(db.read, "SELECT count(*) FROM pg_indexes WHERE tablename = 'order_views'"), 1);

  const auto incremental = MigratedDatabase("r", "pg_read");
  {
    ReadPgRig resumed(db.write, db.read, 2000);
    ReadPgRig small(db.write, incremental, 100);
    resumed.WaitCaughtUp(db.write, 120s);
    small.WaitCaughtUp(db.write, 120s);
    EXPECT_TRUE(Eventually([&] { return DeferredIndexes(db.read) == 0; }, 30s, 10ms));
    EXPECT_EQ(resumed.projector.Stats().errors, 0u) << resumed.projector.Stats().last_error;
  }
  EXPECT_EQ(applied(), total);
  EXPECT_EQ(Scalar(db.read, "SELECT count(*) FROM pg_indexes WHERE tablename = 'order_views'"), 4);
  EXPECT_EQ(ReadPgState(db.read), ReadPgState(incremental));
}

TEST(ProjectorCommands, ProjectsTheCommandSideAndSatisfiesTokens) {
  Databases db;
  Workload load(db.write, 5, 5);
  ReadPgRig rig(db.write, db.read);
  load.Steps(300, 42);
  // A token of the last command is satisfied once the projector has caught up.
  ExpectTokenSatisfied(load, rig.tracker, db.read, 10s);
  rig.WaitCaughtUp(db.write);
  ExpectReadMatchesWrite(db.write, db.read);
  const auto stats = rig.projector.Stats();
  EXPECT_EQ(stats.errors, 0u) << stats.last_error;
  EXPECT_EQ(static_cast<std::int64_t>(stats.events_applied),
            Scalar(db.write, "SELECT count(*) FROM outbox"));
}

// (a) Writers that hold their transactions open for random times while others commit around
// them: every event is applied exactly once, per-aggregate versions all present.
TEST(OutboxReader, AdversarialCommitOrderAppliesEveryEventExactlyOnce) {
  Databases db;
  ReadPgRig rig(db.write, db.read, 200);
  std::atomic<bool> stop = false;
  std::atomic<int> inserted = 0;
  constexpr int kThreads = 8;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      std::mt19937_64 rng(t + 100);
      Connection c(db.write);
      std::vector<std::pair<std::string, int>> customers;  // id, version
      int n = 0;
      while (!stop) {
        // Each transaction: 1..3 events of one of this thread's customers (new or existing).
        const bool fresh = customers.empty() || rng() % 3 == 0;
        if (fresh) {
          customers.emplace_back(adapters::system::NewRandomUuid().ToString(), 0);
        }
        auto& [id, version] = customers[fresh ? customers.size() - 1 : rng() % customers.size()];
        const int events = 1 + static_cast<int>(rng() % 3);
        c.Exec("BEGIN");
        for (int e = 0; e < events; ++e) {
          ++version;
          const char* type = version == 1 ? "CustomerRegistered" : "CustomerDetailsChanged";
          c.Exec(
              "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, "
              "aggregate_id, aggregate_version, occurred_at, payload) VALUES "
              "(gen_random_uuid(), $1, 1, 'Customer', $2::text::uuid, $3, now(), "
              "json_build_object("
              "'customer_id', $2::text, 'name', $4::text, 'email', $4::text || '@x'))",
              infra::pg::Params().Add(type).Add(id).Add(version).Add(
                  fmt::format("n{}-{}-{}", t, n++, version)));
        }
        if (rng() % 3 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 1500));
        c.Exec("COMMIT");
        inserted += events;
      }
    });
  }
  std::this_thread::sleep_for(12s);
  stop = true;
  for (auto& w : writers) w.join();
  rig.WaitCaughtUp(db.write);
  const auto stats = rig.projector.Stats();
  EXPECT_EQ(stats.errors, 0u) << stats.last_error;
  EXPECT_EQ(static_cast<int>(stats.events_applied), inserted.load());
  EXPECT_EQ(Scalar(db.write, "SELECT count(*) FROM outbox"), inserted.load());
  EXPECT_EQ(Scalar(db.read, "SELECT events FROM projection_checkpoints"), inserted.load());
  // Every aggregate at its last version, with the details of that version.
  EXPECT_EQ(Dump(db.write,
                 "SELECT DISTINCT ON (aggregate_id) aggregate_id, aggregate_version, "
                 "payload->>'name' FROM outbox ORDER BY aggregate_id, aggregate_version DESC"),
            Dump(db.read, "SELECT id, version, name FROM customer_views ORDER BY id"));
  EXPECT_GT(inserted.load(), 100);
}

TEST(OutboxReader, FetchUsesTheXidPositionIndex) {
  Databases db;
  Connection c(db.write);
  c.Exec("SET enable_seqscan = off");
  // The reader's statement (outbox_reader.cc): the scan sits under a lateral join that also
  // yields the snapshot bound.
  const auto text =
      Plan(c,
           "SELECT s.xmin, o.* FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) "
           "s LEFT JOIN LATERAL (SELECT * FROM outbox WHERE (outbox.xid, outbox.position) > "
           "('5'::xid8, 7::bigint) AND outbox.xid < s.xmin ORDER BY outbox.xid, outbox.position "
           "LIMIT 100) o ON true");
  EXPECT_NE(text.find("outbox_xid_position_idx"), std::string::npos) << text;
  EXPECT_NE(text.find("Index Cond: ((ROW(xid, \"position\") > ROW"), std::string::npos) << text;
}

// The projectors prepare their statements once per connection, usually on an empty read
// database, and PostgreSQL may keep the generic plan it made then. A plan made for an empty
// table is a sequential scan, and every live batch would then scan the whole table to load its
// few rows (measured: 0.3 ms per load at 10k orders, growing with the table). The loads and the
// propagation must stay on the key indexes whatever the statistics were when they were planned.
TEST(ReadProjection, PreparedStatementsStayOnTheKeyIndexesAsTheStoreGrows) {
  Databases db;
  adapters::pg_read::projection_support::ProjectorConnection projector(db.read);
  auto& c = projector.Get();
  c.Exec("SET plan_cache_mode = force_generic_plan");  // the plan a long-lived session settles on
  const std::string ids = "{00000000-0000-0000-0000-000000000001}";
  const std::vector<const infra::pg::Statement*> statements = {
      &adapters::pg_read::queries::kLoadOrders,
      &adapters::pg_read::queries::kLoadCustomers,
      &adapters::pg_read::queries::kLoadProducts,
      &adapters::pg_read::queries::kLoadSearchOrders,
      &adapters::pg_read::queries::kLoadSearchCustomers,
      &adapters::pg_read::queries::kPropagateCustomers,
      &adapters::pg_read::queries::kPropagateSearchCustomers};
  for (const auto* statement : statements) {
    c.Exec("BEGIN");
    c.ExecPrepared(*statement, infra::pg::Params().Add(ids));  // planned on the empty tables
    c.Exec("ROLLBACK");
  }
  const std::vector<const infra::pg::Statement*> json_writes = {
      &adapters::pg_read::queries::kUpdateOrders};
  const std::string one_row = "[{\"id\": \"00000000-0000-0000-0000-000000000001\"}]";
  for (const auto* statement : json_writes) {
    c.Exec("BEGIN");
    c.ExecPrepared(*statement, infra::pg::Params().Add(one_row));
    c.Exec("ROLLBACK");
  }
  {
    Connection fill(db.read);
    fill.Exec(
        "INSERT INTO customer_views (id, name, email, order_count, lifetime_value_cents, "
        "version) "
        "SELECT gen_random_uuid(), 'c' || n, 'c' || n || '@x', 1, 0, 1 "
        "FROM generate_series(1, 2000) n");
    fill.Exec(
        "INSERT INTO search_customers (id, name, email, version) "
        "SELECT id, name, email, version FROM customer_views");
    fill.Exec(
        "INSERT INTO product_views (id, sku, name, price_cents, stock, units_sold, "
        "revenue_cents, version) SELECT gen_random_uuid(), 's' || n, 'p' || n, 1, 1, 0, 0, 1 "
        "FROM generate_series(1, 2000) n");
    fill.Exec(
        "INSERT INTO order_views (id, customer_id, status, lines, item_count, total_cents, "
        "placed_at, version, line_text) SELECT gen_random_uuid(), c.id, 'placed', '[]', 1, 1, "
        "now(), 1, 'x' FROM customer_views c, generate_series(1, 10) n");
    fill.Exec(
        "INSERT INTO search_orders (id, customer_id, line_text, placed_at, version, document) "
        "SELECT id, customer_id, line_text, placed_at, version, line_text FROM order_views");
  }
  // The staging tables of large batches can only be scanned: the plans must not be JIT-compiled
  // for the price of a disabled scan (that took 0.4 s per batch).
  c.Exec("BEGIN");
  c.Exec(adapters::pg_read::queries::kCreateStages);
  for (const char* sql : {adapters::pg_read::queries::kUpdateOrdersFromStage,
                          adapters::pg_read::queries::kUpsertCustomersFromStage,
                          adapters::pg_read::queries::kUpsertProductsFromStage}) {
    const auto text = Plan(c, sql);
    EXPECT_EQ(text.find("JIT"), std::string::npos) << text;
  }
  c.Exec("ROLLBACK");
  // The query side's key lookups, lists and search (its word and trigram indexes), planned on
  // the empty tables in a query session (not daily sales: one row per day, a scan is right).
  Connection q(db.read);
  q.Exec("SET plan_cache_mode = force_generic_plan");
  q.PrepareAll(adapters::pg_read::queries::All());
  const std::string uuid = "00000000-0000-0000-0000-000000000001";
  const std::vector<std::pair<std::string, std::string>> queries = {
      {"r_get_order", fmt::format("'{}'", uuid)},
      {"r_list_orders", fmt::format("'infinity', '{}', 21", uuid)},
      {"r_list_orders_by_status", fmt::format("'infinity', '{}', 21, 'paid'", uuid)},
      {"r_list_orders_by_customer", fmt::format("'infinity', '{}', 21, '{}', NULL", uuid, uuid)},
      {"r_get_customer", fmt::format("'{}'", uuid)},
      {"r_get_product", fmt::format("'{}'", uuid)},
      {"r_top_products", "10"},
      {"r_search_orders",
       fmt::format("'{{c1,widgets}}', NULL, NULL, NULL, 2147483647, 'infinity', '{}', 21, NULL",
                   uuid)}};
  for (const auto& [name, args] : queries) q.Exec(fmt::format("EXECUTE {}({})", name, args));
  // Keyed: no sequential scan, and no hash or merge join (which reads a whole side).
  auto expect_keyed = [&](const infra::pg::Statement& statement, const std::string& arg) {
    const auto text = Plan(c, fmt::format("EXECUTE {}('{}')", statement.name, arg));
    for (const char* node : {"Seq Scan", "Hash Join", "Merge Join"}) {
      EXPECT_EQ(text.find(node), std::string::npos) << statement.name << ":\n" << text;
    }
  };
  for (const auto* statement : statements) expect_keyed(*statement, ids);
  // The writes that join a batch's rows (JSON) to the stored ones: by the primary key, row by row.
  for (const auto* statement : json_writes) expect_keyed(*statement, one_row);
  for (const auto& [name, args] : queries) {
    const auto text = Plan(q, fmt::format("EXECUTE {}({})", name, args));
    EXPECT_EQ(text.find("Seq Scan"), std::string::npos) << name << ":\n" << text;
  }
}

TEST(OutboxReader, IdleBoundAdvancesAndBlockerIsReported) {
  Databases db;
  adapters::pg_outbox::OutboxReader reader({db.write});
  auto first = reader.FetchBatch({}, 10);
  EXPECT_TRUE(first.events.empty());
  Connection blocker(db.write);
  blocker.Exec("BEGIN; SELECT pg_current_xact_id()");
  std::this_thread::sleep_for(50ms);
  auto oldest = reader.OldestBlockingTransaction();
  ASSERT_TRUE(oldest.has_value());
  EXPECT_GE(oldest->age.count(), 40);
  blocker.Exec("COMMIT");
  // Finished transactions move the bound even without events.
  Connection other(db.write);
  other.Exec("BEGIN; SELECT pg_current_xact_id(); COMMIT");
  auto second = reader.FetchBatch(first.next, 10);
  EXPECT_GT(second.next.bound, first.next.bound);
}

// (b) The projector dies abruptly again and again (threads destroyed mid-stream, its
// connection killed mid-transaction, a child process running it killed with SIGKILL); at the
// end the read database equals what the write database implies.
TEST(ProjectorCrash, RestartsAbruptlyAndEndsExact) {
  Databases db;
  Workload load(db.write, 8, 8);
  Writers writers(load, 3);
  std::mt19937_64 rng(7);
  char self[4096] = {};
  const auto len = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(len, 0);
  for (int round = 0; round < 12; ++round) {
    if (round % 3 == 2) {
      devstack::ChildProcess child;
      devstack::ChildProcessOptions options;
      options.argv = {self, "--gtest_filter=ProjectorChild.RunsUntilKilled"};
      options.env = {{"SHOPCQRS_CHILD_WRITE", db.write}, {"SHOPCQRS_CHILD_READ", db.read}};
      child.Start(options);
      std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 700));
      child.Kill(SIGKILL);
      child.Wait(5s);
      continue;
    }
    ReadPgRig rig(db.write, db.read, 1 + rng() % 300);
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 400));
    if (round % 3 == 1) {
      Scalar(db.read,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
             "application_name = 'shopcqrs-projector' AND datname = current_database()");
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 200));
    }
  }  // each rig is destroyed mid-stream
  writers.Stop();
  ReadPgRig rig(db.write, db.read);
  rig.WaitCaughtUp(db.write);
  ExpectReadMatchesWrite(db.write, db.read);
  EXPECT_NE(rig.projector.Stats().status, cqrs::ProjectorStatus::kError);
}

// Body of the child process of ProjectorCrash (skipped when run normally).
TEST(ProjectorChild, RunsUntilKilled) {
  const char* write = std::getenv("SHOPCQRS_CHILD_WRITE");
  const char* read = std::getenv("SHOPCQRS_CHILD_READ");
  if (!write || !read) GTEST_SKIP() << "only run as a child of ProjectorCrash";
  const char* batch = std::getenv("SHOPCQRS_CHILD_BATCH");
  ReadPgRig rig(write, read, batch ? std::stoul(batch) : 50);
  std::this_thread::sleep_for(60s);
}

// (c) The read server is restarted under load: the projector recovers by itself.
TEST(ProjectorRecovery, ReadServerRestartedUnderLoad) {
  TempDir root("shopcqrs-read-restart-");
  devstack::PostgresServer server(
      {.data_dir = root.Path() / "data", .name = "read", .fsync = false, .stop_with_parent = true});
  server.Start();
  const auto read = server.ConnectionString();
  const auto write = MigratedDatabase("w", "pg_write");
  infra::pg::ApplyMigrations(read, "pg_read");
  Workload load(write, 5, 5);
  ReadPgRig rig(write, read, 100);
  Writers writers(load, 2);
  std::this_thread::sleep_for(1s);
  server.Stop();
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(rig.projector.Stats().status, cqrs::ProjectorStatus::kStalled);
  server.Start();
  std::this_thread::sleep_for(1s);
  writers.Stop();
  rig.WaitCaughtUp(write);
  ExpectReadMatchesWrite(write, read);
  EXPECT_GT(rig.projector.Stats().errors, 0u);
  rig.projector.Stop();
  server.Stop();
}

TEST(ReadModel, QueriesServeTheProjectedViews) {
  Databases db;
  Workload load(db.write);
  auto& cmd = load.commands;
  const SampleShop shop(cmd);
  ASSERT_TRUE(cmd.Handle(app::CancelOrder{shop.order3, "too slow"}));
  auto last = cmd.Handle(app::ChangeCustomerDetails{shop.alice, "Alice Cooper", {}});
  ASSERT_TRUE(last);

  ReadPgRig rig(db.write, db.read);
  // Search is a projection of its own.
  OutboxRig<adapters::pg_read::SearchProjection> search(db.write, db.read, "search");
  ASSERT_TRUE(rig.tracker.WaitFor(*load.tokens.Decode(last->consistency_token), 10s));
  ASSERT_TRUE(search.tracker.WaitFor(*load.tokens.Decode(last->consistency_token), 10s));
  ExpectReadMatchesWrite(db.write, db.read);

  infra::pg::Pool pool(adapters::pg_read::ReadPoolOptions(db.read, 2));
  adapters::pg_read::PgReadModel model(pool);

  auto view = model.GetOrder(shop.order1);
  ASSERT_TRUE(view);
  shop.ExpectOrder1(*view);
  EXPECT_EQ(view->customer_name, "Alice Cooper");
  EXPECT_FALSE(model.GetOrder(domain::OrderId(adapters::system::NewRandomUuid())));

  auto customer = model.GetCustomer(shop.alice);
  ASSERT_TRUE(customer);
  EXPECT_EQ(customer->name, "Alice Cooper");
  EXPECT_EQ(customer->order_count, 1);
  EXPECT_EQ(customer->lifetime_value_cents, 1500);
  EXPECT_EQ(model.GetCustomer(shop.bob)->order_count, 0);

  auto product = model.GetProduct(shop.gadget);
  ASSERT_TRUE(product);
  EXPECT_EQ(product->units_sold, 1);
  EXPECT_EQ(product->revenue_cents, 1000);
  EXPECT_EQ(product->stock, 99);
  EXPECT_EQ(model.GetProduct(shop.widget)->units_sold, 2);

  auto top = model.TopProducts(10);
  ASSERT_TRUE(top);
  ASSERT_EQ(top->size(), 2u);
  EXPECT_EQ((*top)[0].product_id, shop.widget.ToString());

  // Keyset paging, one per page, newest first, each order once.
  std::vector<std::string> seen;
  std::optional<std::string> cursor;
  do {
    auto page = model.ListOrders({.limit = 1, .cursor = cursor});
    ASSERT_TRUE(page);
    for (const auto& item : page->items) seen.push_back(item.id);
    cursor = page->next_cursor;
  } while (cursor);
  EXPECT_EQ(seen, (std::vector<std::string>{shop.order3.ToString(), shop.order2.ToString(),
                                            shop.order1.ToString()}));
  auto cancelled = model.ListOrders({.status = "cancelled"});
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->items.size(), 2u);
  EXPECT_FALSE(cancelled->next_cursor);
  auto bobs = model.ListCustomerOrders(shop.bob, 20, std::nullopt);
  ASSERT_TRUE(bobs);
  ASSERT_EQ(bobs->items.size(), 1u);
  EXPECT_EQ(bobs->items[0].customer_name, "Bob Jones");
  EXPECT_FALSE(model.ListOrders({.cursor = "nonsense"}));
  EXPECT_FALSE(model.ListOrders({.limit = 0}));
  EXPECT_FALSE(model.ListOrders({.status = "lost"}));

  auto by_tracking = test_support::Search(model, "trk-" + shop.suffix, 10);
  ASSERT_TRUE(by_tracking);
  ASSERT_EQ(by_tracking->size(), 1u);
  EXPECT_EQ((*by_tracking)[0].id, shop.order1.ToString());
  EXPECT_EQ(test_support::Search(model, "gadget alice", 10)->size(), 2u);
  EXPECT_EQ(test_support::Search(model, "bob-" + shop.suffix, 10)->size(), 1u);
  EXPECT_EQ(test_support::Search(model, "100%", 10)->size(), 0u);
  EXPECT_FALSE(test_support::Search(model, "  ", 10));

  const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  auto sales = model.DailySales(today - std::chrono::days(2), today);
  ASSERT_TRUE(sales);
  ASSERT_EQ(sales->size(), 3u);
  EXPECT_EQ((*sales)[0], (app::DailySalesItem{today - std::chrono::days(2), 0, 0, 0}));
  EXPECT_EQ((*sales)[2], (app::DailySalesItem{today, 3, 2, 1500}));
  EXPECT_FALSE(model.DailySales(today, today - std::chrono::days(1)));
  EXPECT_FALSE(model.DailySales(today - std::chrono::days(400), today));
}

// Events of different aggregates in any order (an order before its customer and products).
TEST(ReadProjection, OutOfOrderAggregatesAndRedeliveryAndGaps) {
  Databases db;
  adapters::pg_read::PgReadProjection store(db.read);
  const auto customer = adapters::system::NewRandomUuid().ToString();
  const auto product = adapters::system::NewRandomUuid().ToString();
  const auto order = adapters::system::NewRandomUuid().ToString();
  const auto line = OrderLines(product);
  std::vector<cqrs::StoredEvent> batch1{OrderPlaced(order, customer, line),
                                        OrderPaid(order, customer, line)};
  store.Apply({}, batch1, {1, 1, 2});
  std::vector<cqrs::StoredEvent> batch2{
      Event("CustomerRegistered", "Customer", customer, 1,
            fmt::format(R"({{"customer_id":"{}","name":"Zed","email":"z@x"}})", customer)),
      Event("ProductAdded", "Product", product, 1,
            fmt::format(R"({{"product_id":"{}","sku":"S1","name":"Thing","price_cents":5,)"
                        R"("stock":10}})",
                        product))};
  store.Apply({1, 1, 2}, batch2, {2, 3, 3});
  store.Apply({2, 3, 3}, batch1, {2, 3, 3});  // redelivered: no second effect
  EXPECT_EQ(Dump(db.read, "SELECT name, order_count, lifetime_value_cents FROM customer_views"),
            std::vector<std::string>{"Zed|1|10"});
  EXPECT_EQ(Dump(db.read, "SELECT stock, units_sold, revenue_cents, version FROM product_views"),
            std::vector<std::string>{"8|2|10|1"});
  EXPECT_EQ(Dump(db.read, "SELECT customer_name, status, version FROM order_views"),
            std::vector<std::string>{"Zed|paid|2"});
  EXPECT_EQ(Dump(db.read, "SELECT orders_placed, orders_paid, revenue_cents FROM daily_sales"),
            std::vector<std::string>{"1|1|10"});
  EXPECT_EQ(store.LoadCheckpoint(), (cqrs::Checkpoint{2, 3, 3}));
  // A version gap stops the projection loudly and changes nothing.
  std::vector<cqrs::StoredEvent> gap{
      Event("OrderDelivered", "Order", order, 4,
            fmt::format(R"({{"order_id":"{}","customer_id":"{}"}})", order, customer))};
  EXPECT_THROW(store.Apply({2, 3, 3}, gap, {3, 4, 4}), cqrs::DeterministicApplyError);
  EXPECT_EQ(store.LoadCheckpoint(), (cqrs::Checkpoint{2, 3, 3}));
  // A batch from any other checkpoint than the stored one is refused whole (compare-and-set):
  // a projector that missed a commit cannot move the checkpoint past events it did not apply.
  for (const auto& from :
       {cqrs::Checkpoint{}, cqrs::Checkpoint{1, 1, 2}, cqrs::Checkpoint{2, 3, 2}}) {
    try {
      store.Apply(from, batch2, {9, 9, 9});
      ADD_FAILURE() << "a batch from a stale checkpoint was applied";
    } catch (const infra::pg::PgError& error) {
      EXPECT_EQ(error.sqlstate(), adapters::pg_read::queries::kCheckpointMovedState);
    }
  }
  EXPECT_EQ(store.LoadCheckpoint(), (cqrs::Checkpoint{2, 3, 3}));
  EXPECT_EQ(Dump(db.read, "SELECT customer_name, status, version FROM order_views"),
            std::vector<std::string>{"Zed|paid|2"});
}

// Catch-up speed on a realistic mix (orders placed, paid, shipped) written set-based.
TEST(ProjectorThroughput, CatchesUpQuickly) {
  Databases db;
  Connection c(db.write);
  InsertCatchUpBacklog(c);
  const auto total = Scalar(db.write, "SELECT count(*) FROM outbox");
  {
    const auto t0 = std::chrono::steady_clock::now();
    adapters::pg_outbox::OutboxReader reader({db.write});
    cqrs::Checkpoint at;
    std::size_t n = 0;
    while (true) {
      auto batch = reader.FetchBatch(at, 5000);
      if (batch.events.empty()) break;
      n += batch.events.size();
      at = batch.next;
    }
    std::printf("[ fetch    ] %zu events in %.2f s\n", n,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const auto start = std::chrono::steady_clock::now();
  ReadPgRig rig(db.write, db.read, 5000);
  rig.WaitCaughtUp(db.write, 120s);
  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = static_cast<double>(total) / seconds;
  std::printf("[ rate     ] %lld events in %.2f s: %.0f events/s\n", static_cast<long long>(total),
              seconds, rate);
  EXPECT_EQ(static_cast<std::int64_t>(rig.projector.Stats().events_applied), total);
  EXPECT_EQ(Scalar(db.read, "SELECT sum(units_sold) FROM product_views"), 2 * 37800);
  // The target is 50,000/s; this only guards against collapse (shared CI boxes vary a lot).
  EXPECT_GT(rate, 2000.0);
}

// A follower in an API process sets the bound it reads from the store, lower too: when a store
// holds less than was heard before (it lost a suffix, or was restored), token waits wait again.
TEST(ProgressListener, SetsTheStoredBoundEvenWhenLower) {
  Databases db;
  adapters::pg_read::PgReadProjection store(db.read);
  store.Apply({}, {}, {5, 5, 50});
  cqrs::ProgressTracker followed;
  followed.Publish(900);  // heard before, e.g. from a store that has since lost it
  adapters::pg_read::ProgressListener listener(db.read, followed,
                                               adapters::pg_read::kProjectionName, 50ms);
  Eventually([&] { return followed.Bound() == 50; }, 10s, 10ms);
  EXPECT_EQ(followed.Bound(), 50u);
  EXPECT_FALSE(followed.WaitFor(51, 10ms));
  store.Apply({5, 5, 50}, {}, {5, 5, 60});  // notified: raised at once
  EXPECT_TRUE(followed.WaitFor(60, 5s)) << followed.Bound();
}

}  // namespace
}  // namespace shopcqrs
