// The write side against a real PostgreSQL: migrations, every command through the
// CommandService and PgWriteStore, the outbox rows they append, idempotency, tokens and races.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/pg_write/write_store.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "infra/pg/embedded_migrations.h"
#include "infra/pg/migrator.h"
#include "infra/pg/pool.h"
#include "support/sql.h"
#include "support/test_postgres.h"

namespace shopcqrs {
namespace {

using infra::pg::Connection;
using infra::pg::Pool;

// What racing commands answered: successes, refusals with the expected code, anything else.
struct Outcomes {
  explicit Outcomes(std::string refused_code) : refused_code(std::move(refused_code)) {}
  void Count(const domain::Result<app::CommandResult>& result) {
    if (result) {
      ++ok;
    } else if (result.error().code == refused_code) {
      ++refused;
    } else {
      ++other;
    }
  }
  const std::string refused_code;
  std::atomic<int> ok = 0, refused = 0, other = 0;
};

// Runs `body(t)` on `threads` threads at once (t = 0, 1, ...) and waits for them.
void Race(int threads, const std::function<void(int)>& body) {
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t) running.emplace_back(body, t);
  for (auto& thread : running) thread.join();
}

class WriteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    conninfo_ = test_support::TestPostgres::Instance().CreateDatabase("write");
    ASSERT_GT(infra::pg::ApplyMigrations(conninfo_, "pg_write"), 0);
    pool_ = std::make_unique<Pool>(adapters::pg_write::WritePoolOptions(conninfo_, 16));
    store_ = std::make_unique<adapters::pg_write::PgWriteStore>(*pool_, tokens_);
    service_ = std::make_unique<app::CommandService>(*store_, clock_, ids_);
    sql_ = std::make_unique<Connection>(conninfo_);
  }

  std::string Customer(const std::string& email = "ada@example.com") {
    auto r = service_->Handle(app::RegisterCustomer{"Ada", email});
    EXPECT_TRUE(r.has_value());
    return r->id;
  }
  std::string Product(const std::string& sku, std::int64_t price, std::int64_t stock) {
    auto r = service_->Handle(app::AddProduct{sku, "Widget " + sku, price, stock});
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().code);
    return r->id;
  }
  domain::Result<app::CommandResult> Place(const std::string& customer,
                                           std::vector<std::pair<std::string, int>> lines) {
    app::PlaceOrder cmd{*domain::CustomerId::Parse(customer), {}};
    for (auto& [product, qty] : lines) {
      cmd.lines.push_back({*domain::ProductId::Parse(product), qty});
    }
    return service_->Handle(cmd);
  }
  std::int64_t Scalar(const std::string& sql) { return sql_->Exec(sql).Int64(0, 0); }
  std::int64_t Stock(const std::string& product) {
    return Scalar("SELECT stock FROM products WHERE id = '" + product + "'");
  }
  domain::OrderId OrderId(const std::string& id) { return *domain::OrderId::Parse(id); }

  std::string conninfo_;
  cqrs::ConsistencyTokens tokens_{"test"};
  adapters::system::SystemClock clock_;
  adapters::system::RandomIds ids_;
  std::unique_ptr<Pool> pool_;
  std::unique_ptr<adapters::pg_write::PgWriteStore> store_;
  std::unique_ptr<app::CommandService> service_;
  std::unique_ptr<Connection> sql_;
};

TEST_F(WriteStoreTest, MigrationsAreIdempotentAndSafeConcurrently) {
  auto other = test_support::TestPostgres::Instance().CreateDatabase("migrate");
  std::atomic<int> applied = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] { applied += infra::pg::ApplyMigrations(other, "pg_write"); });
  }
  for (auto& t : threads) t.join();
  const auto& all = infra::pg::AllEmbeddedMigrations();
  EXPECT_EQ(applied.load(), std::count_if(all.begin(), all.end(), [](const auto& m) {
              return m.store == "pg_write";
            }));  // each one once
  EXPECT_EQ(infra::pg::ApplyMigrations(other, "pg_write"), 0);
}

