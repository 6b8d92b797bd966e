// The Redis side against real servers: a supervised redis-server, the real command side on
// the write PostgreSQL, the outbox reader, the projector runtime and the "redis" projection.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_read/projection.h"
#include "adapters/pg_read/read_model.h"
#include "adapters/pg_write/write_store.h"
#include "adapters/redis/redis_projection.h"
#include "adapters/redis/redis_read_model.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "cqrs/consistency_token.h"
#include "cqrs/projector.h"
#include "devstack/redis_server.h"
#include "domain/time.h"
#include "infra/pg/connection.h"
#include "infra/pg/migrator.h"
#include "infra/pg/pool.h"
#include "infra/redis/redis_client.h"
#include "support/events.h"
#include "support/eventually.h"
#include "support/projector_rig.h"
#include "support/sql.h"
#include "support/temp_dir.h"
#include "support/temp_servers.h"
#include "support/test_postgres.h"
#include "support/workload.h"

namespace shopcqrs {
namespace {

using namespace std::chrono_literals;
using namespace test_support;
using namespace adapters::redis;

// Outbox reader + redis projection + projector, wired like the binary would.
struct RedisRig : ProjectorRig<adapters::pg_outbox::OutboxReader, RedisProjection> {
  RedisRig(const std::string& write, const infra::redis::RedisEndpoint& endpoint,
           const std::string& prefix, std::size_t batch = adapters::redis::kRecommendedBatchSize)
      : ProjectorRig({write}, RedisProjection::Options{.endpoint = endpoint, .key_prefix = prefix},
                     {.name = "redis", .batch_size = batch, .max_backoff = 300ms}) {}
};

// Waits until the checkpoint stored IN REDIS covers every transaction committed so far (the
// tracker alone is not enough after Redis lost data: it never moves back).
void WaitCaughtUp(const infra::redis::RedisEndpoint& endpoint, const std::string& prefix,
                  const std::string& write, std::chrono::milliseconds timeout = 60s) {
  const auto target = WriteBound(write);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  RedisProjection probe({.endpoint = endpoint, .key_prefix = prefix});
  std::uint64_t bound = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      bound = probe.LoadCheckpoint().bound;
      if (bound >= target) return;
    } catch (const std::exception&) {
      probe.Reset();
    }
    std::this_thread::sleep_for(20ms);
  }
  FAIL() << "redis bound " << bound << " < " << target;
}

std::string Ms(const std::optional<domain::Timestamp>& t) {
  return t ? std::to_string(t->time_since_epoch().count()) : "∅";
}
std::string Opt(const std::optional<std::string>& s) { return s ? *s : "∅"; }

