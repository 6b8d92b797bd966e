#pragma once

#include <functional>
#include <optional>

#include "application/commands.h"
#include "application/ports.h"
#include "application/principal.h"
#include "domain/error.h"

namespace shopcqrs::app {

// The write side's use cases. Each runs as one write transaction: load, decide, persist state
// and append the events together. Transient store faults are retried (a bounded number of
// times, with backoff); business failures come back as errors and change nothing.
//
// Every use case acts for a Principal (`who`; System(), everything, when the caller does not
// say): a customer acts on its own aggregates only, whatever the command names -- another
// customer's record or order is "not found" (its existence is not revealed), placing an order
// for another customer and cancelling an order that is no longer `placed` are forbidden.
// Product commands, ship and deliver need admin (or System); pay needs payments or admin.
// Idempotency-Keys are scoped to the principal (Principal::IdempotencyScope): another
// principal's key with the same text is another key.
class CommandService {
 public:
  struct Options {
    int max_attempts = 8;
  };
  CommandService(WriteStore& store, Clock& clock, IdGenerator& ids)
      : CommandService(store, clock, ids, Options{}) {}
  CommandService(WriteStore& store, Clock& clock, IdGenerator& ids, Options options);

  using Key = std::optional<Idempotency>;

  domain::Result<CommandResult> Handle(const RegisterCustomer& cmd, const Key& key = {},
                                       const Principal& who = Principal::System());
  domain::Result<CommandResult> Handle(const ChangeCustomerDetails& cmd, const Key& key = {},
                                       const Principal& who = Principal::System());
  domain::Result<CommandResult> Handle(const AddProduct& cmd, const Key& key = {},
                                       const Principal& who = Principal::System());
  domain::Result<CommandResult> Handle(const ChangeProductPrice& cmd, const Key& key = {},
                                       const Principal& who = Principal::System());
  domain::Result<CommandResult> Handle(const RestockProduct& cmd, const Key& key = {},
                                       const Principal& who = Principal::System());
  domain::Result<CommandResult> Handle(const PlaceOrder& cmd, const Key& key = {},
                                       const Principal& who = Principal::System());
  domain::Result<CommandResult> Handle(const PayOrder& cmd, const Key& key = {},
                                       const Principal& who = Principal::System());
  domain::Result<CommandResult> Handle(const ShipOrder& cmd, const Key& key = {},
                                       const Principal& who = Principal::System());
  domain::Result<CommandResult> Handle(const DeliverOrder& cmd, const Key& key = {},
                                       const Principal& who = Principal::System());
  domain::Result<CommandResult> Handle(const CancelOrder& cmd, const Key& key = {},
                                       const Principal& who = Principal::System());

 private:
  using Body = std::function<domain::Result<CommandResult>(WriteTransaction&)>;
  // Runs `body` in a transaction with idempotency and retries around it.
  domain::Result<CommandResult> Run(const Key& key, const Principal& who, const Body& body);

  WriteStore& store_;
  Clock& clock_;
  IdGenerator& ids_;
  Options options_;
};

}  // namespace shopcqrs::app
