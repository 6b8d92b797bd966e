#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shopcqrs::cqrs {

// The one consistency-token format. A token names a point of the write server's commit order:
// "every transaction that committed before the command that got this token". Its fields:
//   version  "ct2"
//   reader   how the position was taken: "x" = an xid8 snapshot bound of the write server
//            (the outbox reader's order; a logical-decoding reader would name an LSN)
//   epoch    the write server's epoch (cqrs/commit_bound.h: one per start of the server, named
//            by its system identifier, timeline and start, so a crash, a restart or a
//            point-in-time restore each start a new one)
//   position the commit bound within the epoch (for "x": the first xid not yet completed when
//            the command's commit had finished)
//   mac      HMAC-SHA256 (OpenSSL) over the fields above with the installation's token key,
//            truncated to 128 bits, compared in constant time: the server tells its own tokens
//            from made-up or altered text (400 for anything it did not issue).
// Text form: "ct2.x.<epoch hex>.<position hex>.<32 hex digits of mac>", lowercase, no leading
// zeros. Decode answers the composed bound (ComposeBound(epoch, position)) that read stores are
// compared with. Tokens of the earlier format ("ct1.") are not accepted.
class ConsistencyTokens {
 public:
  explicit ConsistencyTokens(std::string_view key = "shopcqrs");

  std::string Encode(std::uint64_t bound) const;
  // nullopt for anything this codec did not produce.
  std::optional<std::uint64_t> Decode(std::string_view token) const;

 private:
  std::string Mac(std::string_view fields) const;  // 32 lowercase hex digits
  std::string key_;
};

}  // namespace shopcqrs::cqrs
