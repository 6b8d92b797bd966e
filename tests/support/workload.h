#pragma once

// A random mix of real commands (PgWriteStore + CommandService on a write database) for
// integration tests of the read side: customers, products, orders through their life cycle.

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

#include "adapters/pg/pool.h"
#include "adapters/pg_write/write_store.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "cqrs/consistency_token.h"
#include "support/command_side.h"

namespace shopcqrs::test_support {

using namespace std::chrono_literals;

// Drives the real command side (PgWriteStore + CommandService) with a random mix.
class Workload : public CommandSide {
 public:
  explicit Workload(const std::string& write) : CommandSide(write) {}

  void Seed(int customers, int products) {
    for (int i = 0; i < customers; ++i) {
      auto r = commands.Handle(app::RegisterCustomer{
          fmt::format("Customer {}", i), fmt::format("c{}-{}@example.com", i, Suffix())});
      ASSERT_TRUE(r.has_value());
      customers_.push_back(*domain::CustomerId::Parse(r->id));
    }
    for (int i = 0; i < products; ++i) {
      auto r = commands.Handle(app::AddProduct{fmt::format("SKU-{}-{}", i, Suffix()),
                                               fmt::format("Product {}", i), 100 + i, 1'000'000});
      ASSERT_TRUE(r.has_value());
      products_.push_back(*domain::ProductId::Parse(r->id));
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
    } else if (action < 94) {
      (void)commands.Handle(app::ChangeCustomerDetails{
          customers_[pick(customers_.size())], fmt::format("Renamed {}", rng() % 1000), {}});
    } else if (action < 97) {
      (void)commands.Handle(
          app::RestockProduct{products_[pick(products_.size())], 1 + static_cast<int>(pick(9))});
    } else {
      (void)commands.Handle(app::ChangeProductPrice{products_[pick(products_.size())],
                                                    static_cast<std::int64_t>(50 + pick(500))});
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
