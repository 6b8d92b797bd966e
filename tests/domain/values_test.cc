#include "domain/values.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "support/domain_checks.h"

namespace shopcqrs::domain {
namespace {

using namespace test_support;

constexpr std::string_view kTwoByte = "\xC3\xA9";           // U+00E9 é
constexpr std::string_view kThreeByte = "\xE2\x82\xAC";     // U+20AC €
constexpr std::string_view kFourByte = "\xF0\x9F\x98\x80";  // U+1F600 😀

// --- CodePointCount -------------------------------------------------------------------

TEST(CodePointCountTest, GivenAscii_WhenCounted_ThenOnePerByte) {
  // given
  const std::string text = "hello";

  // when
  const auto count = CodePointCount(text);

  // then
  EXPECT_EQ(count, 5u);
  EXPECT_EQ(CodePointCount(""), 0u);
}

TEST(CodePointCountTest, GivenMultiByteCharacters_WhenCounted_ThenOnePerCodePoint) {
  // given
  const std::string text =
      std::string("a") + std::string(kTwoByte) + std::string(kThreeByte) + std::string(kFourByte);

  // when
  const auto count = CodePointCount(text);

  // then
  EXPECT_EQ(text.size(), 10u);
  EXPECT_EQ(count, 4u);
}

TEST(CodePointCountTest, GivenInvalidBytes_WhenCounted_ThenEachInvalidByteCountsOne) {
  // given / when / then
  EXPECT_EQ(CodePointCount("\xFF"), 1u);              // never valid
  EXPECT_EQ(CodePointCount("\x80"), 1u);              // lone continuation byte
  EXPECT_EQ(CodePointCount("\xE2\x82"), 2u);          // truncated 3-byte sequence
  EXPECT_EQ(CodePointCount("\xC0\xAF"), 2u);          // overlong encoding of '/'
  EXPECT_EQ(CodePointCount("\xED\xA0\x80"), 3u);      // UTF-16 surrogate
  EXPECT_EQ(CodePointCount("\xF4\x90\x80\x80"), 4u);  // above U+10FFFF
  EXPECT_EQ(CodePointCount("a\xE2\x82"
                           "b"),
            4u);  // truncated in the middle
}

// --- CheckText / CheckRange -----------------------------------------------------------

TEST(CheckTextTest, GivenTextAtBounds_WhenChecked_ThenInsideAcceptedOutsideRejected) {
  // given
  const std::string field = "payment_reference";

  // when / then
  EXPECT_TRUE(CheckText("a", 1, 3, field).has_value());
  EXPECT_TRUE(CheckText("abc", 1, 3, field).has_value());
  ExpectValidation(CheckText("", 1, 3, field).error(), "payment_reference must be 1..3 characters");
  ExpectValidation(CheckText("abcd", 1, 3, field).error(),
                   "payment_reference must be 1..3 characters");
}

TEST(CheckTextTest, GivenZeroMinimum_WhenEmptyTextChecked_ThenAccepted) {
  // given
  const std::string empty;

  // when
  const auto result = CheckText(empty, 0, 500, "reason");

  // then
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, "");
}

TEST(CheckTextTest, GivenValidText_WhenChecked_ThenValueReturnedUnchanged) {
  // given
  const std::string text = " spaced " + std::string(kFourByte);

  // when
  const auto result = CheckText(text, 1, 200, "name");

  // then
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, text);
}

TEST(CheckRangeTest, GivenValuesAtBounds_WhenChecked_ThenInsideAcceptedOutsideRejected) {
  // given
  const std::string field = "lines[2].quantity";

  // when / then
  EXPECT_EQ(CheckRange(1, 1, 1000, field), 1);
  EXPECT_EQ(CheckRange(1000, 1, 1000, field), 1000);
  ExpectValidation(CheckRange(0, 1, 1000, field).error(),
                   "lines[2].quantity must be between 1 and 1000");
  ExpectValidation(CheckRange(1001, 1, 1000, field).error(),
                   "lines[2].quantity must be between 1 and 1000");
  ExpectValidation(CheckRange(std::numeric_limits<std::int64_t>::min(), 1, 1000, field).error(),
                   "lines[2].quantity must be between 1 and 1000");
}

// --- Name -----------------------------------------------------------------------------

TEST(NameTest, GivenNameOfOneAndTwoHundredChars_WhenCreated_ThenAccepted) {
  // given
  const std::string shortest = "A";
  const std::string longest = Repeat("a", kMaxNameChars);

  // when
  const auto a = Name::Create(shortest);
  const auto b = Name::Create(longest);

  // then
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(a->value(), shortest);
  EXPECT_EQ(b->value(), longest);
}

TEST(NameTest, GivenEmptyOrTwoHundredOneChars_WhenCreated_ThenValidationNamesTheField) {
  // given
  const std::string empty;
  const std::string too_long = Repeat("a", kMaxNameChars + 1);

  // when
  const auto a = Name::Create(empty);
  const auto b = Name::Create(too_long);

  // then
  ExpectValidation(a.error(), "name must be 1..200 characters");
  ExpectValidation(b.error(), "name must be 1..200 characters");
}

