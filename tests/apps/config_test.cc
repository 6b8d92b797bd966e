#include "apps/shopcqrs/config.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace shopcqrs::apps {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const EnvLookup kNoEnv = MapEnvironment({});

Config ValidConfig() {
  Config config;
  config.write_db = "host=127.0.0.1 port=5432 dbname=shop_write user=shop";
  config.read_db = "host=127.0.0.1 port=5433 dbname=shop_read user=shop";
  return config;
}

// A config file in a temporary directory, removed afterwards.
class ConfigFile {
 public:
  explicit ConfigFile(const std::string& content) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "shopcqrs-config-XXXXXX").string();
    int fd = ::mkstemp(tmpl.data());
    ::close(fd);
    path_ = tmpl;
    std::ofstream(path_) << content;
  }
  ~ConfigFile() { std::filesystem::remove(path_); }
  const std::filesystem::path& Path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LoadConfig, DefaultsWithoutFileOrEnvironment) {
  Config config = LoadConfig(std::nullopt, kNoEnv);
  EXPECT_EQ(config, Config{});
  EXPECT_EQ(config.listen, "127.0.0.1:8080");
  EXPECT_EQ(config.write_pool_size, 16);
  EXPECT_EQ(config.read_pool_size, 16);
  EXPECT_EQ(config.http_threads, 16);
  EXPECT_TRUE(config.run_api);
  EXPECT_TRUE(config.run_projectors);
  EXPECT_EQ(config.log_level, "info");
  EXPECT_EQ(config.query_source, "read");
}

TEST(LoadConfig, ReadsEveryKeyFromTheFile) {
  ConfigFile file(R"(
listen = "0.0.0.0:9090"
http_threads = 4
query_source = "redis"
redis = "cache.internal:6379"
token_secret = "0123456789abcdef0123"

[write_db]
conninfo = "host=db1 dbname=shop_write"
pool_size = 32

[read_db]
conninfo = "postgresql://reader@db2/shop_read"
pool_size = 8

[api]
enabled = false

[projectors]
enabled = true

[log]
level = "debug"
)");
  Config config = LoadConfig(file.Path(), kNoEnv);
  EXPECT_EQ(config.listen, "0.0.0.0:9090");
  EXPECT_EQ(config.http_threads, 4);
  EXPECT_EQ(config.query_source, "redis");
  EXPECT_EQ(config.redis, "cache.internal:6379");
  EXPECT_EQ(config.token_secret, "0123456789abcdef0123");
  EXPECT_EQ(config.write_db, "host=db1 dbname=shop_write");
  EXPECT_EQ(config.write_pool_size, 32);
  EXPECT_EQ(config.read_db, "postgresql://reader@db2/shop_read");
  EXPECT_EQ(config.read_pool_size, 8);
  EXPECT_FALSE(config.run_api);
  EXPECT_TRUE(config.run_projectors);
  EXPECT_EQ(config.log_level, "debug");
  EXPECT_THAT(ValidateConfig(config), IsEmpty());
}

TEST(LoadConfig, AcceptsShorthandConninfoStringsAndDottedKeys) {
  Config config;
  ApplyToml(config, R"(
write_db = "dbname=w"
read_db = "dbname=r"
log.level = "warn"
api.enabled = false
)");
  EXPECT_EQ(config.write_db, "dbname=w");
  EXPECT_EQ(config.read_db, "dbname=r");
  EXPECT_EQ(config.log_level, "warn");
  EXPECT_FALSE(config.run_api);
  EXPECT_EQ(config.write_pool_size, 16);  // untouched
}

