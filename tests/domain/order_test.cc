#include "domain/order.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "support/domain_checks.h"

namespace shopcqrs::domain {
namespace {

using namespace std::chrono_literals;
using namespace test_support;

const Timestamp kPlacedAt = Timestamp{std::chrono::sys_days{2026y / 11 / 26}} + 18h + 123ms;
const Timestamp kPaidAt = kPlacedAt + 1min;
const Timestamp kShippedAt = kPlacedAt + 1h;
const Timestamp kDeliveredAt = kPlacedAt + 48h;
const Timestamp kCancelledAt = kPlacedAt + 2h;

const OrderId kOrderId{Uuid::V4FromRandom(0x0D0, 1)};
const CustomerId kCustomerId{Uuid::V4FromRandom(0xC057, 1)};

ProductId Pid(std::uint64_t n) { return ProductId(Uuid::V4FromRandom(0xF00D, n)); }

void ExpectInvalidTransition(const Error& error, std::string_view detail) {
  EXPECT_EQ(error.category, ErrorCategory::kConflict);
  EXPECT_EQ(error.code, "invalid_transition");
  EXPECT_EQ(error.detail, detail);
}

// Two products: A (sku A-1, 250 cents, stock 10) and B (sku B-1, 1000 cents, stock 5).
class OrderTest : public ::testing::Test {
 protected:
  // `order` is in `status` at `version`, and its last event, of type E, occurred `at` and names
  // the order and its customer; null (with a failure) otherwise.
  template <class E>
  static const E* Transitioned(const Order& order, OrderStatus status, std::int64_t version,
                               Timestamp at) {
    EXPECT_EQ(order.status(), status);
    EXPECT_EQ(order.version(), version);
    const E* event = LastEvent<E>(order, at);
    if (event) {
      EXPECT_EQ(event->order_id, kOrderId);
      EXPECT_EQ(event->customer_id, kCustomerId);
    }
    return event;
  }

  const ProductId a_ = Pid(1);
  const ProductId b_ = Pid(2);
  std::map<ProductId, Product> products_;

  void SetUp() override {
    AddProduct(a_, "A-1", "Apple", 250, 10);
    AddProduct(b_, "B-1", "Banana", 1000, 5);
  }

  void AddProduct(ProductId id, std::string sku, std::string name, std::int64_t price,
                  std::int64_t stock) {
    products_.insert_or_assign(
        id, *Product::Add(id, std::move(sku), std::move(name), price, stock, kPlacedAt));
  }

  std::int64_t StockOf(ProductId id) const { return products_.at(id).stock(); }

