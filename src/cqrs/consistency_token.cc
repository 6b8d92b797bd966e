#include "cqrs/consistency_token.h"

#include <charconv>

namespace shopcqrs::cqrs {

namespace {

constexpr std::string_view kPrefix = "ct1.";

std::uint64_t Mix(std::uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

bool IsLowerHex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !text.empty();
}

}  // namespace

ConsistencyTokens::ConsistencyTokens(std::string_view secret) : key_(0xcbf29ce484222325ULL) {
  for (unsigned char c : secret) key_ = (key_ ^ c) * 0x100000001b3ULL;  // FNV-1a
}

std::uint32_t ConsistencyTokens::Checksum(std::uint64_t bound) const {
  return static_cast<std::uint32_t>(Mix(Mix(bound) ^ key_));
}

std::string ConsistencyTokens::Encode(std::uint64_t bound) const {
  char buffer[64];
  auto* end = std::to_chars(buffer, buffer + 32, bound, 16).ptr;
  std::string token(kPrefix);
  token.append(buffer, end);
  token.push_back('.');
  char sum[9];
  auto* sum_end = std::to_chars(sum, sum + 8, Checksum(bound), 16).ptr;
  token.append(8 - (sum_end - sum), '0');
  token.append(sum, sum_end);
  return token;
}

std::optional<std::uint64_t> ConsistencyTokens::Decode(std::string_view token) const {
  if (token.size() > 64 || !token.starts_with(kPrefix)) return std::nullopt;
  token.remove_prefix(kPrefix.size());
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const auto bound_text = token.substr(0, dot);
  const auto sum_text = token.substr(dot + 1);
  if (!IsLowerHex(bound_text) || bound_text.size() > 16 || sum_text.size() != 8 ||
      !IsLowerHex(sum_text)) {
    return std::nullopt;
  }
  std::uint64_t bound = 0;
  std::from_chars(bound_text.data(), bound_text.data() + bound_text.size(), bound, 16);
  std::uint32_t sum = 0;
  std::from_chars(sum_text.data(), sum_text.data() + sum_text.size(), sum, 16);
  if (sum != Checksum(bound) || Encode(bound).substr(kPrefix.size()) != token) return std::nullopt;
  return bound;
}

}  // namespace shopcqrs::cqrs
