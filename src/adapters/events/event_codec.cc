#include "adapters/events/event_codec.h"

#include <stdexcept>

#include <boost/json.hpp>

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
json::object ToJson(const ProductPriceChanged& e) {
  return {{"product_id", e.product_id.ToString()},
          {"old_price_cents", e.old_price_cents},
          {"new_price_cents", e.new_price_cents}};
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
std::string Str(const json::object& o, std::string_view name) {
  return std::string(Field(o, name).as_string());
}
std::int64_t Int(const json::object& o, std::string_view name) {
  return Field(o, name).to_number<std::int64_t>();
}
template <class IdT>
IdT IdField(const json::object& o, std::string_view name) {
  auto id = IdT::Parse(Field(o, name).as_string());
  if (!id) throw std::runtime_error("event payload field " + std::string(name) + " is no uuid");
  return *id;
}
std::vector<PlacedLine> Lines(const json::object& o) {
  std::vector<PlacedLine> lines;
  for (const auto& v : Field(o, "lines").as_array()) {
    const auto& l = v.as_object();
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
    return ProductPriceChanged{IdField<ProductId>(o, "product_id"), Int(o, "old_price_cents"),
                               Int(o, "new_price_cents")};
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
    auto previous = ParseOrderStatus(Field(o, "previous_status").as_string());
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

}  // namespace

std::string PayloadJson(const EventPayload& payload) {
  return json::serialize(std::visit([](const auto& e) { return ToJson(e); }, payload));
}

cqrs::EventEnvelope ToEnvelope(const DomainEvent& event, const std::string& event_id) {
  cqrs::EventEnvelope envelope;
  envelope.event_id = event_id;
  envelope.type = std::string(EventTypeName(event.payload));
  envelope.schema_version = kSchemaVersion;
  envelope.aggregate_type = std::string(ToString(AggregateTypeOf(event.payload)));
  envelope.aggregate_id = AggregateIdOf(event.payload).ToString();
  envelope.aggregate_version = event.aggregate_version;
  envelope.occurred_at = event.occurred_at;
  envelope.payload = PayloadJson(event.payload);
  return envelope;
}

DomainEvent FromEnvelope(const cqrs::EventEnvelope& envelope) {
  if (envelope.schema_version != kSchemaVersion) {
    throw std::runtime_error("unsupported schema version of " + envelope.type);
  }
  json::value parsed = json::parse(envelope.payload);
  if (!parsed.is_object()) throw std::runtime_error("event payload is not an object");
  return DomainEvent{Decode(envelope.type, parsed.as_object()), envelope.aggregate_version,
                     envelope.occurred_at};
}

}  // namespace shopcqrs::adapters::events
