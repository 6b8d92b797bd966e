#include "infra/jwt/jwt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <stdexcept>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace shopcqrs::infra::jwt {

namespace {

namespace json = boost::json;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::size_t kMacBytes = 32;  // SHA-256

int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::array<unsigned char, kMacBytes> Mac(std::string_view secret, std::string_view signing_input) {
  std::array<unsigned char, kMacBytes> mac{};
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
           mac.data(), &size) == nullptr ||
      size != kMacBytes) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return mac;
}

bool ValidKid(std::string_view kid) {
  return !kid.empty() && kid.size() <= 64 && std::all_of(kid.begin(), kid.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::expected<json::object, Refusal> ParseObject(std::string_view part) {
  auto text = Base64UrlDecode(part);
  if (!text) return std::unexpected(text.error());
  boost::system::error_code ec;
  json::value value = json::parse(*text, ec);
  if (ec || !value.is_object()) return std::unexpected(Refusal::kMalformed);
  return std::move(value.as_object());
}

std::optional<std::int64_t> IntClaim(const json::object& object, std::string_view name) {
  const json::value* value = object.if_contains(name);
  if (value == nullptr) return std::nullopt;
  if (value->is_int64()) return value->as_int64();
  if (value->is_uint64() && value->as_uint64() <= std::numeric_limits<std::int64_t>::max()) {
    return static_cast<std::int64_t>(value->as_uint64());
  }
  return std::nullopt;
}

const json::string* StringClaim(const json::object& object, std::string_view name) {
  const json::value* value = object.if_contains(name);
  return value != nullptr && value->is_string() ? &value->as_string() : nullptr;
}

}  // namespace

std::string_view Describe(Refusal refusal) {
  switch (refusal) {
    case Refusal::kMalformed:
      return "the token is malformed";
    case Refusal::kAlgorithm:
      return "the token's algorithm is not accepted";
    case Refusal::kUnknownKey:
      return "the token's key is unknown";
    case Refusal::kBadSignature:
      return "the token's signature does not match";
    case Refusal::kExpired:
      return "the token has expired";
    case Refusal::kNotYetValid:
      return "the token is not valid yet";
  }
  return "the token is refused";
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 |
                       static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
  } else if (rest == 2) {
    const unsigned v =
        static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
  }
  return out;
}

std::expected<std::string, Refusal> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::unexpected(Refusal::kMalformed);
  std::string out;
  out.reserve(text.size() * 3 / 4);
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    const int v = Sextet(c);
    if (v < 0) return std::unexpected(Refusal::kMalformed);
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  // The bits left over must be zero: one text per byte string.
  if ((buffer & ((1u << bits) - 1)) != 0) return std::unexpected(Refusal::kMalformed);
  return out;
}

std::string DerivedKid(std::string_view secret) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(secret.data(), secret.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string kid = "k";
  for (int i = 0; i < 6; ++i) {
    kid += kHex[digest[i] >> 4];
    kid += kHex[digest[i] & 0xf];
  }
  return kid;
}

KeyRing::KeyRing(std::vector<Key> keys, std::chrono::seconds skew)
    : keys_(std::move(keys)), skew_(skew) {
  if (keys_.empty()) throw std::invalid_argument("a key ring needs at least one key");
  if (skew_ < std::chrono::seconds(0) || skew_ > kMaxSkew) {
    throw std::invalid_argument("the clock skew must be 0..300 s");
  }
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].secret.size() < kMinKeyBytes) {
      throw std::invalid_argument("a signing key must have at least 32 bytes");
    }
    if (!ValidKid(keys_[i].kid))
      throw std::invalid_argument("a key id must be 1..64 [A-Za-z0-9._-]");
    for (std::size_t j = 0; j < i; ++j) {
      if (keys_[j].kid == keys_[i].kid) throw std::invalid_argument("duplicate key id");
    }
  }
}

