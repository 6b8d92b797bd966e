// The "search" projection against real servers: the real command side on the write database,
// the outbox reader, the projector runtime, SearchProjection next to PgReadProjection on the
// read database, and PgReadModel::SearchOrders on top.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_read/progress_listener.h"
#include "adapters/pg_read/projection.h"
#include "adapters/pg_read/queries.h"
#include "adapters/pg_read/read_model.h"
#include "adapters/pg_read/search_projection.h"
#include "adapters/pg_write/write_store.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "cqrs/consistency_token.h"
#include "cqrs/projector.h"
#include "infra/pg/connection.h"
#include "infra/pg/migrator.h"
#include "infra/pg/pool.h"
#include "support/command_side.h"
#include "support/events.h"
#include "support/projector_rig.h"
#include "support/search.h"
#include "support/sql.h"
#include "support/test_postgres.h"

namespace shopcqrs {
namespace {

using namespace std::chrono_literals;
using namespace test_support;
using adapters::pg_read::PgReadProjection;
using adapters::pg_read::SearchProjection;
using infra::pg::Connection;
using SearchRig = OutboxRig<SearchProjection>;
using ReadRig = OutboxRig<PgReadProjection>;

// The real command side, with shorthands for the commands the tests make.
struct Shop : CommandSide {
  explicit Shop(const std::string& write) : CommandSide(write, 4) {}

  domain::CustomerId Customer(const std::string& name, const std::string& email) {
    auto r = commands.Handle(app::RegisterCustomer{name, email});
    EXPECT_TRUE(r.has_value());
    last_token = r->consistency_token;
    return *domain::CustomerId::Parse(r->id);
  }
  domain::ProductId Product(const std::string& sku, const std::string& name) {
    auto r = commands.Handle(app::AddProduct{sku, name, 250, 1'000'000});
    EXPECT_TRUE(r.has_value());
    last_token = r->consistency_token;
    return *domain::ProductId::Parse(r->id);
  }
  domain::OrderId Order(const domain::CustomerId& customer,
                        const std::vector<domain::ProductId>& products) {
    app::PlaceOrder cmd{customer, {}};
    for (const auto& p : products) cmd.lines.push_back({p, 1});
    std::this_thread::sleep_for(2ms);  // distinct placed_at: a definite newest-first order
    auto r = commands.Handle(cmd);
    EXPECT_TRUE(r.has_value());
    last_token = r->consistency_token;
    return *domain::OrderId::Parse(r->id);
  }
  void Ship(const domain::OrderId& order, const std::string& tracking) {
    auto paid = commands.Handle(app::PayOrder{order, Total(order), "PAY"});
    ASSERT_TRUE(paid.has_value());
    auto r = commands.Handle(app::ShipOrder{order, tracking});
    ASSERT_TRUE(r.has_value());
    last_token = r->consistency_token;
  }
  void Rename(const domain::CustomerId& customer, const std::string& name,
              std::optional<std::string> email = std::nullopt) {
    auto r = commands.Handle(app::ChangeCustomerDetails{customer, name, std::move(email)});
    ASSERT_TRUE(r.has_value());
    last_token = r->consistency_token;
  }
  std::int64_t Total(const domain::OrderId& order) {
    auto lease = pool.Acquire();
    return lease
        ->Exec("SELECT total_cents FROM orders WHERE id = $1::uuid",
               infra::pg::Params().Add(order.ToString()))
        .Int64(0, 0);
  }
  std::uint64_t LastBound() const { return *tokens.Decode(last_token); }

