#include "domain/product.h"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <string>

#include "support/domain_checks.h"

namespace shopcqrs::domain {
namespace {

using namespace std::chrono_literals;
using namespace test_support;

const Timestamp kAddedAt = Timestamp{std::chrono::sys_days{2026y / 3 / 4}} + 9h;
const Timestamp kLaterAt = kAddedAt + 1h + 250ms;
const ProductId kId{Uuid::V4FromRandom(0xBEEF, 7)};

Product Added(std::int64_t stock = 10) {
  return *Product::Add(kId, "SKU-1", "Widget", 1999, stock, kAddedAt);
}

Result<Product> AddWith(std::string sku, std::string name, std::int64_t price, std::int64_t stock) {
  return Product::Add(kId, std::move(sku), std::move(name), price, stock, kAddedAt);
}

TEST(ProductTest, GivenValidInput_WhenAdded_ThenVersionOneAndProductAddedRecorded) {
  // given / when
  const auto product = Product::Add(kId, "SKU-1", "Widget", 1999, 10, kAddedAt);

  // then
  ASSERT_TRUE(product.has_value());
  EXPECT_EQ(product->id(), kId);
  EXPECT_EQ(product->sku(), "SKU-1");
  EXPECT_EQ(product->name(), "Widget");
  EXPECT_EQ(product->price_cents(), 1999);
  EXPECT_EQ(product->stock(), 10);
  EXPECT_EQ(product->version(), 1);
  ASSERT_EQ(product->pending_events().size(), 1u);
  const auto* added = LastEvent<ProductAdded>(*product, kAddedAt);
  ASSERT_NE(added, nullptr);
  EXPECT_EQ(added->product_id, kId);
  EXPECT_EQ(added->sku, "SKU-1");
  EXPECT_EQ(added->name, "Widget");
  EXPECT_EQ(added->price_cents, 1999);
  EXPECT_EQ(added->stock, 10);
}

TEST(ProductTest, GivenSkuAtBoundaries_WhenAdded_ThenInsideAcceptedOutsideRejected) {
  // given / when / then
  EXPECT_TRUE(AddWith("S", "n", 0, 0).has_value());
  EXPECT_TRUE(AddWith(Repeat("S", 64), "n", 0, 0).has_value());
  ExpectValidation(AddWith("", "n", 0, 0).error(), "sku must be 1..64 characters");
  ExpectValidation(AddWith(Repeat("S", 65), "n", 0, 0).error(), "sku must be 1..64 characters");
}

TEST(ProductTest, GivenNameAtBoundaries_WhenAdded_ThenInsideAcceptedOutsideRejected) {
  // given / when / then
  EXPECT_TRUE(AddWith("S", "n", 0, 0).has_value());
  EXPECT_TRUE(AddWith("S", Repeat("n", 200), 0, 0).has_value());
  EXPECT_TRUE(AddWith("S", Repeat("\xC3\xB1", 200), 0, 0).has_value());  // 200 × ñ
  ExpectValidation(AddWith("S", "", 0, 0).error(), "name must be 1..200 characters");
  ExpectValidation(AddWith("S", Repeat("n", 201), 0, 0).error(), "name must be 1..200 characters");
}

TEST(ProductTest, GivenPriceAtBoundaries_WhenAdded_ThenInsideAcceptedOutsideRejected) {
  // given / when / then
  EXPECT_TRUE(AddWith("S", "n", 0, 0).has_value());
  EXPECT_TRUE(AddWith("S", "n", kMaxPriceCents, 0).has_value());
  ExpectValidation(AddWith("S", "n", -1, 0).error(),
                   "price_cents must be between 0 and 1000000000");
  ExpectValidation(AddWith("S", "n", kMaxPriceCents + 1, 0).error(),
                   "price_cents must be between 0 and 1000000000");
}

TEST(ProductTest, GivenStockAtBoundaries_WhenAdded_ThenInsideAcceptedOutsideRejected) {
  // given / when / then
  EXPECT_TRUE(AddWith("S", "n", 0, 0).has_value());
  EXPECT_TRUE(AddWith("S", "n", 0, kMaxStock).has_value());
  ExpectValidation(AddWith("S", "n", 0, -1).error(), "stock must be between 0 and 1000000000");
  ExpectValidation(AddWith("S", "n", 0, kMaxStock + 1).error(),
                   "stock must be between 0 and 1000000000");
}

TEST(ProductTest, GivenAddedProduct_WhenPriceChanged_ThenVersionTwoAndOldAndNewPriceRecorded) {
  // given
  Product product = Added();

  // when
  const auto result = product.ChangePrice(2500, kLaterAt);

  // then
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(product.price_cents(), 2500);
  EXPECT_EQ(product.version(), 2);
  ASSERT_EQ(product.pending_events().size(), 2u);
  const auto* changed = LastEvent<ProductPriceChanged>(product, kLaterAt);
  ASSERT_NE(changed, nullptr);
  EXPECT_EQ(changed->product_id, kId);
  EXPECT_EQ(changed->price_cents, 2500);
  EXPECT_EQ(changed->previous_price_cents, 1999);
}

TEST(ProductTest,
     GivenAddedProduct_WhenPriceChangedAtBoundaries_ThenInsideAcceptedOutsideRejected) {
  // given
  Product product = Added();

  // when / then
  ExpectValidation(product.ChangePrice(-1, kLaterAt).error(),
                   "price_cents must be between 0 and 1000000000");
  ExpectValidation(product.ChangePrice(kMaxPriceCents + 1, kLaterAt).error(),
                   "price_cents must be between 0 and 1000000000");
  EXPECT_EQ(product.price_cents(), 1999);
  EXPECT_EQ(product.version(), 1);
  EXPECT_TRUE(product.ChangePrice(0, kLaterAt).has_value());
  EXPECT_TRUE(product.ChangePrice(kMaxPriceCents, kLaterAt).has_value());
  EXPECT_EQ(product.price_cents(), kMaxPriceCents);
  EXPECT_EQ(product.version(), 3);
}

TEST(ProductTest, GivenAddedProduct_WhenRestocked_ThenStockGrowsAndEventCarriesStockAfter) {
  // given
  Product product = Added(10);

  // when
  const auto result = product.Restock(5, kLaterAt);

  // then
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(product.stock(), 15);
  EXPECT_EQ(product.version(), 2);
  const auto* restocked = LastEvent<ProductRestocked>(product, kLaterAt);
  ASSERT_NE(restocked, nullptr);
  EXPECT_EQ(restocked->product_id, kId);
  EXPECT_EQ(restocked->quantity, 5);
  EXPECT_EQ(restocked->stock_after, 15);
}

TEST(ProductTest, GivenAddedProduct_WhenRestockedAtBoundaries_ThenInsideAcceptedOutsideRejected) {
  // given
  Product product = Added(0);

  // when / then
  ExpectValidation(product.Restock(0, kLaterAt).error(),
                   "quantity must be between 1 and 1000000000");
  ExpectValidation(product.Restock(kMaxRestockQuantity + 1, kLaterAt).error(),
                   "quantity must be between 1 and 1000000000");
  EXPECT_EQ(product.stock(), 0);
  EXPECT_EQ(product.version(), 1);
  EXPECT_TRUE(product.Restock(1, kLaterAt).has_value());
  EXPECT_TRUE(product.Restock(kMaxRestockQuantity, kLaterAt).has_value());
  EXPECT_EQ(product.stock(), 1 + kMaxRestockQuantity);
  EXPECT_EQ(product.version(), 3);
}

TEST(ProductTest, GivenStockNearInt64Max_WhenRestocked_ThenRejectedAndUnchanged) {
  // given
  const std::int64_t near_max = std::numeric_limits<std::int64_t>::max() - 5;
  Product product = Product::Rehydrate(kId, "S", "n", 1, near_max, 4);

  // when
  const auto result = product.Restock(6, kLaterAt);

  // then
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().category, ErrorCategory::kValidation);
  EXPECT_EQ(product.stock(), near_max);
  EXPECT_EQ(product.version(), 4);
  EXPECT_TRUE(product.pending_events().empty());
}

TEST(ProductTest, GivenStock_WhenReservedUpToAllStock_ThenStockDropsWithoutEventOrVersion) {
  // given
  Product product = Added(10);

  // when
  const auto first = product.Reserve(4);
  const auto second = product.Reserve(6);

  // then
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(product.stock(), 0);
  EXPECT_EQ(product.version(), 1);
  EXPECT_EQ(product.pending_events().size(), 1u);
}

TEST(ProductTest, GivenStock_WhenReservedBeyondStock_ThenInsufficientStockAndUnchanged) {
  // given
  Product product = Added(3);

  // when
  const auto result = product.Reserve(4);

  // then
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().category, ErrorCategory::kConflict);
  EXPECT_EQ(result.error().code, "insufficient_stock");
  EXPECT_NE(result.error().detail.find("SKU-1"), std::string::npos);
  EXPECT_EQ(product.stock(), 3);
  EXPECT_EQ(product.version(), 1);
}