// Asserts that Redis holds exactly what the write database implies: every order view, the
// top-sellers ranking and the applied-events counter.
void ExpectRedisMatchesWrite(const std::string& write, const infra::redis::RedisEndpoint& endpoint,
                             const std::string& prefix) {
  infra::pg::Connection c(write);
  auto orders = c.Exec(
      "SELECT o.id::text, o.customer_id::text, c.name, c.email, o.status, o.total_cents, "
      "o.version, (extract(epoch FROM o.placed_at) * 1000)::bigint::text, "
      "(extract(epoch FROM p.paid_at) * 1000)::bigint::text, "
      "(extract(epoch FROM s.shipped_at) * 1000)::bigint::text, "
      "(extract(epoch FROM s.delivered_at) * 1000)::bigint::text, "
      "(extract(epoch FROM o.cancelled_at) * 1000)::bigint::text, p.payment_reference, "
      "s.tracking_number, nullif(o.cancel_reason, ''), "
      "(SELECT sum(quantity) FROM order_lines l WHERE l.order_id = o.id)::text, "
      "(SELECT count(*) FROM order_lines l WHERE l.order_id = o.id)::text "
      "FROM orders o JOIN customers c ON c.id = o.customer_id "
      "LEFT JOIN payments p ON p.order_id = o.id "
      "LEFT JOIN shipments s ON s.order_id = o.id ORDER BY o.id");
  RedisReadModel model({.endpoint = endpoint, .key_prefix = prefix});
  int mismatches = 0;
  for (int i = 0; i < orders.rows(); ++i) {
    auto cell = [&](int col) { return orders.OptString(i, col).value_or("∅"); };
    const std::string expected =
        fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", cell(0), cell(1), cell(2),
                    cell(3), cell(4), cell(5), cell(6), cell(7), cell(8), cell(9), cell(10),
                    cell(11), cell(12), cell(13), cell(14), cell(15), cell(16));
    auto view = model.GetOrder(*domain::OrderId::Parse(orders.String(i, 0)));
    std::string actual = "(missing)";
    if (view) {
      actual = fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", view->id,
                           view->customer_id, Opt(view->customer_name), Opt(view->customer_email),
                           view->status, view->total_cents, view->version, Ms(view->placed_at),
                           Ms(view->paid_at), Ms(view->shipped_at), Ms(view->delivered_at),
                           Ms(view->cancelled_at), Opt(view->payment_reference),
                           Opt(view->tracking_number), Opt(view->cancel_reason), view->item_count,
                           view->lines.size());
    }
    if (expected != actual && ++mismatches <= 5) {
      ADD_FAILURE() << "order view differs\nexpected " << expected << "\nactual   " << actual;
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << orders.rows() << " orders";

  const char* kPaid = "('paid', 'shipped', 'delivered')";
  auto top = c.Exec(fmt::format(
      "SELECT p.id::text, p.sku, p.name, "
      "coalesce(sum(l.quantity) FILTER (WHERE o.status IN {0}), 0), "
      "coalesce(sum(l.quantity * l.unit_price_cents) FILTER (WHERE o.status IN {0}), 0) "
      "FROM products p LEFT JOIN order_lines l ON l.product_id = p.id "
      "LEFT JOIN orders o ON o.id = l.order_id GROUP BY p.id ORDER BY 4 DESC, p.id LIMIT 100",
      kPaid));
  std::vector<std::string> expected_top, actual_top;
  for (int i = 0; i < top.rows(); ++i) {
    expected_top.push_back(fmt::format("{}|{}|{}|{}|{}", top.String(i, 0), top.String(i, 1),
                                       top.String(i, 2), top.Int64(i, 3), top.Int64(i, 4)));
  }
  for (const auto& p : model.TopProducts(100)) {
    actual_top.push_back(
        fmt::format("{}|{}|{}|{}|{}", p.product_id, p.sku, p.name, p.units_sold, p.revenue_cents));
  }
  EXPECT_EQ(expected_top, actual_top);

  RedisProjection store({.endpoint = endpoint, .key_prefix = prefix});
  EXPECT_EQ(store.EventsApplied(), Scalar(write, "SELECT count(*) FROM outbox"));
}

TEST(RedisClient, CommandsPipelinesScriptsAndErrors) {
  TempRedis redis;
  infra::redis::RedisClient client(redis.server.Endpoint());
  client.Ping();
  EXPECT_EQ(client.Command({"SET", "k", std::string_view("a\0b", 3)}).str, "OK");
  EXPECT_EQ(client.Command({"GET", "k"}).str, std::string("a\0b", 3));
  EXPECT_TRUE(client.Command({"GET", "missing"}).IsNil());
  auto replies = client.Pipeline({{"INCR", "n"}, {"INCR", "n"}, {"HGET", "k", "f"}});
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[1].integer, 2);
  EXPECT_TRUE(replies[2].IsError());  // WRONGTYPE, returned in place
  EXPECT_THROW(client.Command({"HGET", "k", "f"}), infra::redis::RedisReplyError);
  client.Ping();  // still usable after a reply error

  infra::redis::RedisScript script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  EXPECT_EQ(client.Eval(script, {"n"}, {"5"}).integer, 7);
  client.Command({"SCRIPT", "FLUSH"});  // NOSCRIPT next time: loaded again
  EXPECT_EQ(client.Eval(script, {"n"}, {"1"}).integer, 8);

  redis.server.Stop();
  EXPECT_THROW(client.Ping(), infra::redis::RedisConnectionError);
  EXPECT_FALSE(client.IsConnected());
  redis.server.Start();
  client.Ping();                                     // reconnects
  EXPECT_EQ(client.Command({"GET", "n"}).str, "8");  // the AOF kept it
}

