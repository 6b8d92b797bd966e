#include "domain/time.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shopcqrs::domain {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

Timestamp At(year_month_day date, hours h, minutes m, seconds s, milliseconds ms) {
  return Timestamp{sys_days{date}} + h + m + s + ms;
}

TEST(TimestampTest, GivenEpoch_WhenFormatted_ThenZeroPaddedWithMillis) {
  // given
  const Timestamp epoch{};

  // when
  const std::string text = FormatTimestamp(epoch);

  // then
  EXPECT_EQ(text, "1970-01-01T00:00:00.000Z");
}

TEST(TimestampTest, GivenTimeWithMillis_WhenFormatted_ThenRfc3339Utc) {
  // given
  const Timestamp t = At(2026y / 11 / 26, 18h, 23min, 16s, 123ms);

  // when
  const std::string text = FormatTimestamp(t);

  // then
  EXPECT_EQ(text, "2026-11-26T18:23:16.123Z");
}

TEST(TimestampTest, GivenSmallMillis_WhenFormatted_ThenMillisZeroPadded) {
  // given
  const Timestamp t = At(2024y / 2 / 29, 3h, 4min, 5s, 7ms);

  // when
  const std::string text = FormatTimestamp(t);

  // then
  EXPECT_EQ(text, "2024-02-29T03:04:05.007Z");
}

TEST(TimestampTest, GivenTimeBeforeEpoch_WhenFormatted_ThenFlooredCorrectly) {
  // given
  const Timestamp t = Timestamp{} - 1ms;

  // when
  const std::string text = FormatTimestamp(t);

  // then
  EXPECT_EQ(text, "1969-12-31T23:59:59.999Z");
}

TEST(TimestampTest, GivenFormattedTimestamps_WhenParsed_ThenRoundTrip) {
  // given
  const std::vector<Timestamp> times = {
      Timestamp{},
      At(2026y / 11 / 26, 18h, 23min, 16s, 123ms),
      At(2024y / 2 / 29, 23h, 59min, 59s, 999ms),
      At(9999y / 12 / 31, 23h, 59min, 59s, 999ms),
      At(2000y / 1 / 1, 0h, 0min, 0s, 1ms),
  };

  for (const Timestamp t : times) {
    // when
    const auto parsed = ParseTimestamp(FormatTimestamp(t));

    // then
    ASSERT_TRUE(parsed.has_value()) << FormatTimestamp(t);
    EXPECT_EQ(*parsed, t);
  }
}

TEST(TimestampTest, GivenPlusZeroOffset_WhenParsed_ThenSameAsZ) {
  // given
  const std::string text = "2026-11-26T18:23:16.123+00:00";

  // when
  const auto parsed = ParseTimestamp(text);

  // then
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, At(2026y / 11 / 26, 18h, 23min, 16s, 123ms));
}

TEST(TimestampTest, GivenZeroToThreeFractionDigits_WhenParsed_ThenScaledToMillis) {
  // given / when / then
  EXPECT_EQ(ParseTimestamp("2026-11-26T18:23:16Z"), At(2026y / 11 / 26, 18h, 23min, 16s, 0ms));
  EXPECT_EQ(ParseTimestamp("2026-11-26T18:23:16.1Z"), At(2026y / 11 / 26, 18h, 23min, 16s, 100ms));
  EXPECT_EQ(ParseTimestamp("2026-11-26T18:23:16.12Z"), At(2026y / 11 / 26, 18h, 23min, 16s, 120ms));
  EXPECT_EQ(ParseTimestamp("2026-11-26T18:23:16.123+00:00"),
            At(2026y / 11 / 26, 18h, 23min, 16s, 123ms));
}

TEST(TimestampTest, GivenMoreThanThreeFractionDigits_WhenParsed_ThenTruncatedToMillis) {
  // given
  const std::string micros = "2026-11-26T18:23:16.123999Z";
  const std::string nanos = "2026-11-26T18:23:16.999999999+00:00";

  // when
  const auto parsed_micros = ParseTimestamp(micros);
  const auto parsed_nanos = ParseTimestamp(nanos);

  // then
  EXPECT_EQ(parsed_micros, At(2026y / 11 / 26, 18h, 23min, 16s, 123ms));
  EXPECT_EQ(parsed_nanos, At(2026y / 11 / 26, 18h, 23min, 16s, 999ms));
}

TEST(TimestampTest, GivenLowercaseSeparators_WhenParsed_ThenAcceptedAsRfc3339Allows) {
  // given
  const std::string text = "2026-11-26t18:23:16.123z";

  // when
  const auto parsed = ParseTimestamp(text);

  // then
  EXPECT_EQ(parsed, At(2026y / 11 / 26, 18h, 23min, 16s, 123ms));
}

TEST(TimestampTest, GivenMalformedTexts_WhenParsed_ThenEachIsNullopt) {
  // given
  const std::vector<std::string> malformed = {
      "",
      "2026-11-26",
      "2026-11-26T18:23:16",            // no offset
      "2026-11-26T18:23:16.123",        // no offset
      "2026-11-26 18:23:16.123Z",       // space instead of T
      "2026-11-26T18:23:16.Z",          // dot without digits
      "2026-11-26T18:23:16.123+01:00",  // not UTC
      "2026-11-26T18:23:16.123-05:00",  // not UTC
      "2026-11-26T18:23:16.123+00",     // incomplete offset
      "2026-11-26T18:23:16.123+0000",   // offset without colon
      "2026-11-26T18:23:16.123ZZ",      // trailing garbage
      "2026-11-26T18:23:16.123Z ",      // trailing space
      " 2026-11-26T18:23:16.123Z",      // leading space
      "26-11-26T18:23:16.123Z",         // two-digit year
      "2026-1-26T18:23:16.123Z",        // one-digit month
      "2026-11-26T8:23:16.123Z",        // one-digit hour
      "2026-13-26T18:23:16.123Z",       // month 13
      "2026-00-26T18:23:16.123Z",       // month 0
      "2026-11-00T18:23:16.123Z",       // day 0
      "2026-11-31T18:23:16.123Z",       // November has 30 days
      "2026-02-29T18:23:16.123Z",       // not a leap year
      "2026-11-26T24:00:00.000Z",       // hour 24
      "2026-11-26T18:60:16.123Z",       // minute 60
      "2026-11-26T18:23:60.123Z",       // second 60
      "2026-11-26T18:23:16.12aZ",       // non-digit in fraction
      "2O26-11-26T18:23:16.123Z",       // letter O in year
      "2026/11/26T18:23:16.123Z",       // wrong date separator
      "2026-11-26T18-23-16.123Z",       // wrong time separator
  };

  for (const auto& text : malformed) {
    // when
    const auto parsed = ParseTimestamp(text);

    // then
    EXPECT_FALSE(parsed.has_value()) << text;
  }
}

TEST(TimestampTest, GivenLeapDay_WhenParsed_ThenAccepted) {
  // given
  const std::string text = "2024-02-29T12:00:00.000Z";

  // when
  const auto parsed = ParseTimestamp(text);

  // then
  EXPECT_EQ(parsed, At(2024y / 2 / 29, 12h, 0min, 0s, 0ms));
}

}  // namespace
}  // namespace shopcqrs::domain
