#include "domain/values.h"

#include <limits>
#include <utility>

namespace shopcqrs::domain {
namespace {

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence starting at text[pos] (1..4), or 0 if the bytes
// there are not a well-formed sequence (Unicode Table 3-7: no overlongs, no surrogates,
// nothing above U+10FFFF).
std::size_t WellFormedSequenceLength(std::string_view text, std::size_t pos) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  const std::size_t remaining = text.size() - pos;
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;
    if (lead == 0xED) second_max = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;
    if (lead == 0xF4) second_max = 0x8F;
  } else {
    return 0;
  }
  if (remaining < length) return 0;
  if (byte(1) < second_min || byte(1) > second_max) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (!IsContinuation(byte(i))) return 0;
  }
  return length;
}

std::string CharsMessage(std::string_view field, std::size_t min_chars, std::size_t max_chars) {
  std::string detail(field);
  detail += " must be ";
  detail += std::to_string(min_chars);
  detail += "..";
  detail += std::to_string(max_chars);
  detail += " characters";
  return detail;
}

}  // namespace

std::size_t CodePointCount(std::string_view text) {
  std::size_t count = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t length = WellFormedSequenceLength(text, pos);
    pos += length == 0 ? 1 : length;  // an invalid byte counts as one code point
    ++count;
  }
  return count;
}

Result<std::string> CheckText(std::string value, std::size_t min_chars, std::size_t max_chars,
                              std::string_view field) {
  // Cheap bounds first: every code point is 1..4 bytes.
  if (value.size() < min_chars || (value.size() + 3) / 4 > max_chars) {
    return std::unexpected(ValidationFailed(CharsMessage(field, min_chars, max_chars)));
  }
  const std::size_t chars = CodePointCount(value);
  if (chars < min_chars || chars > max_chars) {
    return std::unexpected(ValidationFailed(CharsMessage(field, min_chars, max_chars)));
  }
  return value;
}

Result<std::int64_t> CheckRange(std::int64_t value, std::int64_t min, std::int64_t max,
                                std::string_view field) {
  if (value < min || value > max) {
    std::string detail(field);
    detail += " must be between ";
    detail += std::to_string(min);
    detail += " and ";
    detail += std::to_string(max);
    return std::unexpected(ValidationFailed(std::move(detail)));
  }
  return value;
}

Result<Money> Money::FromCents(std::int64_t cents, std::string_view field) {
  auto checked = CheckRange(cents, 0, std::numeric_limits<std::int64_t>::max(), field);
  if (!checked) return std::unexpected(checked.error());
  return Money(*checked);
}

Result<Email> Email::Create(std::string value, std::string_view field) {
  auto checked = CheckText(std::move(value), 1, kMaxEmailChars, field);
  if (!checked) return std::unexpected(checked.error());
  if (checked->find('@') == std::string::npos) {
    std::string detail(field);
    detail += " must contain '@'";
    return std::unexpected(ValidationFailed(std::move(detail)));
  }
  return Email(std::move(*checked));
}

Result<Sku> Sku::Create(std::string value, std::string_view field) {
  auto checked = CheckText(std::move(value), 1, kMaxSkuChars, field);
  if (!checked) return std::unexpected(checked.error());
  return Sku(std::move(*checked));
}

Result<Name> Name::Create(std::string value, std::string_view field) {
  auto checked = CheckText(std::move(value), 1, kMaxNameChars, field);
  if (!checked) return std::unexpected(checked.error());
  return Name(std::move(*checked));
}

}  // namespace shopcqrs::domain
