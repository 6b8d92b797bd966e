#include "domain/time.h"

#include <cstdio>

namespace shopcqrs::domain {
namespace {

// Reads exactly `count` decimal digits at `pos`; advances `pos`. False if any is not a digit.
bool ReadDigits(std::string_view text, std::size_t& pos, std::size_t count, int& out) {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  pos += count;
  out = value;
  return true;
}

bool Expect(std::string_view text, std::size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

bool ExpectEither(std::string_view text, std::size_t& pos, char upper, char lower) {
  if (pos >= text.size() || (text[pos] != upper && text[pos] != lower)) return false;
  ++pos;
  return true;
}

}  // namespace

std::string FormatTimestamp(Timestamp t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> tod{t - day};
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(tod.hours().count()),
                static_cast<int>(tod.minutes().count()), static_cast<int>(tod.seconds().count()),
                static_cast<int>(tod.subseconds().count()));
  return buffer;
}

std::optional<Timestamp> ParseTimestamp(std::string_view text) {
  using namespace std::chrono;
  std::size_t pos = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!ReadDigits(text, pos, 4, y) || !Expect(text, pos, '-') || !ReadDigits(text, pos, 2, mo) ||
      !Expect(text, pos, '-') || !ReadDigits(text, pos, 2, d) ||
      !ExpectEither(text, pos, 'T', 't') || !ReadDigits(text, pos, 2, h) ||
      !Expect(text, pos, ':') || !ReadDigits(text, pos, 2, mi) || !Expect(text, pos, ':') ||
      !ReadDigits(text, pos, 2, s)) {
    return std::nullopt;
  }

  // Optional fraction: at least one digit; digits past milliseconds are truncated.
  int millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 3) millis = millis * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (std::size_t i = digits; i < 3; ++i) millis *= 10;
  }

  // Offset: "Z" or "+00:00" (UTC only).
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else {
    int off_h = 0, off_m = 0;
    if (!Expect(text, pos, '+') || !ReadDigits(text, pos, 2, off_h) || !Expect(text, pos, ':') ||
        !ReadDigits(text, pos, 2, off_m) || off_h != 0 || off_m != 0) {
      return std::nullopt;
    }
  }
  if (pos != text.size()) return std::nullopt;

  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 59) return std::nullopt;

  return Timestamp{sys_days{ymd}} + hours{h} + minutes{mi} + seconds{s} + milliseconds{millis};
}

}  // namespace shopcqrs::domain