TEST(LoadConfig, EnvironmentOverridesTheFile) {
  ConfigFile file(R"(
listen = "127.0.0.1:1111"
write_db = "dbname=file_w"
read_db = { conninfo = "dbname=file_r", pool_size = 3 }
log.level = "debug"
)");
  Config config = LoadConfig(file.Path(), MapEnvironment({
                                              {"SHOPCQRS_LISTEN", "127.0.0.1:2222"},
                                              {"SHOPCQRS_WRITE_DB", "dbname=env_w"},
                                              {"SHOPCQRS_READ_DB", "dbname=env_r"},
                                              {"SHOPCQRS_WRITE_POOL_SIZE", "5"},
                                              {"SHOPCQRS_READ_POOL_SIZE", " 6 "},
                                              {"SHOPCQRS_HTTP_THREADS", "7"},
                                              {"SHOPCQRS_RUN_API", "no"},
                                              {"SHOPCQRS_RUN_PROJECTORS", "OFF"},
                                              {"SHOPCQRS_LOG_LEVEL", "error"},
                                              {"SHOPCQRS_QUERY_SOURCE", "redis"},
                                              {"SHOPCQRS_TOKEN_SECRET", "s3cret-s3cret-s3cret"},
                                          }));
  EXPECT_EQ(config.listen, "127.0.0.1:2222");
  EXPECT_EQ(config.write_db, "dbname=env_w");
  EXPECT_EQ(config.read_db, "dbname=env_r");
  EXPECT_EQ(config.write_pool_size, 5);
  EXPECT_EQ(config.read_pool_size, 6);
  EXPECT_EQ(config.http_threads, 7);
  EXPECT_FALSE(config.run_api);
  EXPECT_FALSE(config.run_projectors);
  EXPECT_EQ(config.log_level, "error");
  EXPECT_EQ(config.query_source, "redis");
  EXPECT_EQ(config.token_secret, "s3cret-s3cret-s3cret");
}

TEST(LoadConfig, EmptyEnvironmentVariablesCountAsUnset) {
  Config config =
      LoadConfig(std::nullopt, MapEnvironment({{"SHOPCQRS_LISTEN", ""}, {"SHOPCQRS_RUN_API", ""}}));
  EXPECT_EQ(config.listen, "127.0.0.1:8080");
  EXPECT_TRUE(config.run_api);
}

TEST(LoadConfig, ReadsTheRealProcessEnvironment) {
  ::setenv("SHOPCQRS_HTTP_THREADS", "9", 1);
  Config config = LoadConfig(std::nullopt);
  ::unsetenv("SHOPCQRS_HTTP_THREADS");
  EXPECT_EQ(config.http_threads, 9);
}

TEST(LoadConfig, BadEnvironmentValuesNameTheVariable) {
  EXPECT_THAT(ErrorOf([] {
                LoadConfig(std::nullopt, MapEnvironment({{"SHOPCQRS_WRITE_POOL_SIZE", "ten"}}));
              }),
              AllOf(HasSubstr("SHOPCQRS_WRITE_POOL_SIZE"), HasSubstr("'ten'")));
  EXPECT_THAT(ErrorOf([] {
                LoadConfig(std::nullopt, MapEnvironment({{"SHOPCQRS_HTTP_THREADS", "3x"}}));
              }),
              HasSubstr("SHOPCQRS_HTTP_THREADS"));
  EXPECT_THAT(ErrorOf([] {
                LoadConfig(std::nullopt, MapEnvironment({{"SHOPCQRS_RUN_API", "maybe"}}));
              }),
              AllOf(HasSubstr("SHOPCQRS_RUN_API"), HasSubstr("maybe")));
  EXPECT_THAT(
      ErrorOf([] {
        LoadConfig(std::nullopt, MapEnvironment({{"SHOPCQRS_READ_POOL_SIZE", "99999999999999"}}));
      }),
      HasSubstr("SHOPCQRS_READ_POOL_SIZE"));
}