TEST(NameTest, GivenTwoHundredMultiByteChars_WhenCreated_ThenAcceptedByCodePoints) {
  // given
  const std::string two_byte = Repeat(kTwoByte, 200);      // 400 bytes
  const std::string three_byte = Repeat(kThreeByte, 200);  // 600 bytes
  const std::string four_byte = Repeat(kFourByte, 200);    // 800 bytes

  // when / then
  EXPECT_TRUE(Name::Create(two_byte).has_value());
  EXPECT_TRUE(Name::Create(three_byte).has_value());
  EXPECT_TRUE(Name::Create(four_byte).has_value());
}

TEST(NameTest, GivenTwoHundredOneMultiByteChars_WhenCreated_ThenRejected) {
  // given
  const std::string too_long = Repeat(kFourByte, 201);

  // when
  const auto result = Name::Create(too_long);

  // then
  ExpectValidation(result.error(), "name must be 1..200 characters");
}

TEST(NameTest, GivenCustomField_WhenInvalid_ThenDetailNamesThatField) {
  // given
  const std::string empty;

  // when
  const auto result = Name::Create(empty, "product_name");

  // then
  ExpectValidation(result.error(), "product_name must be 1..200 characters");
}

// --- Email ----------------------------------------------------------------------------

TEST(EmailTest, GivenEmailOfOneAndTwoHundredFiftyFourChars_WhenCreated_ThenAccepted) {
  // given
  const std::string shortest = "@";
  const std::string longest = Repeat("a", 200) + "@" + Repeat("b", 49) + ".com";

  // when
  const auto a = Email::Create(shortest);
  const auto b = Email::Create(longest);

  // then
  ASSERT_EQ(longest.size(), kMaxEmailChars);
  EXPECT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->value(), longest);
}

TEST(EmailTest, GivenEmptyOrTwoHundredFiftyFiveChars_WhenCreated_ThenRejected) {
  // given
  const std::string empty;
  const std::string too_long = Repeat("a", 200) + "@" + Repeat("b", 50) + ".com";

  // when
  const auto a = Email::Create(empty);
  const auto b = Email::Create(too_long);

  // then
  ASSERT_EQ(too_long.size(), kMaxEmailChars + 1);
  ExpectValidation(a.error(), "email must be 1..254 characters");
  ExpectValidation(b.error(), "email must be 1..254 characters");
}

TEST(EmailTest, GivenTextWithoutAt_WhenCreated_ThenRejected) {
  // given
  const std::string no_at = "alice.example.com";

  // when
  const auto result = Email::Create(no_at);

  // then
  ExpectValidation(result.error(), "email must contain '@'");
}

// --- Sku ------------------------------------------------------------------------------

TEST(SkuTest, GivenSkuOfOneAndSixtyFourChars_WhenCreated_ThenAccepted) {
  // given / when / then
  EXPECT_TRUE(Sku::Create("X").has_value());
  EXPECT_TRUE(Sku::Create(Repeat("X", kMaxSkuChars)).has_value());
  EXPECT_TRUE(Sku::Create(Repeat(kThreeByte, kMaxSkuChars)).has_value());
}

TEST(SkuTest, GivenEmptyOrSixtyFiveChars_WhenCreated_ThenRejected) {
  // given / when / then
  ExpectValidation(Sku::Create("").error(), "sku must be 1..64 characters");
  ExpectValidation(Sku::Create(Repeat("X", kMaxSkuChars + 1)).error(),
                   "sku must be 1..64 characters");
}

// --- Money ----------------------------------------------------------------------------

TEST(MoneyTest, GivenNonNegativeCents_WhenCreated_ThenHoldsCentsAndDoesArithmetic) {
  // given
  const auto zero = Money::FromCents(0, "price_cents");
  const auto price = Money::FromCents(250, "price_cents");

  // when
  ASSERT_TRUE(zero.has_value());
  ASSERT_TRUE(price.has_value());
  const Money sum = *price + *price;
  const Money product = *price * 3;

  // then
  EXPECT_EQ(zero->cents(), 0);
  EXPECT_EQ(sum.cents(), 500);
  EXPECT_EQ(product.cents(), 750);
  EXPECT_LT(*zero, *price);
}

TEST(MoneyTest, GivenNegativeCents_WhenCreated_ThenValidationNamesTheField) {
  // given
  const std::int64_t cents = -1;

  // when
  const auto money = Money::FromCents(cents, "amount_cents");

  // then
  ASSERT_FALSE(money.has_value());
  EXPECT_EQ(money.error().category, ErrorCategory::kValidation);
  EXPECT_EQ(money.error().detail.rfind("amount_cents ", 0), 0u);
}

}  // namespace
}  // namespace shopcqrs::domain
