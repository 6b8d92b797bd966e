#pragma once

// An in-memory app::WriteStore for tests, header-only.
//
// State is shared by all transactions and protected by one mutex. A transaction reads
// committed state when it loads, buffers its writes, and applies them all at Commit (or none):
// - unique customer email, compared case-insensitively: 409 email_taken (domain::Conflict);
// - unique product sku: 409 sku_taken;
// - optimistic concurrency instead of row locks: an update whose previous_version is no longer
//   the stored version, or a product whose stock or version changed since this transaction
//   loaded it for update, or an idempotency key saved meanwhile by another transaction, throws
//   app::TransientStoreError (the command service retries);
// - consistency tokens are an increasing counter, as text ("1", "2", ...).
// Test hooks inject commit faults and expose the committed state.
//
// Also here: TestClock and CountingIds, deterministic app::Clock / app::IdGenerator.

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "application/ports.h"
#include "domain/customer.h"
#include "domain/error.h"
#include "domain/events.h"
#include "domain/ids.h"
#include "domain/order.h"
#include "domain/product.h"
#include "domain/time.h"

namespace shopcqrs::testing {

class InMemoryWriteStore : public app::WriteStore {
 public:
  struct State {
    std::map<domain::CustomerId, domain::Customer> customers;
    std::map<domain::ProductId, domain::Product> products;
    std::map<domain::OrderId, domain::Order> orders;
    std::map<std::string, app::StoredCommand> idempotency_keys;
    std::vector<domain::DomainEvent> events;  // in commit order
    std::uint64_t last_token = 0;
    std::uint64_t commits = 0;
  };

  std::unique_ptr<app::WriteTransaction> Begin() override;

  std::string CurrentToken() override {
    std::lock_guard lock(mu_);
    return std::to_string(state_.last_token);
  }

  // ---- test hooks ----

  // A copy of the committed state.
  State Snapshot() const {
    std::lock_guard lock(mu_);
    return state_;
  }
  std::size_t EventCount() const {
    std::lock_guard lock(mu_);
    return state_.events.size();
  }
  std::uint64_t Commits() const {
    std::lock_guard lock(mu_);
    return state_.commits;
  }
  // The next `count` commits throw app::TransientStoreError (nothing is applied).
  void FailCommitsTransiently(int count) {
    std::lock_guard lock(mu_);
    transient_failures_ = count;
  }
  // The next `count` commits throw std::runtime_error (an infrastructure fault).
  void FailCommitsHard(int count, std::string message = "injected store failure") {
    std::lock_guard lock(mu_);
    hard_failures_ = count;
    hard_failure_message_ = std::move(message);
  }

 private:
  friend class InMemoryWriteTransaction;

  static std::string Lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  }

  mutable std::mutex mu_;
  State state_;
  int transient_failures_ = 0;
  int hard_failures_ = 0;
  std::string hard_failure_message_;
};

class InMemoryWriteTransaction : public app::WriteTransaction {
 public:
  explicit InMemoryWriteTransaction(InMemoryWriteStore& store) : store_(store) {}

  void LockAggregate(const domain::Uuid& /*aggregate_id*/) override {
    // Optimistic: conflicts are detected at Commit.
  }

  // A copy of what `stored` (a map of the store's state) holds under `key`, if anything.
  template <class Map>
  std::optional<typename Map::mapped_type> Stored(const Map& stored,
                                                  const typename Map::key_type& key) {
    std::lock_guard lock(store_.mu_);
    if (auto it = stored.find(key); it != stored.end()) return it->second;
    return std::nullopt;
  }

  std::optional<app::StoredCommand> FindIdempotencyKey(const std::string& key) override {
    return Stored(store_.state_.idempotency_keys, key);
  }

  std::optional<domain::Customer> LoadCustomer(const domain::CustomerId& id) override {
    return Stored(store_.state_.customers, id);
  }

  bool CustomerExists(const domain::CustomerId& id) override {
    std::lock_guard lock(store_.mu_);
    return store_.state_.customers.contains(id);
  }

  std::optional<domain::Product> LoadProduct(const domain::ProductId& id) override {
    return Stored(store_.state_.products, id);
  }

  std::vector<domain::Product> LoadProductsForUpdate(
      const std::vector<domain::ProductId>& ids) override {
    std::lock_guard lock(store_.mu_);
    std::vector<domain::Product> found;
    for (const auto& id : ids) {
      if (auto it = store_.state_.products.find(id); it != store_.state_.products.end()) {
        found.push_back(it->second);
        read_products_.insert_or_assign(id,
                                        std::make_pair(it->second.version(), it->second.stock()));
      }
    }
    return found;
  }