TEST(LoadConfig, FileErrorsNameTheFileKeyAndLine) {
  EXPECT_THAT(ErrorOf([] { LoadConfig("/nonexistent/shopcqrs.toml", kNoEnv); }),
              AllOf(HasSubstr("/nonexistent/shopcqrs.toml"), HasSubstr("not found")));
  {
    ConfigFile file("listen = \n");
    EXPECT_THAT(ErrorOf([&] { LoadConfig(file.Path(), kNoEnv); }),
                AllOf(HasSubstr(file.Path().string() + ":1:"), HasSubstr("invalid TOML")));
  }
  {
    ConfigFile file("listen = \"127.0.0.1:1\"\nhttp_threads = \"four\"\n");
    EXPECT_THAT(ErrorOf([&] { LoadConfig(file.Path(), kNoEnv); }),
                AllOf(HasSubstr(":2:"), HasSubstr("http_threads"), HasSubstr("integer")));
  }
  {
    ConfigFile file("[write_db]\nconninfo = \"x\"\npoolsize = 3\n");
    EXPECT_THAT(
        ErrorOf([&] { LoadConfig(file.Path(), kNoEnv); }),
        AllOf(HasSubstr("write_db.poolsize"), HasSubstr("unknown key"), HasSubstr("pool_size")));
  }
  {
    ConfigFile file("lissten = \"x\"\n");
    EXPECT_THAT(ErrorOf([&] { LoadConfig(file.Path(), kNoEnv); }),
                AllOf(HasSubstr("lissten"), HasSubstr("unknown key")));
  }
  Config config;
  EXPECT_THAT(ErrorOf([&] { ApplyToml(config, "api = true"); }), HasSubstr("expected a table"));
  EXPECT_THAT(ErrorOf([&] { ApplyToml(config, "api.enabled = \"yes\""); }),
              AllOf(HasSubstr("api.enabled"), HasSubstr("true or false")));
  // The stray quote is the first error (the fuzzer's input, shortened).
  EXPECT_THAT(ErrorOf([&] { ApplyToml(config, "[read_db]\npool_size = 1\"\xD1\xA3\"\n"); }),
              AllOf(HasSubstr(":2:14: invalid TOML"), HasSubstr("expected digit")));
  EXPECT_THAT(ErrorOf([&] { ApplyToml(config, "write_db = 5"); }),
              HasSubstr("conninfo string or a table"));
  EXPECT_THAT(ErrorOf([&] { ApplyToml(config, "http_threads = 10000000000"); }),
              HasSubstr("out of range"));
}

// From tests/fuzz/config_fuzz: a table header whose key starts with a character no key starts
// with (a NUL byte, a backtick) trips a debug assertion of toml++ 3.3.0's parser, which then
// reports the error. The release library that the service links reports it: invalid TOML.
TEST(LoadConfig, ATableHeaderWithABadKeyCharacterIsInvalidToml) {
  using namespace std::string_literals;
  Config config;
  for (const std::string& text :
       {"[\0"s, "listen = \"a\"\n[\0]\n"s, "[`read_db]\nconninfo = \"x\"\n"s, "[ \x01]\n"s}) {
    EXPECT_THAT(ErrorOf([&] { ApplyToml(config, text, "shop.toml"); }),
                AllOf(HasSubstr("shop.toml:"), HasSubstr("invalid TOML")))
        << text;
  }
  EXPECT_EQ(config, Config{});
}

