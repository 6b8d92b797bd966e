#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "domain/error.h"

namespace shopcqrs::domain {

// Number of Unicode code points in valid UTF-8 text (invalid bytes count as one each).
std::size_t CodePointCount(std::string_view text);

// Money in integer minor units (cents); never negative.
class Money {
 public:
  constexpr Money() = default;
  static Result<Money> FromCents(std::int64_t cents, std::string_view field);
  constexpr std::int64_t cents() const { return cents_; }
  Money operator+(Money other) const { return Money(cents_ + other.cents_); }
  Money operator*(std::int64_t factor) const { return Money(cents_ * factor); }
  friend auto operator<=>(const Money&, const Money&) = default;

 private:
  constexpr explicit Money(std::int64_t cents) : cents_(cents) {}
  std::int64_t cents_ = 0;
};

// Limits of API.md, kept in one place.
inline constexpr std::int64_t kMaxPriceCents = 1'000'000'000;
inline constexpr std::int64_t kMaxStock = 1'000'000'000;
inline constexpr std::int64_t kMaxRestockQuantity = 1'000'000'000;
inline constexpr std::int64_t kMaxLineQuantity = 1000;
inline constexpr std::size_t kMaxOrderLines = 100;
inline constexpr std::size_t kMaxNameChars = 200;
inline constexpr std::size_t kMaxEmailChars = 254;
inline constexpr std::size_t kMaxSkuChars = 64;
inline constexpr std::size_t kMaxReferenceChars = 100;  // payment reference, tracking number
inline constexpr std::size_t kMaxCancelReasonChars = 500;

// Validated text value objects. Each Create checks length in code points (and, for Email,
// that it contains '@'); a failure is validation_failed whose detail names `field`.
// TextValue is what they share: the checked string, made only by their Create.
template <class Derived>
class TextValue {
 public:
  const std::string& value() const { return value_; }
  friend bool operator==(const Derived& a, const Derived& b) { return a.value() == b.value(); }

 protected:
  explicit TextValue(std::string v) : value_(std::move(v)) {}

 private:
  std::string value_;
};

class Email : public TextValue<Email> {
 public:
  static Result<Email> Create(std::string value, std::string_view field = "email");
  using TextValue::TextValue;  // protected
};

class Sku : public TextValue<Sku> {
 public:
  static Result<Sku> Create(std::string value, std::string_view field = "sku");
  using TextValue::TextValue;  // protected
};

// A name of 1..200 code points (customer or product name).
class Name : public TextValue<Name> {
 public:
  static Result<Name> Create(std::string value, std::string_view field = "name");
  using TextValue::TextValue;  // protected
};

// Validates text of min..max code points; the error names `field`.
Result<std::string> CheckText(std::string value, std::size_t min_chars, std::size_t max_chars,
                              std::string_view field);
// Validates an integer in [min, max]; the error names `field`.
Result<std::int64_t> CheckRange(std::int64_t value, std::int64_t min, std::int64_t max,
                                std::string_view field);

}  // namespace shopcqrs::domain
