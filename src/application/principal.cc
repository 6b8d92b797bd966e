#include "application/principal.h"

namespace shopcqrs::app {

std::string_view RoleName(PrincipalRole role) {
  switch (role) {
    case PrincipalRole::kAnonymous:
      return "anonymous";
    case PrincipalRole::kCustomer:
      return "customer";
    case PrincipalRole::kPayments:
      return "payments";
    case PrincipalRole::kAdmin:
      return "admin";
    case PrincipalRole::kSystem:
      return "system";
  }
  return "unknown";
}

std::string Principal::IdempotencyScope() const {
  if (role == PrincipalRole::kSystem) return {};
  return std::string(RoleName(role)) + ":" + subject;
}

}  // namespace shopcqrs::app
