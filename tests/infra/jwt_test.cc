#include "infra/jwt/jwt.h"

#include <gtest/gtest.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <stdexcept>
#include <string>

namespace shopcqrs::infra::jwt {
namespace {

using Clock = std::chrono::system_clock;

const std::string kSecret(32, 'k');
const std::string kOtherSecret = "another key of at least thirty-two bytes";

Clock::time_point At(std::int64_t seconds) {
  return Clock::time_point(std::chrono::seconds(seconds));
}

Claims Admin(std::int64_t iat, std::int64_t exp) { return Claims{"admin", "admin", iat, exp, {}}; }

std::string Part(const boost::json::object& object) {
  return Base64UrlEncode(boost::json::serialize(object));
}

// The token's parts, split at its dots.
std::vector<std::string> Parts(const std::string& token) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto dot = token.find('.', start);
    parts.push_back(token.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

TEST(Base64UrlTest, RoundTripsEveryLengthAndRefusesOtherAlphabetsAndPadding) {
  std::string bytes;
  for (int i = 0; i < 70; ++i) {
    const std::string encoded = Base64UrlEncode(bytes);
    EXPECT_EQ(encoded.find_first_of("+/="), std::string::npos);
    auto decoded = Base64UrlDecode(encoded);
    ASSERT_TRUE(decoded) << i;
    EXPECT_EQ(*decoded, bytes);
    bytes += static_cast<char>(i * 37 + 250);
  }
  EXPECT_FALSE(Base64UrlDecode("ab+/"));
  EXPECT_FALSE(Base64UrlDecode("YQ=="));
  EXPECT_FALSE(Base64UrlDecode("Y"));
  EXPECT_FALSE(Base64UrlDecode("YR"));  // non-zero trailing bits: not the canonical "YQ"
  EXPECT_EQ(*Base64UrlDecode("YQ"), "a");
}

TEST(KeyRingTest, ASignedTokenVerifiesWithItsClaimsAndKid) {
  const KeyRing ring({{"k1", kSecret}});
  const std::string token = ring.Sign(Admin(1000, 2000));
  EXPECT_EQ(Parts(token).size(), 3u);
  auto claims = ring.Verify(token, At(1500));
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->sub, "admin");
  EXPECT_EQ(claims->role, "admin");
  EXPECT_EQ(claims->iat, 1000);
  EXPECT_EQ(claims->exp, 2000);
  EXPECT_EQ(claims->kid, "k1");
}

TEST(KeyRingTest, KeysShorterThan32BytesAndBadKidsAreRefused) {
  EXPECT_THROW(KeyRing({{"k1", std::string(31, 'x')}}), std::invalid_argument);
  EXPECT_THROW(KeyRing({}), std::invalid_argument);
  EXPECT_THROW(KeyRing({{"", kSecret}}), std::invalid_argument);
  EXPECT_THROW(KeyRing({{"a b", kSecret}}), std::invalid_argument);
  EXPECT_THROW(KeyRing({{"k", kSecret}, {"k", kOtherSecret}}), std::invalid_argument);
  EXPECT_THROW(KeyRing({{"k", kSecret}}, std::chrono::seconds(3600)), std::invalid_argument);
}

TEST(KeyRingTest, AlgNoneIsRefusedWhateverTheSignature) {
  const KeyRing ring({{"k1", kSecret}});
  const auto parts = Parts(ring.Sign(Admin(1000, 2000)));
  for (const char* alg : {"none", "None", "NONE", ""}) {
    const std::string header = Part({{"alg", alg}, {"typ", "JWT"}, {"kid", "k1"}});
    for (const std::string& signature : {std::string(), parts[2]}) {
      const std::string token = header + "." + parts[1] + "." + signature;
      auto claims = ring.Verify(token, At(1500));
      ASSERT_FALSE(claims) << alg;
      EXPECT_EQ(claims.error(), Refusal::kAlgorithm) << alg;
    }
  }
  // No alg at all.
  auto claims = ring.Verify(Part({{"typ", "JWT"}, {"kid", "k1"}}) + "." + parts[1] + "." + parts[2],
                            At(1500));
  EXPECT_FALSE(claims);
}

TEST(KeyRingTest, OtherAlgorithmsAreRefusedEvenWhenTheMacWouldMatch) {
  const KeyRing ring({{"k1", kSecret}});
  const auto parts = Parts(ring.Sign(Admin(1000, 2000)));
  for (const char* alg : {"HS384", "HS512", "RS256", "ES256", "PS256", "hs256"}) {
    const std::string token =
        Part({{"alg", alg}, {"typ", "JWT"}, {"kid", "k1"}}) + "." + parts[1] + "." + parts[2];
    auto claims = ring.Verify(token, At(1500));
    ASSERT_FALSE(claims) << alg;
    EXPECT_EQ(claims.error(), Refusal::kAlgorithm) << alg;
  }
  // A header that names where a key comes from is refused too.
  const std::string jwk =
      Part({{"alg", "HS256"}, {"kid", "k1"}, {"jwk", "x"}}) + "." + parts[1] + "." + parts[2];
  EXPECT_FALSE(ring.Verify(jwk, At(1500)));
}

TEST(KeyRingTest, ABadSignatureOrAnotherKeyIsRefused) {
  const KeyRing ring({{"k1", kSecret}});
  const KeyRing other({{"k1", kOtherSecret}});
  std::string token = ring.Sign(Admin(1000, 2000));
  auto forged = other.Verify(token, At(1500));
  ASSERT_FALSE(forged);
  EXPECT_EQ(forged.error(), Refusal::kBadSignature);

  // A changed payload (role customer -> admin style escalation) no longer matches.
  auto parts = Parts(token);
  const std::string changed =
      parts[0] + "." + Part({{"sub", "x"}, {"role", "admin"}, {"iat", 1000}, {"exp", 9999}}) + "." +
      parts[2];
  EXPECT_EQ(ring.Verify(changed, At(1500)).error(), Refusal::kBadSignature);
  // A flipped signature character, a truncated signature.
  std::string flipped = token;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(ring.Verify(flipped, At(1500)));
  EXPECT_FALSE(ring.Verify(token.substr(0, token.size() - 4), At(1500)));
}

TEST(KeyRingTest, ExpiryAndIssueTimeAreCheckedWithABoundedSkew) {
  const KeyRing ring({{"k1", kSecret}}, std::chrono::seconds(60));
  const std::string token = ring.Sign(Admin(1000, 2000));
  EXPECT_TRUE(ring.Verify(token, At(2059)));
  EXPECT_EQ(ring.Verify(token, At(2060)).error(), Refusal::kExpired);
  EXPECT_EQ(ring.Verify(token, At(100000)).error(), Refusal::kExpired);
  EXPECT_TRUE(ring.Verify(token, At(941)));
  EXPECT_EQ(ring.Verify(token, At(939)).error(), Refusal::kNotYetValid);
  const KeyRing strict({{"k1", kSecret}}, std::chrono::seconds(0));
  EXPECT_EQ(strict.Verify(token, At(2000)).error(), Refusal::kExpired);
}

TEST(KeyRingTest, KeysRotateByKid) {
  const KeyRing old_ring({{"2026-11", kSecret}});
  const KeyRing rotated({{"2026-12", kOtherSecret}, {"2026-11", kSecret}});
  const std::string old_token = old_ring.Sign(Admin(1000, 2000));
  const std::string new_token = rotated.Sign(Admin(1000, 2000));
  auto old_claims = rotated.Verify(old_token, At(1500));
  ASSERT_TRUE(old_claims);
  EXPECT_EQ(old_claims->kid, "2026-11");
  EXPECT_EQ(rotated.Verify(new_token, At(1500))->kid, "2026-12");
  EXPECT_EQ(old_ring.Verify(new_token, At(1500)).error(), Refusal::kUnknownKey);
  // Without a kid a token is refused (every token we sign carries one).
  auto parts = Parts(old_token);
  EXPECT_EQ(rotated
                .Verify(Part({{"alg", "HS256"}, {"typ", "JWT"}}) + "." + parts[1] + "." + parts[2],
                        At(1500))
                .error(),
            Refusal::kUnknownKey);
}

TEST(KeyRingTest, MalformedTokensAreRefused) {
  const KeyRing ring({{"k1", kSecret}});
  const std::string token = ring.Sign(Admin(1000, 2000));
  for (const std::string& bad : {std::string(), std::string("abc"), std::string("a.b"),
                                 token + ".x", std::string(".."), std::string("e30.e30.e30"),
                                 token.substr(0, token.find('.')) + "..", std::string(9000, 'a')}) {
    auto claims = ring.Verify(bad, At(1500));
    EXPECT_FALSE(claims) << bad.substr(0, 40);
  }
}

TEST(KeyRingTest, MissingOrMistypedClaimsAreRefused) {
  // Signed by the right key but without the claims we need: hand-made with the ring's MAC by
  // signing claims and replacing nothing -- so build the token through a ring and compare.
  const KeyRing ring({{"k1", kSecret}});
  Claims empty_sub = Admin(1000, 2000);
  empty_sub.sub = "";
  EXPECT_EQ(ring.Verify(ring.Sign(empty_sub), At(1500)).error(), Refusal::kMalformed);
}

TEST(KeyRingTest, DerivedKidsDependOnTheKeyAndRevealItNot) {
  EXPECT_EQ(DerivedKid(kSecret), DerivedKid(kSecret));
  EXPECT_NE(DerivedKid(kSecret), DerivedKid(kOtherSecret));
  EXPECT_EQ(DerivedKid(kSecret).size(), 13u);
  EXPECT_EQ(DerivedKid(kSecret).find("kkkk"), std::string::npos);
}

}  // namespace
}  // namespace shopcqrs::infra::jwt