TEST(RedisProjection, OrderViewsRenamesAndTopSellers) {
  TempRedis redis;
  const auto write = MigratedDatabase("w", "pg_write");
  Workload load(write);
  auto& cmd = load.commands;
  const SampleShop shop(cmd, "Blue \"Widget\" ü/½");
  ASSERT_TRUE(cmd.Handle(app::AddProduct{"THING-" + shop.suffix, "Thing", 5, 100}));
  auto o4 = cmd.Handle(app::PlaceOrder{shop.alice, {{shop.widget, 4}}});
  ASSERT_TRUE(o4);
  const auto order4 = *domain::OrderId::Parse(o4->id);

  RedisRig rig(write, redis.server.Endpoint(), redis.prefix);
  auto first = cmd.Handle(app::PayOrder{order4, 1000, "PAY-4"});
  ASSERT_TRUE(first);
  ASSERT_TRUE(rig.tracker.WaitFor(*load.tokens.Decode(first->consistency_token), 10s));

  RedisReadModel model({.endpoint = redis.server.Endpoint(), .key_prefix = redis.prefix});
  auto top = model.TopProducts(10);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].product_id, shop.widget.ToString());  // 2 + 4 paid
  EXPECT_EQ(top[0].units_sold, 6);
  EXPECT_EQ(top[0].revenue_cents, 1500);
  EXPECT_EQ(top[0].name, "Blue \"Widget\" ü/½");
  EXPECT_EQ(top[1].product_id, shop.gadget.ToString());
  EXPECT_EQ(top[1].units_sold, 4);
  EXPECT_EQ(top[2].units_sold, 0);  // added, never sold: ranked last
  EXPECT_EQ(model.TopProducts(1).size(), 1u);

  // Cancelling a paid order takes its lines out of the ranking.
  ASSERT_TRUE(cmd.Handle(app::CancelOrder{shop.order3, "too slow"}));
  auto last = cmd.Handle(app::ChangeCustomerDetails{shop.alice, "Alice Cooper", {}});
  ASSERT_TRUE(last);
  ASSERT_TRUE(rig.tracker.WaitFor(*load.tokens.Decode(last->consistency_token), 10s));
  top = model.TopProducts(10);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[1].product_id, shop.gadget.ToString());
  EXPECT_EQ(top[1].units_sold, 1);
  EXPECT_EQ(top[1].revenue_cents, 1000);

  // The rename reached every one of Alice's orders, and only hers.
  for (const auto& id : {shop.order1, shop.order3, order4}) {
    auto view = model.GetOrder(id);
    ASSERT_TRUE(view);
    EXPECT_EQ(view->customer_name, "Alice Cooper");
    EXPECT_EQ(view->customer_email, "alice-" + shop.suffix + "@example.com");
  }
  EXPECT_EQ(model.GetOrder(shop.order2)->customer_name, "Bob Jones");

  auto view = model.GetOrder(shop.order1);
  ASSERT_TRUE(view);
  shop.ExpectOrder1(*view);
  EXPECT_EQ(model.GetOrder(shop.order2)->cancel_reason, std::nullopt);  // "" is null
  EXPECT_EQ(model.GetOrder(shop.order3)->cancel_reason, "too slow");
  EXPECT_FALSE(model.GetOrder(domain::OrderId(adapters::system::NewRandomUuid())));

  WaitCaughtUp(redis.server.Endpoint(), redis.prefix, write);
  ExpectRedisMatchesWrite(write, redis.server.Endpoint(), redis.prefix);
  EXPECT_EQ(rig.projector.Stats().errors, 0u) << rig.projector.Stats().last_error;
}

