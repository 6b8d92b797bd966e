// The event codec: every event type round trips at its current version, older versions are read
// through the shop's upcasters (ProductPriceChanged v1), and what cannot be read is a clear
// error.

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "adapters/events/event_codec.h"
#include "adapters/events/upcasters.h"
#include "cqrs/projector.h"
#include "domain/events.h"

namespace shopcqrs::adapters::events {
namespace {

using namespace domain;
namespace json = boost::json;

const CustomerId kCustomer{Uuid::V4FromRandom(1, 1)};
const ProductId kProduct{Uuid::V4FromRandom(2, 2)};
const OrderId kOrder{Uuid::V4FromRandom(3, 3)};
const Timestamp kAt{std::chrono::milliseconds(1'700'000'000'123)};
const std::vector<PlacedLine> kLines = {
    {kProduct, "SKU-1", "Blue \"Widget\"", 2, 250},
    {ProductId{Uuid::V4FromRandom(4, 4)}, "SKU-2", "Gadget", 1, 1000}};

// One event of each type, with every field set (each type at its index in EventPayload).
std::vector<EventPayload> OneOfEach() {
  return {
      CustomerRegistered{kCustomer, "Alice Smith", "alice@example.com"},
      CustomerDetailsChanged{kCustomer, "Alice Jones", "alice@example.org"},
      ProductAdded{kProduct, "SKU-1", "Blue Widget", 250, 100},
      ProductPriceChanged{.product_id = kProduct, .price_cents = 300, .previous_price_cents = 250},
      ProductRestocked{kProduct, 5, 105},
      OrderPlaced{kOrder, kCustomer, kLines, 1500},
      OrderPaid{kOrder, kCustomer, 1500, "PAY-1", kLines},
      OrderShipped{kOrder, kCustomer, "TRK-1"},
      OrderDelivered{kOrder, kCustomer},
      OrderCancelled{kOrder, kCustomer, "changed my mind", 1500, OrderStatus::kPaid, kLines}};
}

cqrs::EventEnvelope Envelope(std::string type, int version, std::string payload) {
  cqrs::EventEnvelope e;
  e.event_id = "00000000-0000-4000-8000-000000000009";
  e.type = std::move(type);
  e.schema_version = version;
  e.aggregate_type = "Product";
  e.aggregate_id = kProduct.ToString();
  e.aggregate_version = 2;
  e.occurred_at = kAt;
  e.payload = std::move(payload);
  return e;
}

std::string Error(const cqrs::EventEnvelope& envelope) {
  try {
    (void)FromEnvelope(envelope);
  } catch (const std::runtime_error& error) {
    return error.what();
  }
  return "(decoded)";
}

TEST(EventCodec, EveryTypeRoundTripsAtItsCurrentVersion) {
  const auto events = OneOfEach();
  ASSERT_EQ(events.size(), std::variant_size_v<EventPayload>);
  for (std::size_t i = 0; i < events.size(); ++i) {
    ASSERT_EQ(events[i].index(), i);
    const DomainEvent event{events[i], 7, kAt};
    const auto envelope = ToEnvelope(event, "00000000-0000-4000-8000-000000000001");
    const std::string_view type = EventTypeName(event.payload);
    SCOPED_TRACE(std::string(type));
    EXPECT_EQ(envelope.type, type);
    EXPECT_EQ(envelope.schema_version, CurrentVersion(type));
    EXPECT_EQ(envelope.schema_version, Upcasters().CurrentVersion(type));
    EXPECT_GE(envelope.schema_version, 1);
    EXPECT_EQ(envelope.aggregate_id, AggregateIdOf(event.payload).ToString());
    EXPECT_EQ(envelope.aggregate_version, 7);

    const auto decoded = FromEnvelope(envelope);
    EXPECT_EQ(decoded.payload.index(), i);
    EXPECT_EQ(PayloadJson(decoded.payload), envelope.payload);
    EXPECT_EQ(decoded.aggregate_version, 7);
    EXPECT_EQ(decoded.occurred_at, kAt);
  }
}

TEST(EventCodec, CurrentVersionsAreTheRegistrysAndPerType) {
  for (const auto& [type, version] : kCurrentVersions) {
    EXPECT_EQ(Upcasters().CurrentVersion(type), version) << type;
  }
  EXPECT_EQ(CurrentVersion("ProductPriceChanged"), 2);
  EXPECT_EQ(CurrentVersion("OrderPlaced"), 1);
  EXPECT_EQ(CurrentVersion("NoSuchEvent"), 0);
}

TEST(EventCodec, ProductPriceChangedIsWrittenAsV2) {
  const auto envelope = ToEnvelope(
      DomainEvent{ProductPriceChanged{
                      .product_id = kProduct, .price_cents = 300, .previous_price_cents = 250},
                  2, kAt},
      "00000000-0000-4000-8000-000000000001");
  EXPECT_EQ(envelope.schema_version, 2);
  EXPECT_EQ(json::parse(envelope.payload),
            json::parse(R"({"product_id":")" + kProduct.ToString() +
                        R"(","price_cents":300,"previous_price_cents":250})"));
}

TEST(EventCodec, ProductPriceChangedV1IsReadThroughItsUpcaster) {
  // As a build before v2 wrote it.
  const auto v1 = Envelope("ProductPriceChanged", 1,
                           R"({"product_id":")" + kProduct.ToString() +
                               R"(","old_price_cents":250,"new_price_cents":300})");
  const auto decoded = FromEnvelope(v1);
  const auto* event = std::get_if<ProductPriceChanged>(&decoded.payload);
  ASSERT_NE(event, nullptr);
  EXPECT_EQ(event->product_id, kProduct);
  EXPECT_EQ(event->price_cents, 300);
  EXPECT_EQ(event->previous_price_cents, 250);
  EXPECT_EQ(decoded.aggregate_version, 2);
  EXPECT_EQ(decoded.occurred_at, kAt);
  // Exactly what the v2 form of the same change decodes to.
  const auto v2 = ToEnvelope(decoded, v1.event_id);
  EXPECT_EQ(PayloadJson(FromEnvelope(v2).payload), PayloadJson(decoded.payload));
  EXPECT_EQ(DecodedTypeName(v1), "ProductPriceChanged");
}

