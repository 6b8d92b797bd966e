#pragma once

// Who a command or query is for: the authenticated caller, as the use cases see it. The HTTP
// layer decides which routes a role may use (adapters/http/auth_policy.h); the use cases decide
// what a customer may do to which aggregate (its own only), whatever a request's body says.

#include <string>

#include "domain/ids.h"

namespace shopcqrs::app {

enum class PrincipalRole {
  kAnonymous,  // no credentials: signs up, nothing else
  kCustomer,   // one customer: its own record and orders
  kPayments,   // a payment provider's integration: records payments
  kAdmin,      // everything
  kSystem,     // authentication is off (auth.mode = "off"), or the process itself: everything
};

struct Principal {
  PrincipalRole role = PrincipalRole::kAnonymous;
  std::string subject;  // the token's `sub` (a customer's id for kCustomer)

  static Principal System() { return {PrincipalRole::kSystem, {}}; }
  static Principal Anonymous() { return {PrincipalRole::kAnonymous, {}}; }
  static Principal Admin(std::string subject) {
    return {PrincipalRole::kAdmin, std::move(subject)};
  }
  static Principal Payments(std::string subject) {
    return {PrincipalRole::kPayments, std::move(subject)};
  }
  static Principal Customer(const domain::CustomerId& id) {
    return {PrincipalRole::kCustomer, id.ToString()};
  }

  bool IsCustomer() const { return role == PrincipalRole::kCustomer; }
  // Whether this principal is the customer `id` (false for every other role).
  bool IsCustomer(const domain::CustomerId& id) const {
    return IsCustomer() && subject == id.ToString();
  }
  // Whether it may act on any customer's aggregates (admin, system; payments for payments).
  bool Unrestricted() const {
    return role == PrincipalRole::kAdmin || role == PrincipalRole::kSystem;
  }

  // The scope of its Idempotency-Keys: "" for kSystem (keys as stored before authentication),
  // else the role and subject. Keys of different scopes never meet.
  std::string IdempotencyScope() const;

  friend bool operator==(const Principal&, const Principal&) = default;
};

std::string_view RoleName(PrincipalRole role);  // "anonymous", "customer", ...

}  // namespace shopcqrs::app