  std::optional<domain::Order> LoadOrder(const domain::OrderId& id) override {
    return Stored(store_.state_.orders, id);
  }

  void InsertCustomer(const domain::Customer& customer) override {
    customers_.push_back({Clean(customer), std::nullopt});
  }
  void UpdateCustomer(const domain::Customer& customer, std::int64_t previous_version) override {
    customers_.push_back({Clean(customer), previous_version});
  }
  void InsertProduct(const domain::Product& product) override {
    products_.push_back({Clean(product), std::nullopt});
  }
  void UpdateProduct(const domain::Product& product, std::int64_t previous_version) override {
    products_.push_back({Clean(product), previous_version});
  }
  void UpdateStock(const std::vector<domain::Product>& products) override {
    for (const auto& product : products) stock_.push_back(Clean(product));
  }
  void InsertOrder(const domain::Order& order) override {
    orders_.push_back({Clean(order), std::nullopt});
  }
  void UpdateOrder(const domain::Order& order, std::int64_t previous_version) override {
    orders_.push_back({Clean(order), previous_version});
  }
  void AppendEvents(const std::vector<domain::DomainEvent>& events) override {
    events_.insert(events_.end(), events.begin(), events.end());
  }
  void SaveIdempotencyKey(const app::Idempotency& idempotency,
                          const app::CommandResult& result) override {
    keys_.push_back({idempotency, result});
  }

  // Each of `writes` finds `stored` as it expects: an update (with its previous version) the
  // aggregate at that version, an insert no aggregate. `what` names the aggregate in errors.
  template <class Writes, class Stored>
  static void CheckVersions(const Writes& writes, const Stored& stored, const std::string& what) {
    for (const auto& [aggregate, previous] : writes) {
      auto it = stored.find(aggregate.id());
      if (previous) {
        if (it == stored.end() || it->second.version() != *previous) {
          throw app::TransientStoreError(what + " changed concurrently");
        }
      } else if (it != stored.end()) {
        throw std::logic_error(what + " id inserted twice");
      }
    }
  }

  domain::Result<std::string> Commit() override {
    if (committed_) throw std::logic_error("transaction already committed");
    std::lock_guard lock(store_.mu_);
    auto& state = store_.state_;
    if (store_.hard_failures_ > 0) {
      --store_.hard_failures_;
      throw std::runtime_error(store_.hard_failure_message_);
    }
    if (store_.transient_failures_ > 0) {
      --store_.transient_failures_;
      throw app::TransientStoreError("injected transient failure");
    }

    // ---- check everything first ----
    CheckVersions(customers_, state.customers, "customer");
    {
      // Emails after this commit: stored ones not rewritten here, plus ours.
      std::map<std::string, domain::CustomerId> emails;
      for (const auto& [id, customer] : state.customers) {
        // (An init-capture: clang before 16 cannot capture a structured binding.)
        const bool rewritten =
            std::any_of(customers_.begin(), customers_.end(),
                        [&stored = id](const auto& w) { return w.value.id() == stored; });
        if (!rewritten) emails.emplace(InMemoryWriteStore::Lower(customer.email()), id);
      }
      for (const auto& [customer, previous] : customers_) {
        auto [it, inserted] =
            emails.emplace(InMemoryWriteStore::Lower(customer.email()), customer.id());
        if (!inserted && it->second != customer.id()) {
          return std::unexpected(
              domain::Conflict("email_taken", "a customer with this email already exists"));
        }
      }
    }
    for (const auto& [product, previous] : products_) {
      auto it = state.products.find(product.id());
      if (previous) {
        if (it == state.products.end() || it->second.version() != *previous ||
            !Unchanged(product.id(), it->second)) {
          throw app::TransientStoreError("product changed concurrently");
        }
      } else {
        if (it != state.products.end()) throw std::logic_error("product id inserted twice");
        for (const auto& [id, stored] : state.products) {
          if (stored.sku() == product.sku()) {
            return std::unexpected(
                domain::Conflict("sku_taken", "a product with this sku already exists"));
          }
        }
        for (const auto& [other, other_previous] : products_) {
          if (!other_previous && other.id() != product.id() && other.sku() == product.sku()) {
            return std::unexpected(
                domain::Conflict("sku_taken", "a product with this sku already exists"));
          }
        }
      }
    }
    for (const auto& product : stock_) {
      auto it = state.products.find(product.id());
      if (it == state.products.end() || !Unchanged(product.id(), it->second)) {
        throw app::TransientStoreError("product stock changed concurrently");
      }
    }
    CheckVersions(orders_, state.orders, "order");
    for (const auto& [idempotency, result] : keys_) {
      if (state.idempotency_keys.contains(idempotency.key)) {
        throw app::TransientStoreError("idempotency key saved concurrently");
      }
    }

    // ---- apply ----
    const std::string token = std::to_string(++state.last_token);
    ++state.commits;
    for (const auto& [customer, previous] : customers_) {
      state.customers.insert_or_assign(customer.id(), customer);
    }
    for (const auto& [product, previous] : products_) {
      state.products.insert_or_assign(product.id(), product);
    }
    for (const auto& product : stock_) {
      auto it = state.products.find(product.id());
      it->second = domain::Product::Rehydrate(it->second.id(), it->second.sku(), it->second.name(),
                                              it->second.price_cents(), product.stock(),
                                              it->second.version());
    }
    for (const auto& [order, previous] : orders_) {
      state.orders.insert_or_assign(order.id(), order);
    }
    state.events.insert(state.events.end(), events_.begin(), events_.end());
    for (auto [idempotency, result] : keys_) {
      result.consistency_token = token;
      state.idempotency_keys.insert_or_assign(
          idempotency.key, app::StoredCommand{idempotency.fingerprint, std::move(result)});
    }
    committed_ = true;
    return token;
  }