// Hand-made events: an order before its customer and products, redelivery, and a gap.
TEST(RedisProjection, OutOfOrderAggregatesRedeliveryAndGaps) {
  TempRedis redis;
  RedisProjection store({.endpoint = redis.server.Endpoint(), .key_prefix = redis.prefix});
  RedisReadModel model({.endpoint = redis.server.Endpoint(), .key_prefix = redis.prefix});
  const auto customer = adapters::system::NewRandomUuid().ToString();
  const auto product = adapters::system::NewRandomUuid().ToString();
  const auto order_id = adapters::system::NewRandomUuid();
  const auto order = order_id.ToString();
  const auto line = OrderLines(product);
  const std::vector<cqrs::StoredEvent> batch1 = {OrderPlaced(order, customer, line),
                                                 OrderPaid(order, customer, line)};
  store.LoadCheckpoint();
  store.Apply({}, batch1, {1, 2, 3});
  auto view = model.GetOrder(domain::OrderId(order_id));
  ASSERT_TRUE(view);
  EXPECT_EQ(view->customer_name, std::nullopt);  // the customer is not known yet
  EXPECT_EQ(view->status, "paid");
  EXPECT_TRUE(model.TopProducts(10).empty());  // nor the product

  const std::vector<cqrs::StoredEvent> batch2 = {
      Event("CustomerRegistered", "Customer", customer, 1,
            fmt::format(R"({{"customer_id":"{}","name":"Zed","email":"z@x"}})", customer)),
      Event("ProductAdded", "Product", product, 1,
            fmt::format(
                R"({{"product_id":"{}","sku":"S1","name":"Thing","price_cents":5,"stock":9}})",
                product))};
  store.Apply({1, 2, 3}, batch2, {1, 4, 5});
  // Redelivery: the same batch again has no second effect (only the checkpoint moves).
  store.Apply({1, 4, 5}, batch2, {1, 4, 6});
  store.Apply({1, 4, 6}, batch1, {1, 4, 7});
  EXPECT_EQ(store.EventsApplied(), 4);
  view = model.GetOrder(domain::OrderId(order_id));
  ASSERT_TRUE(view);
  EXPECT_EQ(view->customer_name, "Zed");
  EXPECT_EQ(view->customer_email, "z@x");
  EXPECT_EQ(view->version, 2);
  auto top = model.TopProducts(10);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].units_sold, 2);
  EXPECT_EQ(top[0].revenue_cents, 10);
  EXPECT_EQ(store.LoadCheckpoint(), (cqrs::Checkpoint{1, 4, 7}));

  // A gap is fatal and writes nothing, not even the checkpoint.
  const std::vector<cqrs::StoredEvent> gap = {
      Event("CustomerDetailsChanged", "Customer", customer, 2,
            fmt::format(R"({{"customer_id":"{}","name":"Y","email":"y@x"}})", customer)),
      Event("OrderDelivered", "Order", order, 4,
            fmt::format(R"({{"order_id":"{}","customer_id":"{}"}})", order, customer))};
  EXPECT_THROW(store.Apply({1, 4, 7}, gap, {1, 6, 9}), cqrs::DeterministicApplyError);
  EXPECT_EQ(store.LoadCheckpoint(), (cqrs::Checkpoint{1, 4, 7}));
  EXPECT_EQ(model.GetOrder(domain::OrderId(order_id))->customer_name, "Zed");

  // A store whose checkpoint moved under it (another writer, or Redis lost data) refuses.
  RedisProjection other({.endpoint = redis.server.Endpoint(), .key_prefix = redis.prefix});
  other.LoadCheckpoint();
  other.Apply({1, 4, 7}, {}, {1, 4, 8});
  EXPECT_THROW(store.Apply({1, 4, 7}, {}, {1, 4, 9}), infra::redis::RedisReplyError);
  EXPECT_EQ(store.LoadCheckpoint(), (cqrs::Checkpoint{1, 4, 8}));
  store.Apply({1, 4, 8}, {}, {1, 4, 9});  // after reloading, it goes on
}

// Redelivery through the real reader: the same fetched batch applied twice.
TEST(RedisProjection, SameBatchTwiceHasNoSecondEffect) {
  TempRedis redis;
  const auto write = MigratedDatabase("w", "pg_write");
  Workload load(write, 4, 4);
  load.Steps(200, 11);
  adapters::pg_outbox::OutboxReader reader({write});
  RedisProjection store({.endpoint = redis.server.Endpoint(), .key_prefix = redis.prefix});
  auto checkpoint = store.LoadCheckpoint();
  while (true) {
    auto batch = reader.FetchBatch(checkpoint, 37);
    if (batch.events.empty()) break;
    store.Apply(checkpoint, batch.events, batch.next);
    store.Apply(batch.next, batch.events, batch.next);  // redelivered
    checkpoint = batch.next;
  }
  ExpectRedisMatchesWrite(write, redis.server.Endpoint(), redis.prefix);
}

// The projector is destroyed mid-stream again and again while commands run; at the end Redis
// is exact.
TEST(RedisProjectorCrash, RestartsAbruptlyAndEndsExact) {
  TempRedis redis;
  const auto write = MigratedDatabase("w", "pg_write");
  Workload load(write, 8, 8);
  Writers writers(load, 3);
  std::mt19937_64 rng(5);
  for (int round = 0; round < 12; ++round) {
    RedisRig rig(write, redis.server.Endpoint(), redis.prefix, 1 + rng() % 300);
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 300));
  }
  writers.Stop();
  RedisRig rig(write, redis.server.Endpoint(), redis.prefix);
  WaitCaughtUp(redis.server.Endpoint(), redis.prefix, write);
  ExpectRedisMatchesWrite(write, redis.server.Endpoint(), redis.prefix);
  EXPECT_NE(rig.projector.Stats().status, cqrs::ProjectorStatus::kError);
}