TEST_F(WriteStoreTest, RegisterCustomerPersistsStateAndEventInOneTransaction) {
  auto r = service_->Handle(app::RegisterCustomer{"Ada Lovelace", "ada@example.com"});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->version, 1);
  EXPECT_TRUE(r->created);
  EXPECT_TRUE(tokens_.Decode(r->consistency_token).has_value());
  auto row = sql_->Exec(
      "SELECT event_type, aggregate_type, aggregate_version, payload::text, xid::text "
      "FROM outbox WHERE aggregate_id = '" +
      r->id + "'");
  ASSERT_EQ(row.rows(), 1);
  EXPECT_EQ(row.Text(0, 0), "CustomerRegistered");
  EXPECT_EQ(row.Text(0, 1), "Customer");
  EXPECT_EQ(row.Int64(0, 2), 1);
  EXPECT_NE(row.String(0, 3).find("ada@example.com"), std::string::npos);
  EXPECT_EQ(Scalar("SELECT count(*) FROM customers WHERE id = '" + r->id + "'"), 1);
}

TEST_F(WriteStoreTest, DuplicateEmailIsEmailTakenRegardlessOfCaseAndChangesNothing) {
  Customer("ada@example.com");
  auto r = service_->Handle(app::RegisterCustomer{"Other", "ADA@example.com"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "email_taken");
  EXPECT_EQ(Scalar("SELECT count(*) FROM customers"), 1);
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox"), 1);
}

TEST_F(WriteStoreTest, ChangeCustomerDetailsHonoursIfMatchAndUniqueness) {
  auto id = *domain::CustomerId::Parse(Customer("a@example.com"));
  Customer("b@example.com");
  auto mismatch = service_->Handle(app::ChangeCustomerDetails{id, "New", std::nullopt, 7});
  ASSERT_FALSE(mismatch.has_value());
  EXPECT_EQ(mismatch.error().code, "version_mismatch");
  auto taken = service_->Handle(app::ChangeCustomerDetails{id, std::nullopt, "B@example.com", 1});
  ASSERT_FALSE(taken.has_value());
  EXPECT_EQ(taken.error().code, "email_taken");
  auto ok = service_->Handle(app::ChangeCustomerDetails{id, "New Name", std::nullopt, 1});
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->version, 2);
  EXPECT_EQ(
      sql_->Exec("SELECT name FROM customers WHERE id = '" + id.ToString() + "'").String(0, 0),
      "New Name");
  auto missing = service_->Handle(
      app::ChangeCustomerDetails{domain::CustomerId(ids_.NewId()), "X", std::nullopt, {}});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, "not_found");
}

TEST_F(WriteStoreTest, ProductsSkuPriceAndRestock) {
  auto id = Product("SKU-1", 500, 3);
  auto dup = service_->Handle(app::AddProduct{"SKU-1", "Again", 1, 1});
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, "sku_taken");
  auto pid = *domain::ProductId::Parse(id);
  auto price = service_->Handle(app::ChangeProductPrice{pid, 750, {}});
  ASSERT_TRUE(price.has_value());
  EXPECT_EQ(price->version, 2);
  auto restock = service_->Handle(app::RestockProduct{pid, 10, 2});
  ASSERT_TRUE(restock.has_value());
  EXPECT_EQ(restock->version, 3);
  EXPECT_EQ(Stock(id), 13);
  EXPECT_EQ(Scalar("SELECT price_cents FROM products WHERE id = '" + id + "'"), 750);
  auto bad = service_->Handle(app::RestockProduct{pid, 0, {}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, "validation_failed");
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox WHERE aggregate_id = '" + id + "'"), 3);
}

