// Single-database mode (query_source = "write"): pg_single::PgSingleReadModel answers every
// query with joins on the write database. The same commands go through the real command side
// (CommandService + PgWriteStore); the read_pg and search projectors fill the read database;
// then both ReadModels must give equal answers for every query.

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_read/projection.h"
#include "adapters/pg_read/read_model.h"
#include "adapters/pg_read/search_projection.h"
#include "adapters/pg_single/read_model.h"
#include "adapters/pg_write/write_store.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "cqrs/consistency_token.h"
#include "cqrs/projector.h"
#include "infra/pg/connection.h"
#include "infra/pg/migrator.h"
#include "infra/pg/pool.h"
#include "support/command_side.h"
#include "support/projector_rig.h"
#include "support/search.h"
#include "support/sql.h"
#include "support/test_postgres.h"
#include "support/workload.h"

namespace shopcqrs {
namespace {

using namespace std::chrono_literals;
using namespace test_support;

std::string Describe(const app::OrderSummary& o) {
  auto opt = [](const auto& v) {
    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::optional<std::string>>) {
      return v ? *v : std::string("∅");
    } else {
      return v ? std::to_string(v->time_since_epoch().count()) : std::string("∅");
    }
  };
  return fmt::format(
      "{} c={} {}/{} {} n={} t={} placed={} paid={} shipped={} delivered={} "
      "cancelled={} ref={} track={} reason={} v={}",
      o.id, o.customer_id, opt(o.customer_name), opt(o.customer_email), o.status, o.item_count,
      o.total_cents, o.placed_at.time_since_epoch().count(), opt(o.paid_at), opt(o.shipped_at),
      opt(o.delivered_at), opt(o.cancelled_at), opt(o.payment_reference), opt(o.tracking_number),
      opt(o.cancel_reason), o.version);
}

std::vector<std::string> Describe(const std::vector<app::OrderSummary>& items) {
  std::vector<std::string> out;
  for (const auto& o : items) out.push_back(Describe(o));
  return out;
}

void ExpectSamePages(const domain::Result<app::OrderPage>& a,
                     const domain::Result<app::OrderPage>& b, const std::string& what) {
  ASSERT_EQ(a.has_value(), b.has_value()) << what;
  if (!a) return;
  EXPECT_EQ(Describe(a->items), Describe(b->items)) << what;
  EXPECT_EQ(a->next_cursor, b->next_cursor) << what;
}

// Walks every page of a list through both models (each follows its own cursors, which must
// also be equal); answers the number of items seen.
template <class Query>
std::size_t ExpectSameList(const Query& query, int limit, const std::string& what) {
  std::optional<std::string> cursor;
  std::size_t seen = 0;
  for (int page = 0; page < 1000; ++page) {
    const auto read = query(true, limit, cursor);
    const auto single = query(false, limit, cursor);
    ExpectSamePages(read, single, fmt::format("{} page {}", what, page));
    if (!read || !single) break;
    seen += read->items.size();
    if (!read->next_cursor) break;
    cursor = read->next_cursor;
  }
  return seen;
}

class SingleDbTest : public ::testing::Test {
 protected:
  SingleDbTest()
      : command_side_(db_.write, 4),
        commands_(command_side_.commands),
        read_pool_(adapters::pg_read::ReadPoolOptions(db_.read, 2)),
        single_pool_(adapters::pg_single::SinglePoolOptions(db_.write, 2)),
        read_model_(read_pool_),
        single_model_(single_pool_) {}

  app::ReadModel& Model(bool read) {
    return read ? static_cast<app::ReadModel&>(read_model_) : single_model_;
  }

