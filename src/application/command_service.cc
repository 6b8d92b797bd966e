#include "application/command_service.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <thread>

namespace shopcqrs::app {

using domain::Customer;
using domain::Error;
using domain::Order;
using domain::Product;
using domain::Result;

namespace {

template <class Aggregate>
Result<void> CheckVersion(const Aggregate& aggregate, const std::optional<std::int64_t>& expected) {
  if (expected && *expected != aggregate.version()) {
    return std::unexpected(domain::VersionMismatch("expected version " + std::to_string(*expected) +
                                                   " but the current version is " +
                                                   std::to_string(aggregate.version())));
  }
  return {};
}

// What every command on an existing aggregate decides once it has locked and loaded it
// (`aggregate`, null when missing): it must exist, match If-Match and accept `change`. Answers
// the version it had before the change, which guards the update.
template <class Aggregate, class Change>
Result<std::int64_t> Decide(Aggregate* aggregate, const char* missing,
                            const std::optional<std::int64_t>& expected, Change&& change) {
  if (!aggregate) return std::unexpected(domain::NotFound(missing));
  if (auto ok = CheckVersion(*aggregate, expected); !ok) return std::unexpected(ok.error());
  const auto previous = aggregate->version();
  if (auto ok = change(*aggregate); !ok) return std::unexpected(ok.error());
  return previous;
}

CommandResult OrderResult(const Order& order) {
  CommandResult result;
  result.id = order.id().ToString();
  result.version = order.version();
  result.status = std::string(domain::ToString(order.status()));
  return result;
}

CommandResult VersionResult(const std::string& id, std::int64_t version) {
  CommandResult result;
  result.id = id;
  result.version = version;
  return result;
}

// The answer of a command that created `aggregate` (a customer or a product), once it is
// inserted with its events.
template <class Aggregate>
CommandResult CreatedResult(const Aggregate& aggregate) {
  CommandResult result = VersionResult(aggregate.id().ToString(), aggregate.version());
  result.created = true;
  result.name = aggregate.name();
  return result;
}

// A client's key within the principal's scope. '\n' cannot occur in a key (printable ASCII), so
// two scopes never produce the same text; System's scope is empty: the keys stored before
// authentication existed.
std::string ScopedKey(const Principal& who, const std::string& key) {
  const std::string scope = who.IdempotencyScope();
  return scope.empty() ? key : scope + "\n" + key;
}

Error NeedsAdmin() { return domain::Forbidden("this command needs the admin role"); }

// Admin and System may do anything; the others only what each use case allows them below.
Result<void> RequireUnrestricted(const Principal& who) {
  if (!who.Unrestricted()) return std::unexpected(NeedsAdmin());
  return {};
}

void Backoff(int attempt) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const int cap_us = std::min(200 << attempt, 20'000);
  std::this_thread::sleep_for(std::chrono::microseconds(rng() % cap_us + 50));
}

}  // namespace

CommandService::CommandService(WriteStore& store, Clock& clock, IdGenerator& ids, Options options)
    : store_(store), clock_(clock), ids_(ids), options_(options) {}

Result<CommandResult> CommandService::Run(const Key& given_key, const Principal& who,
                                          const Body& body) {
  // Keys are the caller's own: another principal's key of the same text is another key.
  Key key = given_key;
  if (key) key->key = ScopedKey(who, key->key);
  for (int attempt = 1;; ++attempt) {
    try {
      auto tx = store_.Begin();
      if (key) {
        if (auto stored = tx->FindIdempotencyKey(key->key)) {
          const bool same =
              stored->fingerprint == key->fingerprint ||
              (!key->legacy_fingerprint.empty() && stored->fingerprint == key->legacy_fingerprint);
          if (!same) {
            return std::unexpected(domain::BusinessRule(
                "idempotency_key_reused",
                "the Idempotency-Key was already used for a different request"));
          }
          CommandResult replay = std::move(stored->result);
          replay.replayed = true;
          if (replay.consistency_token.empty()) replay.consistency_token = store_.CurrentToken();
          return replay;
        }
      }
      auto result = body(*tx);
      if (!result) return result;  // the transaction rolls back; nothing changed
      if (key) tx->SaveIdempotencyKey(*key, *result);
      auto token = tx->Commit();
      if (!token) return std::unexpected(std::move(token.error()));
      result->consistency_token = std::move(*token);
      return result;
    } catch (const TransientStoreError&) {
      if (attempt >= options_.max_attempts) throw;
      Backoff(attempt);
    }
  }
}

Result<CommandResult> CommandService::Handle(const RegisterCustomer& cmd, const Key& key,
                                             const Principal& who) {
  return Run(key, who, [&](WriteTransaction& tx) -> Result<CommandResult> {
    auto customer =
        Customer::Register(domain::CustomerId(ids_.NewId()), cmd.name, cmd.email, clock_.Now());
    if (!customer) return std::unexpected(customer.error());
    tx.InsertCustomer(*customer);
    tx.AppendEvents(customer->pending_events());
    CommandResult result = CreatedResult(*customer);
    result.email = customer->email();
    return result;
  });
}

Result<CommandResult> CommandService::Handle(const ChangeCustomerDetails& cmd, const Key& key,
                                             const Principal& who) {
  if (who.IsCustomer() && !who.IsCustomer(cmd.id)) {
    return std::unexpected(domain::NotFound("customer not found"));  // not revealed
  }
  if (!who.IsCustomer() && !who.Unrestricted()) return std::unexpected(NeedsAdmin());
  return Run(key, who, [&](WriteTransaction& tx) -> Result<CommandResult> {
    tx.LockAggregate(cmd.id.value());
    auto customer = tx.LoadCustomer(cmd.id);
    const auto previous =
        Decide(customer ? &*customer : nullptr, "customer not found", cmd.expected_version,
               [&](Customer& c) { return c.ChangeDetails(cmd.name, cmd.email, clock_.Now()); });
    if (!previous) return std::unexpected(previous.error());
    tx.UpdateCustomer(*customer, *previous);
    tx.AppendEvents(customer->pending_events());
    return VersionResult(customer->id().ToString(), customer->version());
  });
}

Result<CommandResult> CommandService::Handle(const AddProduct& cmd, const Key& key,
                                             const Principal& who) {
  if (auto allowed = RequireUnrestricted(who); !allowed) return std::unexpected(allowed.error());
  return Run(key, who, [&](WriteTransaction& tx) -> Result<CommandResult> {
    auto product = Product::Add(domain::ProductId(ids_.NewId()), cmd.sku, cmd.name, cmd.price_cents,
                                cmd.stock, clock_.Now());
    if (!product) return std::unexpected(product.error());
    tx.InsertProduct(*product);
    tx.AppendEvents(product->pending_events());
    CommandResult result = CreatedResult(*product);
    result.sku = product->sku();
    result.price_cents = product->price_cents();
    result.stock = product->stock();
    return result;
  });
}

namespace {

// Shared shape of the product commands that change one existing product.
template <class Change>
Result<CommandResult> ChangeProduct(WriteTransaction& tx, const domain::ProductId& id,
                                    const std::optional<std::int64_t>& expected_version,
                                    Change&& change) {
  tx.LockAggregate(id.value());
  auto products = tx.LoadProductsForUpdate({id});
  Product* product = products.empty() ? nullptr : &products.front();
  const auto previous = Decide(product, "product not found", expected_version, change);
  if (!previous) return std::unexpected(previous.error());
  tx.UpdateProduct(*product, *previous);
  tx.AppendEvents(product->pending_events());
  return VersionResult(product->id().ToString(), product->version());
}

// Shared shape of the order transitions: lock, load, check If-Match, decide, persist.
template <class Transition>
Result<CommandResult> ChangeOrder(WriteTransaction& tx, const domain::OrderId& id,
                                  const std::optional<std::int64_t>& expected_version,
                                  Transition&& transition) {
  tx.LockAggregate(id.value());
  auto order = tx.LoadOrder(id);
  const auto previous =
      Decide(order ? &*order : nullptr, "order not found", expected_version, transition);
  if (!previous) return std::unexpected(previous.error());
  tx.UpdateOrder(*order, *previous);
  tx.AppendEvents(order->pending_events());
  return OrderResult(*order);
}

}  // namespace

Result<CommandResult> CommandService::Handle(const ChangeProductPrice& cmd, const Key& key,
                                             const Principal& who) {
  if (auto allowed = RequireUnrestricted(who); !allowed) return std::unexpected(allowed.error());
  return Run(key, who, [&](WriteTransaction& tx) {
    return ChangeProduct(tx, cmd.id, cmd.expected_version, [&](Product& product) {
      return product.ChangePrice(cmd.price_cents, clock_.Now());
    });
  });
}

Result<CommandResult> CommandService::Handle(const RestockProduct& cmd, const Key& key,
                                             const Principal& who) {
  if (auto allowed = RequireUnrestricted(who); !allowed) return std::unexpected(allowed.error());
  return Run(key, who, [&](WriteTransaction& tx) {
    return ChangeProduct(tx, cmd.id, cmd.expected_version, [&](Product& product) {
      return product.Restock(cmd.quantity, clock_.Now());
    });
  });
}

namespace {

std::vector<domain::ProductId> SortedDistinctProducts(
    const std::vector<domain::LineRequest>& lines) {
  std::vector<domain::ProductId> ids;
  ids.reserve(lines.size());
  for (const auto& line : lines) ids.push_back(line.product_id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace

Result<CommandResult> CommandService::Handle(const PlaceOrder& cmd, const Key& key,
                                             const Principal& who) {
  if (!who.Unrestricted() && !who.IsCustomer(cmd.customer_id)) {
    return std::unexpected(domain::Forbidden("a customer places orders for itself only"));
  }
  return Run(key, who, [&](WriteTransaction& tx) -> Result<CommandResult> {
    // Validate the request's shape before touching the database.
    if (cmd.lines.empty() || cmd.lines.size() > domain::kMaxOrderLines) {
      return std::unexpected(
          domain::ValidationFailed("lines must contain between 1 and 100 items"));
    }
    if (!tx.CustomerExists(cmd.customer_id)) {
      return std::unexpected(domain::BusinessRule("unknown_customer", "customer does not exist"));
    }
    // Locks are taken in ascending id order so that concurrent orders cannot deadlock.
    std::map<domain::ProductId, Product> products;
    for (auto& product : tx.LoadProductsForUpdate(SortedDistinctProducts(cmd.lines))) {
      products.emplace(product.id(), std::move(product));
    }
    std::map<domain::ProductId, std::int64_t> stock_before;
    for (const auto& [id, product] : products) stock_before.emplace(id, product.stock());

    auto order = Order::Place(domain::OrderId(ids_.NewId()), cmd.customer_id, cmd.lines, products,
                              clock_.Now());
    if (!order) return std::unexpected(order.error());

    std::vector<Product> changed;
    for (auto& [id, product] : products) {
      if (product.stock() != stock_before.at(id)) changed.push_back(product);
    }
    tx.InsertOrder(*order);
    tx.UpdateStock(changed);
    tx.AppendEvents(order->pending_events());
    CommandResult result = OrderResult(*order);
    result.created = true;
    result.total_cents = order->total_cents();
    return result;
  });
}

Result<CommandResult> CommandService::Handle(const PayOrder& cmd, const Key& key,
                                             const Principal& who) {
  if (!who.Unrestricted() && who.role != PrincipalRole::kPayments) {
    return std::unexpected(domain::Forbidden("paying needs the payments or admin role"));
  }
  return Run(key, who, [&](WriteTransaction& tx) {
    return ChangeOrder(tx, cmd.id, cmd.expected_version, [&](Order& order) {
      return order.Pay(cmd.amount_cents, cmd.payment_reference, clock_.Now());
    });
  });
}

Result<CommandResult> CommandService::Handle(const ShipOrder& cmd, const Key& key,
                                             const Principal& who) {
  if (auto allowed = RequireUnrestricted(who); !allowed) return std::unexpected(allowed.error());
  return Run(key, who, [&](WriteTransaction& tx) {
    return ChangeOrder(tx, cmd.id, cmd.expected_version,
                       [&](Order& order) { return order.Ship(cmd.tracking_number, clock_.Now()); });
  });
}

Result<CommandResult> CommandService::Handle(const DeliverOrder& cmd, const Key& key,
                                             const Principal& who) {
  if (auto allowed = RequireUnrestricted(who); !allowed) return std::unexpected(allowed.error());
  return Run(key, who, [&](WriteTransaction& tx) {
    return ChangeOrder(tx, cmd.id, cmd.expected_version,
                       [&](Order& order) { return order.Deliver(clock_.Now()); });
  });
}

Result<CommandResult> CommandService::Handle(const CancelOrder& cmd, const Key& key,
                                             const Principal& who) {
  if (!who.Unrestricted() && !who.IsCustomer()) return std::unexpected(NeedsAdmin());
  return Run(key, who, [&](WriteTransaction& tx) -> Result<CommandResult> {
    tx.LockAggregate(cmd.id.value());
    auto order = tx.LoadOrder(cmd.id);
    if (order && who.IsCustomer()) {
      // A customer cancels its own orders (another's is not revealed), and only while placed.
      if (!who.IsCustomer(order->customer_id())) {
        return std::unexpected(domain::NotFound("order not found"));
      }
      if (order->status() != domain::OrderStatus::kPlaced) {
        return std::unexpected(
            domain::Forbidden("a customer cancels its orders only while they are placed"));
      }
    }
    const auto previous = Decide(order ? &*order : nullptr, "order not found", cmd.expected_version,
                                 [&](Order& o) { return o.Cancel(cmd.reason, clock_.Now()); });
    if (!previous) return std::unexpected(previous.error());
    // Return the reserved stock, locking products in ascending id order like PlaceOrder.
    std::vector<domain::ProductId> ids;
    for (const auto& line : order->lines()) ids.push_back(line.product_id);
    std::sort(ids.begin(), ids.end());
    auto products = tx.LoadProductsForUpdate(ids);
    for (auto& product : products) {
      for (const auto& line : order->lines()) {
        if (line.product_id == product.id()) product.Release(line.quantity);
      }
    }
    tx.UpdateOrder(*order, *previous);
    tx.UpdateStock(products);
    tx.AppendEvents(order->pending_events());
    return OrderResult(*order);
  });
}

}  // namespace shopcqrs::app