// Found by tests/fuzz/config_fuzz: toml++ 3.3.0 reaches __builtin_unreachable when it asks
// whether a non-ASCII character (U+00A1..U+0499, U+FB26..U+FEFE) is whitespace: outside strings
// and comments, where TOML allows none (also where a stray quote would make a naive scanner
// think one starts: `1"é`), and after a line-ending backslash. The loader finds both before
// toml++ sees them, and still reads such characters in strings and comments.
TEST(LoadConfig, NonAsciiOutsideStringsIsInvalidTomlWithItsPosition) {
  Config config;
  const std::pair<const char*, const char*> cases[] = {
      {"caf\xC3\xA9 = 1\n", "shop.toml:1:4:"},
      {"listen = \"a:1\" \xC3\xA9\n", "shop.toml:1:16:"},
      {"[log]\nlevel = \"info\"\n\xEF\xBB\xB7\n", "shop.toml:3:1:"},
      {"token_secret = \"\"\"x\"\"\"\"\xC2\xA1\n", "shop.toml:1:24:"},
      {"a = [1, \xC3\xA9]\n", "shop.toml:1:9:"}};
  for (const auto& [text, where] : cases) {
    EXPECT_THAT(ErrorOf([&] { ApplyToml(config, text, "shop.toml"); }),
                AllOf(HasSubstr(where), HasSubstr("non-ASCII character outside a string")))
        << text;
  }
  EXPECT_THAT(ErrorOf([&] { ApplyToml(config, "write_db = \"\"\"x \\\n  \xC3\xA9\"\"\"\n"); }),
              AllOf(HasSubstr(":2:3:"), HasSubstr("line-ending backslash")));
  EXPECT_EQ(config, Config{});
  ApplyToml(config, "nats = \"\"\"a \\\n  b \xC3\xA9 \\\\\n\xC3\xA9\"\"\"\n");
  EXPECT_EQ(config.nats, "a b \xC3\xA9 \\\n\xC3\xA9");
  ApplyToml(config,
            "# caf\xC3\xA9 \xEF\xBB\xB7\n"
            "listen = \"h\xC3\xA9:1\" # \xC3\xA9\n"
            "\"token_secret\" = 'caf\xC3\xA9 \" \xEF\xBB\xB7 0123456789abcdef'\n"
            "write_db = \"\"\"caf\xC3\xA9 \"\" \\\"\"\" \xC3\xA9\"\"\"\"\n"
            "read_db = '''\n\xC2\xA1 ''''\n"
            "[log] # \xC3\xA9\n"
            "level = \"d\xC3\xA9\\\"bug\"\n");
  EXPECT_EQ(config.listen, "h\xC3\xA9:1");
  EXPECT_EQ(config.token_secret, "caf\xC3\xA9 \" \xEF\xBB\xB7 0123456789abcdef");
  EXPECT_EQ(config.write_db, "caf\xC3\xA9 \"\" \"\"\" \xC3\xA9\"");
  EXPECT_EQ(config.read_db, "\xC2\xA1 '");
  EXPECT_EQ(config.log_level, "d\xC3\xA9\"bug");
}

TEST(ValidateConfig, AcceptsAValidConfig) {
  EXPECT_THAT(ValidateConfig(ValidConfig()), IsEmpty());
  EXPECT_NO_THROW(ValidateConfigOrThrow(ValidConfig()));
}

TEST(ValidateConfig, RejectsBadListenAddresses) {
  for (const char* bad :
       {"8080", ":8080", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536", "300.1.1.1:80",
        "::1:80", "[::1]80", "[nope]:80", "bad host:80", "127.0.0.1:-1", ""}) {
    Config config = ValidConfig();
    config.listen = bad;
    auto errors = ValidateConfig(config);
    ASSERT_EQ(errors.size(), 1u) << bad;
    EXPECT_THAT(errors[0], AllOf(HasSubstr("listen"), HasSubstr("HOST:PORT"))) << bad;
  }
  for (const char* good : {"127.0.0.1:8080", "0.0.0.0:0", "localhost:80", "[::1]:8080",
                           "[::]:65535", "api.example.com:443"}) {
    Config config = ValidConfig();
    config.listen = good;
    EXPECT_THAT(ValidateConfig(config), IsEmpty()) << good;
  }
}

TEST(ValidateConfig, BrokerSettings) {
  Config config = ValidConfig();
  config.projection_source = "broker";
  auto errors = ValidateConfig(config);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], AllOf(HasSubstr("projection_source"), HasSubstr("nats")));
  config.nats = "nats://127.0.0.1:4222";
  EXPECT_THAT(ValidateConfig(config), IsEmpty());
  config.projection_source = "kafka";
  errors = ValidateConfig(config);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], AllOf(HasSubstr("projection_source"), HasSubstr("broker, outbox")));
  config.projection_source = "outbox";
  for (const char* bad : {"nats://", "nats://host", "127.0.0.1", "nats://h:port"}) {
    config.nats = bad;
    errors = ValidateConfig(config);
    ASSERT_EQ(errors.size(), 1u) << bad;
    EXPECT_THAT(errors[0], HasSubstr("nats")) << bad;
  }
  config.nats = "localhost:4222";
  EXPECT_THAT(ValidateConfig(config), IsEmpty());
}

