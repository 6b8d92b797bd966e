#include "domain/ids.h"

#include <gtest/gtest.h>

#include <string>
#include <unordered_set>

namespace shopcqrs::domain {
namespace {

constexpr std::string_view kCanonical = "123e4567-e89b-42d3-a456-426614174000";

TEST(UuidTest, GivenCanonicalLowercaseText_WhenParsedAndFormatted_ThenRoundTrips) {
  // given
  const std::string text(kCanonical);

  // when
  const auto uuid = Uuid::Parse(text);

  // then
  ASSERT_TRUE(uuid.has_value());
  EXPECT_EQ(uuid->ToString(), text);
  EXPECT_EQ(uuid->bytes()[0], 0x12);
  EXPECT_EQ(uuid->bytes()[15], 0x00);
}

TEST(UuidTest, GivenUppercaseText_WhenParsed_ThenAcceptedAndFormattedLowercase) {
  // given
  const std::string text = "123E4567-E89B-42D3-A456-426614174ABC";

  // when
  const auto uuid = Uuid::Parse(text);

  // then
  ASSERT_TRUE(uuid.has_value());
  EXPECT_EQ(uuid->ToString(), "123e4567-e89b-42d3-a456-426614174abc");
}

TEST(UuidTest, GivenMixedCaseText_WhenParsed_ThenEqualsLowercaseParse) {
  // given
  const std::string mixed = "aBcDeF01-2345-6789-AbCd-Ef0123456789";

  // when
  const auto uuid = Uuid::Parse(mixed);

  // then
  ASSERT_TRUE(uuid.has_value());
  EXPECT_EQ(*uuid, *Uuid::Parse("abcdef01-2345-6789-abcd-ef0123456789"));
}

TEST(UuidTest, GivenMalformedTexts_WhenParsed_ThenEachIsRejected) {
  // given
  const std::vector<std::string> malformed = {
      "",
      "123e4567-e89b-42d3-a456-42661417400",     // 35 characters
      "123e4567-e89b-42d3-a456-4266141740000",   // 37 characters
      "123e4567e89b42d3a456426614174000",        // no hyphens
      "{123e4567-e89b-42d3-a456-426614174000}",  // braces
      "urn:uuid:123e4567-e89b-42d3-a456-426614174000",
      "123e4567-e89b-42d3-a456_426614174000",  // wrong separator
      "123e456-7e89b-42d3-a456-426614174000",  // hyphen moved
      "123e4567-e89b-42d3-a456-42661417400g",  // non-hex digit
      " 23e4567-e89b-42d3-a456-426614174000",  // space
      "------------------------------------",
      "not-a-uuid",
  };

  for (const auto& text : malformed) {
    // when
    const auto uuid = Uuid::Parse(text);

    // then
    EXPECT_FALSE(uuid.has_value()) << text;
  }
}

TEST(UuidTest, GivenEmbeddedNulByte_WhenParsed_ThenRejected) {
  // given
  std::string text(kCanonical);
  text[35] = '\0';

  // when
  const auto uuid = Uuid::Parse(text);

  // then
  EXPECT_FALSE(uuid.has_value());
}

TEST(UuidTest, GivenDefaultUuid_WhenInspected_ThenIsNilAndFormatsAsZeros) {
  // given
  const Uuid uuid;

  // when
  const std::string text = uuid.ToString();

  // then
  EXPECT_TRUE(uuid.IsNil());
  EXPECT_EQ(text, "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(Uuid::Parse(text), uuid);
}

TEST(UuidTest, GivenRandomWords_WhenV4Built_ThenVersionAndVariantBitsAreSet) {
  // given
  const std::uint64_t hi = 0xFFFFFFFFFFFFFFFFULL;
  const std::uint64_t lo = 0x0000000000000000ULL;

  // when
  const Uuid all_ones = Uuid::V4FromRandom(hi, hi);
  const Uuid all_zeros = Uuid::V4FromRandom(lo, lo);

  // then
  for (const Uuid& uuid : {all_ones, all_zeros}) {
    EXPECT_EQ(uuid.bytes()[6] >> 4, 4);
    EXPECT_EQ(uuid.bytes()[8] >> 6, 0b10);
    const std::string text = uuid.ToString();
    EXPECT_EQ(text[14], '4');
    EXPECT_NE(std::string_view("89ab").find(text[19]), std::string_view::npos);
    EXPECT_FALSE(uuid.IsNil());
  }
  EXPECT_EQ(all_ones.ToString(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
  EXPECT_EQ(all_zeros.ToString(), "00000000-0000-4000-8000-000000000000");
}

TEST(UuidTest, GivenRandomWords_WhenV4Built_ThenOtherBitsComeFromTheWordsBigEndian) {
  // given
  const std::uint64_t hi = 0x0123456789ABCDEFULL;
  const std::uint64_t lo = 0xFEDCBA9876543210ULL;

  // when
  const Uuid uuid = Uuid::V4FromRandom(hi, lo);

  // then
  EXPECT_EQ(uuid.ToString(), "01234567-89ab-4def-bedc-ba9876543210");
  EXPECT_EQ(Uuid::Parse(uuid.ToString()), uuid);
}

TEST(UuidTest, GivenEqualAndDifferentUuids_WhenHashedAndCompared_ThenConsistent) {
  // given
  const Uuid a = Uuid::V4FromRandom(1, 2);
  const Uuid a_again = *Uuid::Parse(a.ToString());
  const Uuid b = Uuid::V4FromRandom(1, 3);
  const Uuid c = Uuid::V4FromRandom(2, 2);

  // when
  std::unordered_set<Uuid> set = {a, a_again, b, c};

  // then
  EXPECT_EQ(std::hash<Uuid>{}(a), std::hash<Uuid>{}(a_again));
  EXPECT_NE(std::hash<Uuid>{}(a), std::hash<Uuid>{}(b));
  EXPECT_NE(std::hash<Uuid>{}(a), std::hash<Uuid>{}(c));
  EXPECT_EQ(set.size(), 3u);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST(IdTest, GivenUuidText_WhenTypedIdParsed_ThenWrapsTheUuid) {
  // given
  const std::string text(kCanonical);

  // when
  const auto id = OrderId::Parse(text);
  const auto bad = OrderId::Parse("42");

  // then
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->ToString(), text);
  EXPECT_EQ(id->value(), *Uuid::Parse(text));
  EXPECT_FALSE(bad.has_value());
  EXPECT_EQ(std::hash<OrderId>{}(*id), std::hash<Uuid>{}(id->value()));
}

}  // namespace
}  // namespace shopcqrs::domain
