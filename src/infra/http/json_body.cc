#include "infra/http/json_body.h"

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/value.hpp>

namespace shopcqrs::infra::http {

namespace json = boost::json;

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool IsJsonContentType(std::string_view content_type) {
  const std::size_t semicolon = content_type.find(';');
  if (!EqualsIgnoreCase(Trim(content_type.substr(0, semicolon)), "application/json")) {
    return false;
  }
  // Parameters: only charset is interpreted; it must name UTF-8 if present.
  std::string_view params =
      semicolon == std::string_view::npos ? std::string_view() : content_type.substr(semicolon);
  while (!params.empty()) {
    params.remove_prefix(1);  // ';'
    const std::size_t next = params.find(';');
    const std::string_view param = Trim(params.substr(0, next));
    params = next == std::string_view::npos ? std::string_view() : params.substr(next);
    const std::size_t eq = param.find('=');
    if (eq == std::string_view::npos) continue;
    if (!EqualsIgnoreCase(Trim(param.substr(0, eq)), "charset")) continue;
    std::string_view value = Trim(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (!EqualsIgnoreCase(value, "utf-8") && !EqualsIgnoreCase(value, "utf8")) return false;
  }
  return true;
}

std::expected<json::object, Problem> ParseJsonBody(const Request& request, BodyPolicy policy) {
  if (request.body.empty()) {
    if (policy == BodyPolicy::kOptional) return json::object();
    return std::unexpected(MalformedJson("request body is empty; expected a JSON object"));
  }
  const auto content_type = request.Header("Content-Type");
  if (!content_type || !IsJsonContentType(*content_type)) {
    return std::unexpected(UnsupportedMediaType());
  }
  json::parse_options options;
  options.max_depth = 32;
  options.allow_invalid_utf8 = false;
  options.allow_comments = false;
  options.allow_trailing_commas = false;
  boost::system::error_code ec;
  json::value value = json::parse(request.body, ec, json::storage_ptr(), options);
  if (ec) {
    return std::unexpected(
        MalformedJson(fmt::format("request body is not valid JSON: {}", ec.message())));
  }
  if (!value.is_object()) {
    // Well-formed JSON of the wrong type is a validation error, not malformed JSON.
    return std::unexpected(ValidationFailed("request body must be a JSON object"));
  }
  return std::move(value.get_object());
}

}  // namespace shopcqrs::infra::http