TEST(LoadConfig, ReadsBrokerKeysFromFileAndEnvironment) {
  Config config;
  ApplyToml(config,
            "nats = \"nats://10.0.0.7:4222\"\nprojection_source = \"broker\"\n"
            "[relay]\nenabled = false\n");
  EXPECT_EQ(config.nats, "nats://10.0.0.7:4222");
  EXPECT_EQ(config.projection_source, "broker");
  EXPECT_FALSE(config.run_relay);
  ApplyEnvironment(config, MapEnvironment({{"SHOPCQRS_NATS", "nats://127.0.0.1:1"},
                                           {"SHOPCQRS_PROJECTION_SOURCE", "outbox"},
                                           {"SHOPCQRS_RUN_RELAY", "yes"}}));
  EXPECT_EQ(config.nats, "nats://127.0.0.1:1");
  EXPECT_EQ(config.projection_source, "outbox");
  EXPECT_TRUE(config.run_relay);
  EXPECT_THROW(ApplyToml(config, "[relay]\nenable = true\n"), ConfigError);
}

TEST(LoadConfig, ReadsRolesFromFileEnvironmentAndText) {
  Config config;
  EXPECT_TRUE(config.roles.empty()) << "no roles: the switches decide";
  ApplyToml(config, "roles = [\"command\", \"query\"]\n");
  EXPECT_THAT(config.roles, ElementsAre("command", "query"));
  ApplyEnvironment(config, MapEnvironment({{"SHOPCQRS_ROLES", "relay, projector"}}));
  EXPECT_THAT(config.roles, ElementsAre("relay", "projector"));
  EXPECT_THAT(ParseRoles("query", "--role"), ElementsAre("query"));
  EXPECT_THAT(ErrorOf([] { ParseRoles("command,querry", "--role"); }),
              AllOf(HasSubstr("--role"), HasSubstr("'querry' is not a role")));
  EXPECT_THAT(ErrorOf([] { ParseRoles("command,", "--role"); }), HasSubstr("'' is not a role"));
  EXPECT_THAT(ErrorOf([&] { ApplyToml(config, "roles = \"query\""); }),
              AllOf(HasSubstr("roles"), HasSubstr("expected an array")));
  EXPECT_THAT(ErrorOf([&] { ApplyToml(config, "roles = [1]"); }), HasSubstr("role names"));
  EXPECT_THAT(ErrorOf([&] { ApplyToml(config, "roles = []"); }), HasSubstr("at least one"));
  EXPECT_THAT(ErrorOf([&] { ApplyToml(config, "roles = [\"writer\"]"); }),
              HasSubstr("'writer' is not a role"));
  EXPECT_THAT(ErrorOf([] {
                LoadConfig(std::nullopt, MapEnvironment({{"SHOPCQRS_ROLES", "everything"}}));
              }),
              AllOf(HasSubstr("SHOPCQRS_ROLES"), HasSubstr("not a role")));
}

TEST(ConfigToml, WritesAFileThatReadsBackAsTheSameConfig) {
  Config config = ValidConfig();
  config.listen = "[::1]:9000";
  config.write_db = "host=/tmp port=5432 dbname=\"w\" password='p\\'q'";
  config.write_pool_size = 7;
  config.read_pool_size = 9;
  config.http_threads = 33;
  config.query_source = "redis";
  config.redis = "127.0.0.1:6379";
  config.nats = "nats://127.0.0.1:4222";
  config.projection_source = "broker";
  config.token_secret = "secret-0123456789\n\"x\"";
  config.roles = {"query", "projector"};
  config.log_level = "debug";
  config.auth.signing_key = "signing-key-0123456789-0123456789-\"quoted\"";
  config.auth.signing_keys = {{"old", "old-signing-key-0123456789-0123456789"}};
  config.auth.max_ttl_s = 3600;
  Config read;
  ApplyToml(read, ConfigToml(config));
  EXPECT_EQ(read, config);
  config.roles.clear();
  config.run_relay = false;
  config.auth = {};
  config.auth.mode = "off";
  read = Config{};
  ApplyToml(read, ConfigToml(config));
  EXPECT_EQ(read, config);
}

