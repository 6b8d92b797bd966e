#include "cqrs/consistency_token.h"

#include <gtest/gtest.h>

#include "cqrs/commit_bound.h"

namespace shopcqrs::cqrs {
namespace {

TEST(ConsistencyTokens, RoundTripsBounds) {
  ConsistencyTokens tokens("secret-one");
  for (std::uint64_t bound : std::initializer_list<std::uint64_t>{
           0ULL, 1ULL, 734ULL, ComposeBound(1, 734), ComposeBound(7, kXidMask),
           ComposeBound(kMaxEpoch, 0)}) {
    auto decoded = tokens.Decode(tokens.Encode(bound));
    ASSERT_TRUE(decoded.has_value()) << bound;
    EXPECT_EQ(*decoded, bound);
  }
}

TEST(ConsistencyTokens, NamesItsFieldsInTheDocumentedForm) {
  ConsistencyTokens tokens("secret-one");
  const auto token = tokens.Encode(ComposeBound(3, 0x2d8));
  ASSERT_EQ(token.substr(0, 12), "ct2.x.3.2d8.");
  EXPECT_EQ(token.size(), 12u + 32u);
  // The same fields and key give the same token; another key another one.
  EXPECT_EQ(token, tokens.Encode(ComposeBound(3, 0x2d8)));
  EXPECT_NE(token, ConsistencyTokens("secret-two").Encode(ComposeBound(3, 0x2d8)));
}

TEST(ConsistencyTokens, RejectsTokensItDidNotIssue) {
  ConsistencyTokens tokens("secret-one");
  ConsistencyTokens other("secret-two");
  const auto token = tokens.Encode(ComposeBound(2, 1234));
  const auto mac = token.substr(token.rfind('.'));
  EXPECT_FALSE(other.Decode(token).has_value());
  EXPECT_FALSE(tokens.Decode("").has_value());
  EXPECT_FALSE(tokens.Decode("ct2.x.").has_value());
  EXPECT_FALSE(tokens.Decode("ct2.x.2.4d2").has_value());
  EXPECT_FALSE(tokens.Decode("ct2.x.2.4d2" + mac.substr(0, 16)).has_value());
  EXPECT_FALSE(tokens.Decode("ct2.x.02.4d2" + mac).has_value());  // not canonical
  EXPECT_FALSE(tokens.Decode("ct2.x.2.4D2" + mac).has_value());
  EXPECT_FALSE(tokens.Decode("ct2.y" + token.substr(5)).has_value());  // another reader kind
  EXPECT_FALSE(tokens.Decode("ct3" + token.substr(3)).has_value());
  EXPECT_FALSE(tokens.Decode(token + "0").has_value());
  EXPECT_FALSE(tokens.Decode("ct1.4d2.f65b4bf6").has_value());  // the earlier format
  // Another bound under the same mac, and any single changed character, is detected.
  EXPECT_FALSE(tokens.Decode("ct2.x.2.4d3" + mac).has_value());
  EXPECT_FALSE(tokens.Decode("ct2.x.3.4d2" + mac).has_value());
  for (std::size_t i = 6; i < token.size(); ++i) {
    if (token[i] == '.') continue;
    auto changed = token;
    changed[i] = changed[i] == '1' ? '2' : '1';
    EXPECT_FALSE(tokens.Decode(changed).has_value()) << changed;
  }
}

TEST(ConsistencyTokens, ALaterEpochIsAboveEveryBoundOfAnEarlierOne) {
  EXPECT_GT(ComposeBound(2, 1), ComposeBound(1, kXidMask));
  EXPECT_GT(ComposeBound(1, 0), 0xffffffffULL);  // tokens of before epochs count as epoch 0
  EXPECT_LT(ComposeBound(kMaxEpoch, kXidMask), 1ULL << 63);  // fits a bigint
}

}  // namespace
}  // namespace shopcqrs::cqrs