  // A placed order for 2 × A and 1 × B: total 2 × 250 + 1000 = 1500.
  Order Placed() {
    auto order = Order::Place(kOrderId, kCustomerId, {{a_, 2}, {b_, 1}}, products_, kPlacedAt);
    EXPECT_TRUE(order.has_value());
    return std::move(*order);
  }
  Order Paid() {
    Order order = Placed();
    EXPECT_TRUE(order.Pay(1500, "pay-1", kPaidAt).has_value());
    return order;
  }
  Order Shipped() {
    Order order = Paid();
    EXPECT_TRUE(order.Ship("TRACK-1", kShippedAt).has_value());
    return order;
  }
  Order Delivered() {
    Order order = Shipped();
    EXPECT_TRUE(order.Deliver(kDeliveredAt).has_value());
    return order;
  }
  Order CancelledFromPlaced() {
    Order order = Placed();
    EXPECT_TRUE(order.Cancel("changed my mind", kCancelledAt).has_value());
    return order;
  }
  Order InStatus(OrderStatus status) {
    switch (status) {
      case OrderStatus::kPlaced:
        return Placed();
      case OrderStatus::kPaid:
        return Paid();
      case OrderStatus::kShipped:
        return Shipped();
      case OrderStatus::kDelivered:
        return Delivered();
      case OrderStatus::kCancelled:
        return CancelledFromPlaced();
    }
    return Placed();
  }
};

// --- Place ----------------------------------------------------------------------------

TEST_F(OrderTest, GivenKnownProductsInStock_WhenPlaced_ThenPlacedWithCapturedLinesAndTotal) {
  // given
  const std::vector<LineRequest> lines = {{a_, 2}, {b_, 1}};

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(order->id(), kOrderId);
  EXPECT_EQ(order->customer_id(), kCustomerId);
  EXPECT_EQ(order->status(), OrderStatus::kPlaced);
  EXPECT_EQ(order->version(), 1);
  EXPECT_EQ(order->total_cents(), 1500);
  const std::vector<PlacedLine> expected = {{a_, "A-1", "Apple", 2, 250},
                                            {b_, "B-1", "Banana", 1, 1000}};
  EXPECT_EQ(order->lines(), expected);
}

TEST_F(OrderTest, GivenKnownProductsInStock_WhenPlaced_ThenOrderPlacedEventRecorded) {
  // given
  const std::vector<LineRequest> lines = {{a_, 2}, {b_, 1}};

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ASSERT_TRUE(order.has_value());
  ASSERT_EQ(order->pending_events().size(), 1u);
  const DomainEvent& event = order->pending_events()[0];
  EXPECT_EQ(event.aggregate_version, 1);
  EXPECT_EQ(event.occurred_at, kPlacedAt);
  EXPECT_EQ(EventTypeName(event.payload), "OrderPlaced");
  const auto& placed = std::get<OrderPlaced>(event.payload);
  EXPECT_EQ(placed.order_id, kOrderId);
  EXPECT_EQ(placed.customer_id, kCustomerId);
  EXPECT_EQ(placed.lines, order->lines());
  EXPECT_EQ(placed.total_cents, 1500);
}

TEST_F(OrderTest, GivenKnownProductsInStock_WhenPlaced_ThenStockReservedWithoutProductEvents) {
  // given
  const std::vector<LineRequest> lines = {{a_, 2}, {b_, 5}};

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(StockOf(a_), 8);
  EXPECT_EQ(StockOf(b_), 0);
  EXPECT_EQ(products_.at(a_).version(), 1);
  EXPECT_EQ(products_.at(a_).pending_events().size(), 1u);
  EXPECT_EQ(products_.at(b_).version(), 1);
  EXPECT_EQ(products_.at(b_).pending_events().size(), 1u);
}

TEST_F(OrderTest, GivenRepeatedProductIds_WhenPlaced_ThenLinesMergedInFirstOccurrenceOrder) {
  // given
  const std::vector<LineRequest> lines = {{b_, 1}, {a_, 2}, {b_, 2}, {a_, 3}};

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ASSERT_TRUE(order.has_value());
  const std::vector<PlacedLine> expected = {{b_, "B-1", "Banana", 3, 1000},
                                            {a_, "A-1", "Apple", 5, 250}};
  EXPECT_EQ(order->lines(), expected);
  EXPECT_EQ(order->total_cents(), 3 * 1000 + 5 * 250);
  EXPECT_EQ(std::get<OrderPlaced>(order->pending_events()[0].payload).lines, expected);
  EXPECT_EQ(StockOf(a_), 5);
  EXPECT_EQ(StockOf(b_), 2);
}

TEST_F(OrderTest, GivenRepeatedLinesExceedingStockOnlyWhenSummed_WhenPlaced_ThenInsufficient) {
  // given
  const std::vector<LineRequest> lines = {{b_, 3}, {b_, 3}};  // 6 > stock 5

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ASSERT_FALSE(order.has_value());
  EXPECT_EQ(order.error().code, "insufficient_stock");
  EXPECT_EQ(StockOf(b_), 5);
}

TEST_F(OrderTest, GivenSecondProductShortOfStock_WhenPlaced_ThenConflictAndNoProductChanged) {
  // given
  const std::vector<LineRequest> lines = {{a_, 10}, {b_, 6}};

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ASSERT_FALSE(order.has_value());
  EXPECT_EQ(order.error().category, ErrorCategory::kConflict);
  EXPECT_EQ(order.error().code, "insufficient_stock");
  EXPECT_EQ(StockOf(a_), 10);
  EXPECT_EQ(StockOf(b_), 5);
  EXPECT_EQ(products_.at(a_).version(), 1);
  EXPECT_EQ(products_.at(b_).version(), 1);
}

TEST_F(OrderTest, GivenUnknownProduct_WhenPlaced_ThenUnknownProductAndNoProductChanged) {
  // given
  const ProductId unknown = Pid(99);
  const std::vector<LineRequest> lines = {{a_, 1}, {unknown, 1}};

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ASSERT_FALSE(order.has_value());
  EXPECT_EQ(order.error().category, ErrorCategory::kBusinessRule);
  EXPECT_EQ(order.error().code, "unknown_product");
  EXPECT_NE(order.error().detail.find(unknown.ToString()), std::string::npos);
  EXPECT_EQ(StockOf(a_), 10);
  EXPECT_EQ(products_.size(), 2u);
}

TEST_F(OrderTest, GivenNoLines_WhenPlaced_ThenValidationNamesLines) {
  // given
  const std::vector<LineRequest> lines;

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ExpectValidation(order.error(), "lines must contain between 1 and 100 items");
}

TEST_F(OrderTest, GivenOneHundredLines_WhenPlaced_ThenAccepted) {
  // given
  std::vector<LineRequest> lines;
  for (std::uint64_t i = 0; i < kMaxOrderLines; ++i) {
    AddProduct(Pid(100 + i), "S" + std::to_string(i), "P", 1, 1);
    lines.push_back({Pid(100 + i), 1});
  }

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(order->lines().size(), kMaxOrderLines);
  EXPECT_EQ(order->total_cents(), 100);
}

TEST_F(OrderTest, GivenOneHundredOneLines_WhenPlaced_ThenValidationAndNoProductChanged) {
  // given: 101 requested lines, even though they would merge into one
  const std::vector<LineRequest> lines(kMaxOrderLines + 1, LineRequest{a_, 1});

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ExpectValidation(order.error(), "lines must contain between 1 and 100 items");
  EXPECT_EQ(StockOf(a_), 10);
}

TEST_F(OrderTest, GivenQuantityOneAndOneThousand_WhenPlaced_ThenAccepted) {
  // given
  AddProduct(a_, "A-1", "Apple", 250, 1000);
  const std::vector<LineRequest> lines = {{a_, kMaxLineQuantity}, {b_, 1}};

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(order->lines()[0].quantity, 1000);
  EXPECT_EQ(order->lines()[1].quantity, 1);
  EXPECT_EQ(StockOf(a_), 0);
}

TEST_F(OrderTest, GivenQuantityZero_WhenPlaced_ThenValidationNamesTheLine) {
  // given
  const std::vector<LineRequest> lines = {{a_, 0}};

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ExpectValidation(order.error(), "lines[0].quantity must be between 1 and 1000");
}

TEST_F(OrderTest, GivenQuantityOneThousandOneOnThirdLine_WhenPlaced_ThenValidationNamesLine2) {
  // given
  const std::vector<LineRequest> lines = {{a_, 1}, {b_, 1}, {a_, kMaxLineQuantity + 1}};

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ExpectValidation(order.error(), "lines[2].quantity must be between 1 and 1000");
  EXPECT_EQ(StockOf(a_), 10);
  EXPECT_EQ(StockOf(b_), 5);
}

TEST_F(OrderTest, GivenNegativeQuantity_WhenPlaced_ThenValidationAndNoProductChanged) {
  // given
  const std::vector<LineRequest> lines = {{a_, 2}, {b_, -1}};

  // when
  const auto order = Order::Place(kOrderId, kCustomerId, lines, products_, kPlacedAt);

  // then
  ExpectValidation(order.error(), "lines[1].quantity must be between 1 and 1000");
  EXPECT_EQ(StockOf(a_), 10);
}

TEST_F(OrderTest, GivenPlacedOrder_WhenProductPriceChangesLater_ThenOrderKeepsCapturedPrice) {
  // given
  Order order = Placed();

  // when
  ASSERT_TRUE(products_.at(a_).ChangePrice(999, kPaidAt).has_value());

  // then
  EXPECT_EQ(order.lines()[0].unit_price_cents, 250);
  EXPECT_EQ(order.total_cents(), 1500);
}

TEST_F(OrderTest, GivenFreeProduct_WhenPlacedAndPaidZero_ThenPaid) {
  // given
  AddProduct(a_, "FREE", "Sample", 0, 1);

  // when
  auto order = Order::Place(kOrderId, kCustomerId, {{a_, 1}}, products_, kPlacedAt);
  ASSERT_TRUE(order.has_value());
  const auto paid = order->Pay(0, "free", kPaidAt);

  // then
  EXPECT_EQ(order->total_cents(), 0);
  ASSERT_TRUE(paid.has_value());
  EXPECT_EQ(order->status(), OrderStatus::kPaid);
}

// --- Pay ------------------------------------------------------------------------------

TEST_F(OrderTest, GivenPlacedOrder_WhenPaidTheTotal_ThenStatusPaidAndEventCarriesLines) {
  // given
  Order order = Placed();

  // when
  const auto result = order.Pay(1500, "pay-1", kPaidAt);

  // then
  ASSERT_TRUE(result.has_value());
  ASSERT_EQ(order.pending_events().size(), 2u);
  const auto* paid = Transitioned<OrderPaid>(order, OrderStatus::kPaid, 2, kPaidAt);
  ASSERT_NE(paid, nullptr);
  EXPECT_EQ(paid->amount_cents, 1500);
  EXPECT_EQ(paid->payment_reference, "pay-1");
  EXPECT_EQ(paid->lines, order.lines());
  EXPECT_EQ(paid->lines.size(), 2u);
}

TEST_F(OrderTest, GivenPlacedOrder_WhenPaidLessOrMoreThanTotal_ThenAmountMismatchAndUnchanged) {
  // given
  Order order = Placed();

  for (const std::int64_t amount :
       {std::int64_t{1499}, std::int64_t{1501}, std::int64_t{0}, std::int64_t{-1500}}) {
    // when
    const auto result = order.Pay(amount, "pay-1", kPaidAt);

    // then
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().category, ErrorCategory::kBusinessRule);
    EXPECT_EQ(result.error().code, "amount_mismatch");
    EXPECT_EQ(order.status(), OrderStatus::kPlaced);
    EXPECT_EQ(order.version(), 1);
    EXPECT_EQ(order.pending_events().size(), 1u);
  }
}

// --- Ship -----------------------------------------------------------------------------

TEST_F(OrderTest, GivenPaidOrder_WhenShipped_ThenStatusShippedAndEventRecorded) {
  // given
  Order order = Paid();

  // when
  const auto result = order.Ship("TRACK-1", kShippedAt);

  // then
  ASSERT_TRUE(result.has_value());
  const auto* shipped = Transitioned<OrderShipped>(order, OrderStatus::kShipped, 3, kShippedAt);
  ASSERT_NE(shipped, nullptr);
  EXPECT_EQ(shipped->tracking_number, "TRACK-1");
}

// --- Deliver --------------------------------------------------------------------------

TEST_F(OrderTest, GivenShippedOrder_WhenDelivered_ThenStatusDeliveredAndEventRecorded) {
  // given
  Order order = Shipped();

  // when
  const auto result = order.Deliver(kDeliveredAt);

  // then
  ASSERT_TRUE(result.has_value());
  const auto* delivered =
      Transitioned<OrderDelivered>(order, OrderStatus::kDelivered, 4, kDeliveredAt);
  ASSERT_NE(delivered, nullptr);
}

// --- Cancel ---------------------------------------------------------------------------

TEST_F(OrderTest, GivenPlacedOrder_WhenCancelled_ThenCancelledWithoutRefundAndLinesInEvent) {
  // given
  Order order = Placed();

  // when
  const auto result = order.Cancel("changed my mind", kCancelledAt);

  // then
  ASSERT_TRUE(result.has_value());
  const auto* cancelled =
      Transitioned<OrderCancelled>(order, OrderStatus::kCancelled, 2, kCancelledAt);
  ASSERT_NE(cancelled, nullptr);
  EXPECT_EQ(cancelled->reason, "changed my mind");
  EXPECT_EQ(cancelled->refunded_cents, 0);
  EXPECT_EQ(cancelled->previous_status, OrderStatus::kPlaced);
  EXPECT_EQ(cancelled->lines, order.lines());
}

TEST_F(OrderTest, GivenPaidOrder_WhenCancelled_ThenRefundOfTotalRecorded) {
  // given
  Order order = Paid();

  // when
  const auto result = order.Cancel("", kCancelledAt);

  // then
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(order.status(), OrderStatus::kCancelled);
  EXPECT_EQ(order.version(), 3);
  const auto& cancelled = std::get<OrderCancelled>(order.pending_events().back().payload);
  EXPECT_EQ(cancelled.refunded_cents, 1500);
  EXPECT_EQ(cancelled.previous_status, OrderStatus::kPaid);
  EXPECT_EQ(cancelled.reason, "");
  EXPECT_EQ(cancelled.lines, order.lines());
}

TEST_F(OrderTest, GivenCancelledOrder_WhenCallerReleasesLines_ThenStockRestored) {
  // given
  Order order = Placed();
  ASSERT_EQ(StockOf(a_), 8);
  ASSERT_TRUE(order.Cancel("", kCancelledAt).has_value());

  // when
  for (const PlacedLine& line : order.lines()) {
    products_.at(line.product_id).Release(line.quantity);
  }

  // then
  EXPECT_EQ(StockOf(a_), 10);
  EXPECT_EQ(StockOf(b_), 5);
}

TEST_F(OrderTest, GivenPlacedOrder_WhenCancelReasonIsFiveHundredMultiByteChars_ThenAccepted) {
  // given
  Order order = Placed();
  const std::string reason = Repeat("\xE2\x82\xAC", 500);  // 1500 bytes

  // when
  const auto result = order.Cancel(reason, kCancelledAt);

  // then
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(std::get<OrderCancelled>(order.pending_events().back().payload).reason, reason);
}

// --- Full lifecycle and rehydration ---------------------------------------------------

TEST_F(OrderTest, GivenNewOrder_WhenPaidShippedDelivered_ThenVersionsAndEventsInSequence) {
  // given
  Order order = Placed();

  // when
  ASSERT_TRUE(order.Pay(1500, "pay-1", kPaidAt).has_value());
  ASSERT_TRUE(order.Ship("TRACK-1", kShippedAt).has_value());
  ASSERT_TRUE(order.Deliver(kDeliveredAt).has_value());

  // then
  EXPECT_EQ(order.status(), OrderStatus::kDelivered);
  EXPECT_EQ(order.version(), 4);
  const auto& events = order.pending_events();
  ASSERT_EQ(events.size(), 4u);
  const std::vector<std::string_view> types = {"OrderPlaced", "OrderPaid", "OrderShipped",
                                               "OrderDelivered"};
  const std::vector<Timestamp> times = {kPlacedAt, kPaidAt, kShippedAt, kDeliveredAt};
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].aggregate_version, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(EventTypeName(events[i].payload), types[i]);
    EXPECT_EQ(events[i].occurred_at, times[i]);
    EXPECT_EQ(AggregateIdOf(events[i].payload), kOrderId.value());
  }
}

