// libFuzzer harness: the consistency-token codec (cqrs::ConsistencyTokens).
//
// The first byte picks a mode:
//   0  the rest is a token as a client sends it (X-Consistency-Token): Decode must not crash,
//      and whatever it accepts must be exactly what Encode makes of the answer;
//   1  the rest is the token's fields ("ct2.x.<epoch>.<position>"), signed here with the codec's
//      key, so the fuzzer gets past the MAC and into the field parsing (same property);
//   2  the next 8 bytes are a commit bound: Encode then Decode gives it back when it is one a
//      write server can have (epoch of 19 bits), and nothing otherwise.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "cqrs/commit_bound.h"
#include "cqrs/consistency_token.h"

namespace {

constexpr std::string_view kKey = "fuzz-token-key-0123456789";

// The codec's MAC: HMAC-SHA256 with the key, the first 16 bytes in lowercase hex.
std::string Sign(std::string_view fields) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), kKey.data(), static_cast<int>(kKey.size()),
       reinterpret_cast<const unsigned char*>(fields.data()), fields.size(), digest, &size);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

void CheckAccepted(const shopcqrs::cqrs::ConsistencyTokens& tokens, std::string_view token) {
  const auto bound = tokens.Decode(token);
  if (bound && tokens.Encode(*bound) != token) std::abort();  // only canonical tokens
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const shopcqrs::cqrs::ConsistencyTokens tokens(kKey);
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      CheckAccepted(tokens, rest);
      break;
    case 1: {
      const std::string token = std::string(rest) + "." + Sign(rest);
      CheckAccepted(tokens, token);
      break;
    }
    case 2: {
      std::uint64_t bound = 0;
      std::memcpy(&bound, rest.data(), std::min(rest.size(), sizeof bound));
      const auto decoded = tokens.Decode(tokens.Encode(bound));
      const bool representable = shopcqrs::cqrs::BoundEpoch(bound) <= shopcqrs::cqrs::kMaxEpoch;
      if (representable ? decoded != bound : decoded.has_value()) std::abort();
      break;
    }
  }
  return 0;
}