TEST(EventCodec, UpcasterTurnsTheV1PayloadIntoTheV2Payload) {
  auto payload =
      json::parse(R"({"product_id":"p","old_price_cents":1,"new_price_cents":2})").as_object();
  const auto schema = Upcasters().Upcast("ProductPriceChanged", 1, payload);
  ASSERT_TRUE(schema.has_value()) << schema.error().message;
  EXPECT_EQ(schema->type, "ProductPriceChanged");
  EXPECT_EQ(schema->version, 2);
  EXPECT_EQ(json::value(payload),
            json::parse(R"({"product_id":"p","price_cents":2,"previous_price_cents":1})"));
}

TEST(EventCodec, StoredVersionIsHonoured) {
  // A v2 payload labelled v1 is not silently read as v2.
  EXPECT_EQ(Error(Envelope("ProductPriceChanged", 1,
                           R"({"product_id":")" + kProduct.ToString() +
                               R"(","price_cents":300,"previous_price_cents":250})")),
            "upcasting ProductPriceChanged v1 to ProductPriceChanged v2: payload lacks field "
            "old_price_cents");
  // And a v1 payload labelled v2 lacks the v2 fields.
  EXPECT_EQ(Error(Envelope("ProductPriceChanged", 2,
                           R"({"product_id":")" + kProduct.ToString() +
                               R"(","old_price_cents":250,"new_price_cents":300})")),
            "event payload lacks field price_cents");
}

TEST(EventCodec, FutureAndUnknownVersionsAreClearErrors) {
  const std::string payload = R"({"product_id":")" + kProduct.ToString() +
                              R"(","price_cents":300,"previous_price_cents":250})";
  EXPECT_EQ(Error(Envelope("ProductPriceChanged", 3, payload)),
            "event ProductPriceChanged v3 is newer than this build reads (current version v2)");
  EXPECT_EQ(Error(Envelope("ProductRestocked", 2, payload)),
            "event ProductRestocked v2 is newer than this build reads (current version v1)");
  EXPECT_EQ(Error(Envelope("ProductPriceChanged", 0, payload)),
            "event ProductPriceChanged has schema version 0; versions start at 1");
  EXPECT_EQ(Error(Envelope("ProductDiscontinued", 1, payload)),
            "unknown event type ProductDiscontinued");
  EXPECT_EQ(DecodedTypeName(Envelope("ProductDiscontinued", 1, payload)), "ProductDiscontinued");
}

// A field of the wrong JSON type is the codec's own std::runtime_error naming the field, like a
// missing one (it used to escape as Boost.JSON's std::invalid_argument; fuzz finding 4).
TEST(EventCodec, FieldsOfTheWrongJsonTypeAreClearErrors) {
  const std::string product = R"("product_id":")" + kProduct.ToString() + R"(")";
  EXPECT_EQ(Error(Envelope("ProductAdded", 1,
                           "{" + product + R"(,"sku":10,"name":"n","price_cents":1,"stock":1})")),
            "event payload field sku is not a string");
  EXPECT_EQ(Error(Envelope("ProductAdded", 1, R"({"product_id":7})")),
            "event payload field product_id is not a string");
  const std::string order_ids = R"({"order_id":")" + kProduct.ToString() + R"(","customer_id":")" +
                                kProduct.ToString() + R"(")";
  EXPECT_EQ(Error(Envelope("OrderPlaced", 1, order_ids + R"(,"lines":{},"total_cents":1})")),
            "event payload field lines is not an array");
  EXPECT_EQ(Error(Envelope("OrderPlaced", 1, order_ids + R"(,"lines":[1],"total_cents":1})")),
            "event payload field lines is not an array of objects");
}

TEST(EventCodec, DecodeStoredNamesTheEventAndItsPosition) {
  cqrs::StoredEvent stored;
  stored.envelope = Envelope("ProductPriceChanged", 3, "{}");
  stored.position = 42;
  try {
    (void)DecodeStored(stored);
    ADD_FAILURE() << "decoded";
  } catch (const cqrs::DeterministicApplyError& error) {
    EXPECT_EQ(std::string(error.what()),
              "cannot decode event 00000000-0000-4000-8000-000000000009 at position 42: event "
              "ProductPriceChanged v3 is newer than this build reads (current version v2)");
  }
}

}  // namespace
}  // namespace shopcqrs::adapters::events