TEST_F(OrderTest, GivenStoredState_WhenRehydrated_ThenStateKeptAndNoEventsPending) {
  // given
  Order::State state{kOrderId, kCustomerId, OrderStatus::kPaid, {{a_, "A-1", "Apple", 2, 250}}, 500,
                     9};

  // when
  Order order = Order::Rehydrate(state);

  // then
  EXPECT_EQ(order.id(), kOrderId);
  EXPECT_EQ(order.customer_id(), kCustomerId);
  EXPECT_EQ(order.status(), OrderStatus::kPaid);
  EXPECT_EQ(order.lines(), state.lines);
  EXPECT_EQ(order.total_cents(), 500);
  EXPECT_EQ(order.version(), 9);
  EXPECT_TRUE(order.pending_events().empty());
}

TEST_F(OrderTest, GivenRehydratedPaidOrder_WhenShipped_ThenEventVersionFollowsStoredVersion) {
  // given
  Order order = Order::Rehydrate(
      {kOrderId, kCustomerId, OrderStatus::kPaid, {{a_, "A-1", "Apple", 2, 250}}, 500, 9});

  // when
  const auto result = order.Ship("TRACK-9", kShippedAt);

  // then
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(order.version(), 10);
  ASSERT_EQ(order.pending_events().size(), 1u);
  EXPECT_EQ(order.pending_events()[0].aggregate_version, 10);
}

