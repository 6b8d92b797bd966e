#include "adapters/http/problem.h"

namespace shopcqrs::adapters::http {

using infra::http::MakeProblem;
using infra::http::Problem;

int StatusFor(domain::ErrorCategory category) {
  switch (category) {
    case domain::ErrorCategory::kValidation:
      return 400;
    case domain::ErrorCategory::kNotFound:
      return 404;
    case domain::ErrorCategory::kConflict:
      return 409;
    case domain::ErrorCategory::kPrecondition:
      return 412;
    case domain::ErrorCategory::kBusinessRule:
      return 422;
    case domain::ErrorCategory::kForbidden:
      return 403;
  }
  return 500;
}

Problem FromError(const domain::Error& error) {
  return MakeProblem(StatusFor(error.category), error.code, error.detail);
}

Problem IdempotencyKeyReused() {
  return MakeProblem(422, "idempotency_key_reused",
                     "this Idempotency-Key was already used with a different request");
}

}  // namespace shopcqrs::adapters::http
