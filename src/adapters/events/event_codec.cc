#include "adapters/events/event_codec.h"

#include <cstddef>
#include <stdexcept>
#include <utility>
#include <variant>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "adapters/events/upcasters.h"

namespace shopcqrs::adapters::events {

namespace json = boost::json;
using namespace shopcqrs::domain;

namespace {

json::array LinesJson(const std::vector<PlacedLine>& lines) {
  json::array out;
  out.reserve(lines.size());
  for (const auto& line : lines) {
    out.push_back(json::object{{"product_id", line.product_id.ToString()},
                               {"sku", line.sku},
                               {"product_name", line.product_name},
                               {"quantity", line.quantity},
                               {"unit_price_cents", line.unit_price_cents}});
  }
  return out;
}

json::object ToJson(const CustomerRegistered& e) {
  return {{"customer_id", e.customer_id.ToString()}, {"name", e.name}, {"email", e.email}};
}
json::object ToJson(const CustomerDetailsChanged& e) {
  return {{"customer_id", e.customer_id.ToString()}, {"name", e.name}, {"email", e.email}};
}
json::object ToJson(const ProductAdded& e) {
  return {{"product_id", e.product_id.ToString()},
          {"sku", e.sku},
          {"name", e.name},
          {"price_cents", e.price_cents},
          {"stock", e.stock}};
}
json::object ToJson(const ProductPriceChanged& e) {  // v2
  return {{"product_id", e.product_id.ToString()},
          {"price_cents", e.price_cents},
          {"previous_price_cents", e.previous_price_cents}};
}
json::object ToJson(const ProductRestocked& e) {
  return {{"product_id", e.product_id.ToString()},
          {"quantity", e.quantity},
          {"stock_after", e.stock_after}};
}
json::object ToJson(const OrderPlaced& e) {
  return {{"order_id", e.order_id.ToString()},
          {"customer_id", e.customer_id.ToString()},
          {"lines", LinesJson(e.lines)},
          {"total_cents", e.total_cents}};
}
json::object ToJson(const OrderPaid& e) {
  return {{"order_id", e.order_id.ToString()},
          {"customer_id", e.customer_id.ToString()},
          {"amount_cents", e.amount_cents},
          {"payment_reference", e.payment_reference},
          {"lines", LinesJson(e.lines)}};
}
json::object ToJson(const OrderShipped& e) {
  return {{"order_id", e.order_id.ToString()},
          {"customer_id", e.customer_id.ToString()},
          {"tracking_number", e.tracking_number}};
}
json::object ToJson(const OrderDelivered& e) {
  return {{"order_id", e.order_id.ToString()}, {"customer_id", e.customer_id.ToString()}};
}
json::object ToJson(const OrderCancelled& e) {
  return {{"order_id", e.order_id.ToString()},
          {"customer_id", e.customer_id.ToString()},
          {"reason", e.reason},
          {"refunded_cents", e.refunded_cents},
          {"previous_status", ToString(e.previous_status)},
          {"lines", LinesJson(e.lines)}};
}

// Reading side.
const json::value& Field(const json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  if (!v) throw std::runtime_error("event payload lacks field " + std::string(name));
  return *v;
}
// A field's JSON type is checked before it is read: a payload of the wrong shape is a
// std::runtime_error naming the field, like a missing one (never Boost.JSON's logic errors).
[[noreturn]] void WrongType(std::string_view name, std::string_view expected) {
  throw std::runtime_error("event payload field " + std::string(name) + " is not " +
                           std::string(expected));
}
std::string_view Text(const json::object& o, std::string_view name) {
  const auto* text = Field(o, name).if_string();
  if (!text) WrongType(name, "a string");
  return *text;
}
std::string Str(const json::object& o, std::string_view name) { return std::string(Text(o, name)); }
std::int64_t Int(const json::object& o, std::string_view name) {
  return Field(o, name).to_number<std::int64_t>();
}
template <class IdT>
IdT IdField(const json::object& o, std::string_view name) {
  auto id = IdT::Parse(Text(o, name));
  if (!id) throw std::runtime_error("event payload field " + std::string(name) + " is no uuid");
  return *id;
}
std::vector<PlacedLine> Lines(const json::object& o) {
  std::vector<PlacedLine> lines;
  const auto* array = Field(o, "lines").if_array();
  if (!array) WrongType("lines", "an array");
  for (const auto& v : *array) {
    const auto* line = v.if_object();
    if (!line) WrongType("lines", "an array of objects");
    const auto& l = *line;
    lines.push_back(PlacedLine{IdField<ProductId>(l, "product_id"), Str(l, "sku"),
                               Str(l, "product_name"), Int(l, "quantity"),
                               Int(l, "unit_price_cents")});
  }
  return lines;
}

EventPayload Decode(std::string_view type, const json::object& o) {
  if (type == "CustomerRegistered") {
    return CustomerRegistered{IdField<CustomerId>(o, "customer_id"), Str(o, "name"),
                              Str(o, "email")};
  }
  if (type == "CustomerDetailsChanged") {
    return CustomerDetailsChanged{IdField<CustomerId>(o, "customer_id"), Str(o, "name"),
                                  Str(o, "email")};
  }
  if (type == "ProductAdded") {
    return ProductAdded{IdField<ProductId>(o, "product_id"), Str(o, "sku"), Str(o, "name"),
                        Int(o, "price_cents"), Int(o, "stock")};
  }
  if (type == "ProductPriceChanged") {
    return ProductPriceChanged{.product_id = IdField<ProductId>(o, "product_id"),
                               .price_cents = Int(o, "price_cents"),
                               .previous_price_cents = Int(o, "previous_price_cents")};
  }
  if (type == "ProductRestocked") {
    return ProductRestocked{IdField<ProductId>(o, "product_id"), Int(o, "quantity"),
                            Int(o, "stock_after")};
  }
  if (type == "OrderPlaced") {
    return OrderPlaced{IdField<OrderId>(o, "order_id"), IdField<CustomerId>(o, "customer_id"),
                       Lines(o), Int(o, "total_cents")};
  }
  if (type == "OrderPaid") {
    return OrderPaid{IdField<OrderId>(o, "order_id"), IdField<CustomerId>(o, "customer_id"),
                     Int(o, "amount_cents"), Str(o, "payment_reference"), Lines(o)};
  }
  if (type == "OrderShipped") {
    return OrderShipped{IdField<OrderId>(o, "order_id"), IdField<CustomerId>(o, "customer_id"),
                        Str(o, "tracking_number")};
  }
  if (type == "OrderDelivered") {
    return OrderDelivered{IdField<OrderId>(o, "order_id"), IdField<CustomerId>(o, "customer_id")};
  }
  if (type == "OrderCancelled") {
    auto previous = ParseOrderStatus(Text(o, "previous_status"));
    if (!previous) throw std::runtime_error("OrderCancelled has a bad previous_status");
    return OrderCancelled{IdField<OrderId>(o, "order_id"),
                          IdField<CustomerId>(o, "customer_id"),
                          Str(o, "reason"),
                          Int(o, "refunded_cents"),
                          *previous,
                          Lines(o)};
  }
  throw std::runtime_error("unknown event type " + std::string(type));
}

// Every event type has a current version.
constexpr bool Listed(std::string_view type) {
  for (const auto& entry : kCurrentVersions) {
    if (entry.type == type) return true;
  }
  return false;
}
template <std::size_t... I>
constexpr bool EveryTypeListed(std::index_sequence<I...>) {
  return (Listed(std::variant_alternative_t<I, EventPayload>::kTypeName) && ...);
}
static_assert(kCurrentVersions.size() == std::variant_size_v<EventPayload> &&
                  EveryTypeListed(std::make_index_sequence<std::variant_size_v<EventPayload>>()),
              "kCurrentVersions lists every event type once");

}  // namespace

int CurrentVersion(std::string_view type) {
  for (const auto& entry : kCurrentVersions) {
    if (entry.type == type) return entry.version;
  }
  return 0;
}

std::string PayloadJson(const EventPayload& payload) {
  return json::serialize(std::visit([](const auto& e) { return ToJson(e); }, payload));
}

cqrs::EventEnvelope ToEnvelope(const DomainEvent& event, const std::string& event_id) {
  cqrs::EventEnvelope envelope;
  envelope.event_id = event_id;
  envelope.type = std::string(EventTypeName(event.payload));
  envelope.schema_version = CurrentVersion(envelope.type);
  envelope.aggregate_type = std::string(ToString(AggregateTypeOf(event.payload)));
  envelope.aggregate_id = AggregateIdOf(event.payload).ToString();
  envelope.aggregate_version = event.aggregate_version;
  envelope.occurred_at = event.occurred_at;
  envelope.payload = PayloadJson(event.payload);
  return envelope;
}

DomainEvent FromEnvelope(const cqrs::EventEnvelope& envelope) {
  json::value parsed = json::parse(envelope.payload);
  if (!parsed.is_object()) throw std::runtime_error("event payload is not an object");
  auto& payload = parsed.as_object();
  const auto schema = Upcasters().Upcast(envelope.type, envelope.schema_version, payload);
  if (!schema) throw std::runtime_error(schema.error().message);
  return DomainEvent{Decode(schema->type, payload), envelope.aggregate_version,
                     envelope.occurred_at};
}

DomainEvent DecodeStored(const cqrs::StoredEvent& stored) {
  try {
    return FromEnvelope(stored.envelope);
  } catch (const std::exception& error) {
    throw cqrs::DeterministicApplyError(fmt::format("cannot decode event {} at position {}: {}",
                                                    stored.envelope.event_id, stored.position,
                                                    error.what()));
  }
}

std::string_view DecodedTypeName(const cqrs::EventEnvelope& envelope) {
  const auto schema = Upcasters().Resolve(envelope.type, envelope.schema_version);
  return schema ? schema->type : std::string_view(envelope.type);
}

}  // namespace shopcqrs::adapters::events
