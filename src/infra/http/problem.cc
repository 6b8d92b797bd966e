#include "infra/http/problem.h"

#include <fmt/format.h>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace shopcqrs::infra::http {

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

std::string ProblemType(std::string_view code) {
  return fmt::format("urn:shopcqrs:problem:{}", code);
}

std::string ProblemJson(const Problem& problem) {
  boost::json::object body;
  body.reserve(5 + problem.extras.size());
  body["type"] = ProblemType(problem.code);
  body["title"] = ReasonPhrase(problem.status);
  body["status"] = problem.status;
  body["detail"] = problem.detail;
  body["code"] = problem.code;
  for (const auto& [key, value] : problem.extras) {
    if (!body.contains(key)) body[key] = value;  // standard members cannot be overridden
  }
  return boost::json::serialize(body);
}

Response ToResponse(const Problem& problem) {
  Response response;
  response.status = problem.status;
  response.body = ProblemJson(problem);
  response.content_type = std::string(kProblemContentType);
  response.headers = problem.headers;
  return response;
}

Problem MakeProblem(int status, std::string_view code, std::string_view detail) {
  return Problem{status, std::string(code), std::string(detail), {}, {}};
}

Problem ValidationFailed(std::string_view detail) {
  return MakeProblem(400, "validation_failed", detail);
}

Problem MalformedJson(std::string_view detail) {
  return MakeProblem(400, "malformed_json", detail);
}

Problem NotFound(std::string_view detail) { return MakeProblem(404, "not_found", detail); }

Problem MethodNotAllowed(std::string_view allow) {
  Problem problem =
      MakeProblem(405, "method_not_allowed",
                  fmt::format("method not allowed for this resource; allowed: {}", allow));
  problem.headers.emplace_back("Allow", std::string(allow));
  return problem;
}

Problem PayloadTooLarge(std::string_view detail) {
  return MakeProblem(413, "payload_too_large", detail);
}

Problem UnsupportedMediaType(std::string_view detail) {
  return MakeProblem(415, "unsupported_media_type", detail);
}

Problem InternalError() {
  return MakeProblem(500, "internal_error",
                     "the server failed to handle the request; it has been logged with the "
                     "request id");
}

Problem ServiceUnavailable(std::string_view code, std::string_view detail,
                           std::optional<int> retry_after_seconds) {
  Problem problem = MakeProblem(503, code, detail);
  if (retry_after_seconds) {
    problem.headers.emplace_back("Retry-After", std::to_string(*retry_after_seconds));
  }
  return problem;
}

}  // namespace shopcqrs::infra::http