// --- Length limits of the texts the commands take ------------------------------------

// A text of min..max code points: one outside the limits is refused (validation failed, the
// order unchanged); one of each limit is accepted.
struct TextLimit {
  const char* name;
  OrderStatus from;
  std::function<Result<void>(Order&, const std::string& text)> command;
  std::size_t min;
  std::size_t max;
  const char* detail;
};

void PrintTo(const TextLimit& limit, std::ostream* os) { *os << limit.name; }

class OrderTextLimitTest : public OrderTest, public ::testing::WithParamInterface<TextLimit> {};

TEST_P(OrderTextLimitTest, GivenOrder_WhenTextAtLimits_ThenInsideAcceptedOutsideRefused) {
  // given
  const TextLimit& limit = GetParam();
  Order order = InStatus(limit.from);
  Order other = InStatus(limit.from);
  const std::int64_t version = order.version();

  // when / then
  if (limit.min > 0) {
    ExpectValidation(limit.command(order, Repeat("x", limit.min - 1)).error(), limit.detail);
  }
  ExpectValidation(limit.command(order, Repeat("x", limit.max + 1)).error(), limit.detail);
  EXPECT_EQ(order.status(), limit.from);
  EXPECT_EQ(order.version(), version);
  EXPECT_TRUE(limit.command(order, Repeat("x", limit.max)).has_value());
  EXPECT_TRUE(limit.command(other, Repeat("x", limit.min)).has_value());
}