// redis-server is killed with SIGKILL under load, more than once; the supervisor restarts it
// from its AOF and the projection converges exactly (whatever the last second lost, it lost
// the data and the checkpoint together, and the projector replays from the older one).
TEST(RedisServerCrash, KilledUnderLoadRestartsAndConverges) {
  TempRedis redis;
  const auto write = MigratedDatabase("w", "pg_write");
  Workload load(write, 6, 6);
  RedisRig rig(write, redis.server.Endpoint(), redis.prefix, 50);
  Writers writers(load, 3);
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(700ms);
    const auto pid = redis.server.Pid();
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    // The supervisor notices and restarts it on the same port.
    Eventually([&] { return redis.server.Restarts() > i; }, 5s, 25ms);
    ASSERT_EQ(redis.server.Restarts(), i + 1);
  }
  std::this_thread::sleep_for(500ms);
  writers.Stop();
  WaitCaughtUp(redis.server.Endpoint(), redis.prefix, write);
  ExpectRedisMatchesWrite(write, redis.server.Endpoint(), redis.prefix);
  const auto stats = rig.projector.Stats();
  EXPECT_NE(stats.status, cqrs::ProjectorStatus::kError) << stats.last_error;
  EXPECT_GT(stats.errors, 0u);  // it did notice
}

// Redis down (or missing an order): RedisQueries answers from the read PostgreSQL.
TEST(RedisQueries, FallsBackToPostgresWhenRedisIsDownOrMisses) {
  TempRedis redis;
  const auto write = MigratedDatabase("w", "pg_write");
  const auto read = MigratedDatabase("r", "pg_read");
  Workload load(write, 3, 3);
  load.Steps(60, 3);
  auto placed = load.commands.Handle(app::PlaceOrder{
      *domain::CustomerId::Parse(
          infra::pg::Connection(write).Exec("SELECT id::text FROM customers LIMIT 1").String(0, 0)),
      {{*domain::ProductId::Parse(infra::pg::Connection(write)
                                      .Exec("SELECT id::text FROM products LIMIT 1")
                                      .String(0, 0)),
        1}}});
  ASSERT_TRUE(placed);
  const auto order = *domain::OrderId::Parse(placed->id);

  // Read PG fully projected; Redis not projected at all yet: every GetOrder misses.
  {
    OutboxRig<adapters::pg_read::PgReadProjection> read_pg(write, read, "read_pg");
    read_pg.WaitCaughtUp(write);
  }
  infra::pg::Pool pool(adapters::pg_read::ReadPoolOptions(read, 2));
  adapters::pg_read::PgReadModel pg(pool);
  RedisReadModel redis_model({.endpoint = redis.server.Endpoint(), .key_prefix = redis.prefix});
  adapters::redis::RedisQueries queries(redis_model, pool);

  auto miss = queries.GetOrder(order);
  ASSERT_TRUE(miss);
  EXPECT_EQ(miss->id, order.ToString());
  EXPECT_EQ(queries.GetStats().redis_misses, 1u);

  {
    RedisRig rig(write, redis.server.Endpoint(), redis.prefix);
    WaitCaughtUp(redis.server.Endpoint(), redis.prefix, write);
  }
  auto hit = queries.GetOrder(order);
  ASSERT_TRUE(hit);
  EXPECT_EQ(queries.GetStats().redis_hits, 1u);
  // Both stores agree.
  EXPECT_EQ(static_cast<const app::OrderSummary&>(*hit),
            static_cast<const app::OrderSummary&>(*miss));
  EXPECT_EQ(hit->lines, miss->lines);
  const auto pg_top = pg.TopProducts(10);
  ASSERT_TRUE(pg_top);
  auto redis_top = queries.TopProducts(10);
  ASSERT_TRUE(redis_top);
  ASSERT_EQ(redis_top->size(), pg_top->size());
  for (std::size_t i = 0; i < pg_top->size(); ++i) {
    EXPECT_EQ((*redis_top)[i].product_id, (*pg_top)[i].product_id);
    EXPECT_EQ((*redis_top)[i].units_sold, (*pg_top)[i].units_sold);
    EXPECT_EQ((*redis_top)[i].revenue_cents, (*pg_top)[i].revenue_cents);
  }
  EXPECT_FALSE(queries.TopProducts(0));  // validation as before

  // Redis down: answers still come (from PostgreSQL), quickly, and readiness says so.
  redis.server.Stop();
  EXPECT_FALSE(redis_model.Ping());
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto down = queries.GetOrder(order);
    ASSERT_TRUE(down);
    EXPECT_EQ(down->id, order.ToString());
    auto top = queries.TopProducts(10);
    ASSERT_TRUE(top);
    EXPECT_EQ(top->size(), pg_top->size());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_GE(queries.GetStats().redis_errors, 40u);
  EXPECT_TRUE(queries.GetCustomer(*domain::CustomerId::Parse(miss->customer_id)));

  // Back up: served by Redis again once the down interval has passed.
  redis.server.Start();
  std::this_thread::sleep_for(1100ms);
  EXPECT_TRUE(redis_model.Ping());
  const auto hits = queries.GetStats().redis_hits;
  ASSERT_TRUE(queries.GetOrder(order));
  EXPECT_EQ(queries.GetStats().redis_hits, hits + 1);
}