TEST(ProductTest, GivenStock_WhenNonPositiveQuantityReserved_ThenValidationAndUnchanged) {
  // given
  Product product = Added(3);

  // when
  const auto zero = product.Reserve(0);
  const auto negative = product.Reserve(-5);

  // then
  EXPECT_EQ(zero.error().category, ErrorCategory::kValidation);
  EXPECT_EQ(negative.error().category, ErrorCategory::kValidation);
  EXPECT_EQ(product.stock(), 3);
}

TEST(ProductTest, GivenReservedStock_WhenReleased_ThenStockReturnedWithoutEventOrVersion) {
  // given
  Product product = Added(10);
  ASSERT_TRUE(product.Reserve(7).has_value());

  // when
  product.Release(7);

  // then
  EXPECT_EQ(product.stock(), 10);
  EXPECT_EQ(product.version(), 1);
  EXPECT_EQ(product.pending_events().size(), 1u);
}

TEST(ProductTest, GivenStoredState_WhenRehydrated_ThenStateKeptAndNoEventsPending) {
  // given / when
  Product product = Product::Rehydrate(kId, "SKU-9", "Gadget", 500, 42, 6);

  // then
  EXPECT_EQ(product.id(), kId);
  EXPECT_EQ(product.sku(), "SKU-9");
  EXPECT_EQ(product.name(), "Gadget");
  EXPECT_EQ(product.price_cents(), 500);
  EXPECT_EQ(product.stock(), 42);
  EXPECT_EQ(product.version(), 6);
  EXPECT_TRUE(product.pending_events().empty());
}

TEST(ProductTest, GivenRehydratedProduct_WhenPriceChanged_ThenEventVersionFollowsStoredVersion) {
  // given
  Product product = Product::Rehydrate(kId, "SKU-9", "Gadget", 500, 42, 6);

  // when
  ASSERT_TRUE(product.ChangePrice(600, kLaterAt).has_value());

  // then
  EXPECT_EQ(product.version(), 7);
  ASSERT_EQ(product.pending_events().size(), 1u);
  EXPECT_EQ(product.pending_events()[0].aggregate_version, 7);
}

}  // namespace
}  // namespace shopcqrs::domain
