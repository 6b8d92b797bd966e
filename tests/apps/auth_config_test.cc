// The [auth] configuration: parsing, validation, redaction, and what `up` and `serve` build
// from it (key file, admin token file, authorizer).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "apps/shopcqrs/auth.h"
#include "apps/shopcqrs/config.h"

namespace shopcqrs::apps {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const std::string kKey = "0123456789abcdef0123456789abcdef";

Config Valid() {
  Config config;
  config.write_db = "host=127.0.0.1 port=5432 dbname=w user=shop";
  config.read_db = "host=127.0.0.1 port=5433 dbname=r user=shop";
  return config;
}

std::string Joined(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& e : errors) out += e + "\n";
  return out;
}

unsigned Mode(const std::filesystem::path& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 0777;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "shopcqrs-auth-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(AuthConfig, DefaultsAreOnWithoutKeyAndThirtyDays) {
  const Config config;
  EXPECT_EQ(config.auth.mode, "on");
  EXPECT_TRUE(config.auth.signing_key.empty());
  EXPECT_EQ(config.auth.max_ttl_s, 30 * 24 * 3600);
  EXPECT_THAT(ServingAuthErrors(config), Not(IsEmpty()));
}

TEST(AuthConfig, ReadsTheAuthTable) {
  Config config = Valid();
  ApplyToml(config, R"(
[auth]
mode = "off"
signing_key = "0123456789abcdef0123456789abcdef"
max_ttl_s = 3600
signing_keys = [ { kid = "new", key = "newnewnewnewnewnewnewnewnewnewnew" },
                 { kid = "old", key = "oldoldoldoldoldoldoldoldoldoldold" } ]
)");
  EXPECT_EQ(config.auth.mode, "off");
  EXPECT_EQ(config.auth.signing_key, kKey);
  EXPECT_EQ(config.auth.max_ttl_s, 3600);
  ASSERT_EQ(config.auth.signing_keys.size(), 2u);
  EXPECT_EQ(config.auth.signing_keys[1].kid, "old");
  EXPECT_THAT(ValidateConfig(config), IsEmpty());
  EXPECT_THAT(ServingAuthErrors(config), IsEmpty());
  // Dotted keys mean the same.
  Config dotted = Valid();
  ApplyToml(dotted, "auth.mode = \"off\"\n");
  EXPECT_EQ(dotted.auth.mode, "off");
}

TEST(AuthConfig, UnknownKeysAndWrongTypesAreErrors) {
  Config config = Valid();
  EXPECT_THROW(ApplyToml(config, "[auth]\nsigningkey = \"x\"\n"), ConfigError);
  EXPECT_THROW(ApplyToml(config, "[auth]\nmax_ttl_s = \"1\"\n"), ConfigError);
  EXPECT_THROW(ApplyToml(config, "[auth]\nsigning_keys = \"x\"\n"), ConfigError);
  EXPECT_THROW(ApplyToml(config, "[auth]\nsigning_keys = [ { kid = \"a\", secret = \"b\" } ]\n"),
               ConfigError);
}

TEST(AuthConfig, ValidationNamesEveryProblem) {
  Config config = Valid();
  config.auth.mode = "maybe";
  config.auth.signing_key = "short";
  config.auth.signing_keys = {{"a b", kKey}, {"k", "short"}, {"k", kKey}};
  config.auth.max_ttl_s = 0;
  const std::string errors = Joined(ValidateConfig(config));
  EXPECT_THAT(errors, HasSubstr("auth.mode"));
  EXPECT_THAT(errors, HasSubstr("auth.signing_key: must be at least 32 bytes"));
  EXPECT_THAT(errors, HasSubstr("auth.signing_keys[0].kid"));
  EXPECT_THAT(errors, HasSubstr("auth.signing_keys[1].key"));
  EXPECT_THAT(errors, HasSubstr("auth.signing_keys[2].kid: 'k' is used twice"));
  EXPECT_THAT(errors, HasSubstr("auth.max_ttl_s"));
}

TEST(AuthConfig, TheEnvironmentSetsTheKeyButNeverTheMode) {
  Config config = Valid();
  ApplyEnvironment(config, MapEnvironment({{"SHOPCQRS_AUTH_SIGNING_KEY", kKey},
                                           {"SHOPCQRS_AUTH_MODE", "off"},
                                           {"SHOPCQRS_AUTH__MODE", "off"}}));
  EXPECT_EQ(config.auth.signing_key, kKey);
  EXPECT_EQ(config.auth.mode, "on");
}

