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
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/pg_write/write_store.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "cqrs/consistency_token.h"
#include "infra/pg/pool.h"

namespace shopcqrs::test_support {

using namespace std::chrono_literals;

// Drives the real command side (PgWriteStore + CommandService) with a random mix.
class Workload {
 public:
  explicit Workload(const std::string& write)
      : pool(adapters::pg_write::WritePoolOptions(write, 8)),
        store(pool, tokens),
        commands(store, clock, ids) {}

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

  cqrs::ConsistencyTokens tokens;
  adapters::system::SystemClock clock;
  adapters::system::RandomIds ids;
  infra::pg::Pool pool;
  adapters::pg_write::PgWriteStore store;
  app::CommandService commands;

 private:
  std::vector<domain::CustomerId> customers_;
  std::vector<domain::ProductId> products_;
  std::mutex mutex_;
  std::vector<domain::OrderId> orders_;
  std::map<std::string, std::int64_t> totals_;
};

}  // namespace shopcqrs::test_support
