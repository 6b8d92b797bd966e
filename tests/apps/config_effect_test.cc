// The effect of each configuration option on what the process builds from it: the roles it
// runs, the HTTP server, the connection pools, the projectors and their event sources, the
// relay, the token codec, the log level, and what `up` starts from. config_test.cc tests the
// parsing, tests/blackbox/config_effect_test.cc the running binary.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "adapters/pg_read/projection.h"
#include "adapters/pg_read/search_projection.h"
#include "adapters/redis/redis_projection.h"
#include "apps/shopcqrs/config.h"
#include "apps/shopcqrs/roles.h"
#include "apps/shopcqrs/up.h"

namespace shopcqrs::apps {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

Config ValidConfig() {
  Config config;
  config.write_db = "host=127.0.0.1 port=5432 dbname=shop_write user=shop";
  config.read_db = "host=127.0.0.1 port=5433 dbname=shop_read user=shop";
  return config;
}

std::vector<std::string> Names(const std::vector<ProjectorPlan>& plans) {
  std::vector<std::string> names;
  for (const auto& plan : plans) names.push_back(plan.projector.name);
  return names;
}

TEST(ConfigEffect, ListenAndHttpThreadsMakeTheHttpServer) {
  Config config = ValidConfig();
  config.listen = "[::1]:9123";
  config.http_threads = 7;
  auto options = HttpServerOptions(config);
  EXPECT_EQ(options.host, "::1");
  EXPECT_EQ(options.port, 9123);
  EXPECT_EQ(options.worker_threads, 7);
  EXPECT_EQ(options.io_threads, 1);
  config.listen = "0.0.0.0:0";
  config.http_threads = 1;
  options = HttpServerOptions(config);
  EXPECT_EQ(options.host, "0.0.0.0");
  EXPECT_EQ(options.port, 0);
  EXPECT_EQ(options.worker_threads, 1);
  config.listen = "nope";
  EXPECT_THROW(HttpServerOptions(config), std::runtime_error);
}

TEST(ConfigEffect, DatabasesAndPoolSizesMakeTheApiPools) {
  Config config = ValidConfig();
  config.write_pool_size = 3;
  config.read_pool_size = 5;
  auto pools = ApiPools(config);
  EXPECT_EQ(pools.write.conninfo, config.write_db);
  EXPECT_EQ(pools.write.size, 3);
  EXPECT_EQ(pools.read.conninfo, config.read_db);
  EXPECT_EQ(pools.read.size, 5);
  EXPECT_FALSE(pools.single);
  // Single-database mode: the queries' pool is on the write database, read_db.pool_size large.
  config.query_source = "write";
  pools = ApiPools(config);
  ASSERT_TRUE(pools.single);
  EXPECT_EQ(pools.single->conninfo, config.write_db);
  EXPECT_EQ(pools.single->size, 5);
  EXPECT_EQ(pools.write.size, 3);
  config.query_source = "redis";
  EXPECT_FALSE(ApiPools(config).single);
}

TEST(ConfigEffect, SwitchesPickTheRoles) {
  Config config = ValidConfig();
  EXPECT_EQ(PlanRoles(config), (RolePlan{.command = true, .query = true, .projectors = true}));
  config.nats = "nats://127.0.0.1:4222";  // the relay needs a broker
  EXPECT_EQ(PlanRoles(config),
            (RolePlan{.command = true, .query = true, .relay = true, .projectors = true}));
  // The same switches as a process gets them from its environment.
  config = LoadConfig(std::nullopt, MapEnvironment({{"SHOPCQRS_WRITE_DB", config.write_db},
                                                    {"SHOPCQRS_READ_DB", config.read_db},
                                                    {"SHOPCQRS_NATS", config.nats},
                                                    {"SHOPCQRS_RUN_RELAY", "off"},
                                                    {"SHOPCQRS_RUN_PROJECTORS", "0"}}));
  EXPECT_EQ(PlanRoles(config), (RolePlan{.command = true, .query = true, .follower = true}));
  config.run_api = false;
  config.run_projectors = true;
  EXPECT_EQ(PlanRoles(config), (RolePlan{.projectors = true}));
}

// roles (file, SHOPCQRS_ROLES, --role) name the roles exactly; a query process without the
// projector role follows their progress.
TEST(ConfigEffect, RolesPickTheRolesExactly) {
  Config config = ValidConfig();
  config.nats = "nats://127.0.0.1:4222";
  config.roles = {"query"};
  EXPECT_EQ(PlanRoles(config), (RolePlan{.query = true, .follower = true}));
  config.roles = {"command"};
  EXPECT_EQ(PlanRoles(config), (RolePlan{.command = true}));
  config.roles = {"relay"};
  EXPECT_EQ(PlanRoles(config), (RolePlan{.relay = true}));
  config.roles = {"projector", "query"};
  EXPECT_EQ(PlanRoles(config), (RolePlan{.query = true, .projectors = true}));
  config.roles = {"command", "query", "relay", "projector"};
  EXPECT_EQ(PlanRoles(config),
            (RolePlan{.command = true, .query = true, .relay = true, .projectors = true}));
  EXPECT_EQ(DescribeRoles(PlanRoles(config)), "command,query,relay,projector");
  EXPECT_TRUE(ValidateConfig(config).empty());
  // The relay role needs a broker.
  config.nats.clear();
  config.roles = {"relay"};
  EXPECT_THAT(ValidateConfig(config), ElementsAre(HasSubstr("'relay' needs nats")));
}

TEST(ConfigEffect, ReadDbAndRedisNameTheProjections) {
  Config config = ValidConfig();
  auto plans = PlanProjectors(config);
  EXPECT_THAT(Names(plans), ElementsAre(adapters::pg_read::kProjectionName,
                                        adapters::pg_read::kSearchProjectionName));
  for (const auto& plan : plans) {
    EXPECT_EQ(plan.store, "read_pg");
    EXPECT_EQ(plan.store_identity, "127.0.0.1:5433/shop_read");
    EXPECT_EQ(plan.projector.batch_size, cqrs::Projector::Options{}.batch_size);
  }
  config.redis = "10.1.2.3:6380";
  plans = PlanProjectors(config);
  ASSERT_THAT(Names(plans), ElementsAre(adapters::pg_read::kProjectionName,
                                        adapters::pg_read::kSearchProjectionName,
                                        adapters::redis::kProjectionName));
  EXPECT_EQ(plans[2].store, "redis");
  EXPECT_EQ(plans[2].store_identity, "10.1.2.3:6380");
  EXPECT_EQ(plans[2].projector.batch_size, adapters::redis::kRecommendedBatchSize);
  EXPECT_EQ(RedisEndpointOf(config)->host, "10.1.2.3");
  EXPECT_EQ(RedisEndpointOf(config)->port, 6380);
}

TEST(ConfigEffect, ProjectionSourcePicksEachProjectorsEventSource) {
  Config config = ValidConfig();
  config.redis = "127.0.0.1:6379";
  for (const auto& plan : PlanProjectors(config)) {
    EXPECT_FALSE(plan.broker) << plan.projector.name;  // outbox, the default of serve
    EXPECT_EQ(plan.outbox.conninfo, config.write_db) << plan.projector.name;
  }
  config.projection_source = "broker";
  config.nats = "nats://10.0.0.7:4222";
  std::vector<std::string> consumers;
  for (const auto& plan : PlanProjectors(config)) {
    ASSERT_TRUE(plan.broker) << plan.projector.name;
    EXPECT_EQ(plan.broker->nats.url, "nats://10.0.0.7:4222");
    EXPECT_EQ(plan.broker->consumer, ConsumerName(plan.projector.name, plan.store_identity));
    consumers.push_back(plan.broker->consumer);
  }
  ASSERT_EQ(consumers.size(), 3u);
  EXPECT_NE(consumers[0], consumers[1]);
  // Another read database: other consumers (two processes feeding two stores never share one).
  config.read_db = "host=10.0.0.9 port=5432 dbname=shop_read2";
  EXPECT_THAT(PlanProjectors(config)[0].broker->consumer, Not(consumers[0]));
}

TEST(ConfigEffect, TheRelayPublishesTheWriteDatabasesOutboxToNats) {
  Config config = ValidConfig();
  config.nats = "nats://10.0.0.7:4222";
  const auto options = RelayOptions(config);
  EXPECT_EQ(options.write_db, config.write_db);
  EXPECT_EQ(options.nats.url, "nats://10.0.0.7:4222");
}

TEST(ConfigEffect, TokenSecretKeysTheConsistencyTokens) {
  Config first = ValidConfig();
  first.token_secret = "first-secret-0123456789";
  Config second = first;
  second.token_secret = "second-secret-0123456789";
  const std::string token = ConsistencyTokensOf(first).Encode(42);
  EXPECT_EQ(ConsistencyTokensOf(first).Decode(token), 42u);  // another process, same secret
  EXPECT_EQ(ConsistencyTokensOf(second).Decode(token), std::nullopt);
  EXPECT_NE(ConsistencyTokensOf(second).Encode(42), token);
}

TEST(ConfigEffect, LogLevelSetsWhatIsLogged) {
  const auto before = spdlog::get_level();
  Config config = ValidConfig();
  config.log_level = "warn";
  ApplyLogLevel(config);
  EXPECT_EQ(spdlog::get_level(), spdlog::level::warn);
  EXPECT_FALSE(spdlog::default_logger()->should_log(spdlog::level::info));
  EXPECT_TRUE(spdlog::default_logger()->should_log(spdlog::level::warn));
  config.log_level = "debug";
  ApplyLogLevel(config);
  EXPECT_TRUE(spdlog::default_logger()->should_log(spdlog::level::debug));
  EXPECT_FALSE(spdlog::default_logger()->should_log(spdlog::level::trace));
  for (const std::string_view name : kLogLevels) {
    config.log_level = name;
    ApplyLogLevel(config);
    EXPECT_EQ(spdlog::get_level(), spdlog::level::from_str(std::string(name))) << name;
    if (name != "off") {
      EXPECT_NE(spdlog::get_level(), spdlog::level::off) << name;
    }
  }
  spdlog::set_level(before);
}

TEST(UpConfig, StartsFromALocalStacksDefaultsThenTheEnvironmentThenTheFlags) {
  Config config = UpConfig(MapEnvironment({}), std::nullopt, std::nullopt);
  EXPECT_EQ(config.projection_source, "broker");
  EXPECT_EQ(config.query_source, "redis");
  config = UpConfig(MapEnvironment({{"SHOPCQRS_QUERY_SOURCE", "read"},
                                    {"SHOPCQRS_LISTEN", "127.0.0.1:1111"},
                                    {"SHOPCQRS_LOG_LEVEL", "debug"},
                                    {"SHOPCQRS_HTTP_THREADS", "3"}}),
                    "127.0.0.1:2222", std::nullopt);
  EXPECT_EQ(config.query_source, "read");
  EXPECT_EQ(config.listen, "127.0.0.1:2222");
  EXPECT_EQ(config.log_level, "debug");
  EXPECT_EQ(config.http_threads, 3);
  config = UpConfig(MapEnvironment({{"SHOPCQRS_LOG_LEVEL", "debug"}}), std::nullopt, "error");
  EXPECT_EQ(config.log_level, "error");
}

TEST(UpTokenSecret, KeepsALocalSecretUnlessTheEnvironmentGivesOne) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "shopcqrs-up-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::filesystem::path root = tmpl;
  Config config = UpConfig(MapEnvironment({}), std::nullopt, std::nullopt);
  const std::string local = UpTokenSecret(config, root);
  EXPECT_GE(local.size(), kMinTokenSecretLength);
  EXPECT_EQ(UpTokenSecret(config, root), local);  // tokens survive a restart
  std::string stored;
  std::getline(std::ifstream(root / "token-secret"), stored);
  EXPECT_EQ(stored, local);
  // SHOPCQRS_TOKEN_SECRET is not overwritten by the local one (nor does it replace it).
  config = UpConfig(MapEnvironment({{"SHOPCQRS_TOKEN_SECRET", "from-the-environment-123"}}),
                    std::nullopt, std::nullopt);
  EXPECT_EQ(UpTokenSecret(config, root), "from-the-environment-123");
  std::getline(std::ifstream(root / "token-secret"), stored);
  EXPECT_EQ(stored, local);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace shopcqrs::apps