TEST(AuthConfig, KeysAreNeverDescribed) {
  Config config = Valid();
  config.auth.signing_key = kKey;
  config.auth.signing_keys = {{"old", "oldoldoldoldoldoldoldoldoldoldold"}};
  const std::string line = DescribeConfig(config);
  EXPECT_THAT(line, Not(HasSubstr(kKey)));
  EXPECT_THAT(line, Not(HasSubstr("oldoldold")));
  EXPECT_THAT(line, HasSubstr("auth.mode=on"));
  EXPECT_THAT(line, HasSubstr("auth.signing_keys=2"));
}

TEST(AuthSetup, UpKeepsItsKeyInA0600FileAndReusesIt) {
  TempDir dir;
  const std::string first = UpSigningKey(Config{}, dir.path());
  EXPECT_EQ(first.size(), 64u);
  EXPECT_EQ(Mode(dir.path() / "auth-key"), 0600u);
  EXPECT_EQ(UpSigningKey(Config{}, dir.path()), first);
  Config with_env;
  with_env.auth.signing_key = kKey;
  EXPECT_EQ(UpSigningKey(with_env, dir.path()), kKey);
}

TEST(AuthSetup, TheAdminTokenFileIs0600AndHoldsAnAdminToken) {
  TempDir dir;
  Config config = Valid();
  config.auth.signing_key = kKey;
  // A file there before with wider permissions is narrowed.
  std::ofstream(dir.path() / "admin-token") << "old\n";
  ::chmod((dir.path() / "admin-token").c_str(), 0644);
  const auto path = WriteAdminToken(config, dir.path());
  EXPECT_EQ(path, dir.path() / "admin-token");
  EXPECT_EQ(Mode(path), 0600u);
  std::string token;
  std::getline(std::ifstream(path), token);
  const auto authorizer = AuthorizerOf(config);
  const auto who = authorizer->Authenticate(token);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->role, app::PrincipalRole::kAdmin);
}

TEST(AuthSetup, KeyRingsRotateAndTokensOfTheOldKeyStillVerify) {
  Config old_config = Valid();
  old_config.auth.signing_keys = {{"old", "oldoldoldoldoldoldoldoldoldoldold"}};
  const std::string old_token =
      MintToken(old_config, std::nullopt, "payments", std::chrono::hours(1));
  Config rotated = old_config;
  rotated.auth.signing_key = kKey;  // the new key signs
  const auto authorizer = AuthorizerOf(rotated);
  EXPECT_EQ(authorizer->Authenticate(old_token)->role, app::PrincipalRole::kPayments);
  const std::string new_token = MintToken(rotated, std::nullopt, "admin", std::chrono::hours(1));
  EXPECT_FALSE(AuthorizerOf(old_config)->Authenticate(new_token));
}

TEST(AuthSetup, MintTokenChecksItsInput) {
  Config config = Valid();
  config.auth.signing_key = kKey;
  config.auth.max_ttl_s = 60;
  EXPECT_THROW(MintToken(config, std::nullopt, "admin", std::chrono::seconds(61)), ConfigError);
  EXPECT_THROW(MintToken(config, std::nullopt, "root", std::chrono::seconds(1)), ConfigError);
  EXPECT_THROW(MintToken(config, std::string("nope"), "admin", std::chrono::seconds(1)),
               ConfigError);
  const auto customer = MintToken(config, std::string("3f2504e0-4f89-41d3-9a0c-0305e82c3301"),
                                  "admin", std::chrono::seconds(60));
  EXPECT_TRUE(AuthorizerOf(config)->Authenticate(customer)->IsCustomer());
  EXPECT_THROW(MintToken(Valid(), std::nullopt, "admin", std::chrono::seconds(1)), ConfigError);
}

TEST(AuthSetup, AuthorizerOfNeedsAKeyUnlessOff) {
  EXPECT_THROW(AuthorizerOf(Valid()), ConfigError);
  Config off = Valid();
  off.auth.mode = "off";
  EXPECT_FALSE(AuthorizerOf(off)->enabled());
}

}  // namespace
}  // namespace shopcqrs::apps
