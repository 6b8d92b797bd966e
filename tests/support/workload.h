#pragma once

// A random mix of real commands (PgWriteStore + CommandService on a write database) for
// integration tests of the read side: customers, products, orders through their life cycle.
// Also what those tests build on it: Writers (the mix in the background), ExpectTokenSatisfied
// and SampleShop (a small shop made command by command).

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/pg_write/write_store.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "application/read_model.h"
#include "cqrs/consistency_token.h"
#include "cqrs/projector.h"
#include "infra/pg/pool.h"
#include "support/command_side.h"
#include "support/sql.h"

namespace shopcqrs::test_support {

using namespace std::chrono_literals;

// The customer and product changes of the random mixes: for `action` below 94 a rename of a
// random customer, below 97 a restock, else a new price of a random product. Whether the
// command succeeds does not matter.
inline void ChangeCustomerOrProduct(app::CommandService& commands,
                                    const std::vector<domain::CustomerId>& customers,
                                    const std::vector<domain::ProductId>& products,
                                    std::size_t action, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  if (action < 94) {
    (void)commands.Handle(app::ChangeCustomerDetails{
        customers[pick(customers.size())], fmt::format("Renamed {}", rng() % 1000), {}});
  } else if (action < 97) {
    (void)commands.Handle(
        app::RestockProduct{products[pick(products.size())], 1 + static_cast<int>(pick(9))});
  } else {
    (void)commands.Handle(app::ChangeProductPrice{products[pick(products.size())],
                                                  static_cast<std::int64_t>(50 + pick(500))});
  }
}

// Drives the real command side (PgWriteStore + CommandService) with a random mix.
class Workload : public CommandSide {
 public:
  // A workload on the write database `write`, seeded with `customers` customers and `products`
  // products (see Seed).
  explicit Workload(const std::string& write, int customers = 0, int products = 0)
      : CommandSide(write) {
    Seed(customers, products);
  }

  // Registers `customers` more customers and adds `products` more products (1,000,000 in
  // stock each) for the mix to use. Throws if a command fails.
  void Seed(int customers, int products) {
    auto made = [](const domain::Result<app::CommandResult>& r) {
      if (!r) throw std::runtime_error("Workload: seeding failed: " + r.error().detail);
      return r->id;
    };
    for (int i = 0; i < customers; ++i) {
      customers_.push_back(*domain::CustomerId::Parse(made(commands.Handle(app::RegisterCustomer{
          fmt::format("Customer {}", i), fmt::format("c{}-{}@example.com", i, Suffix())}))));
    }
    for (int i = 0; i < products; ++i) {
      products_.push_back(*domain::ProductId::Parse(made(
          commands.Handle(app::AddProduct{fmt::format("SKU-{}-{}", i, Suffix()),
                                          fmt::format("Product {}", i), 100 + i, 1'000'000}))));
    }
  }

  // Runs `threads` writers until `stop`.
  void Run(int threads, const std::atomic<bool>& stop) {
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([this, t, &stop] {
        std::mt19937_64 rng(t * 7919 + 1);
        while (!stop) {
          try {
            Step(rng);
          } catch (const std::exception&) {
            std::this_thread::sleep_for(50ms);  // a server may be restarting
          }
        }
      });
    }
    for (auto& w : workers) w.join();
  }

  // `count` steps (one thread) of a mix drawn from a generator seeded with `seed`.
  void Steps(int count, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < count; ++i) Step(rng);
  }

  void Step(std::mt19937_64& rng) {
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    const auto action = pick(100);
    std::optional<domain::OrderId> order;
    {
      std::lock_guard lock(mutex_);
      if (!orders_.empty()) order = orders_[pick(orders_.size())];
    }
    if (action < 30 || !order) {
      app::PlaceOrder cmd{customers_[pick(customers_.size())], {}};
      const auto lines = 1 + pick(3);
      for (std::size_t i = 0; i < lines; ++i) {
        cmd.lines.push_back({products_[pick(products_.size())], 1 + static_cast<int>(pick(5))});
      }
      if (auto r = commands.Handle(cmd)) {
        std::lock_guard lock(mutex_);
        orders_.push_back(*domain::OrderId::Parse(r->id));
        totals_[r->id] = *r->total_cents;
      }
    } else if (action < 55) {
      std::int64_t total = 0;
      {
        std::lock_guard lock(mutex_);
        total = totals_[order->ToString()];
      }
      (void)commands.Handle(app::PayOrder{*order, total, fmt::format("pay-{}", rng() % 100000)});
    } else if (action < 70) {
      (void)commands.Handle(app::ShipOrder{*order, fmt::format("TRACK{}", rng() % 100000)});
    } else if (action < 80) {
      (void)commands.Handle(app::DeliverOrder{*order});
    } else if (action < 88) {
      (void)commands.Handle(app::CancelOrder{*order, pick(2) ? "changed my mind" : ""});
    } else {
      ChangeCustomerOrProduct(commands, customers_, products_, action, rng);
    }
  }

  static std::string Suffix() {
    static std::atomic<int> n = 0;
    return fmt::format("{}-{}", ::getpid(), n++);
  }

 private:
  std::vector<domain::CustomerId> customers_;
  std::vector<domain::ProductId> products_;
  std::mutex mutex_;
  std::vector<domain::OrderId> orders_;
  std::map<std::string, std::int64_t> totals_;
};