 private:
  template <class T>
  struct Write {
    T value;
    std::optional<std::int64_t> previous;
  };

  // Copies without pending events, as a reload from the database would be.
  static domain::Customer Clean(const domain::Customer& c) {
    return domain::Customer::Rehydrate(c.id(), c.name(), c.email(), c.version());
  }
  static domain::Product Clean(const domain::Product& p) {
    return domain::Product::Rehydrate(p.id(), p.sku(), p.name(), p.price_cents(), p.stock(),
                                      p.version());
  }
  static domain::Order Clean(const domain::Order& o) {
    return domain::Order::Rehydrate(domain::Order::State{o.id(), o.customer_id(), o.status(),
                                                         o.lines(), o.total_cents(), o.version()});
  }

  // True when a product this transaction loaded for update still has the version and stock it
  // had then (or it was not loaded for update).
  bool Unchanged(const domain::ProductId& id, const domain::Product& stored) const {
    auto it = read_products_.find(id);
    if (it == read_products_.end()) return true;
    return it->second.first == stored.version() && it->second.second == stored.stock();
  }

  InMemoryWriteStore& store_;
  std::map<domain::ProductId, std::pair<std::int64_t, std::int64_t>> read_products_;
  std::vector<Write<domain::Customer>> customers_;
  std::vector<Write<domain::Product>> products_;
  std::vector<domain::Product> stock_;
  std::vector<Write<domain::Order>> orders_;
  std::vector<domain::DomainEvent> events_;
  std::vector<std::pair<app::Idempotency, app::CommandResult>> keys_;
  bool committed_ = false;
};

inline std::unique_ptr<app::WriteTransaction> InMemoryWriteStore::Begin() {
  return std::make_unique<InMemoryWriteTransaction>(*this);
}

// A clock that starts at a fixed instant and advances 1 ms per call.
class TestClock : public app::Clock {
 public:
  explicit TestClock(
      domain::Timestamp start = domain::Timestamp(std::chrono::milliseconds(1'790'000'000'000)))
      : next_(start.time_since_epoch().count()) {}
  domain::Timestamp Now() override {
    return domain::Timestamp(std::chrono::milliseconds(next_.fetch_add(1)));
  }

 private:
  std::atomic<std::int64_t> next_;
};

// Deterministic, distinct version-4 UUIDs.
class CountingIds : public app::IdGenerator {
 public:
  explicit CountingIds(std::uint64_t seed = 0x5eed) : seed_(seed) {}
  domain::Uuid NewId() override {
    return domain::Uuid::V4FromRandom(seed_, next_.fetch_add(1) + 1);
  }

 private:
  std::uint64_t seed_;
  std::atomic<std::uint64_t> next_{0};
};

}  // namespace shopcqrs::testing
