#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "domain/ids.h"
#include "domain/order.h"

namespace shopcqrs::app {

// Commands as the use cases receive them: already parsed from transport, not yet validated
// against business limits (the domain does that). `expected_version` is If-Match.
struct RegisterCustomer {
  std::string name;
  std::string email;
};
struct ChangeCustomerDetails {
  domain::CustomerId id;
  std::optional<std::string> name;
  std::optional<std::string> email;
  std::optional<std::int64_t> expected_version;
};
struct AddProduct {
  std::string sku;
  std::string name;
  std::int64_t price_cents = 0;
  std::int64_t stock = 0;
};
struct ChangeProductPrice {
  domain::ProductId id;
  std::int64_t price_cents = 0;
  std::optional<std::int64_t> expected_version;
};
struct RestockProduct {
  domain::ProductId id;
  std::int64_t quantity = 0;
  std::optional<std::int64_t> expected_version;
};
struct PlaceOrder {
  domain::CustomerId customer_id;
  std::vector<domain::LineRequest> lines;
};
struct PayOrder {
  domain::OrderId id;
  std::int64_t amount_cents = 0;
  std::string payment_reference;
  std::optional<std::int64_t> expected_version;
};
struct ShipOrder {
  domain::OrderId id;
  std::string tracking_number;
  std::optional<std::int64_t> expected_version;
};
struct DeliverOrder {
  domain::OrderId id;
  std::optional<std::int64_t> expected_version;
};
struct CancelOrder {
  domain::OrderId id;
  std::string reason;
  std::optional<std::int64_t> expected_version;
};

// Idempotency-Key handling: `fingerprint` identifies the request (method, route and body)
// so that the same key with a different request is told apart. `legacy_fingerprint`, when set,
// is the same request's fingerprint in the earlier format, accepted for keys stored before the
// format changed (they expire like every key).
struct Idempotency {
  std::string key;
  std::string fingerprint;
  std::string legacy_fingerprint;
};

// What a successful command answers. Fields that do not apply to a command stay empty; the
// transport decides which ones a response shows.
struct CommandResult {
  std::string id;
  std::int64_t version = 0;
  std::string consistency_token;
  bool created = false;               // 201 rather than 200
  std::optional<std::string> status;  // orders: "placed", "paid", ...
  std::optional<std::int64_t> total_cents;
  std::optional<std::string> name;   // customers, products
  std::optional<std::string> email;  // customers
  std::optional<std::string> sku;    // products
  std::optional<std::int64_t> price_cents;
  std::optional<std::int64_t> stock;
  // Answered from a stored Idempotency-Key rather than done now (not part of the answer's
  // value: a replay equals the first answer).
  bool replayed = false;

  friend bool operator==(const CommandResult& a, const CommandResult& b) {
    auto fields = [](const CommandResult& r) {
      return std::tie(r.id, r.version, r.consistency_token, r.created, r.status, r.total_cents,
                      r.name, r.email, r.sku, r.price_cents, r.stock);
    };
    return fields(a) == fields(b);
  }
};

}  // namespace shopcqrs::app
