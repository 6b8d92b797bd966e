#pragma once

// Signed access tokens: JSON Web Tokens (RFC 7519) in compact form, signed with HMAC-SHA256
// (JWS "HS256", RFC 7515) by OpenSSL. This is the only algorithm there is: a token whose header
// names any other `alg` ("none", "RS256", "HS512", ...) is refused before any key is looked at,
// so neither `alg: none` nor algorithm confusion can get a token accepted. Signatures are
// compared in constant time (CRYPTO_memcmp).
//
// Keys: a KeyRing holds one or more keys, each with a `kid` (carried in the token's header);
// the first key signs, every key verifies (rotation without downtime). A key has at least
// kMinKeyBytes bytes. Nothing here logs, and no error text ever holds a key or a token.
//
// Claims: `sub` (string), `role` (string), `iat` and `exp` (integer seconds since the epoch).
// A token is valid while now - skew < exp and iat <= now + skew (and nbf, when present,
// <= now + skew); skew is bounded by the caller (kDefaultSkew, at most kMaxSkew).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace shopcqrs::infra::jwt {

inline constexpr std::size_t kMinKeyBytes = 32;
inline constexpr std::size_t kMaxTokenBytes = 8192;
inline constexpr std::chrono::seconds kDefaultSkew{60};
inline constexpr std::chrono::seconds kMaxSkew{300};

struct Key {
  std::string kid;     // 1..64 characters [A-Za-z0-9._-]
  std::string secret;  // >= kMinKeyBytes bytes
};

struct Claims {
  std::string sub;
  std::string role;
  std::int64_t iat = 0;  // seconds since the epoch
  std::int64_t exp = 0;
  std::string kid;  // of the key that signed it (filled by Verify)
};

// Why a token was refused. The text never holds the token or a key.
enum class Refusal {
  kMalformed,     // not three base64url parts, bad JSON, missing or mistyped claims, too long
  kAlgorithm,     // alg is not HS256 (alg: none included), or the header is not a JWT's
  kUnknownKey,    // no kid, or a kid that is not in the key ring
  kBadSignature,  // the HMAC does not match
  kExpired,       // exp is past (beyond the skew)
  kNotYetValid,   // iat or nbf is in the future (beyond the skew)
};
std::string_view Describe(Refusal refusal);

// base64url without padding (RFC 4648 section 5); Decode refuses padding, other alphabets and
// non-canonical trailing bits.
std::string Base64UrlEncode(std::string_view bytes);
std::expected<std::string, Refusal> Base64UrlDecode(std::string_view text);

// A key id derived from the key: "k" + the first 12 hex digits of its SHA-256 (it reveals
// nothing usable about a key of >= 32 random bytes).
std::string DerivedKid(std::string_view secret);

class KeyRing {
 public:
  using Clock = std::chrono::system_clock;

  // Throws std::invalid_argument for no keys, a short key, a malformed or duplicate kid.
  explicit KeyRing(std::vector<Key> keys, std::chrono::seconds skew = kDefaultSkew);

  // A token for `claims` (kid: the first key's; claims.kid is ignored).
  std::string Sign(const Claims& claims) const;

  // The claims of a token this ring signed that is valid at `now`.
  std::expected<Claims, Refusal> Verify(std::string_view token, Clock::time_point now) const;
  std::expected<Claims, Refusal> Verify(std::string_view token) const {
    return Verify(token, Clock::now());
  }

  const std::string& signing_kid() const { return keys_.front().kid; }
  std::size_t size() const { return keys_.size(); }

 private:
  std::vector<Key> keys_;
  std::chrono::seconds skew_;
};

}  // namespace shopcqrs::infra::jwt
