#include "cqrs/consistency_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <stdexcept>

#include "cqrs/commit_bound.h"

namespace shopcqrs::cqrs {

namespace {

constexpr std::string_view kPrefix = "ct2.x.";
constexpr std::size_t kMacHexDigits = 32;  // 128 bits
constexpr std::size_t kMaxTokenSize = 96;

void AppendHex(std::string& out, std::uint64_t value) {
  char buffer[17];
  auto* end = std::to_chars(buffer, buffer + sizeof buffer, value, 16).ptr;
  out.append(buffer, end);
}

// Canonical lowercase hex without leading zeros ("0" for zero).
std::optional<std::uint64_t> ParseHex(std::string_view text) {
  if (text.empty() || text.size() > 16 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  std::uint64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value, 16);
  return value;
}

}  // namespace

ConsistencyTokens::ConsistencyTokens(std::string_view key) : key_(key) {}

std::string ConsistencyTokens::Mac(std::string_view fields) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
           reinterpret_cast<const unsigned char*>(fields.data()), fields.size(), digest,
           &size) == nullptr ||
      size * 2 < kMacHexDigits) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kMacHexDigits, '0');
  for (std::size_t i = 0; i < kMacHexDigits / 2; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

std::string ConsistencyTokens::Encode(std::uint64_t bound) const {
  std::string token(kPrefix);
  AppendHex(token, BoundEpoch(bound));
  token.push_back('.');
  AppendHex(token, BoundXid(bound));
  token += '.' + Mac(token);
  return token;
}

std::optional<std::uint64_t> ConsistencyTokens::Decode(std::string_view token) const {
  if (token.size() > kMaxTokenSize || !token.starts_with(kPrefix)) return std::nullopt;
  const auto mac_dot = token.rfind('.');
  if (mac_dot < kPrefix.size() || token.size() - mac_dot - 1 != kMacHexDigits) return std::nullopt;
  const auto fields = token.substr(0, mac_dot);
  const auto numbers = fields.substr(kPrefix.size());
  const auto dot = numbers.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const auto epoch = ParseHex(numbers.substr(0, dot));
  const auto position = ParseHex(numbers.substr(dot + 1));
  if (!epoch || !position || *epoch > kMaxEpoch || *position > kXidMask) {
    return std::nullopt;
  }
  const auto expected = Mac(fields);
  if (CRYPTO_memcmp(expected.data(), token.data() + mac_dot + 1, kMacHexDigits) != 0) {
    return std::nullopt;
  }
  return ComposeBound(*epoch, *position);
}

}  // namespace shopcqrs::cqrs
