// Sequenced dead letters on the read database, against real servers: the read_pg and search
// projections fed from the outbox of a busy write database, a poison event for one order, and
// the order's later events parked behind it while every other aggregate goes on; then retry
// after a fix and skip, each converging exactly, and the parked order's tokens.

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "adapters/nats/jetstream_source.h"
#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_read/progress_listener.h"
#include "adapters/pg_read/projection.h"
#include "adapters/pg_read/search_projection.h"
#include "adapters/redis/redis_projection.h"
#include "adapters/relay/relay.h"
#include "cqrs/projector.h"
#include "infra/redis/redis_client.h"
#include "support/eventually.h"
#include "support/poison.h"
#include "support/projector_rig.h"
#include "support/read_checks.h"
#include "support/sql.h"
#include "support/store_dump.h"
#include "support/temp_servers.h"
#include "support/workload.h"

namespace shopcqrs {
namespace {

using namespace std::chrono_literals;
using namespace test_support;
using adapters::pg_read::PgReadProjection;
using adapters::pg_read::SearchProjection;
using adapters::redis::RedisProjection;

// A projector rig with fast retries (the poison is retried three times before it is parked).
template <class Store>
struct Rig : ProjectorRig<adapters::pg_outbox::OutboxReader, Store> {
  Rig(const std::string& write, const std::string& read, std::string name, std::size_t batch = 200)
      : ProjectorRig<adapters::pg_outbox::OutboxReader, Store>({write}, read,
                                                               {.name = std::move(name),
                                                                .batch_size = batch,
                                                                .idle_wait = 20ms,
                                                                .initial_backoff = 5ms,
                                                                .max_backoff = 20ms}) {}
};

void Exec(const std::string& conninfo, const std::string& sql) {
  infra::pg::Connection c(conninfo);
  c.Exec(sql);
}

std::int64_t ParkedEvents(const std::string& read, const char* projection) {
  return Scalar(
      read, fmt::format("SELECT count(*) FROM dead_letters WHERE projection = '{}'", projection));
}

// A new order placed through the commands, for `customer`, with one line of `product`.
domain::OrderId PlaceOne(Workload& load, const domain::CustomerId& customer,
                         const domain::ProductId& product) {
  auto placed = load.commands.Handle(app::PlaceOrder{customer, {{product, 2}}});
  if (!placed) throw std::runtime_error("placing the order failed");
  return *domain::OrderId::Parse(placed->id);
}

struct Shop {
  Databases db;
  Workload load{db.write, 6, 4};
  domain::CustomerId customer = *domain::CustomerId::Parse(
      load.commands
          .Handle(app::RegisterCustomer{"Poison Target", "p-" + Workload::Suffix() + "@x"})
          ->id);
  domain::ProductId product = *domain::ProductId::Parse(
      load.commands.Handle(app::AddProduct{"PX-" + Workload::Suffix(), "Parked Thing", 700, 1000})
          ->id);
};

TEST(DeadLetters, AStoreRefusalParksOnlyItsOrderAndARetryAfterTheFixConverges) {
  Shop shop;
  Rig<PgReadProjection> read_pg(shop.db.write, shop.db.read, "read_pg");
  const auto order = PlaceOne(shop.load, shop.customer, shop.product);
  RefuseShipments(shop.db.read, order.ToString());
  {
    Writers writers(shop.load, 2);
    std::this_thread::sleep_for(300ms);
    ASSERT_TRUE(shop.load.commands.Handle(app::PayOrder{order, 1400, "PAY-X"}));
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(shop.load.commands.Handle(app::ShipOrder{order, "TRK-X"}));
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(shop.load.commands.Handle(app::DeliverOrder{order}));
    std::this_thread::sleep_for(500ms);
  }
  read_pg.WaitCaughtUp(shop.db.write);

  // Only the order is parked: its shipment and delivery, in the store with the checkpoint.
  const auto letters = read_pg.projector.DeadLetters();
  ASSERT_EQ(letters.size(), 1u) << read_pg.projector.Stats().last_error;
  EXPECT_EQ(letters[0].aggregate.id, order.ToString());
  EXPECT_EQ(letters[0].events, 2);
  EXPECT_NE(letters[0].error.find("shipments of this order are refused"), std::string::npos)
      << letters[0].error;
  EXPECT_EQ(ParkedEvents(shop.db.read, "read_pg"), 2);
  EXPECT_EQ(read_pg.projector.Stats().dead_letters, 2);
  // Its last applied state is what queries answer: paid.
  EXPECT_EQ(Column(shop.db.read,
                   fmt::format("SELECT status FROM order_views WHERE id = '{}'", order.ToString())),
            std::vector<std::string>{"paid"});
  // Everything else is exact.
  ExpectReadMatchesWrite(shop.db.write, shop.db.read,
                         {.except_order = order.ToString(), .events_not_applied = 2});

  // A token past the parked events: answers about the order wait (and then say parked), answers
  // about other rows do not.
  const auto bound = WriteBound(shop.db.write);
  const std::vector<std::string> about_order{"order:" + order.ToString()};
  const std::vector<std::string> about_product{"product:" + shop.product.ToString()};
  EXPECT_EQ(read_pg.tracker.WaitUnparked(bound, about_order, 50ms),
            cqrs::ProgressTracker::WaitResult::kParked);
  EXPECT_EQ(read_pg.tracker.WaitUnparked(bound, about_product, 50ms),
            cqrs::ProgressTracker::WaitResult::kReady)
      << "shipping and delivering change no product row";

  // A process that only follows the projection knows the parked events too.
  cqrs::ProgressTracker followed;
  adapters::pg_read::ProgressListener listener(shop.db.read, followed, "read_pg", 50ms);
  ASSERT_TRUE(Eventually([&] { return followed.Bound() >= bound; }, 5s));
  EXPECT_EQ(followed.WaitUnparked(bound, about_order, 50ms),
            cqrs::ProgressTracker::WaitResult::kParked);

  // A retry while the refusal is still there fails and changes nothing.
  auto failed =
      read_pg.projector.Resolve(order.ToString(), cqrs::Projector::Resolution::kRetry, "admin")
          .get();
  EXPECT_TRUE(failed.found);
  EXPECT_FALSE(failed.resolved);
  EXPECT_EQ(ParkedEvents(shop.db.read, "read_pg"), 2);

  // The fix, then the retry: exact, tokens answered.
  DropRefusal(shop.db.read);
  auto retried =
      read_pg.projector.Resolve(order.ToString(), cqrs::Projector::Resolution::kRetry, "admin")
          .get();
  ASSERT_TRUE(retried.resolved) << retried.error;
  EXPECT_EQ(retried.applied, 2);
  EXPECT_EQ(ParkedEvents(shop.db.read, "read_pg"), 0);
  EXPECT_TRUE(read_pg.projector.DeadLetters().empty());
  EXPECT_EQ(read_pg.tracker.WaitUnparked(bound, about_order, 50ms),
            cqrs::ProgressTracker::WaitResult::kReady);
  ASSERT_TRUE(Eventually(
      [&] {
        return followed.WaitUnparked(bound, about_order, 1ms) ==
               cqrs::ProgressTracker::WaitResult::kReady;
      },
      5s));
  ExpectReadMatchesWrite(shop.db.write, shop.db.read);

  // And its customer goes on live.
  PlaceOne(shop.load, shop.customer, shop.product);
  read_pg.WaitCaughtUp(shop.db.write);
  ExpectReadMatchesWrite(shop.db.write, shop.db.read);
}

TEST(DeadLetters, APoisonPayloadParksItsOrderInEveryReadProjectionAndASkipConverges) {
  Shop shop;
  Rig<PgReadProjection> read_pg(shop.db.write, shop.db.read, "read_pg");
  Rig<SearchProjection> search(shop.db.write, shop.db.read, "search");
  const auto order = PlaceOne(shop.load, shop.customer, shop.product);
  ASSERT_TRUE(shop.load.commands.Handle(app::PayOrder{order, 1400, "PAY-X"}));
  PoisonPayloads(shop.db.write, order.ToString(), "OrderShipped");
  {
    Writers writers(shop.load, 2);
    std::this_thread::sleep_for(300ms);
    ASSERT_TRUE(shop.load.commands.Handle(app::ShipOrder{order, "TRK-X"}));
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(shop.load.commands.Handle(app::DeliverOrder{order}));
    std::this_thread::sleep_for(500ms);
  }
  read_pg.WaitCaughtUp(shop.db.write);
  search.WaitCaughtUp(shop.db.write);
  for (auto* projector : {&read_pg.projector, &search.projector}) {
    const auto letters = projector->DeadLetters();
    ASSERT_EQ(letters.size(), 1u) << projector->name();
    EXPECT_EQ(letters[0].aggregate.id, order.ToString());
    EXPECT_EQ(letters[0].events, 2) << projector->name();
    EXPECT_NE(letters[0].error.find("cannot decode event"), std::string::npos) << letters[0].error;
  }
  EXPECT_EQ(ParkedEvents(shop.db.read, "read_pg"), 2);
  EXPECT_EQ(ParkedEvents(shop.db.read, "search"), 2);
  ExpectReadMatchesWrite(shop.db.write, shop.db.read,
                         {.except_order = order.ToString(), .events_not_applied = 2});

  // Retrying cannot cure a payload: it stays parked. A skip sets the shipment aside (recorded,
  // with who and when) and applies the delivery.
  EXPECT_FALSE(
      read_pg.projector.Resolve(order.ToString(), cqrs::Projector::Resolution::kRetry, "admin")
          .get()
          .resolved);
  for (auto* projector : {&read_pg.projector, &search.projector}) {
    auto skipped =
        projector->Resolve(order.ToString(), cqrs::Projector::Resolution::kSkip, "ops").get();
    ASSERT_TRUE(skipped.resolved) << projector->name() << ": " << skipped.error;
    EXPECT_EQ(skipped.skipped, 1);
  }
  EXPECT_EQ(Dump(shop.db.read,
                 "SELECT projection, aggregate_id, aggregate_version, skipped_by FROM "
                 "projection_skips ORDER BY projection"),
            (std::vector<std::string>{"read_pg|" + order.ToString() + "|3|ops",
                                      "search|" + order.ToString() + "|3|ops"}));
  EXPECT_EQ(Dump(shop.db.read,
                 fmt::format("SELECT status, version, tracking_number IS NULL FROM order_views "
                             "WHERE id = '{}'",
                             order.ToString())),
            std::vector<std::string>{"delivered|4|t"});
  EXPECT_EQ(ParkedEvents(shop.db.read, "read_pg") + ParkedEvents(shop.db.read, "search"), 0);
  // Everything but the skipped shipment is exact.
  ExpectReadMatchesWrite(shop.db.write, shop.db.read,
                         {.except_order = order.ToString(), .events_not_applied = 1});

  // A read database built from zero with the skip list equals the live one: nothing parked. In
  // one batch: the skipped event meets its order's creation in the same transaction.
  const auto rebuilt = MigratedDatabase("r", "pg_read");
  for (const auto& row : Dump(shop.db.read,
                              "SELECT format('(%L, %s, %s, %L, %L, %L, %s, %L, %L)', projection, "
                              "position, xid, event_id, aggregate_type, aggregate_id, "
                              "aggregate_version, skipped_by, skipped_at) FROM projection_skips")) {
    Exec(rebuilt, "INSERT INTO projection_skips VALUES " + row);
  }
  {
    Rig<PgReadProjection> read_again(shop.db.write, rebuilt, "read_pg", 100'000);
    Rig<SearchProjection> search_again(shop.db.write, rebuilt, "search", 100'000);
    read_again.WaitCaughtUp(shop.db.write);
    search_again.WaitCaughtUp(shop.db.write);
    EXPECT_TRUE(read_again.projector.DeadLetters().empty());
    EXPECT_TRUE(search_again.projector.DeadLetters().empty());
  }
  for (const char* table : {"order_views", "customer_views", "product_views", "daily_sales",
                            "search_orders", "search_customers"}) {
    const auto sql = fmt::format("SELECT * FROM {} ORDER BY 1", table);
    EXPECT_EQ(Dump(rebuilt, sql), Dump(shop.db.read, sql)) << table;
  }
  EXPECT_EQ(ParkedEvents(rebuilt, "read_pg") + ParkedEvents(rebuilt, "search"), 0);
}

// The Redis projection of `write` under `prefix`, with fast retries.
struct RedisRig : ProjectorRig<adapters::pg_outbox::OutboxReader, RedisProjection> {
  RedisRig(const std::string& write, const infra::redis::RedisEndpoint& endpoint,
           const std::string& prefix, std::size_t batch = 200)
      : ProjectorRig({write}, RedisProjection::Options{.endpoint = endpoint, .key_prefix = prefix},
                     {.name = "redis",
                      .batch_size = batch,
                      .idle_wait = 20ms,
                      .initial_backoff = 5ms,
                      .max_backoff = 20ms}) {}
};

// The projection's keys but its dead letters (which a fresh build has none of).
std::map<std::string, std::string> Projected(const infra::redis::RedisEndpoint& endpoint,
                                             const std::string& prefix) {
  auto dump = RedisDump(endpoint, prefix);
  std::erase_if(dump, [](const auto& item) { return item.first.starts_with("dead_letters:"); });
  return dump;
}

TEST(DeadLetters, RedisParksARefusedOrderAndARetryAfterTheFixEqualsAFreshBuild) {
  Shop shop;
  TempRedis redis;
  const auto endpoint = redis.server.Endpoint();
  const std::string live = redis.prefix + "live:";
  infra::redis::RedisClient client(endpoint);
  RedisRig rig(shop.db.write, endpoint, live);
  const auto order = PlaceOne(shop.load, shop.customer, shop.product);
  rig.WaitCaughtUp(shop.db.write);
  // The order's document becomes a key of the wrong type (an operator's mistake).
  const auto key = live + "order:" + order.ToString();
  const auto document = client.Command({"GET", key}).str;
  ASSERT_FALSE(document.empty());
  client.Command({"DEL", key});
  client.Command({"HSET", key, "oops", "1"});
  {
    Writers writers(shop.load, 2);
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(shop.load.commands.Handle(app::PayOrder{order, 1400, "PAY-X"}));
    std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(shop.load.commands.Handle(app::ShipOrder{order, "TRK-X"}));
    std::this_thread::sleep_for(300ms);
  }
  rig.WaitCaughtUp(shop.db.write);
  const auto letters = rig.projector.DeadLetters();
  ASSERT_EQ(letters.size(), 1u) << rig.projector.Stats().last_error;
  EXPECT_EQ(letters[0].aggregate.id, order.ToString());
  EXPECT_EQ(letters[0].events, 2);
  EXPECT_NE(letters[0].error.find("WRONGTYPE"), std::string::npos) << letters[0].error;
  EXPECT_EQ(client.Command({"HLEN", live + "dead_letters:redis"}).integer, 2);
  // A token past it: the order's answers are parked.
  const auto bound = WriteBound(shop.db.write);
  EXPECT_EQ(
      rig.tracker.WaitUnparked(bound, std::vector<std::string>{"order:" + order.ToString()}, 20ms),
      cqrs::ProgressTracker::WaitResult::kParked);

  // Still refused: stays parked. Fixed: the retry converges to what a fresh build holds.
  EXPECT_FALSE(rig.projector.Resolve(order.ToString(), cqrs::Projector::Resolution::kRetry, "admin")
                   .get()
                   .resolved);
  EXPECT_EQ(client.Command({"HLEN", live + "dead_letters:redis"}).integer, 2);
  client.Command({"DEL", key});
  client.Command({"SET", key, document});
  auto retried =
      rig.projector.Resolve(order.ToString(), cqrs::Projector::Resolution::kRetry, "admin").get();
  ASSERT_TRUE(retried.resolved) << retried.error;
  EXPECT_EQ(retried.applied, 2);
  EXPECT_EQ(client.Command({"EXISTS", live + "dead_letters:redis"}).integer, 0);
  {
    RedisRig fresh(shop.db.write, endpoint, redis.prefix + "fresh:");
    fresh.WaitCaughtUp(shop.db.write);
  }
  const auto projected = Projected(endpoint, live);
  EXPECT_GT(projected.size(), 10u);
  EXPECT_EQ(projected, Projected(endpoint, redis.prefix + "fresh:"));
}

TEST(DeadLetters, RedisSkipOfAPoisonPayloadIsHonouredByABuildFromZero) {
  Shop shop;
  TempRedis redis;
  const auto endpoint = redis.server.Endpoint();
  const std::string live = redis.prefix + "live:";
  infra::redis::RedisClient client(endpoint);
  RedisRig rig(shop.db.write, endpoint, live);
  const auto order = PlaceOne(shop.load, shop.customer, shop.product);
  ASSERT_TRUE(shop.load.commands.Handle(app::PayOrder{order, 1400, "PAY-X"}));
  PoisonPayloads(shop.db.write, order.ToString(), "OrderShipped");
  {
    Writers writers(shop.load, 2);
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(shop.load.commands.Handle(app::ShipOrder{order, "TRK-X"}));
    ASSERT_TRUE(shop.load.commands.Handle(app::DeliverOrder{order}));
    std::this_thread::sleep_for(300ms);
  }
  rig.WaitCaughtUp(shop.db.write);
  ASSERT_EQ(rig.projector.DeadLetters().size(), 1u);
  auto skipped =
      rig.projector.Resolve(order.ToString(), cqrs::Projector::Resolution::kSkip, "ops").get();
  ASSERT_TRUE(skipped.resolved) << skipped.error;
  EXPECT_EQ(skipped.applied, 1);
  const auto view =
      boost::json::parse(client.Command({"GET", live + "order:" + order.ToString()}).str)
          .as_object();
  EXPECT_EQ(view.at("status").as_string(), "delivered");
  EXPECT_EQ(view.at("version").as_int64(), 4);
  EXPECT_TRUE(view.at("tracking_number").is_null());
  EXPECT_EQ(client.Command({"HLEN", live + "skips:redis"}).integer, 1);

  // A build from zero that carries the skip list equals the live store, and parks nothing.
  const std::string fresh = redis.prefix + "fresh:";
  const auto skips = client.Command({"HGETALL", live + "skips:redis"});
  for (std::size_t i = 0; i + 1 < skips.elements.size(); i += 2) {
    client.Command(
        {"HSET", fresh + "skips:redis", skips.elements[i].str, skips.elements[i + 1].str});
  }
  {
    RedisRig rebuilt(shop.db.write, endpoint, fresh, 100'000);  // the skip in its order's batch
    rebuilt.WaitCaughtUp(shop.db.write);
    EXPECT_TRUE(rebuilt.projector.DeadLetters().empty());
  }
  EXPECT_EQ(Projected(endpoint, live), Projected(endpoint, fresh));
}

// The path `up` runs: the relay to JetStream and a durable consumer. The refused event sits in
// a busy stream, so its batch is applied again event by event (each to a checkpoint inside the
// batch) and retried from there: the consumer re-seats at those checkpoints and parks only it.
TEST(DeadLetters, OverTheBrokerARefusedEventInABusyStreamParksOnlyItsOrder) {
  Shop shop;
  TempNats nats;
  adapters::relay::Relay::Options relay_options;
  relay_options.write_db = shop.db.write;
  relay_options.nats = nats.Options("relay");
  relay_options.max_backoff = 300ms;
  relay_options.standby_poll = 50ms;
  adapters::relay::Relay relay(relay_options);
  relay.Start();
  ProjectorRig<adapters::nats::JetStreamSource, PgReadProjection> rig(
      {.nats = nats.Options("shopcqrs_read_pg"), .consumer = "shopcqrs_read_pg"}, shop.db.read,
      {.name = "read_pg",
       .batch_size = 200,
       .idle_wait = 20ms,
       .initial_backoff = 5ms,
       .max_backoff = 20ms});
  const auto order = PlaceOne(shop.load, shop.customer, shop.product);
  RefuseShipments(shop.db.read, order.ToString());
  {
    Writers writers(shop.load, 3);
    std::this_thread::sleep_for(300ms);
    ASSERT_TRUE(shop.load.commands.Handle(app::PayOrder{order, 1400, "PAY-X"}));
    ASSERT_TRUE(shop.load.commands.Handle(app::ShipOrder{order, "TRK-X"}));
    std::this_thread::sleep_for(300ms);
    ASSERT_TRUE(shop.load.commands.Handle(app::DeliverOrder{order}));
    std::this_thread::sleep_for(700ms);
  }
  rig.WaitCaughtUp(shop.db.write, 60s);
  const auto letters = rig.projector.DeadLetters();
  ASSERT_EQ(letters.size(), 1u) << rig.projector.Stats().last_error;
  EXPECT_EQ(letters[0].aggregate.id, order.ToString());
  EXPECT_EQ(letters[0].events, 2);
  EXPECT_NE(rig.projector.Stats().status, cqrs::ProjectorStatus::kError)
      << rig.projector.Stats().last_error;
  ExpectReadMatchesWrite(shop.db.write, shop.db.read,
                         {.except_order = order.ToString(), .events_not_applied = 2});
  DropRefusal(shop.db.read);
  auto retried =
      rig.projector.Resolve(order.ToString(), cqrs::Projector::Resolution::kRetry, "admin").get();
  ASSERT_TRUE(retried.resolved) << retried.error;
  ExpectReadMatchesWrite(shop.db.write, shop.db.read);
  relay.Stop();
}

}  // namespace
}  // namespace shopcqrs
