#pragma once

// Request-body parsing for JSON endpoints.
//
// ParseJsonBody checks the media type (415) and parses with Boost.JSON (400 malformed_json for
// bad syntax, invalid UTF-8, lone surrogate escapes, nesting deeper than 32, or a top-level
// value that is not an object). The typed getters report 400 validation_failed naming the
// field, e.g. "lines[2].product_id must be a UUID". Unknown fields are ignored. A JSON null
// for an optional field means "absent". Strings may not contain U+0000 (the write database
// cannot store it). Integers must be JSON integers within int64: 1.5, 5.0, 1e3, "5", true and
// 2^63 are all rejected.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "adapters/http/problem.h"
#include "adapters/http/router.h"
#include "domain/error.h"
#include "domain/ids.h"
#include "domain/order.h"

namespace shopcqrs::adapters::http {

enum class BodyPolicy {
  kRequired,  // a JSON object body with Content-Type application/json
  kOptional,  // as above, or an empty body (with or without Content-Type) meaning {}
};

// True for "application/json" with any parameters, case-insensitive; a charset parameter, if
// present, must be utf-8.
bool IsJsonContentType(std::string_view content_type);

std::expected<boost::json::object, Problem> ParseJsonBody(
    const Request& request, BodyPolicy policy = BodyPolicy::kRequired);

// Getters. `prefix` is prepended to the key in error details ("lines[2]." + "quantity").
domain::Result<std::string> RequiredString(const boost::json::object& object, std::string_view key,
                                           std::string_view prefix = {});
domain::Result<std::optional<std::string>> OptionalString(const boost::json::object& object,
                                                          std::string_view key,
                                                          std::string_view prefix = {});
domain::Result<std::int64_t> RequiredInt64(const boost::json::object& object, std::string_view key,
                                           std::string_view prefix = {});
domain::Result<std::optional<std::int64_t>> OptionalInt64(const boost::json::object& object,
                                                          std::string_view key,
                                                          std::string_view prefix = {});
// A UUID in canonical 8-4-4-4-12 text (either case).
domain::Result<domain::Uuid> RequiredUuid(const boost::json::object& object, std::string_view key,
                                          std::string_view prefix = {});
// An array whose elements are all objects (element errors name "key[i]").
domain::Result<std::vector<const boost::json::object*>> RequiredObjectArray(
    const boost::json::object& object, std::string_view key, std::string_view prefix = {});

// `lines: [{product_id, quantity}]` of POST /v1/orders: 1..100 lines, product_id a UUID,
// quantity an integer (its range is the domain's to check).
domain::Result<std::vector<domain::LineRequest>> OrderLines(const boost::json::object& body,
                                                            std::string_view key = "lines");

}  // namespace shopcqrs::adapters::http
