#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shopcqrs::cqrs {

// A consistency token names a position in commit order: "every transaction that committed
// before the command that got this token". Inside it is a commit bound (for the xid8 outbox
// reader: the first transaction id not yet completed when the command's commit had finished),
// so a read store that has applied every transaction below the bound has applied the command
// and everything that committed before it.
//
// Text form: "ct1." + hex(bound) + "." + 8 hex digits of a keyed checksum. The checksum lets
// the server tell its own tokens from made-up text (400 for a token it did not issue). It is
// not a cryptographic signature; the bound is not secret.
class ConsistencyTokens {
 public:
  explicit ConsistencyTokens(std::string_view secret = "shopcqrs");

  std::string Encode(std::uint64_t bound) const;
  // nullopt for anything this codec did not produce.
  std::optional<std::uint64_t> Decode(std::string_view token) const;

 private:
  std::uint32_t Checksum(std::uint64_t bound) const;
  std::uint64_t key_;
};

}  // namespace shopcqrs::cqrs