// One command of an AOF file (RESP array of bulk strings): where it starts and ends, and its name.
struct AofCommand {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string name;
};

std::vector<AofCommand> ParseAof(const std::string& text) {
  std::vector<AofCommand> commands;
  std::size_t at = 0;
  auto line = [&]() -> std::string {
    const auto eol = text.find("\r\n", at);
    if (eol == std::string::npos) throw std::runtime_error("truncated AOF line");
    std::string out = text.substr(at, eol - at);
    at = eol + 2;
    return out;
  };
  while (at < text.size()) {
    AofCommand command{at, 0, {}};
    const auto header = line();
    if (header.empty() || header[0] != '*') throw std::runtime_error("not a RESP array: " + header);
    const int n = std::stoi(header.substr(1));
    for (int i = 0; i < n; ++i) {
      const auto size = line();
      const auto length = std::stoul(size.substr(1));
      if (i == 0) command.name = text.substr(at, length);
      at += length + 2;
    }
    command.end = at;
    commands.push_back(command);
  }
  return commands;
}

std::filesystem::path IncrementalAof(const std::filesystem::path& data_dir) {
  std::filesystem::path found;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir / "appendonlydir")) {
    if (entry.path().string().ends_with(".incr.aof")) found = std::max(found, entry.path());
  }
  if (found.empty()) throw std::runtime_error("no incremental AOF file");
  return found;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A kill -9 during the AOF append of a script can leave the start of its MULTI block in the AOF.
// Redis 7.0 loads such a file (aof-load-truncated) but keeps the cut-off commands and appends
// after them, so the next restart replays them in front of whatever comes next. Here the AOF is
// cut inside the last command (the checkpoint) of the last batch, after every sales write of
// that batch; the batch is then replayed in smaller batches (other boundaries than the lost
// one) across two more restarts, and every total must still equal the write model.
TEST(RedisProjection, AofCutInsideABatchIsNeverReplayedTwice) {
  const TempDir root("shopcqrs-redis-aof-test-");
  const devstack::RedisServer::Options options{
      .data_dir = root.Path() / "data", .name = "aof-redis", .appendfsync = "always"};
  const auto write = MigratedDatabase("w", "pg_write");
  const std::string prefix = "aof:";  // the server is the test's own
  Workload load(write, 3, 3);
  load.Steps(300, 5);
  adapters::pg_outbox::OutboxReader reader({write});
  const auto all = reader.FetchBatch({}, 100000);
  ASSERT_GT(all.events.size(), 100u);
  const std::size_t half = all.events.size() / 2;
  const std::vector<cqrs::StoredEvent> first(all.events.begin(), all.events.begin() + half);
  const std::vector<cqrs::StoredEvent> second(all.events.begin() + half, all.events.end());
  const cqrs::Checkpoint middle{first.back().xid, first.back().position, 0};
  {
    devstack::RedisServer server(options);
    server.Start();
    RedisProjection store({.endpoint = server.Endpoint(), .key_prefix = prefix});
    store.Apply({}, first, middle);
    store.Apply(middle, second, all.next);
    server.Stop();
  }
  // Cut the AOF inside the last command of the last MULTI block.
  const auto aof = IncrementalAof(options.data_dir);
  const auto text = ReadFile(aof);
  const auto commands = ParseAof(text);
  ASSERT_GE(commands.size(), 3u);
  ASSERT_EQ(commands.back().name, "EXEC");
  const auto& last = commands[commands.size() - 2];
  ASSERT_EQ(last.name, "HSET");  // the checkpoint
  std::size_t sales_writes = 0;
  for (auto i = commands.size() - 2; i > 0 && commands[i].name != "MULTI"; --i) {
    if (commands[i].name == "HSET" || commands[i].name == "HINCRBY") ++sales_writes;
  }
  ASSERT_GT(sales_writes, 1u);
  std::filesystem::resize_file(aof, last.begin + (last.end - last.begin) / 2);

  // Restart, replay the first part of the lost batch; restart, replay the rest; restart.
  cqrs::Checkpoint checkpoint = middle;
  const std::size_t part_end[] = {second.size() / 3, second.size(), second.size()};
  std::size_t done = 0;
  for (int round = 0; round < 3; ++round) {
    devstack::RedisServer server(options);
    server.Start();
    RedisProjection store({.endpoint = server.Endpoint(), .key_prefix = prefix});
    EXPECT_EQ(store.LoadCheckpoint(), checkpoint) << "round " << round;
    while (done < part_end[round]) {
      const std::size_t to = std::min(part_end[round], done + 7);
      const std::vector<cqrs::StoredEvent> part(second.begin() + done, second.begin() + to);
      cqrs::Checkpoint next{part.back().xid, part.back().position, 0};
      if (to == second.size()) next = all.next;
      store.Apply(checkpoint, part, next);
      checkpoint = next;
      done = to;
    }
    if (round > 0) ExpectRedisMatchesWrite(write, server.Endpoint(), prefix);
    server.Stop();
  }
  EXPECT_EQ(checkpoint, all.next);
}