INSTANTIATE_TEST_SUITE_P(
    Texts, OrderTextLimitTest,
    ::testing::Values(TextLimit{"PaymentReference", OrderStatus::kPlaced,
                                [](Order& order, const std::string& text) {
                                  return order.Pay(1500, text, kPaidAt);
                                },
                                1, 100, "payment_reference must be 1..100 characters"},
                      TextLimit{"TrackingNumber", OrderStatus::kPaid,
                                [](Order& order, const std::string& text) {
                                  return order.Ship(text, kShippedAt);
                                },
                                1, 100, "tracking_number must be 1..100 characters"},
                      TextLimit{"CancelReason", OrderStatus::kPlaced,
                                [](Order& order, const std::string& text) {
                                  return order.Cancel(text, kCancelledAt);
                                },
                                0, 500, "reason must be 0..500 characters"}),
    [](const ::testing::TestParamInfo<TextLimit>& info) { return std::string(info.param.name); });

// --- Which error a command reports first --------------------------------------------

// Bad input is a validation error whatever the status; good input in a status that does not
// allow the command is an invalid transition.
struct FirstError {
  const char* name;
  OrderStatus from;
  std::function<Result<void>(Order&)> command;
  void (*expect)(const Error& error, std::string_view detail);
  const char* detail;
};

