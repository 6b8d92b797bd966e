// libFuzzer harness: the access-token codec (infra::jwt::KeyRing::Verify, Base64UrlDecode).
//
// The first byte picks a mode:
//   0  the rest is a token as a client sends it (Authorization: Bearer ...): Verify must not
//      crash, and whatever it accepts must carry an admin or customer claim set it could have
//      signed, verify again identically, and re-sign to a token that verifies to the same claims;
//   1  the rest is a header and claims JSON ("<header>\n<claims>"), encoded and signed here with
//      the ring's key, so the fuzzer gets past the signature into the header and claim parsing
//      (alg, kid, typ, exp, iat, nbf...): the same property as mode 0;
//   2  the rest goes through Base64UrlDecode: what it accepts, Base64UrlEncode gives back.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "infra/jwt/jwt.h"

namespace {

namespace jwt = shopcqrs::infra::jwt;

constexpr std::string_view kSecret = "fuzz-access-token-key-0123456789-0123456789";
constexpr std::string_view kKid = "fuzz";
// A fixed "now", so expiry checks are deterministic for the fuzzer.
const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

const jwt::KeyRing& Ring() {
  static const jwt::KeyRing ring({{std::string(kKid), std::string(kSecret)}});
  return ring;
}

std::string Hmac(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest, &size);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

void Check(std::string_view token) {
  const auto claims = Ring().Verify(token, kNow);
  if (!claims) return;  // refused, as documented
  if (claims->kid != kKid) std::abort();
  const auto again = Ring().Verify(token, kNow);
  if (!again || again->sub != claims->sub || again->role != claims->role ||
      again->exp != claims->exp || again->iat != claims->iat) {
    std::abort();
  }
  const auto resigned = Ring().Verify(Ring().Sign(*claims), kNow);
  if (!resigned || resigned->sub != claims->sub || resigned->role != claims->role ||
      resigned->exp != claims->exp) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      Check(rest);
      break;
    case 1: {
      const auto newline = rest.find('\n');
      if (newline == std::string_view::npos) return 0;
      const std::string signing_input = jwt::Base64UrlEncode(rest.substr(0, newline)) + "." +
                                        jwt::Base64UrlEncode(rest.substr(newline + 1));
      Check(signing_input + "." + jwt::Base64UrlEncode(Hmac(signing_input)));
      break;
    }
    default: {
      const auto decoded = jwt::Base64UrlDecode(rest);
      if (decoded && jwt::Base64UrlEncode(*decoded) != rest) std::abort();
      break;
    }
  }
  return 0;
}