TEST(ConfigToml, AClustersUrlsAndTheStreamReplicasReadBack) {
  Config config = ValidConfig();
  config.nats = "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224";
  config.broker_replicas = 3;
  Config read;
  ApplyToml(read, ConfigToml(config));
  EXPECT_EQ(read, config);
}

TEST(LoadConfig, ReadsSeveralNatsUrlsAndTheReplicasFromFileEnvironmentAndDefaults) {
  Config config;
  ApplyToml(config,
            "nats = [\"nats://10.0.0.7:4222\", \"nats://10.0.0.8:4222\"]\n"
            "[broker]\nreplicas = 2\n");
  EXPECT_EQ(config.nats, "nats://10.0.0.7:4222,nats://10.0.0.8:4222");
  EXPECT_EQ(config.broker_replicas, 2);
  EXPECT_EQ(BrokerReplicas(config), 2);
  ApplyEnvironment(config, MapEnvironment({{"SHOPCQRS_NATS", "nats://a:1, nats://b:2,nats://c:3"},
                                           {"SHOPCQRS_BROKER_REPLICAS", "0"}}));
  EXPECT_EQ(config.nats, "nats://a:1, nats://b:2,nats://c:3");
  EXPECT_EQ(config.broker_replicas, 0);
  EXPECT_EQ(BrokerReplicas(config), 3) << "0: one per URL";
  config.nats = "nats://a:1";
  EXPECT_EQ(BrokerReplicas(config), 1);
  config.nats = "nats://a:1,nats://b:2,nats://c:3,nats://d:4,nats://e:5";
  EXPECT_EQ(BrokerReplicas(config), 3) << "at most 3 by default";
  EXPECT_THROW(ApplyToml(config, "nats = [1]\n"), ConfigError);
  EXPECT_THROW(ApplyToml(config, "[broker]\nreplica = 3\n"), ConfigError);
  EXPECT_THROW(ApplyToml(config, "[broker]\nreplicas = \"3\"\n"), ConfigError);
}

TEST(ValidateConfig, EveryNatsUrlAndTheReplicasAreChecked) {
  Config config = ValidConfig();
  config.nats = "nats://127.0.0.1:4222,nats://127.0.0.1:4223";
  EXPECT_THAT(ValidateConfig(config), IsEmpty());
  config.nats = "nats://127.0.0.1:4222,nats://host";
  auto errors = ValidateConfig(config);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], AllOf(HasSubstr("nats"), HasSubstr("nats://host")));
  config.nats = ",";
  EXPECT_EQ(ValidateConfig(config).size(), 1u);
  config.nats = "nats://127.0.0.1:4222";
  for (int bad : {-1, 6}) {
    config.broker_replicas = bad;
    errors = ValidateConfig(config);
    ASSERT_EQ(errors.size(), 1u) << bad;
    EXPECT_THAT(errors[0], HasSubstr("broker.replicas"));
  }
  config.broker_replicas = 5;
  EXPECT_THAT(ValidateConfig(config), IsEmpty());
}

TEST(ValidateConfig, RolesAreNamedOnceAndNotMixedWithTheSwitches) {
  Config config = ValidConfig();
  config.roles = {"query", "query"};
  EXPECT_THAT(ValidateConfig(config), ElementsAre(HasSubstr("'query' is named twice")));
  config.roles = {"query"};
  config.run_projectors = false;
  EXPECT_THAT(ValidateConfig(config), ElementsAre(HasSubstr("not both")));
}

TEST(ParseListenAddress, SplitsHostAndPort) {
  auto v4 = ParseListenAddress("127.0.0.1:8080");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8080);
  auto v6 = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
}

