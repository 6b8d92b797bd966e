#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "application/commands.h"
#include "domain/customer.h"
#include "domain/error.h"
#include "domain/events.h"
#include "domain/order.h"
#include "domain/product.h"

namespace shopcqrs::app {

// Thrown by a write store for a fault that a retry of the whole command may cure:
// serialization failure, deadlock, a lost race on an idempotency key.
class TransientStoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by any store when it cannot be reached (server down, connection lost, pool
// exhausted). Transports answer 503: the request may be retried later.
class StoreUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct StoredCommand {
  std::string fingerprint;
  CommandResult result;  // consistency_token may be empty if it was never recorded
};

// One write-database transaction (unit of work). Loads run when called; saves and appended
// events are queued and sent together with the commit. Destroying an uncommitted transaction
// rolls it back. Every command that changes an existing aggregate calls LockAggregate first,
// before anything else that could write: this orders its transaction id after every earlier
// transaction on that aggregate, which the gap-free outbox reader relies on.
class WriteTransaction {
 public:
  virtual ~WriteTransaction() = default;

  virtual void LockAggregate(const domain::Uuid& aggregate_id) = 0;
  virtual std::optional<StoredCommand> FindIdempotencyKey(const std::string& key) = 0;

  virtual std::optional<domain::Customer> LoadCustomer(const domain::CustomerId& id) = 0;
  virtual bool CustomerExists(const domain::CustomerId& id) = 0;
  virtual std::optional<domain::Product> LoadProduct(const domain::ProductId& id) = 0;
  // Loads and row-locks the given products (ids in ascending order, no repeats); missing
  // ids are absent from the answer.
  virtual std::vector<domain::Product> LoadProductsForUpdate(
      const std::vector<domain::ProductId>& ids) = 0;
  virtual std::optional<domain::Order> LoadOrder(const domain::OrderId& id) = 0;

  // Queued writes. `previous_version` guards against lost updates.
  virtual void InsertCustomer(const domain::Customer& customer) = 0;
  virtual void UpdateCustomer(const domain::Customer& customer, std::int64_t previous_version) = 0;
  virtual void InsertProduct(const domain::Product& product) = 0;
  virtual void UpdateProduct(const domain::Product& product, std::int64_t previous_version) = 0;
  // Sets the stock of products whose only change is a reservation or release.
  virtual void UpdateStock(const std::vector<domain::Product>& products) = 0;
  virtual void InsertOrder(const domain::Order& order) = 0;
  // Persists the order's new state and the rows its latest event implies (payment,
  // shipment, refund).
  virtual void UpdateOrder(const domain::Order& order, std::int64_t previous_version) = 0;
  virtual void AppendEvents(const std::vector<domain::DomainEvent>& events) = 0;
  virtual void SaveIdempotencyKey(const Idempotency& idempotency, const CommandResult& result) = 0;

  // Sends the queued writes and commits. Unique-constraint clashes that are business errors
  // come back as errors (409 email_taken, 409 sku_taken); nothing is then changed. On success
  // answers the consistency token of this commit (monotonic in commit order).
  virtual domain::Result<std::string> Commit() = 0;
};

class WriteStore {
 public:
  virtual ~WriteStore() = default;
  virtual std::unique_ptr<WriteTransaction> Begin() = 0;
  // A consistency token covering every commit so far (used to answer an idempotent replay
  // whose original token was never recorded).
  virtual std::string CurrentToken() = 0;
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual domain::Timestamp Now() = 0;
};

class IdGenerator {
 public:
  virtual ~IdGenerator() = default;
  virtual domain::Uuid NewId() = 0;
};

}  // namespace shopcqrs::app