  std::string last_token;
};

// The write and read databases of a test, and the command side on the write one.
class SearchProjectionTest : public ::testing::Test {
 protected:
  Databases db;
  Shop shop{db.write};
};

std::string Suffix() {
  static std::atomic<int> n = 0;
  return fmt::format("{}x{}", ::getpid(), n++);
}

// Ids of the orders SearchOrders finds for `q`, in its order.
std::vector<std::string> Found(adapters::pg_read::PgReadModel& model, std::string_view q,
                               int limit = 100) {
  auto r = test_support::Search(model, q, limit);
  EXPECT_TRUE(r.has_value()) << q;
  std::vector<std::string> ids;
  if (r) {
    for (const auto& o : *r) ids.push_back(o.id);
  }
  return ids;
}

std::vector<std::string> Ids(std::initializer_list<domain::OrderId> orders) {
  std::vector<std::string> out;
  for (const auto& o : orders) out.push_back(o.ToString());
  return out;
}

// The search documents the write database implies, and those the search projection holds.
const char* kWriteDocuments =
    "SELECT o.id, c.name || ' ' || c.email || ' ' || "
    "coalesce((SELECT string_agg(l.sku || ' ' || l.product_name, ' ' ORDER BY l.line_no) "
    "FROM order_lines l WHERE l.order_id = o.id), '') || ' ' || coalesce(s.tracking_number, '') "
    "FROM orders o JOIN customers c ON c.id = o.customer_id "
    "LEFT JOIN shipments s ON s.order_id = o.id ORDER BY o.id";
const char* kSearchDocuments = "SELECT id, document FROM search_orders ORDER BY id";

// The whole search state, with each row's xmin: a row written again (even unchanged) shows.
const char* kSearchState =
    "SELECT 'o', id::text, customer_id::text, line_text, tracking_number, version::text, "
    "document, xmin::text FROM search_orders UNION ALL "
    "SELECT 'c', id::text, NULL, name, email, version::text, NULL, xmin::text "
    "FROM search_customers ORDER BY 1, 2";
const char* kSearchCheckpoint =
    "SELECT xid, position, bound, events FROM projection_checkpoints WHERE name = 'search'";

// A random mix of commands (renames included), for the comparisons with the write database.
void RunWorkload(Shop& shop, int customers, int products, int steps, std::uint64_t seed) {
  std::vector<domain::CustomerId> cs;
  std::vector<domain::ProductId> ps;
  const auto suffix = Suffix();
  for (int i = 0; i < customers; ++i) {
    cs.push_back(
        shop.Customer(fmt::format("Customer {}", i), fmt::format("c{}-{}@example.com", i, suffix)));
  }
  for (int i = 0; i < products; ++i) {
    ps.push_back(shop.Product(fmt::format("SKU-{}-{}", i, suffix), fmt::format("Product {}", i)));
  }
  std::mt19937_64 rng(seed);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  std::vector<domain::OrderId> orders;
  for (int step = 0; step < steps; ++step) {
    const auto action = pick(100);
    if (action < 40 || orders.empty()) {
      std::set<std::size_t> used;
      const auto lines = 1 + pick(std::min<std::size_t>(3, ps.size()));
      while (used.size() < lines) used.insert(pick(ps.size()));
      std::vector<domain::ProductId> chosen;
      for (auto p : used) chosen.push_back(ps[p]);
      orders.push_back(shop.Order(cs[pick(cs.size())], chosen));
      continue;
    }
    const auto& order = orders[pick(orders.size())];
    if (action < 60) {
      (void)shop.commands.Handle(app::PayOrder{order, shop.Total(order), "PAY"});
    } else if (action < 75) {
      (void)shop.commands.Handle(app::ShipOrder{order, fmt::format("TRACK{}", rng() % 1000)});
    } else if (action < 82) {
      (void)shop.commands.Handle(app::DeliverOrder{order});
    } else if (action < 88) {
      (void)shop.commands.Handle(app::CancelOrder{order, ""});
    } else {
      (void)shop.commands.Handle(app::ChangeCustomerDetails{
          cs[pick(cs.size())], fmt::format("Renamed {}", rng() % 100),
          pick(2) ? std::optional<std::string>(fmt::format("r{}-{}@example.org", rng(), suffix))
                  : std::nullopt});
    }
  }
}

TEST_F(SearchProjectionTest, FindsEveryFieldAndFollowsCustomerUpdates) {
  const auto s = Suffix();
  const auto ada = shop.Customer("Ada Lovelace", "ada-" + s + "@example.com");
  const auto bob = shop.Customer("Bob Hopper", "bob-" + s + "@example.com");
  const auto widget = shop.Product("WID-" + s, "Blue Widget");
  const auto gadget = shop.Product("GAD-" + s, "Red Gadget");
  const auto o1 = shop.Order(ada, {widget, gadget});
  const auto o2 = shop.Order(ada, {gadget});
  const auto o3 = shop.Order(bob, {widget});
  shop.Ship(o1, "TRK-" + s);

  ReadRig read(db.write, db.read, "read_pg");
  SearchRig search(db.write, db.read, "search");
  read.WaitCaughtUp(db.write);
  search.WaitCaughtUp(db.write);
  infra::pg::Pool pool(adapters::pg_read::ReadPoolOptions(db.read, 2));
  adapters::pg_read::PgReadModel model(pool);

  // Newest placed_at first.
  EXPECT_EQ(Found(model, "lovelace"), Ids({o2, o1})) << "customer name";
  EXPECT_EQ(Found(model, "ADA-" + s + "@EXAMPLE"), Ids({o2, o1})) << "e-mail";
  EXPECT_EQ(Found(model, "blue widget"), Ids({o3, o1})) << "product name";
  EXPECT_EQ(Found(model, "gad-" + s), Ids({o2, o1})) << "SKU";
  EXPECT_EQ(Found(model, "trk-" + s), Ids({o1})) << "tracking number";
  EXPECT_EQ(Found(model, "hopper widget"), Ids({o3})) << "two words, two fields";
  EXPECT_EQ(Found(model, "lovelace qqzzqq"), Ids({})) << "one word matching nothing";
  EXPECT_EQ(Found(model, "%"), Ids({})) << "wildcards are literal";
  EXPECT_EQ(Found(model, "lovelace", 1), Ids({o2})) << "limit";
  EXPECT_FALSE(test_support::Search(model, "  ", 10));
  // The summaries are the order views.
  auto found = test_support::Search(model, "trk-" + s, 10);
  ASSERT_TRUE(found && found->size() == 1);
  EXPECT_EQ((*found)[0], static_cast<const app::OrderSummary&>(*model.GetOrder(o1)));
  EXPECT_EQ((*found)[0].status, "shipped");

  // A customer update reaches every existing order document (and no other).
  const auto docs_before = Dump(db.read,
                                "SELECT id, document, xmin::text FROM search_orders "
                                "WHERE customer_id = '" +
                                    bob.ToString() + "'");
  shop.Rename(ada, "Ada Byron", "countess-" + s + "@example.org");
  ASSERT_TRUE(read.tracker.WaitFor(shop.LastBound(), 10s));
  ASSERT_TRUE(search.tracker.WaitFor(shop.LastBound(), 10s));
  EXPECT_EQ(Found(model, "byron"), Ids({o2, o1}));
  EXPECT_EQ(Found(model, "countess-" + s), Ids({o2, o1}));
  EXPECT_EQ(Found(model, "lovelace"), Ids({}));
  EXPECT_EQ(Found(model, "ada-" + s), Ids({}));
  EXPECT_EQ(Found(model, "byron trk-" + s), Ids({o1}));
  EXPECT_EQ(Dump(db.read,
                 "SELECT id, document, xmin::text FROM search_orders "
                 "WHERE customer_id = '" +
                     bob.ToString() + "'"),
            docs_before)
      << "other customers' documents are not rewritten";
  // And an order placed after the update carries the new details.
  const auto o4 = shop.Order(ada, {widget});
  ASSERT_TRUE(read.tracker.WaitFor(shop.LastBound(), 10s));
  ASSERT_TRUE(search.tracker.WaitFor(shop.LastBound(), 10s));
  EXPECT_EQ(Found(model, "byron widget"), Ids({o4, o1}));

  EXPECT_EQ(Dump(db.write, kWriteDocuments), Dump(db.read, kSearchDocuments));
  EXPECT_EQ(Scalar(db.read, "SELECT events FROM projection_checkpoints WHERE name = 'search'"),
            Scalar(db.write, "SELECT count(*) FROM outbox"));
  EXPECT_EQ(search.projector.Stats().errors, 0u) << search.projector.Stats().last_error;
}

// Ranked search: relevance, typo tolerance, AND, paging and filters (docs/API.md, Search).
class RankedSearchTest : public SearchProjectionTest {
 protected:
  // Both projections caught up; the model over the read database.
  adapters::pg_read::PgReadModel& Model() {
    if (!read_) {
      read_ = std::make_unique<ReadRig>(db.write, db.read, "read_pg");
      search_ = std::make_unique<SearchRig>(db.write, db.read, "search");
      pool_ = std::make_unique<infra::pg::Pool>(adapters::pg_read::ReadPoolOptions(db.read, 2));
      model_ = std::make_unique<adapters::pg_read::PgReadModel>(*pool_);
    }
    read_->WaitCaughtUp(db.write);
    search_->WaitCaughtUp(db.write);
    return *model_;
  }
  // The ids a search answers, in its order (all of them: limit 100, one page).
  std::vector<std::string> HitsWhere(app::OrderSearchQuery query) {
    query.limit = 100;
    auto page = Model().SearchOrders(query);
    EXPECT_TRUE(page.has_value()) << query.q;
    std::vector<std::string> ids;
    if (!page) return ids;
    EXPECT_FALSE(page->next_cursor) << query.q;
    for (const auto& o : page->items) ids.push_back(o.id);
    return ids;
  }
  std::vector<std::string> Hits(const std::string& q) {
    return HitsWhere(app::OrderSearchQuery{.q = q});
  }

