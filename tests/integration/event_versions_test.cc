// Event versions against real servers (docs/EVENTS.md): a log that an installation from before
// ProductPriceChanged v2 wrote (its price changes at v1) is projected from zero -- a rebuild --
// into exactly the read model that the live projection of the same history in its v2 form made:
// read PostgreSQL (read_pg and search) and Redis, row for row and key for key.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_read/projection.h"
#include "adapters/pg_read/search_projection.h"
#include "adapters/redis/redis_projection.h"
#include "cqrs/projector.h"
#include "domain/ids.h"
#include "infra/pg/connection.h"
#include "infra/redis/redis_client.h"
#include "support/eventually.h"
#include "support/projector_rig.h"
#include "support/sql.h"
#include "support/store_dump.h"
#include "support/temp_servers.h"
#include "support/test_postgres.h"
#include "support/workload.h"

namespace shopcqrs {
namespace {

using namespace std::chrono_literals;
using namespace test_support;
using adapters::pg_read::PgReadProjection;
using adapters::pg_read::SearchProjection;
using adapters::redis::RedisProjection;
using infra::pg::Connection;

// The projections of one write database: read_pg and search into `read`, redis under `prefix`.
struct Projections {
  Projections(const std::string& write, const std::string& read,
              const infra::redis::RedisEndpoint& endpoint, const std::string& prefix,
              std::size_t batch)
      : read_pg(write, read, "read_pg", batch),
        search(write, read, adapters::pg_read::kSearchProjectionName, batch),
        redis({write}, RedisProjection::Options{.endpoint = endpoint, .key_prefix = prefix},
              {.name = "redis", .batch_size = batch, .max_backoff = 300ms}) {}

  void WaitCaughtUp(const std::string& write) {
    read_pg.WaitCaughtUp(write);
    search.WaitCaughtUp(write);
    redis.WaitCaughtUp(write);
    for (const cqrs::Projector* p : {&read_pg.projector, &search.projector, &redis.projector}) {
      EXPECT_EQ(p->Stats().errors, 0u) << p->name() << ": " << p->Stats().last_error;
    }
  }