void PrintTo(const FirstError& error, std::ostream* os) { *os << error.name; }

class OrderFirstErrorTest : public OrderTest, public ::testing::WithParamInterface<FirstError> {};

TEST_P(OrderFirstErrorTest, ReportsTheFirstError) {
  // given
  Order order = InStatus(GetParam().from);

  // when
  const auto result = GetParam().command(order);

  // then
  ASSERT_FALSE(result.has_value());
  GetParam().expect(result.error(), GetParam().detail);
}

INSTANTIATE_TEST_SUITE_P(
    Commands, OrderFirstErrorTest,
    ::testing::Values(
        FirstError{"GivenPlacedOrder_WhenBadReferenceAndWrongAmount_ThenReferenceReportedFirst",
                   OrderStatus::kPlaced, [](Order& order) { return order.Pay(1, "", kPaidAt); },
                   ExpectValidation, "payment_reference must be 1..100 characters"},
        FirstError{"GivenPaidOrder_WhenPaidWithBadInput_ThenValidationReportedFirst",
                   OrderStatus::kPaid, [](Order& order) { return order.Pay(1, "", kPaidAt); },
                   ExpectValidation, "payment_reference must be 1..100 characters"},
        FirstError{"GivenPaidOrder_WhenPaidWithGoodInputButWrongAmount_ThenInvalidTransition",
                   OrderStatus::kPaid, [](Order& order) { return order.Pay(1, "ref", kPaidAt); },
                   ExpectInvalidTransition, "cannot pay an order in status paid"},
        FirstError{"GivenPlacedOrder_WhenShippedWithEmptyTracking_ThenValidationFirst",
                   OrderStatus::kPlaced, [](Order& order) { return order.Ship("", kShippedAt); },
                   ExpectValidation, "tracking_number must be 1..100 characters"},
        FirstError{"GivenPlacedOrder_WhenShippedWithGoodTracking_ThenInvalidTransition",
                   OrderStatus::kPlaced,
                   [](Order& order) { return order.Ship("TRACK", kShippedAt); },
                   ExpectInvalidTransition, "cannot ship an order in status placed"}),
    [](const ::testing::TestParamInfo<FirstError>& info) { return std::string(info.param.name); });

