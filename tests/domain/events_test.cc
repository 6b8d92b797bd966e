#include "domain/events.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace shopcqrs::domain {
namespace {

const CustomerId kCustomer{Uuid::V4FromRandom(1, 1)};
const ProductId kProduct{Uuid::V4FromRandom(2, 2)};
const OrderId kOrder{Uuid::V4FromRandom(3, 3)};

struct Expectation {
  EventPayload payload;
  std::string_view type_name;
  AggregateType aggregate_type;
  Uuid aggregate_id;
};

TEST(EventsTest, GivenEveryEventType_WhenDescribed_ThenNameAggregateTypeAndIdAreRight) {
  // given
  const std::vector<Expectation> cases = {
      {CustomerRegistered{kCustomer, "n", "e@x"}, "CustomerRegistered", AggregateType::kCustomer,
       kCustomer.value()},
      {CustomerDetailsChanged{kCustomer, "n", "e@x"}, "CustomerDetailsChanged",
       AggregateType::kCustomer, kCustomer.value()},
      {ProductAdded{kProduct, "S", "n", 1, 2}, "ProductAdded", AggregateType::kProduct,
       kProduct.value()},
      {ProductPriceChanged{kProduct, 1, 2}, "ProductPriceChanged", AggregateType::kProduct,
       kProduct.value()},
      {ProductRestocked{kProduct, 1, 2}, "ProductRestocked", AggregateType::kProduct,
       kProduct.value()},
      {OrderPlaced{kOrder, kCustomer, {}, 0}, "OrderPlaced", AggregateType::kOrder, kOrder.value()},
      {OrderPaid{kOrder, kCustomer, 0, "ref", {}}, "OrderPaid", AggregateType::kOrder,
       kOrder.value()},
      {OrderShipped{kOrder, kCustomer, "trk"}, "OrderShipped", AggregateType::kOrder,
       kOrder.value()},
      {OrderDelivered{kOrder, kCustomer}, "OrderDelivered", AggregateType::kOrder, kOrder.value()},
      {OrderCancelled{kOrder, kCustomer, "", 0, OrderStatus::kPlaced, {}}, "OrderCancelled",
       AggregateType::kOrder, kOrder.value()},
  };
  ASSERT_EQ(cases.size(), std::variant_size_v<EventPayload>);

  for (const auto& c : cases) {
    // when
    const auto name = EventTypeName(c.payload);
    const auto type = AggregateTypeOf(c.payload);
    const auto id = AggregateIdOf(c.payload);

    // then
    EXPECT_EQ(name, c.type_name);
    EXPECT_EQ(type, c.aggregate_type) << c.type_name;
    EXPECT_EQ(id, c.aggregate_id) << c.type_name;
  }
}

TEST(EventsTest, GivenAggregateTypes_WhenFormatted_ThenCapitalisedNames) {
  // given / when / then
  EXPECT_EQ(ToString(AggregateType::kCustomer), "Customer");
  EXPECT_EQ(ToString(AggregateType::kProduct), "Product");
  EXPECT_EQ(ToString(AggregateType::kOrder), "Order");
}

TEST(EventsTest, GivenEveryOrderStatus_WhenFormattedAndParsed_ThenRoundTrips) {
  // given
  const std::vector<std::pair<OrderStatus, std::string_view>> statuses = {
      {OrderStatus::kPlaced, "placed"},       {OrderStatus::kPaid, "paid"},
      {OrderStatus::kShipped, "shipped"},     {OrderStatus::kDelivered, "delivered"},
      {OrderStatus::kCancelled, "cancelled"},
  };

  for (const auto& [status, text] : statuses) {
    // when
    const auto formatted = ToString(status);
    const auto parsed = ParseOrderStatus(text);

    // then
    EXPECT_EQ(formatted, text);
    EXPECT_EQ(parsed, status);
  }
}

TEST(EventsTest, GivenUnknownStatusTexts_WhenParsed_ThenNullopt) {
  // given
  const std::vector<std::string> unknown = {"", "Placed", "PAID", "canceled", "placed ", "open"};

  for (const auto& text : unknown) {
    // when
    const auto parsed = ParseOrderStatus(text);

    // then
    EXPECT_FALSE(parsed.has_value()) << text;
  }
}

TEST(EventsTest, GivenPlacedLine_WhenLineTotalAsked_ThenQuantityTimesUnitPrice) {
  // given
  const PlacedLine line{kProduct, "SKU", "Name", 1000, 1'000'000'000};

  // when
  const auto total = line.line_total_cents();

  // then
  EXPECT_EQ(total, 1'000'000'000'000);
}

}  // namespace
}  // namespace shopcqrs::domain