  OutboxRig<PgReadProjection> read_pg;
  OutboxRig<SearchProjection> search;
  ProjectorRig<adapters::pg_outbox::OutboxReader, RedisProjection> redis;
};

// Copies the outbox of `from` into the empty outbox of `to`, in one transaction and in position
// order, writing each ProductPriceChanged as a build before v2 did: schema_version 1 and the
// payload {product_id, old_price_cents, new_price_cents}. Every other event is copied as is.
void CopyOutboxWithPriceChangesAtV1(const std::string& from, const std::string& to) {
  Connection source(from);
  const std::string rows =
      source
          .Exec(
              "SELECT coalesce(json_agg(o ORDER BY position), '[]')::text FROM (SELECT position, "
              "event_id, event_type, schema_version, aggregate_type, aggregate_id, "
              "aggregate_version, occurred_at, payload FROM outbox) o")
          .String(0, 0);
  Connection target(to);
  target.Exec(
      "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id, "
      "aggregate_version, occurred_at, payload) "
      "SELECT event_id, event_type, "
      "CASE WHEN event_type = 'ProductPriceChanged' THEN 1 ELSE schema_version END, "
      "aggregate_type, aggregate_id, aggregate_version, occurred_at, "
      "CASE WHEN event_type = 'ProductPriceChanged' THEN json_build_object("
      "'product_id', payload->>'product_id', "
      "'old_price_cents', (payload->>'previous_price_cents')::bigint, "
      "'new_price_cents', (payload->>'price_cents')::bigint) ELSE payload END "
      "FROM json_to_recordset($1::json) AS r (position bigint, event_id uuid, event_type text, "
      "schema_version integer, aggregate_type text, aggregate_id uuid, aggregate_version bigint, "
      "occurred_at timestamptz, payload json) ORDER BY position",
      infra::pg::Params().Add(rows));
}

TEST(EventVersions, RebuildFromALogWithV1PriceChangesEqualsTheLiveV2Projection) {
  TempRedis redis;
  const auto endpoint = redis.server.Endpoint();
  const Databases live;
  const std::string live_prefix = redis.prefix + "live:";
  {
    // Live: the projectors follow the commands as they commit, in small batches.
    Projections projections(live.write, live.read, endpoint, live_prefix, 20);
    Workload load(live.write, 6, 4);
    const auto products = Column(live.write, "SELECT id FROM products ORDER BY id");
    for (int round = 0; round < 3; ++round) {
      load.Steps(80, 7 + round);
      // New prices, which the orders placed in the next round pay.
      for (std::size_t i = 0; i < products.size(); ++i) {
        ASSERT_TRUE(load.commands.Handle(app::ChangeProductPrice{
            *domain::ProductId::Parse(products[i]),
            static_cast<std::int64_t>(300 + 10 * round + static_cast<int>(i))}));
      }
    }
    load.Steps(80, 99);
    projections.WaitCaughtUp(live.write);
  }
  const auto price_changes =
      Scalar(live.write, "SELECT count(*) FROM outbox WHERE event_type = 'ProductPriceChanged'");
  EXPECT_GE(price_changes, 12);
  EXPECT_EQ(Scalar(live.write,
                   "SELECT count(*) FROM outbox WHERE event_type = 'ProductPriceChanged' AND "
                   "schema_version = 2 AND payload::jsonb ? 'price_cents'"),
            price_changes);

  // The same history as an older installation stored it, rebuilt from position zero into a
  // fresh read database and fresh Redis keys, in large batches.
  const auto old_write = MigratedDatabase("old", "pg_write");
  CopyOutboxWithPriceChangesAtV1(live.write, old_write);
  EXPECT_EQ(Scalar(old_write,
                   "SELECT count(*) FROM outbox WHERE event_type = 'ProductPriceChanged' AND "
                   "schema_version = 1 AND payload::jsonb ?& array['old_price_cents', "
                   "'new_price_cents'] AND NOT payload::jsonb ? 'price_cents'"),
            price_changes);
  EXPECT_EQ(Scalar(old_write, "SELECT count(*) FROM outbox"),
            Scalar(live.write, "SELECT count(*) FROM outbox"));
  const auto rebuilt = MigratedDatabase("rebuilt", "pg_read");
  const std::string rebuilt_prefix = redis.prefix + "rebuilt:";
  {
    Projections projections(old_write, rebuilt, endpoint, rebuilt_prefix, 500);
    projections.WaitCaughtUp(old_write);
  }

  // Row for row.
  for (const char* table : {"order_views", "customer_views", "product_views", "daily_sales",
                            "search_customers", "search_orders"}) {
    const auto expected = Dump(live.read, fmt::format("SELECT * FROM {} ORDER BY 1", table));
    EXPECT_FALSE(expected.empty()) << table;
    EXPECT_EQ(Dump(rebuilt, fmt::format("SELECT * FROM {} ORDER BY 1", table)), expected) << table;
  }
  EXPECT_EQ(Dump(rebuilt, "SELECT name, events FROM projection_checkpoints ORDER BY name"),
            Dump(live.read, "SELECT name, events FROM projection_checkpoints ORDER BY name"));
  // The prices are the new ones of the v1 events (new_price_cents), as in the write database.
  EXPECT_EQ(Dump(rebuilt, "SELECT id, price_cents FROM product_views ORDER BY id"),
            Dump(live.write, "SELECT id, price_cents FROM products ORDER BY id"));
  // Key for key.
  const auto live_keys = RedisDump(endpoint, live_prefix);
  EXPECT_GT(live_keys.size(), 10u);
  EXPECT_EQ(RedisDump(endpoint, rebuilt_prefix), live_keys);
}

// An event written by a newer build (a version above the current one) is a poison event with
// the same clear error in every projection that reads its type, and nothing of it is applied:
// each parks its aggregate (a build that reads the version retries it) and goes on.
TEST(EventVersions, FutureVersionParksItsAggregateInEveryProjectionThatReadsIt) {
  TempRedis redis;
  const Databases db;
  const std::string product = "00000000-0000-4000-8000-0000000000aa";
  auto insert = [&](const char* type, int version, std::int64_t aggregate_version,
                    const std::string& payload) {
    Connection(db.write).Exec(
        "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, "
        "aggregate_id, aggregate_version, occurred_at, payload) VALUES (gen_random_uuid(), "
        "$1, $2::text::integer, 'Product', $3::text::uuid, $4::text::bigint, now(), "
        "$5::text::json)",
        infra::pg::Params()
            .Add(type)
            .Add(version)
            .Add(product)
            .Add(aggregate_version)
            .Add(payload));
  };
  insert("ProductAdded", 1, 1,
         fmt::format(R"({{"product_id":"{}","sku":"S","name":"N","price_cents":100,"stock":5}})",
                     product));
  Projections projections(db.write, db.read, redis.server.Endpoint(), redis.prefix, 20);
  projections.WaitCaughtUp(db.write);
  insert("ProductPriceChanged", 3, 2,
         fmt::format(R"({{"product_id":"{}","price_cents":200,"currency":"EUR"}})", product));

  for (cqrs::Projector* p : {&projections.read_pg.projector, &projections.redis.projector}) {
    ASSERT_TRUE(Eventually([&] { return p->DeadLetters().size() == 1; }, 10s)) << p->name();
    const auto letter = p->DeadLetters().at(0);
    EXPECT_EQ(letter.aggregate.id, product);
    EXPECT_EQ(letter.events, 1);
    // It goes on (the status of the loop turn that parked it follows right after).
    EXPECT_TRUE(
        Eventually([&] { return p->Stats().status == cqrs::ProjectorStatus::kRunning; }, 5s))
        << p->name() << ": " << cqrs::ToString(p->Stats().status);
    EXPECT_NE(letter.error.find("ProductPriceChanged v3 is newer than this build reads "
                                "(current version v2)"),
              std::string::npos)
        << p->name() << ": " << letter.error;
    EXPECT_NE(letter.error.find("cannot decode event"), std::string::npos) << letter.error;
  }
  EXPECT_EQ(Dump(db.read, "SELECT price_cents, version FROM product_views"),
            std::vector<std::string>{"100|1"});
  EXPECT_EQ(Scalar(db.read, "SELECT events FROM projection_checkpoints WHERE name = 'read_pg'"), 1);
  // The search projection does not read price changes: it goes on.
  projections.search.WaitCaughtUp(db.write);
  EXPECT_EQ(projections.search.projector.Stats().errors, 0u);
}

}  // namespace
}  // namespace shopcqrs