std::string KeyRing::Sign(const Claims& claims) const {
  const Key& key = keys_.front();
  const json::object header{{"alg", "HS256"}, {"typ", "JWT"}, {"kid", key.kid}};
  const json::object payload{
      {"sub", claims.sub}, {"role", claims.role}, {"iat", claims.iat}, {"exp", claims.exp}};
  std::string input =
      Base64UrlEncode(json::serialize(header)) + "." + Base64UrlEncode(json::serialize(payload));
  const auto mac = Mac(key.secret, input);
  return input + "." +
         Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

std::expected<Claims, Refusal> KeyRing::Verify(std::string_view token,
                                               Clock::time_point now) const {
  if (token.empty() || token.size() > kMaxTokenBytes) return std::unexpected(Refusal::kMalformed);
  const std::size_t first = token.find('.');
  if (first == std::string_view::npos) return std::unexpected(Refusal::kMalformed);
  const std::size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return std::unexpected(Refusal::kMalformed);
  }
  const std::string_view header_part = token.substr(0, first);
  const std::string_view payload_part = token.substr(first + 1, second - first - 1);
  const std::string_view signature_part = token.substr(second + 1);

  // The header first: only HS256 is ever accepted, whatever key it names.
  auto header = ParseObject(header_part);
  if (!header) return std::unexpected(header.error());
  const json::string* alg = StringClaim(*header, "alg");
  if (alg == nullptr) return std::unexpected(Refusal::kMalformed);
  if (*alg != "HS256") return std::unexpected(Refusal::kAlgorithm);
  if (const json::value* typ = header->if_contains("typ")) {
    if (!typ->is_string() || (typ->as_string() != "JWT" && typ->as_string() != "jwt")) {
      return std::unexpected(Refusal::kAlgorithm);
    }
  }
  if (header->contains("crit") || header->contains("jku") || header->contains("jwk") ||
      header->contains("x5u") || header->contains("x5c")) {
    return std::unexpected(Refusal::kAlgorithm);  // nothing may say where a key comes from
  }
  const json::string* kid = StringClaim(*header, "kid");
  if (kid == nullptr) return std::unexpected(Refusal::kUnknownKey);
  const auto key = std::find_if(keys_.begin(), keys_.end(),
                                [&](const Key& k) { return std::string_view(*kid) == k.kid; });
  if (key == keys_.end()) return std::unexpected(Refusal::kUnknownKey);

  auto signature = Base64UrlDecode(signature_part);
  if (!signature) return std::unexpected(signature.error());
  if (signature->size() != kMacBytes) return std::unexpected(Refusal::kBadSignature);
  const auto expected = Mac(key->secret, token.substr(0, second));
  if (CRYPTO_memcmp(expected.data(), signature->data(), kMacBytes) != 0) {
    return std::unexpected(Refusal::kBadSignature);
  }

  auto payload = ParseObject(payload_part);
  if (!payload) return std::unexpected(payload.error());
  const json::string* sub = StringClaim(*payload, "sub");
  const json::string* role = StringClaim(*payload, "role");
  const auto iat = IntClaim(*payload, "iat");
  const auto exp = IntClaim(*payload, "exp");
  if (sub == nullptr || role == nullptr || !iat || !exp || sub->empty()) {
    return std::unexpected(Refusal::kMalformed);
  }
  const std::int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const std::int64_t skew = skew_.count();
  if (now_s - skew >= *exp) return std::unexpected(Refusal::kExpired);
  if (*iat > now_s + skew) return std::unexpected(Refusal::kNotYetValid);
  if (payload->contains("nbf")) {
    const auto nbf = IntClaim(*payload, "nbf");
    if (!nbf) return std::unexpected(Refusal::kMalformed);
    if (*nbf > now_s + skew) return std::unexpected(Refusal::kNotYetValid);
  }
  return Claims{std::string(*sub), std::string(*role), *iat, *exp, key->kid};
}

}  // namespace shopcqrs::infra::jwt