// An event the script cannot apply is refused before the first write: a retry of the batch
// (or a skip past it) finds nothing half-applied, so no relative effect can repeat.
TEST(RedisProjection, ScriptRefusesAWholeBatchBeforeItsFirstWrite) {
  TempRedis redis;
  infra::redis::RedisClient client(redis.server.Endpoint());
  const infra::redis::RedisScript script{std::string(adapters::redis::ApplyScriptSource())};
  const std::string order = adapters::system::NewRandomUuid().ToString();
  const std::string product = adapters::system::NewRandomUuid().ToString();
  const std::string lines = fmt::format(
      R"([{{"product_id":"{}","sku":"S","product_name":"P","quantity":3,"unit_price_cents":5,)"
      R"("line_total_cents":15}}])",
      product);
  const std::string events = fmt::format(
      R"([{{"agg":"Product","id":"{1}","v":1,"type":"ProductAdded","at":"t","first":true,)"
      R"("sku":"S","name":"P"}},)"
      R"({{"agg":"Order","id":"{0}","v":1,"type":"OrderPlaced","at":"t","first":true,)"
      R"("customer_id":"c","item_count":3,"total_cents":15,"lines":{2}}},)"
      R"({{"agg":"Order","id":"{0}","v":2,"type":"OrderPaid","at":"t","first":false,)"
      R"("payment_reference":"R","lines":{2}}},)"
      R"({{"agg":"Order","id":"{0}","v":3,"type":"OrderTeleported","at":"t","first":false}}])",
      order, product, lines);
  const std::vector<std::string> keys{redis.prefix + "checkpoint:redis",
                                      redis.prefix + "dead_letters:redis",
                                      redis.prefix + "skips:redis"};
  // Dead-letter changes too (a skipped event of the product, a parked one): refused with the rest.
  const std::string changes = fmt::format(
      R"({{"pass":[{{"agg":"Product","id":"{}","v":2}}],"park":[{{"position":9,"entry":"{{}}"}}],)"
      R"("release":"","skip":{{"position":9,"entry":"{{}}"}}}})",
      product);
  const std::vector<std::string> args{redis.prefix, "0", "0", "0", "1", "4", "2", events, changes};
  try {
    client.Eval(script, keys, args);
    ADD_FAILURE() << "an unknown event type was applied";
  } catch (const infra::redis::RedisReplyError& error) {
    EXPECT_NE(std::string_view(error.what()).find("SHOPCQRS_UNKNOWN_EVENT"), std::string::npos);
  }
  EXPECT_EQ(client.Command({"DBSIZE"}).integer, 0);  // not one key written
}

}  // namespace
}  // namespace shopcqrs
