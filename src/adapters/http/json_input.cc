#include "adapters/http/json_input.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <boost/json/value.hpp>

#include "domain/values.h"

namespace shopcqrs::adapters::http {

namespace json = boost::json;

namespace {

std::string Field(std::string_view prefix, std::string_view key) {
  std::string out;
  out.reserve(prefix.size() + key.size());
  out += prefix;
  out += key;
  return out;
}

const json::value* Find(const json::object& object, std::string_view key) {
  return object.if_contains(key);
}

domain::Result<std::string> AsString(const json::value& value, const std::string& field) {
  const json::string* s = value.if_string();
  if (s == nullptr) return std::unexpected(domain::ValidationFailed(field + " must be a string"));
  const std::string_view view(s->data(), s->size());
  if (view.find('\0') != std::string_view::npos) {
    return std::unexpected(
        domain::ValidationFailed(field + " must not contain NUL (U+0000) characters"));
  }
  return std::string(view);
}

domain::Result<std::int64_t> AsInt64(const json::value& value, const std::string& field) {
  switch (value.kind()) {
    case json::kind::int64:
      return value.get_int64();
    case json::kind::uint64:
      if (value.get_uint64() >
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return std::unexpected(domain::ValidationFailed(field + " is out of range"));
      }
      return static_cast<std::int64_t>(value.get_uint64());
    case json::kind::double_: {
      // Integers too large for 64 bits arrive as doubles: report them as out of range.
      const double d = value.get_double();
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) >= 9.2e18) {
        return std::unexpected(domain::ValidationFailed(field + " is out of range"));
      }
      return std::unexpected(domain::ValidationFailed(field + " must be an integer"));
    }
    default:
      return std::unexpected(domain::ValidationFailed(field + " must be an integer"));
  }
}

}  // namespace

domain::Result<std::string> RequiredString(const json::object& object, std::string_view key,
                                           std::string_view prefix) {
  const std::string field = Field(prefix, key);
  const json::value* value = Find(object, key);
  if (value == nullptr) return std::unexpected(domain::ValidationFailed(field + " is required"));
  return AsString(*value, field);
}

domain::Result<std::optional<std::string>> OptionalString(const json::object& object,
                                                          std::string_view key,
                                                          std::string_view prefix) {
  const json::value* value = Find(object, key);
  if (value == nullptr || value->is_null()) return std::optional<std::string>();
  auto text = AsString(*value, Field(prefix, key));
  if (!text) return std::unexpected(std::move(text.error()));
  return std::optional<std::string>(std::move(*text));
}

domain::Result<std::int64_t> RequiredInt64(const json::object& object, std::string_view key,
                                           std::string_view prefix) {
  const std::string field = Field(prefix, key);
  const json::value* value = Find(object, key);
  if (value == nullptr) return std::unexpected(domain::ValidationFailed(field + " is required"));
  return AsInt64(*value, field);
}

domain::Result<std::optional<std::int64_t>> OptionalInt64(const json::object& object,
                                                          std::string_view key,
                                                          std::string_view prefix) {
  const json::value* value = Find(object, key);
  if (value == nullptr || value->is_null()) return std::optional<std::int64_t>();
  auto number = AsInt64(*value, Field(prefix, key));
  if (!number) return std::unexpected(std::move(number.error()));
  return std::optional<std::int64_t>(*number);
}

domain::Result<domain::Uuid> RequiredUuid(const json::object& object, std::string_view key,
                                          std::string_view prefix) {
  const std::string field = Field(prefix, key);
  const json::value* value = Find(object, key);
  if (value == nullptr) return std::unexpected(domain::ValidationFailed(field + " is required"));
  const json::string* text = value->if_string();
  if (text == nullptr) return std::unexpected(domain::ValidationFailed(field + " must be a UUID"));
  auto uuid = domain::Uuid::Parse(std::string_view(text->data(), text->size()));
  if (!uuid) return std::unexpected(domain::ValidationFailed(field + " must be a UUID"));
  return *uuid;
}

domain::Result<std::vector<const json::object*>> RequiredObjectArray(const json::object& object,
                                                                     std::string_view key,
                                                                     std::string_view prefix) {
  const std::string field = Field(prefix, key);
  const json::value* value = Find(object, key);
  if (value == nullptr) return std::unexpected(domain::ValidationFailed(field + " is required"));
  const json::array* array = value->if_array();
  if (array == nullptr) {
    return std::unexpected(domain::ValidationFailed(field + " must be an array"));
  }
  std::vector<const json::object*> items;
  items.reserve(array->size());
  for (std::size_t i = 0; i < array->size(); ++i) {
    const json::object* item = (*array)[i].if_object();
    if (item == nullptr) {
      return std::unexpected(
          domain::ValidationFailed(fmt::format("{}[{}] must be an object", field, i)));
    }
    items.push_back(item);
  }
  return items;
}

domain::Result<std::vector<domain::LineRequest>> OrderLines(const json::object& body,
                                                            std::string_view key) {
  auto items = RequiredObjectArray(body, key);
  if (!items) return std::unexpected(std::move(items.error()));
  if (items->empty() || items->size() > domain::kMaxOrderLines) {
    return std::unexpected(domain::ValidationFailed(
        fmt::format("{} must contain between 1 and {} items", key, domain::kMaxOrderLines)));
  }
  std::vector<domain::LineRequest> lines;
  lines.reserve(items->size());
  for (std::size_t i = 0; i < items->size(); ++i) {
    const std::string prefix = fmt::format("{}[{}].", key, i);
    const json::object& item = *(*items)[i];
    auto product_id = RequiredUuid(item, "product_id", prefix);
    if (!product_id) return std::unexpected(std::move(product_id.error()));
    auto quantity = RequiredInt64(item, "quantity", prefix);
    if (!quantity) return std::unexpected(std::move(quantity.error()));
    lines.push_back(domain::LineRequest{domain::ProductId(*product_id), *quantity});
  }
  return lines;
}

}  // namespace shopcqrs::adapters::http
