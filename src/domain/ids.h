#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace shopcqrs::domain {

// A UUID held as 16 bytes; text form is canonical lowercase 8-4-4-4-12.
class Uuid {
 public:
  using Bytes = std::array<std::uint8_t, 16>;

  Uuid() = default;  // the nil UUID
  explicit Uuid(const Bytes& bytes) : bytes_(bytes) {}

  // Accepts canonical 36-character text in either case; anything else is nullopt.
  static std::optional<Uuid> Parse(std::string_view text);
  // Version 4 (random) UUID built from two random 64-bit words.
  static Uuid V4FromRandom(std::uint64_t hi, std::uint64_t lo);

  std::string ToString() const;
  const Bytes& bytes() const { return bytes_; }
  bool IsNil() const;

  friend auto operator<=>(const Uuid&, const Uuid&) = default;

 private:
  Bytes bytes_{};
};

// Strongly typed aggregate ids.
template <class Tag>
class Id {
 public:
  Id() = default;
  explicit Id(Uuid value) : value_(value) {}
  static std::optional<Id> Parse(std::string_view text) {
    auto uuid = Uuid::Parse(text);
    if (!uuid) return std::nullopt;
    return Id(*uuid);
  }
  const Uuid& value() const { return value_; }
  std::string ToString() const { return value_.ToString(); }
  friend auto operator<=>(const Id&, const Id&) = default;

 private:
  Uuid value_;
};

using CustomerId = Id<struct CustomerIdTag>;
using ProductId = Id<struct ProductIdTag>;
using OrderId = Id<struct OrderIdTag>;

}  // namespace shopcqrs::domain

template <>
struct std::hash<shopcqrs::domain::Uuid> {
  std::size_t operator()(const shopcqrs::domain::Uuid& u) const noexcept;
};
template <class Tag>
struct std::hash<shopcqrs::domain::Id<Tag>> {
  std::size_t operator()(const shopcqrs::domain::Id<Tag>& id) const noexcept {
    return std::hash<shopcqrs::domain::Uuid>{}(id.value());
  }
};