  // Customers, products, and a random mix of every command (with cancellations of paid
  // orders, i.e. refunds, and customer renames that reach existing order views).
  void RunWorkload(int customers, int products, int steps, std::uint64_t seed) {
    const auto suffix = fmt::format("{}-{}", ::getpid(), seed);
    for (int i = 0; i < customers; ++i) {
      auto r = commands_.Handle(app::RegisterCustomer{
          fmt::format("Customer {} {}", i, i % 3 == 0 ? "Lovelace" : "Hopper"),
          fmt::format("c{}-{}@example.com", i, suffix)});
      ASSERT_TRUE(r.has_value());
      customers_.push_back(*domain::CustomerId::Parse(r->id));
    }
    for (int i = 0; i < products; ++i) {
      auto r = commands_.Handle(app::AddProduct{
          fmt::format("SKU-{}-{}", i, suffix),
          fmt::format("Product {} {}", i, i % 2 ? "Widget" : "Gadget"), 100 + 37 * i, 1'000'000});
      ASSERT_TRUE(r.has_value());
      products_.push_back(*domain::ProductId::Parse(r->id));
    }
    std::mt19937_64 rng(seed);
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    std::vector<std::pair<domain::OrderId, std::int64_t>> orders;
    for (int step = 0; step < steps; ++step) {
      const auto action = pick(100);
      if (action < 35 || orders.empty()) {
        app::PlaceOrder cmd{customers_[pick(customers_.size())], {}};
        std::set<std::size_t> used;
        const auto lines = 1 + pick(3);
        while (used.size() < lines) used.insert(pick(products_.size()));
        for (auto p : used) cmd.lines.push_back({products_[p], 1 + static_cast<int>(pick(4))});
        auto r = commands_.Handle(cmd);
        ASSERT_TRUE(r.has_value());
        orders.emplace_back(*domain::OrderId::Parse(r->id), *r->total_cents);
        if (pick(4) == 0) std::this_thread::sleep_for(2ms);  // distinct placed_at, and ties
        continue;
      }
      const auto& [order, total] = orders[pick(orders.size())];
      if (action < 60) {
        (void)commands_.Handle(app::PayOrder{order, total, fmt::format("PAY-{}", rng() % 1000)});
      } else if (action < 72) {
        (void)commands_.Handle(app::ShipOrder{order, fmt::format("TRACK{}", rng() % 1000)});
      } else if (action < 80) {
        (void)commands_.Handle(app::DeliverOrder{order});
      } else if (action < 88) {
        (void)commands_.Handle(app::CancelOrder{order, pick(2) ? "changed my mind" : ""});
      } else {
        ChangeCustomerOrProduct(commands_, customers_, products_, action, rng);
      }
    }
  }

  // Runs the read_pg and search projectors until both have applied everything committed so
  // far.
  void Project() {
    CatchUp<adapters::pg_read::PgReadProjection>(db_, "read_pg");
    CatchUp<adapters::pg_read::SearchProjection>(db_, "search");
  }

