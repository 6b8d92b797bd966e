#pragma once

// RFC 7807 problem details: {"type","title","status","detail","code"} as
// application/problem+json, and the problems any HTTP endpoint may answer.

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "infra/http/router.h"

namespace shopcqrs::infra::http {

inline constexpr std::string_view kProblemContentType = "application/problem+json";

// A problem before it is rendered.
struct Problem {
  int status = 500;
  std::string code;            // stable snake_case machine code
  std::string detail;          // human readable
  HeaderList headers;          // e.g. Allow, Retry-After
  boost::json::object extras;  // extension members (e.g. "checks" on /readyz)
};

// "Not Found", "Unprocessable Content", ...; "Error" for an unknown status.
std::string_view ReasonPhrase(int status);
// "urn:shopcqrs:problem:<code>"
std::string ProblemType(std::string_view code);

Response ToResponse(const Problem& problem);
// The JSON body alone.
std::string ProblemJson(const Problem& problem);

Problem MakeProblem(int status, std::string_view code, std::string_view detail);

Problem ValidationFailed(std::string_view detail);                                // 400
Problem MalformedJson(std::string_view detail);                                   // 400
Problem NotFound(std::string_view detail = "resource not found");                 // 404
Problem MethodNotAllowed(std::string_view allow);                                 // 405 + Allow
Problem PayloadTooLarge(std::string_view detail = "request body exceeds 1 MiB");  // 413
Problem UnsupportedMediaType(
    std::string_view detail = "Content-Type must be application/json");  // 415
Problem InternalError();  // 500, generic detail: no internals leak
// 503; `code` is e.g. "service_unavailable" or "read_model_behind".
Problem ServiceUnavailable(std::string_view code, std::string_view detail,
                           std::optional<int> retry_after_seconds = std::nullopt);

}  // namespace shopcqrs::infra::http