// --- Every illegal transition of the state machine ------------------------------------

enum class Action { kPay, kShip, kDeliver, kCancel };

std::string_view ActionName(Action action) {
  constexpr std::string_view kNames[] = {"pay", "ship", "deliver", "cancel"};
  return kNames[static_cast<std::size_t>(action)];
}

struct IllegalTransition {
  OrderStatus from;
  Action action;
};

class OrderIllegalTransitionTest : public OrderTest,
                                   public ::testing::WithParamInterface<IllegalTransition> {};

// Valid arguments for each action, so that only the status can make it fail.
Result<void> Apply(Order& order, Action action) {
  switch (action) {
    case Action::kPay:
      return order.Pay(order.total_cents(), "pay-2", kPaidAt);
    case Action::kShip:
      return order.Ship("TRACK-2", kShippedAt);
    case Action::kDeliver:
      return order.Deliver(kDeliveredAt);
    case Action::kCancel:
      return order.Cancel("late", kCancelledAt);
  }
  return {};
}

TEST_P(OrderIllegalTransitionTest,
       GivenOrderInStatus_WhenIllegalActionApplied_ThenInvalidTransitionAndNothingChanged) {
  // given
  const auto [from, action] = GetParam();
  Order order = InStatus(from);
  ASSERT_EQ(order.status(), from);
  const std::int64_t version = order.version();
  const std::size_t event_count = order.pending_events().size();

  // when
  const auto result = Apply(order, action);

  // then
  ASSERT_FALSE(result.has_value());
  ExpectInvalidTransition(result.error(), "cannot " + std::string(ActionName(action)) +
                                              " an order in status " + std::string(ToString(from)));
  EXPECT_EQ(order.status(), from);
  EXPECT_EQ(order.version(), version);
  EXPECT_EQ(order.pending_events().size(), event_count);
}

INSTANTIATE_TEST_SUITE_P(AllIllegal, OrderIllegalTransitionTest,
                         ::testing::Values(
                             // placed: only pay and cancel are allowed
                             IllegalTransition{OrderStatus::kPlaced, Action::kShip},
                             IllegalTransition{OrderStatus::kPlaced, Action::kDeliver},
                             // paid: only ship and cancel are allowed
                             IllegalTransition{OrderStatus::kPaid, Action::kPay},
                             IllegalTransition{OrderStatus::kPaid, Action::kDeliver},
                             // shipped: only deliver is allowed
                             IllegalTransition{OrderStatus::kShipped, Action::kPay},
                             IllegalTransition{OrderStatus::kShipped, Action::kShip},
                             IllegalTransition{OrderStatus::kShipped, Action::kCancel},
                             // delivered: terminal
                             IllegalTransition{OrderStatus::kDelivered, Action::kPay},
                             IllegalTransition{OrderStatus::kDelivered, Action::kShip},
                             IllegalTransition{OrderStatus::kDelivered, Action::kDeliver},
                             IllegalTransition{OrderStatus::kDelivered, Action::kCancel},
                             // cancelled: terminal
                             IllegalTransition{OrderStatus::kCancelled, Action::kPay},
                             IllegalTransition{OrderStatus::kCancelled, Action::kShip},
                             IllegalTransition{OrderStatus::kCancelled, Action::kDeliver},
                             IllegalTransition{OrderStatus::kCancelled, Action::kCancel}),
                         [](const ::testing::TestParamInfo<IllegalTransition>& info) {
                           return std::string(ToString(info.param.from)) + "_" +
                                  std::string(ActionName(info.param.action));
                         });

}  // namespace
}  // namespace shopcqrs::domain