TEST(ValidateConfig, ReportsEveryProblemClearly) {
  Config config;
  config.listen = "nope";
  config.write_pool_size = 0;
  config.read_pool_size = 100000;
  config.http_threads = -1;
  config.log_level = "loud";
  config.query_source = "cache";
  config.token_secret = "short";
  auto errors = ValidateConfig(config);
  EXPECT_EQ(errors.size(), 9u);
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_THAT(all, HasSubstr("listen address 'nope'"));
  EXPECT_THAT(all, HasSubstr("write_db: no connection string"));
  EXPECT_THAT(all, HasSubstr("SHOPCQRS_WRITE_DB"));
  EXPECT_THAT(all, HasSubstr("read_db: no connection string"));
  EXPECT_THAT(all, HasSubstr("write_db.pool_size: 0 is out of range 1..500"));
  EXPECT_THAT(all, HasSubstr("read_db.pool_size: 100000 is out of range 1..500"));
  EXPECT_THAT(all, HasSubstr("http_threads: -1 is out of range 1..256"));
  EXPECT_THAT(all, HasSubstr("log.level: 'loud'"));
  EXPECT_THAT(all, HasSubstr("query_source: 'cache'"));
  EXPECT_THAT(all, HasSubstr("token_secret"));
  EXPECT_THAT(ErrorOf([&] { ValidateConfigOrThrow(config); }),
              AllOf(HasSubstr("invalid configuration"), HasSubstr("http_threads")));
}

TEST(ValidateConfig, RedisAsQuerySourceNeedsRedis) {
  Config config = ValidConfig();
  config.query_source = "redis";
  EXPECT_THAT(ValidateConfig(config),
              ElementsAre(HasSubstr("query_source: 'redis' needs redis (HOST:PORT)")));
  config.redis = "127.0.0.1:6379";
  EXPECT_TRUE(ValidateConfig(config).empty());
  config.query_source = "read";  // Redis projected, not queried
  EXPECT_TRUE(ValidateConfig(config).empty());
}

TEST(ValidateConfig, RejectsUnparsableAndIdenticalConnectionStrings) {
  Config config = ValidConfig();
  config.write_db = "host=x dbname";
  EXPECT_THAT(ValidateConfig(config),
              ElementsAre(AllOf(HasSubstr("write_db: invalid libpq connection string"))));
  config = ValidConfig();
  config.read_db = "nosuchkeyword=1";
  EXPECT_THAT(ValidateConfig(config), ElementsAre(HasSubstr("read_db: invalid")));
  config = ValidConfig();
  config.read_db = config.write_db;
  EXPECT_THAT(ValidateConfig(config), ElementsAre(HasSubstr("same database")));
}

TEST(ParseBool, AcceptsCommonSpellings) {
  for (const char* t : {"1", "true", "TRUE", "yes", "on"}) EXPECT_EQ(ParseBool(t), true) << t;
  for (const char* f : {"0", "false", "No", "off"}) EXPECT_EQ(ParseBool(f), false) << f;
  EXPECT_EQ(ParseBool("2"), std::nullopt);
  EXPECT_EQ(ParseBool(""), std::nullopt);
}

TEST(RedactConninfo, HidesPasswords) {
  // Keywords come out in libpq's order.
  EXPECT_EQ(RedactConninfo("host=db password=hunter2 dbname=shop"),
            "password=*** dbname=shop host=db");
  EXPECT_EQ(RedactConninfo("host=db application_name='a b'"), "host=db application_name='a b'");
  EXPECT_THAT(RedactConninfo("postgresql://u:hunter2@db/shop"),
              AllOf(HasSubstr("password=***"), ::testing::Not(HasSubstr("hunter2"))));
  EXPECT_EQ(RedactConninfo("host=x dbname"), "<invalid conninfo>");
  Config config = ValidConfig();
  config.write_db += " password=hunter2";
  config.token_secret = "super-secret-value-123";
  const std::string described = DescribeConfig(config);
  EXPECT_THAT(described, ::testing::Not(HasSubstr("hunter2")));
  EXPECT_THAT(described, ::testing::Not(HasSubstr("super-secret")));
  EXPECT_THAT(described, HasSubstr("listen=127.0.0.1:8080"));
}

}  // namespace
}  // namespace shopcqrs::apps
