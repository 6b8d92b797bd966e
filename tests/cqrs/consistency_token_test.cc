#include "cqrs/consistency_token.h"

#include <gtest/gtest.h>

namespace shopcqrs::cqrs {
namespace {

TEST(ConsistencyTokens, RoundTripsBounds) {
  ConsistencyTokens tokens("secret-one");
  for (std::uint64_t bound : {0ULL, 1ULL, 734ULL, 1ULL << 40, ~0ULL}) {
    auto decoded = tokens.Decode(tokens.Encode(bound));
    ASSERT_TRUE(decoded.has_value()) << bound;
    EXPECT_EQ(*decoded, bound);
  }
}

TEST(ConsistencyTokens, RejectsTokensItDidNotIssue) {
  ConsistencyTokens tokens("secret-one");
  ConsistencyTokens other("secret-two");
  const auto token = tokens.Encode(1234);
  EXPECT_FALSE(other.Decode(token).has_value());
  EXPECT_FALSE(tokens.Decode("").has_value());
  EXPECT_FALSE(tokens.Decode("ct1.").has_value());
  EXPECT_FALSE(tokens.Decode("ct1.4d2").has_value());
  EXPECT_FALSE(tokens.Decode("ct1.4d2.0000000g").has_value());
  EXPECT_FALSE(tokens.Decode("ct1.04d2" + token.substr(token.rfind('.'))).has_value());
  EXPECT_FALSE(tokens.Decode("ct1.4D2" + token.substr(token.rfind('.'))).has_value());
  EXPECT_FALSE(tokens.Decode("ct2" + token.substr(3)).has_value());
  EXPECT_FALSE(tokens.Decode(token + "0").has_value());
  // Flipping any single character of a valid token is detected.
  for (std::size_t i = 4; i < token.size(); ++i) {
    if (token[i] == '.') continue;
    auto changed = token;
    changed[i] = changed[i] == '1' ? '2' : '1';
    EXPECT_FALSE(tokens.Decode(changed).has_value()) << changed;
  }
}

}  // namespace
}  // namespace shopcqrs::cqrs