// `threads` writers driving `load` (Workload::Run) in the background, from construction until
// Stop() or the end of the scope.
class Writers {
 public:
  Writers(Workload& load, int threads)
      : thread_([this, &load, threads] { load.Run(threads, stop_); }) {}
  ~Writers() { Stop(); }
  Writers(const Writers&) = delete;
  Writers& operator=(const Writers&) = delete;

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_ = false;
  std::thread thread_;
};

// A new command's consistency token is satisfied once `tracker` (of a read_pg projector) has
// reached it within `timeout`, and the read database `read` then shows what the command did.
inline void ExpectTokenSatisfied(Workload& load, const cqrs::ProgressTracker& tracker,
                                 const std::string& read, std::chrono::milliseconds timeout) {
  auto r = load.commands.Handle(app::RegisterCustomer{"Last", "last-" + Workload::Suffix() + "@x"});
  ASSERT_TRUE(r.has_value());
  const auto bound = load.tokens.Decode(r->consistency_token);
  ASSERT_TRUE(bound.has_value());
  ASSERT_TRUE(tracker.WaitFor(*bound, timeout)) << tracker.Bound() << " < " << *bound;
  EXPECT_EQ(Scalar(read, fmt::format("SELECT count(*) FROM customer_views WHERE id = '{}' "
                                     "AND version = 1",
                                     r->id)),
            1);
}

// A small shop made through the real commands, for tests that check views field by field:
// customers Alice Smith and Bob Jones; products Widget (250 cents, named `widget_name`) and
// Gadget (1000 cents), 100 of each in stock; and orders placed in distinct milliseconds (so
// newest-first lists show them in the reverse of this order):
//   order1  Alice: 2 widgets and 1 gadget, paid (PAY-1, 1500), shipped (TRK-<suffix>)
//   order2  Bob: 1 widget, cancelled without a reason
//   order3  Alice: 3 gadgets, paid (PAY-3, 3000)
// Throws if a command fails.
struct SampleShop {
  explicit SampleShop(app::CommandService& commands, const std::string& widget_name = "Blue Widget")
      : commands_(commands) {
    alice = Made<domain::CustomerId>(
        app::RegisterCustomer{"Alice Smith", "alice-" + suffix + "@example.com"});
    bob = Made<domain::CustomerId>(
        app::RegisterCustomer{"Bob Jones", "bob-" + suffix + "@example.com"});
    widget = Made<domain::ProductId>(app::AddProduct{"WIDGET-" + suffix, widget_name, 250, 100});
    gadget = Made<domain::ProductId>(app::AddProduct{"GADGET-" + suffix, "Red Gadget", 1000, 100});
    order1 = Place({alice, {{widget, 2}, {gadget, 1}}});
    Handle(app::PayOrder{order1, 1500, "PAY-1"});
    Handle(app::ShipOrder{order1, "TRK-" + suffix});
    order2 = Place({bob, {{widget, 1}}});
    Handle(app::CancelOrder{order2, ""});
    order3 = Place({alice, {{gadget, 3}}});
    Handle(app::PayOrder{order3, 3000, "PAY-3"});
  }

  // The view of order1 shows it paid and shipped, unchanged since.
  void ExpectOrder1(const app::OrderView& view) const {
    EXPECT_EQ(view.status, "shipped");
    EXPECT_EQ(view.tracking_number, "TRK-" + suffix);
    EXPECT_EQ(view.payment_reference, "PAY-1");
    EXPECT_EQ(view.total_cents, 1500);
    EXPECT_EQ(view.item_count, 3);
    EXPECT_EQ(view.version, 3);
    EXPECT_EQ(view.lines.size(), 2u);
    EXPECT_TRUE(view.paid_at && view.shipped_at && !view.delivered_at && !view.cancel_reason);
  }

  const std::string suffix = Workload::Suffix();
  domain::CustomerId alice, bob;
  domain::ProductId widget, gadget;
  domain::OrderId order1, order2, order3;

 private:
  // Runs `command`; answers its result, or throws if it failed.
  template <class Command>
  app::CommandResult Handle(const Command& command) {
    auto result = commands_.Handle(command);
    if (!result) throw std::runtime_error("SampleShop: a command failed: " + result.error().detail);
    return *result;
  }
  // The id of what `command` made.
  template <class Id, class Command>
  Id Made(const Command& command) {
    return *Id::Parse(Handle(command).id);
  }
  domain::OrderId Place(const app::PlaceOrder& order) {
    std::this_thread::sleep_for(2ms);  // a placed_at of its own
    return Made<domain::OrderId>(order);
  }

  app::CommandService& commands_;
};

}  // namespace shopcqrs::test_support
