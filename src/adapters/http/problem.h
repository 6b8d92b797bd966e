#pragma once

// The domain's errors as problem details (infra/http/problem.h). The HTTP layer alone maps
// domain error categories to status codes.

#include "domain/error.h"
#include "infra/http/problem.h"

namespace shopcqrs::adapters::http {

// validation 400, not found 404, conflict 409, precondition 412, business rule 422,
// forbidden 403.
int StatusFor(domain::ErrorCategory category);

infra::http::Problem FromError(const domain::Error& error);

infra::http::Problem IdempotencyKeyReused();  // 422

}  // namespace shopcqrs::adapters::http