TEST_F(WriteStoreTest, OrderLifecycleWritesStateRowsAndEvents) {
  auto customer = Customer();
  auto a = Product("A", 250, 10);
  auto b = Product("B", 1000, 5);
  auto placed = Place(customer, {{a, 2}, {b, 1}, {a, 1}});
  ASSERT_TRUE(placed.has_value()) << placed.error().code;
  EXPECT_EQ(*placed->total_cents, 3 * 250 + 1000);
  EXPECT_EQ(Stock(a), 7);
  EXPECT_EQ(Stock(b), 4);
  EXPECT_EQ(Scalar("SELECT count(*) FROM order_lines WHERE order_id = '" + placed->id + "'"), 2);
  auto id = OrderId(placed->id);

  auto wrong_amount = service_->Handle(app::PayOrder{id, 1, "ref", {}});
  ASSERT_FALSE(wrong_amount.has_value());
  EXPECT_EQ(wrong_amount.error().code, "amount_mismatch");
  auto early_ship = service_->Handle(app::ShipOrder{id, "TRACK", {}});
  ASSERT_FALSE(early_ship.has_value());
  EXPECT_EQ(early_ship.error().code, "invalid_transition");

  auto paid = service_->Handle(app::PayOrder{id, 1750, "pay-1", 1});
  ASSERT_TRUE(paid.has_value());
  EXPECT_EQ(*paid->status, "paid");
  EXPECT_EQ(paid->version, 2);
  auto shipped = service_->Handle(app::ShipOrder{id, "TRACK-9", {}});
  ASSERT_TRUE(shipped.has_value());
  auto delivered = service_->Handle(app::DeliverOrder{id, {}});
  ASSERT_TRUE(delivered.has_value());
  EXPECT_EQ(delivered->version, 4);
  auto cancel = service_->Handle(app::CancelOrder{id, "late", {}});
  ASSERT_FALSE(cancel.has_value());
  EXPECT_EQ(cancel.error().code, "invalid_transition");

  EXPECT_EQ(sql_->Exec("SELECT status FROM orders WHERE id = '" + placed->id + "'").String(0, 0),
            "delivered");
  EXPECT_EQ(Scalar("SELECT amount_cents FROM payments WHERE order_id = '" + placed->id + "'"),
            1750);
  EXPECT_EQ(Scalar("SELECT count(*) FROM shipments WHERE delivered_at IS NOT NULL"), 1);
  auto events =
      sql_->Exec("SELECT event_type, aggregate_version FROM outbox WHERE aggregate_id = '" +
                 placed->id + "' ORDER BY aggregate_version");
  ASSERT_EQ(events.rows(), 4);
  EXPECT_EQ(events.Text(0, 0), "OrderPlaced");
  EXPECT_EQ(events.Text(1, 0), "OrderPaid");
  EXPECT_EQ(events.Text(2, 0), "OrderShipped");
  EXPECT_EQ(events.Text(3, 0), "OrderDelivered");
}

// A session the server ends (here: pg_terminate_backend, as a postmaster crash or a fast
// shutdown does) is the port's StoreUnavailable in every command, whatever statement meets it
// first -- never the client library's own exception, which the HTTP layer answers as a 500.
TEST_F(WriteStoreTest, ASessionEndedByTheServerIsStoreUnavailableInEveryCommand) {
  auto customer = Customer();
  auto product = Product("A", 100, 100);
  auto placed = Place(customer, {{product, 1}});
  ASSERT_TRUE(placed.has_value());
  const auto order = OrderId(placed->id);
  const auto customer_id = *domain::CustomerId::Parse(customer);
  const auto product_id = *domain::ProductId::Parse(product);

  Pool one(adapters::pg_write::WritePoolOptions(conninfo_, 1));
  adapters::pg_write::PgWriteStore store(one, tokens_);
  app::CommandService service(store, clock_, ids_);
  const std::vector<std::pair<std::string, std::function<void()>>> commands = {
      {"register",
       [&] {
         (void)service.Handle(app::RegisterCustomer{"Bo", "bo@example.com"});
       }},
      {"change customer",
       [&] {
         (void)service.Handle(app::ChangeCustomerDetails{customer_id, "Ada L", {}, {}});
       }},
      {"add product",
       [&] {
         (void)service.Handle(app::AddProduct{"B", "B", 1, 1});
       }},
      {"change price",
       [&] {
         (void)service.Handle(app::ChangeProductPrice{product_id, 200, {}});
       }},
      {"restock",
       [&] {
         (void)service.Handle(app::RestockProduct{product_id, 1, {}});
       }},
      {"place",
       [&] {
         (void)service.Handle(app::PlaceOrder{customer_id, {{product_id, 1}}});
       }},
      {"pay",
       [&] {
         (void)service.Handle(app::PayOrder{order, 1, "ref", {}});
       }},
      {"ship",
       [&] {
         (void)service.Handle(app::ShipOrder{order, "T", {}});
       }},
      {"deliver",
       [&] {
         (void)service.Handle(app::DeliverOrder{order, {}});
       }},
      {"cancel",
       [&] {
         (void)service.Handle(app::CancelOrder{order, "x", {}});
       }},
      {"token", [&] { (void)store.CurrentToken(); }},
  };
  for (const auto& [name, command] : commands) {
    (void)store.CurrentToken();  // the pool's one session is open and idle
    sql_->Exec(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
        "WHERE application_name = 'shopcqrs-write' AND pid <> pg_backend_pid()");
    EXPECT_THROW(command(), app::StoreUnavailable) << name;
  }
  // Nothing half-done, and the store recovers with a new session.
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox"), 3);
  EXPECT_TRUE(service.Handle(app::PayOrder{order, 100, "ref", {}}).has_value());
}