  std::unique_ptr<ReadRig> read_;
  std::unique_ptr<SearchRig> search_;
  std::unique_ptr<infra::pg::Pool> pool_;
  std::unique_ptr<adapters::pg_read::PgReadModel> model_;
};

std::vector<std::string> IdList(std::initializer_list<domain::OrderId> ids) {
  std::vector<std::string> out;
  for (const auto& id : ids) out.push_back(id.ToString());
  return out;
}

TEST_F(RankedSearchTest, ExactAbovePrefixAboveFuzzyThenNewestFirst) {
  const auto ann = shop.Customer("Ann Smith", "ann@example.com");
  const auto exact = shop.Product("P-1", "Blue Widget");
  const auto prefix = shop.Product("P-2", "Blue Widgetry");
  const auto fuzzy = shop.Product("P-3", "Blue Wodget");
  // Placed oldest first in the order of relevance: newest first alone would reverse it.
  const auto o_exact = shop.Order(ann, {exact});
  const auto o_prefix = shop.Order(ann, {prefix});
  const auto o_fuzzy = shop.Order(ann, {fuzzy});
  const auto o_exact2 = shop.Order(ann, {exact});
  EXPECT_EQ(Hits("widget"), IdList({o_exact2, o_exact, o_prefix, o_fuzzy}));
  EXPECT_EQ(Hits("WIDGET"), IdList({o_exact2, o_exact, o_prefix, o_fuzzy})) << "any case";
  // Summed over the words: both words exact above one exact and one prefix.
  EXPECT_EQ(Hits("blue widget"), IdList({o_exact2, o_exact, o_prefix, o_fuzzy}));
  EXPECT_EQ(Hits("widgetr"), IdList({o_prefix, o_exact2, o_exact})) << "prefix above fuzzy";
  EXPECT_EQ(Hits("wodget"), IdList({o_fuzzy, o_exact2, o_exact})) << "exact above fuzzy";
}

TEST_F(RankedSearchTest, WordsOfFiveOrMoreLettersTolerateOneTypo) {
  const auto greta = shop.Customer("Margarethe Quill", "mq@example.com");
  const auto lamp = shop.Product("LMP-1", "Desk Lamp");
  const auto mixer = shop.Product("MIX-1", "Stand Mixer");
  const auto o_lamp = shop.Order(greta, {lamp});
  const auto o_mixer = shop.Order(greta, {mixer});
  const auto both = IdList({o_mixer, o_lamp});
  EXPECT_EQ(Hits("margarethe"), both);
  EXPECT_EQ(Hits("margerethe"), both) << "one wrong letter";
  EXPECT_EQ(Hits("margrethe"), both) << "one missing letter";
  EXPECT_EQ(Hits("marggarethe"), both) << "one extra letter";
  EXPECT_EQ(Hits("mixre"), IdList({})) << "two letters swapped are two edits";
  EXPECT_EQ(Hits("mizer"), IdList({o_mixer})) << "five letters, one wrong";
  EXPECT_EQ(Hits("lamps"), IdList({o_lamp})) << "five letters, one extra";
  EXPECT_EQ(Hits("lamb"), IdList({})) << "under five letters: no typo tolerated";
  EXPECT_EQ(Hits("lamp"), IdList({o_lamp}));
  EXPECT_EQ(Hits("lmp-1"), IdList({o_lamp})) << "a whole SKU";
}

TEST_F(RankedSearchTest, EveryWordMustMatch) {
  const auto ann = shop.Customer("Ann Smith", "ann@example.com");
  const auto bob = shop.Customer("Bob Jones", "bob@example.com");
  const auto kettle = shop.Product("KT-1", "Copper Kettle");
  const auto toaster = shop.Product("TS-1", "Chrome Toaster");
  const auto o1 = shop.Order(ann, {kettle});
  const auto o2 = shop.Order(bob, {kettle, toaster});
  shop.Order(ann, {toaster});
  EXPECT_EQ(Hits("kettle"), IdList({o2, o1}));
  EXPECT_EQ(Hits("smith kettle"), IdList({o1}));
  EXPECT_EQ(Hits("kettle toaster"), IdList({o2}));
  EXPECT_EQ(Hits("kettla toastr"), IdList({o2})) << "fuzzy on both words";
  EXPECT_EQ(Hits("smith kettle toaster"), IdList({}));
  EXPECT_EQ(Hits("kettle zzzzzz"), IdList({}));
}

TEST_F(RankedSearchTest, CursorPagesNeverRepeatOrSkip) {
  const auto ann = shop.Customer("Ann Smith", "ann@example.com");
  const auto exact = shop.Product("P-1", "Garden Hammer");
  const auto prefix = shop.Product("P-2", "Garden Hammerhead");
  const auto fuzzy = shop.Product("P-3", "Garden Hamner");
  std::vector<domain::ProductId> cycle = {exact, prefix, fuzzy};
  for (int i = 0; i < 11; ++i) shop.Order(ann, {cycle[i % 3]});
  const auto all = Hits("garden hammers");  // fuzzy for hammer only
  auto& model = Model();
  const auto everything = Hits("garden hammer");
  ASSERT_EQ(everything.size(), 11u);
  EXPECT_EQ(all.size(), 4u);
  for (int limit : {1, 2, 4, 5}) {
    std::vector<std::string> paged;
    std::optional<std::string> cursor;
    for (int pages = 0; pages < 20; ++pages) {
      auto page = model.SearchOrders({.q = "garden hammer", .limit = limit, .cursor = cursor});
      ASSERT_TRUE(page.has_value());
      EXPECT_LE(page->items.size(), static_cast<std::size_t>(limit));
      for (const auto& o : page->items) paged.push_back(o.id);
      cursor = page->next_cursor;
      if (!cursor) break;
    }
    EXPECT_EQ(paged, everything) << "limit " << limit;
  }
  EXPECT_FALSE(model.SearchOrders({.q = "garden", .cursor = "c1.zz.00"}));
  EXPECT_FALSE(model.SearchOrders({.q = "garden", .cursor = "s1.3.nothing"}));
}

TEST_F(RankedSearchTest, FiltersStatusAndPlacedDate) {
  const auto ann = shop.Customer("Ann Smith", "ann@example.com");
  const auto kettle = shop.Product("KT-1", "Copper Kettle");
  const auto o1 = shop.Order(ann, {kettle});
  const auto o2 = shop.Order(ann, {kettle});
  const auto o3 = shop.Order(ann, {kettle});
  shop.Ship(o2, "TRK-1");
  const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  const auto day = std::chrono::days(1);
  EXPECT_EQ(HitsWhere({.q = "kettle", .status = "shipped"}), IdList({o2}));
  EXPECT_EQ(HitsWhere({.q = "kettle", .status = "placed"}), IdList({o3, o1}));
  EXPECT_EQ(HitsWhere({.q = "kettle", .status = "delivered"}), IdList({}));
  EXPECT_EQ(HitsWhere({.q = "kettle", .from = today, .to = today}), IdList({o3, o2, o1}));
  EXPECT_EQ(HitsWhere({.q = "kettle", .from = today - day}), IdList({o3, o2, o1}));
  EXPECT_EQ(HitsWhere({.q = "kettle", .from = today + day}), IdList({}));
  EXPECT_EQ(HitsWhere({.q = "kettle", .to = today - day}), IdList({}));
  EXPECT_EQ(HitsWhere({.q = "kettle", .status = "placed", .from = today, .to = today + day}),
            IdList({o3, o1}));
  const auto bob = shop.Customer("Bob Jones", "bob@example.com");
  const auto o4 = shop.Order(bob, {kettle});
  EXPECT_EQ(HitsWhere({.q = "kettle", .customer_id = bob}), IdList({o4}));
  EXPECT_EQ(HitsWhere({.q = "kettle", .customer_id = ann}), IdList({o3, o2, o1}));
  auto& model = Model();
  EXPECT_FALSE(model.SearchOrders({.q = "kettle", .status = "lost"}));
  EXPECT_FALSE(model.SearchOrders({.q = "kettle", .from = today, .to = today - day}));
  EXPECT_FALSE(model.SearchOrders({.q = "kettle", .limit = 0}));
  EXPECT_FALSE(model.SearchOrders({.q = "a b c d e f g h i j k"})) << "more than 10 words";
}

// A random mix of every command: the documents equal what the write database implies, and
// the search answers equal single-database mode's on the same data.
TEST_F(SearchProjectionTest, DocumentsMatchTheWriteDatabase) {
  SearchRig search(db.write, db.read, "search", 37);  // many small batches
  RunWorkload(shop, 6, 8, 400, 7);
  search.WaitCaughtUp(db.write);
  EXPECT_EQ(Dump(db.write, kWriteDocuments), Dump(db.read, kSearchDocuments));
  EXPECT_EQ(Scalar(db.read, "SELECT events FROM projection_checkpoints WHERE name = 'search'"),
            Scalar(db.write, "SELECT count(*) FROM outbox"));
  // read_pg has not run: search and read_pg are separate projections.
  EXPECT_EQ(Scalar(db.read, "SELECT count(*) FROM order_views"), 0);
  EXPECT_EQ(Scalar(db.read, "SELECT count(*) FROM projection_checkpoints"), 1);
}

TEST_F(SearchProjectionTest, TheSameBatchTwiceChangesNothing) {
  RunWorkload(shop, 4, 5, 120, 11);
  adapters::pg_outbox::OutboxReader reader({db.write});
  const auto first = reader.FetchBatch({}, 60);
  const auto rest = reader.FetchBatch(first.next, 100000);
  ASSERT_FALSE(first.events.empty());
  ASSERT_FALSE(rest.events.empty());

  SearchProjection store(db.read);
  store.Apply({}, first.events, first.next);
  store.Apply(first.next, rest.events, rest.next);
  const auto state = Dump(db.read, kSearchState);
  const auto checkpoint = Dump(db.read, kSearchCheckpoint);
  ASSERT_FALSE(state.empty());
  EXPECT_EQ(Dump(db.write, kWriteDocuments), Dump(db.read, kSearchDocuments));

  // Redelivered: the last batch again, the first one again, both at once. No row is written
  // again (xmin unchanged) and the checkpoint (with its event count) does not move.
  store.Apply(rest.next, rest.events, rest.next);
  store.Apply(rest.next, first.events, rest.next);
  std::vector<cqrs::StoredEvent> all = first.events;
  all.insert(all.end(), rest.events.begin(), rest.events.end());
  store.Apply(rest.next, all, rest.next);
  EXPECT_EQ(Dump(db.read, kSearchState), state);
  EXPECT_EQ(Dump(db.read, kSearchCheckpoint), checkpoint);
  EXPECT_EQ(store.LoadCheckpoint(), rest.next);
  EXPECT_EQ(Scalar(db.read, "SELECT events FROM projection_checkpoints WHERE name = 'search'"),
            static_cast<std::int64_t>(all.size()));
  // A batch that starts from another checkpoint than the stored one is refused whole
  // (compare-and-set), whichever way it would move it.
  for (const auto& from : {cqrs::Checkpoint{}, first.next}) {
    try {
      store.Apply(from, first.events, first.next);
      ADD_FAILURE() << "a batch from a stale checkpoint was applied";
    } catch (const infra::pg::PgError& error) {
      EXPECT_EQ(error.sqlstate(), adapters::pg_read::queries::kCheckpointMovedState);
    }
  }
  EXPECT_EQ(store.LoadCheckpoint(), rest.next);
  EXPECT_EQ(Dump(db.read, kSearchState), state);
}

// Hand-made events: a customer registered after its order, redelivery inside one batch, gaps.
TEST_F(SearchProjectionTest, OutOfOrderAggregatesAndGaps) {
  SearchProjection store(db.read);
  const auto customer = adapters::system::NewRandomUuid().ToString();
  const auto product = adapters::system::NewRandomUuid().ToString();
  const auto order = adapters::system::NewRandomUuid().ToString();
  std::int64_t position = 0;
  // In xid 1, at the next position.
  auto positioned = [&](cqrs::StoredEvent e) {
    e.xid = 1;
    e.position = ++position;
    return e;
  };
  auto event = [&](std::string type, std::string aggregate_type, std::string id,
                   std::int64_t version, std::string payload) {
    return positioned(Event(std::move(type), std::move(aggregate_type), std::move(id), version,
                            std::move(payload)));
  };
  const auto line = OrderLines(product, "S-1");
  const auto placed = positioned(OrderPlaced(order, customer, line));
  const auto paid = positioned(OrderPaid(order, customer, line));
  const auto shipped =
      event("OrderShipped", "Order", order, 3,
            fmt::format(R"({{"order_id":"{}","customer_id":"{}","tracking_number":"TN-9"}})", order,
                        customer));
  const auto registered =
      event("CustomerRegistered", "Customer", customer, 1,
            fmt::format(R"({{"customer_id":"{}","name":"Zed","email":"z@x"}})", customer));
  const auto renamed =
      event("CustomerDetailsChanged", "Customer", customer, 2,
            fmt::format(R"({{"customer_id":"{}","name":"Zoe","email":"zoe@x"}})", customer));

  store.Apply({}, {placed, paid, placed}, {1, 3, 2});  // the order before its customer
  EXPECT_EQ(Dump(db.read, "SELECT document, version FROM search_orders"),
            std::vector<std::string>{"  S-1 Thing |1"});
  store.Apply({1, 3, 2}, {registered, shipped, registered}, {1, 5, 3});
  EXPECT_EQ(Dump(db.read, "SELECT document, version FROM search_orders"),
            std::vector<std::string>{"Zed z@x S-1 Thing TN-9|3"});
  store.Apply({1, 5, 3}, {renamed}, {1, 6, 4});
  EXPECT_EQ(Dump(db.read, "SELECT document FROM search_orders"),
            std::vector<std::string>{"Zoe zoe@x S-1 Thing TN-9"});
  EXPECT_EQ(Dump(db.read, "SELECT name, email, version FROM search_customers"),
            std::vector<std::string>{"Zoe|zoe@x|2"});
  EXPECT_EQ(store.LoadCheckpoint(), (cqrs::Checkpoint{1, 6, 4}));

  // A gap stops the projection loudly and changes nothing.
  const auto other = adapters::system::NewRandomUuid().ToString();
  const auto lost = event("OrderShipped", "Order", other, 3,
                          fmt::format(R"({{"order_id":"{}","customer_id":"{}",)"
                                      R"("tracking_number":"X"}})",
                                      other, customer));
  EXPECT_THROW(store.Apply({1, 6, 4}, {lost}, {1, 7, 5}), cqrs::DeterministicApplyError);
  const auto skipped =
      event("CustomerDetailsChanged", "Customer", customer, 4,
            fmt::format(R"({{"customer_id":"{}","name":"Q","email":"q@x"}})", customer));
  EXPECT_THROW(store.Apply({1, 6, 4}, {skipped}, {1, 8, 6}), cqrs::DeterministicApplyError);
  EXPECT_EQ(store.LoadCheckpoint(), (cqrs::Checkpoint{1, 6, 4}));
  EXPECT_EQ(Dump(db.read, "SELECT document FROM search_orders"),
            std::vector<std::string>{"Zoe zoe@x S-1 Thing TN-9"});
  // The connection is still usable after the failed batches.
  store.Apply({1, 6, 4}, {}, {1, 6, 9});
  EXPECT_EQ(store.LoadCheckpoint(), (cqrs::Checkpoint{1, 6, 9}));
}

// The checkpoint commits with the batch: a batch whose checkpoint cannot be stored leaves no
// trace in the search tables, and a listener in another process sees "search" progress.
TEST_F(SearchProjectionTest, CheckpointIsStoredWithTheBatch) {
  RunWorkload(shop, 3, 3, 40, 5);
  adapters::pg_outbox::OutboxReader reader({db.write});
  const auto batch = reader.FetchBatch({}, 100000);
  ASSERT_FALSE(batch.events.empty());

  Connection admin(db.read);
  admin.Exec(
      "CREATE FUNCTION fail_search_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "RAISE EXCEPTION 'checkpoint store failed'; END $$; "
      "CREATE TRIGGER fail_search_checkpoint BEFORE UPDATE ON projection_checkpoints "
      "FOR EACH ROW WHEN (NEW.name = 'search') EXECUTE FUNCTION fail_search_checkpoint()");
  SearchProjection store(db.read);
  EXPECT_ANY_THROW(store.Apply({}, batch.events, batch.next));
  EXPECT_EQ(Scalar(db.read, "SELECT count(*) FROM search_orders"), 0);
  EXPECT_EQ(Scalar(db.read, "SELECT count(*) FROM search_customers"), 0);
  EXPECT_EQ(store.LoadCheckpoint(), cqrs::Checkpoint{});
  admin.Exec("DROP TRIGGER fail_search_checkpoint ON projection_checkpoints");

  cqrs::ProgressTracker followed;
  adapters::pg_read::ProgressListener listener(db.read, followed,
                                               adapters::pg_read::kSearchProjectionName, 60s);
  std::this_thread::sleep_for(300ms);  // LISTENing (the 60 s poll does not help in time)
  store.Apply({}, batch.events, batch.next);
  EXPECT_EQ(store.LoadCheckpoint(), batch.next);
  EXPECT_EQ(Dump(db.write, kWriteDocuments), Dump(db.read, kSearchDocuments));
  EXPECT_TRUE(followed.WaitFor(batch.next.bound, 5s)) << followed.Bound();
  // read_pg has no checkpoint: the projections are independent.
  EXPECT_EQ(PgReadProjection(db.read).LoadCheckpoint(), cqrs::Checkpoint{});
}

// Either projection may be behind the other; search answers are right once both caught up.
TEST_F(SearchProjectionTest, RunsIndependentlyOfReadPg) {
  infra::pg::Pool pool(adapters::pg_read::ReadPoolOptions(db.read, 2));
  adapters::pg_read::PgReadModel model(pool);
  const auto s = Suffix();
  const auto ann = shop.Customer("Ann Turing", "ann-" + s + "@example.com");
  const auto mug = shop.Product("MUG-" + s, "Coffee Mug");
  const auto o1 = shop.Order(ann, {mug});

  // read_pg caught up, search not running: nothing found yet.
  CatchUp<PgReadProjection>(db, "read_pg");
  EXPECT_EQ(Found(model, "turing"), Ids({}));
  CatchUp<SearchProjection>(db, "search");
  EXPECT_EQ(Found(model, "turing"), Ids({o1}));

  // Now search ahead of read_pg: an order search knows but read_pg does not is not answered
  // (there is no order view to describe it); the summaries are read_pg's.
  shop.Rename(ann, "Ann Hopper");
  const auto o2 = shop.Order(ann, {mug});
  CatchUp<SearchProjection>(db, "search");
  auto ahead = test_support::Search(model, "hopper", 10);
  ASSERT_TRUE(ahead);
  ASSERT_EQ(ahead->size(), 1u);
  EXPECT_EQ((*ahead)[0].id, o1.ToString());
  EXPECT_EQ((*ahead)[0].customer_name, "Ann Turing");  // read_pg has not seen the rename
  EXPECT_LT(PgReadProjection(db.read).LoadCheckpoint().bound,
            SearchProjection(db.read).LoadCheckpoint().bound);
  CatchUp<PgReadProjection>(db, "read_pg");
  auto both = test_support::Search(model, "hopper", 10);
  ASSERT_TRUE(both);
  ASSERT_EQ(both->size(), 2u);
  EXPECT_EQ((*both)[0].id, o2.ToString());
  EXPECT_EQ((*both)[1].id, o1.ToString());
  EXPECT_EQ((*both)[1].customer_name, "Ann Hopper");
  EXPECT_EQ(Found(model, "turing"), Ids({}));

  // Both running side by side under a workload, one with tiny batches: equal at the end.
  {
    ReadRig read(db.write, db.read, "read_pg", 500);
    SearchRig search(db.write, db.read, "search", 7);
    RunWorkload(shop, 4, 4, 200, 3);
    read.WaitCaughtUp(db.write);
    search.WaitCaughtUp(db.write);
    EXPECT_EQ(read.projector.Stats().errors, 0u);
    EXPECT_EQ(search.projector.Stats().errors, 0u);
  }
  EXPECT_EQ(Dump(db.write, kWriteDocuments), Dump(db.read, kSearchDocuments));
  // The bounds may differ (each reader saw the server at its own moment).
  EXPECT_EQ(Dump(db.read,
                 "SELECT xid, position, events FROM projection_checkpoints "
                 "WHERE name = 'read_pg'"),
            Dump(db.read,
                 "SELECT xid, position, events FROM projection_checkpoints "
                 "WHERE name = 'search'"));
}

// Migration 0003 on a read database that already has data: the search projection starts
// where read_pg stands, from read_pg's state, and goes on from there exactly.
TEST_F(SearchProjectionTest, MigrationStartsFromTheReadPgState) {
  RunWorkload(shop, 5, 6, 250, 21);
  CatchUp<PgReadProjection>(db, "read_pg");
  // Back to the schema before 0003 (this binary's statements need 0003 and 0007 to connect),
  // keeping what read_pg projected.
  Connection(db.read).Exec(
      "DROP TABLE search_orders, search_customers, search_words; "
      "DROP FUNCTION shopcqrs_note_search_words(), shopcqrs_search_vector(text), "
      "shopcqrs_search_words(text), shopcqrs_search_term(text, boolean), "
      "shopcqrs_search_keys(text), "
      "shopcqrs_search_close(text, text); "
      "DELETE FROM projection_checkpoints WHERE name = 'search'; "
      "CREATE TABLE order_search (id uuid PRIMARY KEY, document text NOT NULL); "
      "DELETE FROM schema_migrations WHERE version IN (3, 7)");
  ASSERT_GT(Scalar(db.read, "SELECT count(*) FROM order_views"), 50);

  EXPECT_EQ(infra::pg::ApplyMigrations(db.read, "pg_read"), 2);
  EXPECT_EQ(SearchProjection(db.read).LoadCheckpoint(), PgReadProjection(db.read).LoadCheckpoint());
  EXPECT_EQ(Dump(db.write, kWriteDocuments), Dump(db.read, kSearchDocuments));
  EXPECT_EQ(Scalar(db.read, "SELECT count(*) FROM pg_tables WHERE tablename = 'order_search'"), 0);

  // More commands (renames of customers with existing orders among them), then only the
  // events after the copied checkpoint are applied.
  RunWorkload(shop, 2, 2, 150, 22);
  {
    SearchRig search(db.write, db.read, "search");
    search.WaitCaughtUp(db.write);
    EXPECT_LT(search.projector.Stats().events_applied,
              static_cast<std::uint64_t>(Scalar(db.write, "SELECT count(*) FROM outbox")));
  }
  EXPECT_EQ(Dump(db.write, kWriteDocuments), Dump(db.read, kSearchDocuments));
  EXPECT_EQ(Scalar(db.read, "SELECT events FROM projection_checkpoints WHERE name = 'search'"),
            Scalar(db.write, "SELECT count(*) FROM outbox"));
}

// Catch-up speed on a realistic mix (orders placed, paid, shipped) written set-based.
TEST(SearchProjectionThroughput, CatchesUpQuickly) {
  Databases db;
  Connection c(db.write);
  InsertCatchUpBacklog(c);
  // A rename of every customer at the end: each reaches ~19 order documents.
  c.Exec(
      "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id, "
      "aggregate_version, occurred_at, payload) "
      "SELECT gen_random_uuid(), 'CustomerDetailsChanged', 1, 'Customer', id, 2, now(), "
      "json_build_object('customer_id', id, 'name', 'M' || n, 'email', n || '@y') "
      "FROM ids WHERE n <= 2000");
  const auto total = Scalar(db.write, "SELECT count(*) FROM outbox");
  const auto start = std::chrono::steady_clock::now();
  SearchRig search(db.write, db.read, "search", 5000);
  search.WaitCaughtUp(db.write, 120s);
  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = static_cast<double>(total) / seconds;
  const auto t = search.store.GetTimings();
  std::printf(
      "[ rate     ] %lld events in %.2f s: %.0f events/s (%llu batches; decode %.2f s, load "
      "%.2f s, apply %.2f s, encode %.2f s, write %.2f s)\n",
      static_cast<long long>(total), seconds, rate, static_cast<unsigned long long>(t.batches),
      t.decode, t.load, t.apply, t.encode, t.write);
  EXPECT_EQ(static_cast<std::int64_t>(search.projector.Stats().events_applied), total);
  EXPECT_EQ(Scalar(db.read, "SELECT count(*) FROM search_orders WHERE document LIKE 'M% T%'"),
            37800);
  EXPECT_EQ(Scalar(db.read, "SELECT count(*) FROM search_orders WHERE document ILIKE '%@y %'"),
            37800);
  // The target is tens of thousands per second; this only guards against collapse (shared CI
  // boxes vary a lot).
  EXPECT_GT(rate, 2000.0);
}

}  // namespace
}  // namespace shopcqrs