  void ExpectEqualAnswers() {
    // Order views, with lines; and an order that does not exist.
    const auto order_ids = Column(db_.write, "SELECT id::text FROM orders ORDER BY id");
    ASSERT_FALSE(order_ids.empty());
    for (const auto& text : order_ids) {
      const auto id = *domain::OrderId::Parse(text);
      const auto a = read_model_.GetOrder(id);
      const auto b = single_model_.GetOrder(id);
      ASSERT_TRUE(a.has_value()) << text;
      ASSERT_TRUE(b.has_value()) << text;
      EXPECT_EQ(Describe(*a), Describe(*b));
      EXPECT_EQ(a->lines, b->lines) << text;
    }
    const auto missing = *domain::OrderId::Parse("00000000-0000-4000-8000-000000000001");
    EXPECT_FALSE(single_model_.GetOrder(missing).has_value());

    // Order lists: all, by status, by customer (also with a status), several page sizes.
    std::size_t total = 0;
    for (int limit : {1, 7, 100}) {
      total = ExpectSameList(
          [&](bool read, int l, const std::optional<std::string>& cursor) {
            return Model(read).ListOrders({std::nullopt, std::nullopt, l, cursor});
          },
          limit, fmt::format("all orders, limit {}", limit));
      EXPECT_EQ(total, order_ids.size());
    }
    for (const char* status : {"placed", "paid", "shipped", "delivered", "cancelled"}) {
      ExpectSameList(
          [&](bool read, int l, const std::optional<std::string>& cursor) {
            return Model(read).ListOrders({std::string(status), std::nullopt, l, cursor});
          },
          5, fmt::format("status {}", status));
    }
    for (const auto& customer : customers_) {
      ExpectSameList(
          [&](bool read, int l, const std::optional<std::string>& cursor) {
            return Model(read).ListCustomerOrders(customer, l, cursor);
          },
          3, "customer " + customer.ToString());
      ExpectSameList(
          [&](bool read, int l, const std::optional<std::string>& cursor) {
            return Model(read).ListOrders({std::string("paid"), customer, l, cursor});
          },
          2, "paid orders of customer " + customer.ToString());
    }
    // Validation: the same errors.
    for (bool read : {true, false}) {
      EXPECT_FALSE(Model(read).ListOrders({std::nullopt, std::nullopt, 0, std::nullopt}));
      EXPECT_FALSE(Model(read).ListOrders({std::nullopt, std::nullopt, 101, std::nullopt}));
      EXPECT_FALSE(Model(read).ListOrders({std::string("lost"), std::nullopt, 5, std::nullopt}));
      EXPECT_FALSE(
          Model(read).ListOrders({std::nullopt, std::nullopt, 5, std::string("c1.zz.00")}));
      EXPECT_FALSE(Model(read).TopProducts(0));
      EXPECT_FALSE(test_support::Search(Model(read), "   ", 10));
    }

    // Customers and products (statistics by aggregation), and missing ones.
    for (const auto& id : customers_) {
      EXPECT_EQ(read_model_.GetCustomer(id), single_model_.GetCustomer(id)) << id.ToString();
      EXPECT_TRUE(single_model_.GetCustomer(id).has_value());
    }
    for (const auto& id : products_) {
      EXPECT_EQ(read_model_.GetProduct(id), single_model_.GetProduct(id)) << id.ToString();
      EXPECT_TRUE(single_model_.GetProduct(id).has_value());
    }
    EXPECT_FALSE(single_model_.GetCustomer(*domain::CustomerId::Parse(missing.ToString())));
    EXPECT_FALSE(single_model_.GetProduct(*domain::ProductId::Parse(missing.ToString())));
    for (int limit : {1, 5, 100}) {
      auto a = read_model_.TopProducts(limit);
      auto b = single_model_.TopProducts(limit);
      ASSERT_TRUE(a && b);
      ASSERT_EQ(a->size(), b->size());
      for (std::size_t i = 0; i < a->size(); ++i) {
        const auto& x = (*a)[i];
        const auto& y = (*b)[i];
        EXPECT_EQ(std::tie(x.product_id, x.sku, x.name, x.units_sold, x.revenue_cents),
                  std::tie(y.product_id, y.sku, y.name, y.units_sold, y.revenue_cents))
            << "top " << limit << " #" << i;
      }
    }

    // Search: names, e-mails, SKUs, product names, tracking numbers, several words, no match.
    for (const char* q :
         {"lovelace", "HOPPER", "renamed", "example.com", "widget", "Gadget 1", "sku-1", "track",
          "track1", "customer 1 widget", "nothing-like-this", "c1-", "%", "_",
          // Ranked: typos, prefixes, several words.
          "lovelase", "widgat", "gadgett", "hopper widgit", "lov", "renamd widget"}) {
      for (int limit : {3, 100}) {
        auto a = test_support::Search(read_model_, q, limit);
        auto b = test_support::Search(single_model_, q, limit);
        ASSERT_EQ(a.has_value(), b.has_value()) << q;
        if (a) {
          EXPECT_EQ(Describe(*a), Describe(*b)) << q << " limit " << limit;
        }
      }
    }
    // Filters and cursors: page by page through both, the same pages and cursors.
    for (const char* status : {"", "paid", "shipped"}) {
      app::OrderSearchQuery query{.q = "widget", .limit = 2};
      if (*status) query.status = status;
      const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
      query.from = today - std::chrono::days(1);
      for (int page = 0; page < 50; ++page) {
        auto a = read_model_.SearchOrders(query);
        auto b = single_model_.SearchOrders(query);
        ASSERT_TRUE(a && b) << status;
        EXPECT_EQ(Describe(a->items), Describe(b->items)) << status << " page " << page;
        EXPECT_EQ(a->next_cursor, b->next_cursor) << status << " page " << page;
        if (!a->next_cursor) break;
        query.cursor = a->next_cursor;
      }
    }

    // Daily sales around today, zero-filled; and a range error.
    const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
    auto a = read_model_.DailySales(today - std::chrono::days(3), today + std::chrono::days(2));
    auto b = single_model_.DailySales(today - std::chrono::days(3), today + std::chrono::days(2));
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, *b);
    EXPECT_EQ(a->size(), 6u);
    EXPECT_FALSE(single_model_.DailySales(today, today - std::chrono::days(1)));
    EXPECT_FALSE(single_model_.DailySales(today, today + std::chrono::days(400)));
  }

  Databases db_;
  CommandSide command_side_;
  app::CommandService& commands_;
  infra::pg::Pool read_pool_;
  infra::pg::Pool single_pool_;
  adapters::pg_read::PgReadModel read_model_;
  adapters::pg_single::PgSingleReadModel single_model_;
  std::vector<domain::CustomerId> customers_;
  std::vector<domain::ProductId> products_;
};

TEST_F(SingleDbTest, AnswersEveryQueryLikeTheReadDatabase) {
  RunWorkload(8, 12, 400, 42);
  Project();
  ExpectEqualAnswers();
}

TEST_F(SingleDbTest, AnswersAnEmptyDatabaseLikeTheReadDatabase) {
  for (bool read : {true, false}) {
    auto page = Model(read).ListOrders({std::nullopt, std::nullopt, 10, std::nullopt});
    ASSERT_TRUE(page);
    EXPECT_TRUE(page->items.empty());
    EXPECT_FALSE(page->next_cursor);
    auto top = Model(read).TopProducts(10);
    ASSERT_TRUE(top);
    EXPECT_TRUE(top->empty());
  }
}

TEST_F(SingleDbTest, SessionsAreReadOnly) {
  auto lease = single_pool_.Acquire();
  EXPECT_ANY_THROW(lease->Exec("CREATE TABLE single_must_not_write (x int)"));
}

}  // namespace
}  // namespace shopcqrs