// The write pool prepares its statements when a session opens, often on an empty database,
// and PostgreSQL may keep the generic plan made then: for the stock update a hash join over a
// sequential scan of products, paid by every order on a grown catalogue. Every command statement
// reads by key, and must stay on the key indexes whatever the statistics were when planned.
TEST_F(WriteStoreTest, PreparedStatementsStayOnTheKeyIndexesAsTheTablesGrow) {
  Pool pool(adapters::pg_write::WritePoolOptions(conninfo_, 1));
  auto session = pool.Acquire();
  session->Exec("SET plan_cache_mode = force_generic_plan");
  const std::string id = "00000000-0000-0000-0000-000000000001";
  const std::string ids = "{" + id + "}";
  const std::vector<std::pair<std::string, std::string>> statements = {
      {"w_load_products_for_update", fmt::format("'{}'", ids)},
      {"w_update_stock", fmt::format("'{}', '{{1}}', now()", ids)},
      {"w_load_product", fmt::format("'{}'", id)},
      {"w_load_order", fmt::format("'{}'", id)},
      {"w_load_order_lines", fmt::format("'{}'", id)},
      {"w_load_customer", fmt::format("'{}'", id)},
      {"w_customer_exists", fmt::format("'{}'", id)},
      {"w_find_idempotency_key", "'k'"}};
  session->Exec("BEGIN");
  for (const auto& [name, args] : statements) {
    session->Exec(fmt::format("EXECUTE {}({})", name, args));  // planned on the empty tables
  }
  session->Exec("ROLLBACK");
  sql_->Exec(
      "INSERT INTO products (id, sku, name, price_cents, stock, version, created_at, updated_at) "
      "SELECT gen_random_uuid(), 'sku-' || n, 'p', 1, 1, 1, now(), now() "
      "FROM generate_series(1, 5000) n");
  for (const auto& [name, args] : statements) {
    const auto text = test_support::Plan(*session, fmt::format("EXECUTE {}({})", name, args));
    EXPECT_EQ(text.find("Seq Scan"), std::string::npos) << name << ":\n" << text;
  }
}

TEST_F(WriteStoreTest, CancelFromPaidRefundsAndReturnsStock) {
  auto customer = Customer();
  auto a = Product("A", 100, 4);
  auto placed = Place(customer, {{a, 3}});
  ASSERT_TRUE(placed.has_value());
  auto id = OrderId(placed->id);
  ASSERT_TRUE(service_->Handle(app::PayOrder{id, 300, "p", {}}).has_value());
  EXPECT_EQ(Stock(a), 1);
  auto cancelled = service_->Handle(app::CancelOrder{id, "changed my mind", {}});
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(*cancelled->status, "cancelled");
  EXPECT_EQ(Stock(a), 4);
  EXPECT_EQ(Scalar("SELECT refunded_cents FROM payments WHERE order_id = '" + placed->id + "'"),
            300);
  auto payload = sql_->Exec("SELECT payload::text FROM outbox WHERE event_type = 'OrderCancelled'");
  EXPECT_NE(payload.String(0, 0).find("\"refunded_cents\":300"), std::string::npos);
}

TEST_F(WriteStoreTest, UnknownCustomerProductAndInsufficientStockChangeNothing) {
  auto customer = Customer();
  auto a = Product("A", 100, 2);
  auto before = Scalar("SELECT count(*) FROM outbox");
  auto unknown_customer = Place(domain::CustomerId(ids_.NewId()).ToString(), {{a, 1}});
  ASSERT_FALSE(unknown_customer.has_value());
  EXPECT_EQ(unknown_customer.error().code, "unknown_customer");
  auto unknown_product = Place(customer, {{a, 1}, {domain::ProductId(ids_.NewId()).ToString(), 1}});
  ASSERT_FALSE(unknown_product.has_value());
  EXPECT_EQ(unknown_product.error().code, "unknown_product");
  auto too_many = Place(customer, {{a, 3}});
  ASSERT_FALSE(too_many.has_value());
  EXPECT_EQ(too_many.error().code, "insufficient_stock");
  EXPECT_EQ(Stock(a), 2);
  EXPECT_EQ(Scalar("SELECT count(*) FROM orders"), 0);
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox"), before);
}

