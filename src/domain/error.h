#pragma once

#include <expected>
#include <string>
#include <utility>

namespace shopcqrs::domain {

// Expected business failures. The HTTP layer alone maps a category to a status code:
// validation 400, not found 404, conflict 409, precondition 412, business rule 422, forbidden
// 403 (the caller may not do this; see app::Principal).
enum class ErrorCategory {
  kValidation,
  kNotFound,
  kConflict,
  kPrecondition,
  kBusinessRule,
  kForbidden
};

struct Error {
  ErrorCategory category;
  std::string code;    // stable snake_case machine code, e.g. "invalid_transition"
  std::string detail;  // human readable; for validation errors it names the field

  friend bool operator==(const Error&, const Error&) = default;
};

template <class T>
using Result = std::expected<T, Error>;

inline Error ValidationFailed(std::string detail) {
  return {ErrorCategory::kValidation, "validation_failed", std::move(detail)};
}
inline Error NotFound(std::string detail) {
  return {ErrorCategory::kNotFound, "not_found", std::move(detail)};
}
inline Error Conflict(std::string code, std::string detail) {
  return {ErrorCategory::kConflict, std::move(code), std::move(detail)};
}
inline Error BusinessRule(std::string code, std::string detail) {
  return {ErrorCategory::kBusinessRule, std::move(code), std::move(detail)};
}
inline Error VersionMismatch(std::string detail) {
  return {ErrorCategory::kPrecondition, "version_mismatch", std::move(detail)};
}
inline Error Forbidden(std::string detail) {
  return {ErrorCategory::kForbidden, "forbidden", std::move(detail)};
}
inline Error InvalidTransition(std::string detail) {
  return Conflict("invalid_transition", std::move(detail));
}

}  // namespace shopcqrs::domain
