#pragma once

// Typed fields of JSON request bodies (parsed by infra::http::ParseJsonBody).
//
// The getters report 400 validation_failed naming the field, e.g. "lines[2].product_id must be
// a UUID". Unknown fields are ignored. A JSON null for an optional field means "absent". Strings
// may not contain U+0000 (the write database cannot store it). Integers must be JSON integers
// within int64: 1.5, 5.0, 1e3, "5", true and 2^63 are all rejected.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "domain/error.h"
#include "domain/ids.h"
#include "domain/order.h"

namespace shopcqrs::adapters::http {

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