TEST_F(WriteStoreTest, IdempotencyKeyReplaysTheStoredResult) {
  app::Idempotency key{"key-1", "fingerprint-a"};
  auto first = service_->Handle(app::RegisterCustomer{"Ada", "ada@example.com"}, key);
  ASSERT_TRUE(first.has_value());
  auto again = service_->Handle(app::RegisterCustomer{"Ada", "ada@example.com"}, key);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(Scalar("SELECT count(*) FROM customers"), 1);
  auto reused = service_->Handle(app::RegisterCustomer{"Bob", "bob@example.com"},
                                 app::Idempotency{"key-1", "fingerprint-b"});
  ASSERT_FALSE(reused.has_value());
  EXPECT_EQ(reused.error().code, "idempotency_key_reused");
  EXPECT_EQ(Scalar("SELECT count(*) FROM customers"), 1);
}

TEST_F(WriteStoreTest, ConcurrentRequestsWithOneIdempotencyKeyDoTheWorkOnce) {
  std::vector<std::thread> threads;
  std::vector<std::string> ids(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = service_->Handle(app::RegisterCustomer{"Ada", "ada@example.com"},
                                app::Idempotency{"same", "fp"});
      ASSERT_TRUE(r.has_value()) << r.error().code;
      ids[i] = r->id;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(Scalar("SELECT count(*) FROM customers"), 1);
}

TEST_F(WriteStoreTest, TokensAreMonotonicInCommitOrder) {
  std::uint64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = service_->Handle(app::RegisterCustomer{"C", "c" + std::to_string(i) + "@example.com"});
    ASSERT_TRUE(r.has_value());
    auto bound = tokens_.Decode(r->consistency_token);
    ASSERT_TRUE(bound.has_value());
    EXPECT_GT(*bound, last);
    last = *bound;
    // Every event committed so far lies below the bound.
    EXPECT_EQ(
        Scalar("SELECT count(*) FROM outbox WHERE xid::text::bigint >= " + std::to_string(*bound)),
        0);
  }
}

TEST_F(WriteStoreTest, RacingOrdersNeverOversell) {
  auto customer = Customer();
  auto a = Product("A", 100, 25);
  auto b = Product("B", 100, 1000);
  Outcomes outcomes("insufficient_stock");
  Race(12, [&](int t) {
    for (int i = 0; i < 10; ++i) {
      // Alternate line order so that lock ordering is exercised.
      outcomes.Count((t + i) % 2 ? Place(customer, {{a, 1}, {b, 1}})
                                 : Place(customer, {{b, 1}, {a, 1}}));
    }
  });
  EXPECT_EQ(outcomes.ok.load(), 25);
  EXPECT_EQ(outcomes.refused.load(), 95);
  EXPECT_EQ(outcomes.other.load(), 0);
  EXPECT_EQ(Stock(a), 0);
  EXPECT_EQ(Stock(b), 975);
}

TEST_F(WriteStoreTest, RacingPaymentsOfOneOrderExactlyOneWins) {
  // One order of 2 units at 100 cents (value() throws if it cannot be placed).
  const auto id = OrderId(Place(Customer(), {{Product("A", 100, 10), 2}}).value().id);
  Outcomes outcomes("invalid_transition");
  Race(16, [&](int t) {
    outcomes.Count(service_->Handle(app::PayOrder{id, 200, "ref-" + std::to_string(t), {}}));
  });
  EXPECT_EQ(outcomes.ok.load(), 1);
  EXPECT_EQ(outcomes.refused.load(), 15);
  EXPECT_EQ(outcomes.other.load(), 0);
  EXPECT_EQ(Scalar("SELECT count(*) FROM payments"), 1);
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox WHERE event_type = 'OrderPaid'"), 1);
}

}  // namespace
}  // namespace shopcqrs
