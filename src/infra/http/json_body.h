#pragma once

// Request bodies of JSON endpoints: ParseJsonBody checks the media type (415) and parses with
// Boost.JSON (400 malformed_json for bad syntax, invalid UTF-8, lone surrogate escapes, nesting
// deeper than 32; 400 validation_failed for a top-level value that is not an object).

#include <expected>
#include <string_view>

#include <boost/json/object.hpp>

#include "infra/http/problem.h"
#include "infra/http/router.h"

namespace shopcqrs::infra::http {

enum class BodyPolicy {
  kRequired,  // a JSON object body with Content-Type application/json
  kOptional,  // as above, or an empty body (with or without Content-Type) meaning {}
};

// True for "application/json" with any parameters, case-insensitive; a charset parameter, if
// present, must be utf-8.
bool IsJsonContentType(std::string_view content_type);

std::expected<boost::json::object, Problem> ParseJsonBody(
    const Request& request, BodyPolicy policy = BodyPolicy::kRequired);

}  // namespace shopcqrs::infra::http
