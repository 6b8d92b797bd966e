// Black-box tests of what each configuration option does to a running `shopcqrs serve`
// (docs/CONFIGURATION.md): each test starts `serve` with a config file of its own (and some
// SHOPCQRS_* variables and flags, which override it) on fresh databases of the test PostgreSQL
// server (support/test_postgres.h), private redis-server and nats-server where it needs them, and
// observes the effect from outside: the address served, the connections in pg_stat_activity, the
// requests handled at once, which process projects, which tokens are accepted, what is logged,
// what reaches Redis and the JetStream stream. How each option becomes the objects the process
// builds is tested as a unit in tests/apps/config_effect_test.cc.
//
// The suite's shared `up` is not used.

#include <gtest/gtest.h>

#include <nats/nats.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "adapters/nats/event_messages.h"
#include "adapters/redis/redis_projection.h"
#include "blackbox/service_fixture.h"
#include "devstack/nats_server.h"
#include "devstack/redis_server.h"
#include "infra/jwt/jwt.h"
#include "infra/nats/jetstream.h"
#include "infra/redis/redis_client.h"
#include "support/eventually.h"
#include "support/sql.h"
#include "support/test_postgres.h"

namespace shopcqrs::blackbox {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using test_support::Eventually;
using test_support::Scalar;

// A TOML basic string.
std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The signing key of every `serve` here; requests to them send an admin token made with it.
const std::string kSigningKey = "config-effect-test-signing-key-0123456789";

std::string AdminBearer() {
  const infra::jwt::KeyRing keys({{infra::jwt::DerivedKid(kSigningKey), kSigningKey}});
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return "Bearer " + keys.Sign({"admin", "admin", now, now + 3600, {}});
}

// A write and a read database of their own, empty (serve migrates them).
struct Databases {
  std::string write;
  std::string read;

  static Databases Fresh(std::string_view hint) {
    return {test_support::FreshDatabase(std::string(hint) + "_write"),
            test_support::FreshDatabase(std::string(hint) + "_read")};
  }
  // The database keys of a config file (and the signing key every instance here uses).
  std::string Toml() const {
    return "write_db.conninfo = " + Quoted(write) + "\nread_db.conninfo = " + Quoted(read) +
           "\nauth.signing_key = " + Quoted(kSigningKey) + "\n";
  }
};

// `shopcqrs serve --config <tmp>/shopcqrs.toml [flags]` with `toml` as the file and `env` added to
// the environment; stdout and stderr in files next to the config file.
class ServeInstance : public ShopcqrsProcess {
 public:
  ServeInstance(const std::string& toml, std::vector<std::string> flags = {},
                std::vector<std::pair<std::string, std::string>> env = {})
      : root_("shopcqrs-config") {
    std::ofstream(config_path()) << toml;
    Launch launch{.args = {"serve", "--config", config_path()},
                  .stdout_path = root_.path() + "/stdout.log",
                  .stderr_path = root_.path() + "/stderr.log",
                  .env = std::move(env)};
    launch.args.insert(launch.args.end(), flags.begin(), flags.end());
    serve_ = std::move(launch);
  }
  ~ServeInstance() override { Stop(); }

  // Spawns it and waits for its "serving" line.
  Endpoint Start() {
    Spawn();
    const Endpoint endpoint = WaitUntilServing(60s);
    shopcqrs::testing::DefaultCredentials::Set(endpoint.port, AdminBearer());
    return endpoint;
  }
  // Spawns it without waiting for anything (a process without the API prints no "serving").
  void Spawn() { ShopcqrsProcess::Spawn(serve_); }

  std::string config_path() const { return root_.path() + "/shopcqrs.toml"; }
  std::string Stdout() const { return ReadFile(stdout_path()); }

 private:
  TempRoot root_;
  Launch serve_;
};

// Connections of `application_name` to the database of `conninfo`.
std::int64_t Connections(const std::string& conninfo, std::string_view application_name) {
  return Scalar(conninfo, fmt::format("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                      "current_database() AND application_name = '{}'",
                                      application_name));
}

// Runs `request` on `clients` connections at once, `rounds` times each, and returns the largest
// value `sample` had while they ran.
std::int64_t MaxDuring(const Endpoint& endpoint, int clients, int rounds,
                       const std::function<void(Api&)>& request,
                       const std::function<std::int64_t()>& sample) {
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      Api api(endpoint);
      for (int r = 0; r < rounds; ++r) request(api);
      ++done;
    });
  }
  std::int64_t max = 0;
  while (done < clients) {
    max = std::max(max, sample());
    std::this_thread::sleep_for(5ms);
  }
  for (auto& t : threads) t.join();
  return std::max(max, sample());
}

// GET `target` with the consistency token and the longest wait we allow it.
ApiResponse GetWithToken(Api& api, const std::string& target, const std::string& token,
                         std::chrono::milliseconds wait) {
  return api.Get(target, {{"X-Consistency-Token", token},
                          {"X-Consistency-Wait-Ms", std::to_string(wait.count())}});
}

// The names of the items of /v1/admin/projections (with their status: "read_pg=running").
std::set<std::string> Projections(Api& api) {
  std::set<std::string> names;
  const auto r = api.Get("/v1/admin/projections");
  if (r.status != 200) return names;
  for (const auto& item : r.Object().at("items").as_array()) {
    names.insert(std::string(item.at("name").as_string()) + "=" +
                 std::string(item.at("status").as_string()));
  }
  return names;
}

// The names of the checks /readyz reports.
std::set<std::string> ReadinessChecks(Api& api) {
  std::set<std::string> names;
  const auto r = api.Get("/readyz");
  if (const auto* checks = r.Object().if_contains("checks"); checks && checks->is_object()) {
    for (const auto& kv : checks->as_object()) names.emplace(kv.key());
  }
  return names;
}

// ---------------------------------------------------------------------------------------------

// listen: file, then SHOPCQRS_LISTEN, then --listen.
TEST(ConfigEffectTest, ListenIsTheAddressServed) {
  const Databases db = Databases::Fresh("listen");
  const unsigned short file_port = FreeTcpPort();
  const std::string toml = db.Toml() + "listen = \"127.0.0.1:" + std::to_string(file_port) + "\"\n";
  {
    ServeInstance serve(toml);
    const Endpoint endpoint = serve.Start();
    EXPECT_EQ(endpoint.host, "127.0.0.1");
    EXPECT_EQ(endpoint.port, file_port);
    Api api(Endpoint{"127.0.0.1", file_port});
    EXPECT_EQ(api.Get("/healthz").status, 200) << serve.Diagnostics();
  }
  const unsigned short env_port = FreeTcpPort();
  {
    ServeInstance serve(toml, {}, {{"SHOPCQRS_LISTEN", "127.0.0.1:" + std::to_string(env_port)}});
    EXPECT_EQ(serve.Start().port, env_port);
    EXPECT_EQ(Api(Endpoint{"127.0.0.1", env_port}).Get("/healthz").status, 200);
    EXPECT_EQ(TryBind(file_port), file_port) << "nothing listens on the file's port";
  }
  const unsigned short flag_port = FreeTcpPort();
  {
    ServeInstance serve(toml, {"--listen", "127.0.0.1:" + std::to_string(flag_port)},
                        {{"SHOPCQRS_LISTEN", "127.0.0.1:" + std::to_string(env_port)}});
    EXPECT_EQ(serve.Start().port, flag_port);
    EXPECT_EQ(Api(Endpoint{"127.0.0.1", flag_port}).Get("/healthz").status, 200);
    EXPECT_EQ(TryBind(env_port), env_port) << "nothing listens on the environment's port";
  }
}

// write_db and read_db (here from --write-db and --read-db, which override the file): the
// databases migrated, written and projected into.
TEST(ConfigEffectTest, WriteDbAndReadDbAreTheDatabasesUsed) {
  const Databases db = Databases::Fresh("dbs");
  const Databases elsewhere = Databases::Fresh("dbs_unused");
  ServeInstance serve(elsewhere.Toml() + "listen = \"127.0.0.1:0\"\n",
                      {"--write-db", db.write, "--read-db", db.read});
  Api api(serve.Start());
  const auto created = api.Post("/v1/customers", CustomerBody("Config Db", UniqueEmail()));
  ASSERT_EQ(created.status, 201) << created << serve.Diagnostics();
  const std::string token = created.Str("consistency_token");
  EXPECT_EQ(GetWithToken(api, "/v1/customers/" + created.Id(), token, 10s).status, 200);
  const std::string id_sql = "'" + created.Id() + "'";
  EXPECT_EQ(Scalar(db.write, "SELECT count(*) FROM customers WHERE id = " + id_sql), 1);
  EXPECT_EQ(Scalar(db.read, "SELECT count(*) FROM customer_views WHERE id = " + id_sql), 1);
  // The file's databases were not even migrated.
  EXPECT_EQ(Scalar(elsewhere.write, "SELECT count(*) FROM pg_tables WHERE tablename = 'customers'"),
            0);
  EXPECT_EQ(
      Scalar(elsewhere.read, "SELECT count(*) FROM pg_tables WHERE tablename = 'customer_views'"),
      0);
  // Without redis and nats: only the PostgreSQL projections, and no relay (each may still say
  // "starting" for a moment on a busy machine).
  const std::set<std::string> running{"read_pg=running", "search=running"};
  EXPECT_TRUE(Eventually([&] { return Projections(api) == running; }, 10s, 50ms))
      << ::testing::PrintToString(Projections(api));
}

// write_db.pool_size and read_db.pool_size: the connections each pool opens under a load of more
// concurrent requests than that; with query_source = write the queries' pool on the write
// database has read_db.pool_size connections, and answers without waiting for any projection.
TEST(ConfigEffectTest, PoolSizesBoundTheConnectionsOpened) {
  const Databases db = Databases::Fresh("pools");
  constexpr int kClients = 12;
  std::vector<std::string> ids;
  std::mutex ids_mutex;
  auto create = [&](Api& api) {
    const auto r = api.Post("/v1/customers", CustomerBody("Pool", UniqueEmail()));
    EXPECT_EQ(r.status, 201) << r;
    std::lock_guard lock(ids_mutex);
    ids.push_back(r.Id());
  };
  auto read = [&](Api& api) {
    const auto r = api.Get("/v1/customers/" + ids[ids.size() / 2]);
    EXPECT_TRUE(r.status == 200 || r.status == 404) << r;
  };
  // Serves with `settings`, loads the command and the query pool, and checks how many
  // connections each opened; then `then`, while it still runs.
  auto serve_and_count = [&](const std::string& settings, std::int64_t write_connections,
                             const std::string& query_db, std::string_view query_pool,
                             std::int64_t query_connections,
                             const std::function<void(const Endpoint&)>& then) {
    ServeInstance serve(db.Toml() + "listen = \"127.0.0.1:0\"\nhttp_threads = 32\n" + settings);
    const Endpoint endpoint = serve.Start();
    EXPECT_EQ(MaxDuring(endpoint, kClients, 10, create,
                        [&] { return Connections(db.write, "shopcqrs-write"); }),
              write_connections)
        << serve.Diagnostics();
    EXPECT_EQ(
        MaxDuring(endpoint, kClients, 10, read, [&] { return Connections(query_db, query_pool); }),
        query_connections)
        << serve.Diagnostics();
    then(endpoint);
  };
  serve_and_count("write_db.pool_size = 2\nread_db.pool_size = 3\n", 2, db.read, "shopcqrs-read", 3,
                  [&](const Endpoint&) {
                    EXPECT_EQ(Connections(db.write, "shopcqrs-single"), 0)
                        << "no query on write_db";
                  });
  // The first process's connections are gone before the second one's are counted.
  ASSERT_TRUE(Eventually([&] { return Connections(db.write, "shopcqrs-write") == 0; }, 30s, 50ms));
  serve_and_count(
      "query_source = \"write\"\nwrite_db.pool_size = 5\nread_db.pool_size = 4\n"
      "projectors.enabled = false\n",
      5, db.write, "shopcqrs-single", 4, [&](const Endpoint& endpoint) {
        // Nothing projects, yet a read of the command just made answers at once.
        Api api(endpoint);
        const auto created = api.Post("/v1/customers", CustomerBody("Single", UniqueEmail()));
        ASSERT_EQ(created.status, 201) << created;
        const auto got = GetWithToken(api, "/v1/customers/" + created.Id(),
                                      created.Str("consistency_token"), 0ms);
        EXPECT_EQ(got.status, 200) << got;
      });
}

// http_threads (here with the projectors off through SHOPCQRS_RUN_PROJECTORS, so that a query
// with a token waits its whole X-Consistency-Wait-Ms in a handler): as many requests are handled
// at once, the next one waits for a free handler.
TEST(ConfigEffectTest, HttpThreadsBoundTheRequestsHandledAtOnce) {
  const Databases db = Databases::Fresh("threads");
  // How long /healthz takes while `threads` handlers wait on a token nothing will satisfy.
  auto healthz_while_busy = [&](int http_threads, int busy) {
    ServeInstance serve(db.Toml() + "listen = \"127.0.0.1:0\"\nhttp_threads = " +
                            std::to_string(http_threads) + "\n",
                        {}, {{"SHOPCQRS_RUN_PROJECTORS", "false"}});
    const Endpoint endpoint = serve.Start();
    Api api(endpoint);
    const auto created = api.Post("/v1/customers", CustomerBody("Threads", UniqueEmail()));
    EXPECT_EQ(created.status, 201) << created << serve.Diagnostics();
    std::vector<std::thread> waiting;
    for (int i = 0; i < busy; ++i) {
      waiting.emplace_back([&] {
        Api waiter(endpoint);
        const auto r = GetWithToken(waiter, "/v1/customers/" + created.Id(),
                                    created.Str("consistency_token"), 3000ms);
        EXPECT_TRUE(IsProblem(r, 503, "read_model_behind")) << r;
      });
    }
    std::this_thread::sleep_for(600ms);  // the waiting requests are in their handlers
    const auto before = std::chrono::steady_clock::now();
    EXPECT_EQ(api.Get("/healthz").status, 200);
    const auto took = std::chrono::steady_clock::now() - before;
    for (auto& t : waiting) t.join();
    return took;
  };
  EXPECT_GE(healthz_while_busy(2, 2), 1500ms) << "with every handler busy /healthz waits";
  EXPECT_LT(healthz_while_busy(3, 2), 1500ms) << "a third handler answers at once";
}

// api.enabled and projectors.enabled (here --api and --projectors, which override the file): an
// API process without projectors answers a token only once another process, without the API,
// has projected it. The process without the API serves only what every process serves (and the
// projections it runs); the API process does not list projections it does not run.
TEST(ConfigEffectTest, ApiAndProjectorsRunInTheProcessesThatAskForThem) {
  const Databases db = Databases::Fresh("roles");
  ServeInstance api_only(db.Toml() + "listen = \"127.0.0.1:0\"\nprojectors.enabled = true\n",
                         {"--projectors", "false"});
  Api api(api_only.Start());
  const auto created = api.Post("/v1/customers", CustomerBody("Roles", UniqueEmail()));
  ASSERT_EQ(created.status, 201) << created << api_only.Diagnostics();
  const std::string target = "/v1/customers/" + created.Id();
  const std::string token = created.Str("consistency_token");
  EXPECT_TRUE(IsProblem(GetWithToken(api, target, token, 1000ms), 503, "read_model_behind"))
      << "nothing projects yet";
  EXPECT_TRUE(IsProblem(api.Get("/v1/admin/projections"), 404, "route_not_served"));
  EXPECT_EQ(ReadinessChecks(api), (std::set<std::string>{"read_db", "write_db"}));

  ServeInstance projectors_only(db.Toml() + "listen = \"127.0.0.1:0\"\napi.enabled = true\n",
                                {"--api", "false"});
  Api projector(projectors_only.Start());
  EXPECT_TRUE(
      Eventually([&] { return GetWithToken(api, target, token, 500ms).status == 200; }, 30s, 50ms))
      << projectors_only.Diagnostics();
  EXPECT_TRUE(Eventually(
      [&] {
        return Projections(projector) == std::set<std::string>{"read_pg=running", "search=running"};
      },
      30s, 50ms))
      << projectors_only.Diagnostics();
  EXPECT_EQ(ReadinessChecks(projector),
            (std::set<std::string>{"projector_read_pg", "projector_search"}));
  EXPECT_TRUE(IsProblem(projector.Get(target), 404, "route_not_served"));
  EXPECT_TRUE(IsProblem(projector.Post("/v1/customers", CustomerBody("No", UniqueEmail())), 404,
                        "route_not_served"));
  EXPECT_EQ(
      Scalar(db.read, "SELECT count(*) FROM customer_views WHERE id = '" + created.Id() + "'"), 1);
}

// token_secret: a token is accepted by processes with the secret that signed it, whichever
// layer set it, and refused by any other.
TEST(ConfigEffectTest, TokenSecretSignsTheTokens) {
  const Databases db = Databases::Fresh("tokens");
  const std::string base = db.Toml() + "listen = \"127.0.0.1:0\"\n";
  ServeInstance first(base + "token_secret = \"first-secret-0123456789\"\n");
  Api api(first.Start());
  const auto created = api.Post("/v1/customers", CustomerBody("Tokens", UniqueEmail()));
  ASSERT_EQ(created.status, 201) << created << first.Diagnostics();
  const std::string target = "/v1/customers/" + created.Id();
  const std::string token = created.Str("consistency_token");
  EXPECT_EQ(GetWithToken(api, target, token, 10s).status, 200);
  {
    ServeInstance other(base +
                        "token_secret = \"other-secret-0123456789\"\nprojectors.enabled = false\n");
    Api other_api(other.Start());
    EXPECT_TRUE(IsValidationError(GetWithToken(other_api, target, token, 10s)))
        << "another secret's token";
    const auto own = other_api.Post("/v1/customers", CustomerBody("Other", UniqueEmail()));
    ASSERT_EQ(own.status, 201) << own;
    EXPECT_TRUE(IsValidationError(
        GetWithToken(api, "/v1/customers/" + own.Id(), own.Str("consistency_token"), 10s)))
        << "and the other way round";
  }
  ServeInstance same(
      base + "token_secret = \"other-secret-0123456789\"\nprojectors.enabled = false\n", {},
      {{"SHOPCQRS_TOKEN_SECRET", "first-secret-0123456789"}});
  Api same_api(same.Start());
  EXPECT_EQ(GetWithToken(same_api, target, token, 10s).status, 200)
      << "the environment's secret is the first one";
}

// log.level (SHOPCQRS_LOG_LEVEL, --log-level): what the process logs (on stdout).
TEST(ConfigEffectTest, LogLevelFiltersWhatIsLogged) {
  const Databases db = Databases::Fresh("logs");
  const std::string base = db.Toml() + "listen = \"127.0.0.1:0\"\nlog.level = \"error\"\n";
  auto log_of_a_healthz = [&](ServeInstance& serve) {
    Api api(serve.Start());
    EXPECT_EQ(api.Get("/healthz").status, 200);
    serve.Stop();
    return serve.Stdout();
  };
  ServeInstance quiet(base, {}, {{"SHOPCQRS_LOG_LEVEL", "warn"}});
  const std::string warn = log_of_a_healthz(quiet);
  EXPECT_NE(warn.find(std::string(ShopcqrsProcess::kServingPrefix)), std::string::npos);
  EXPECT_EQ(warn.find("configuration: "), std::string::npos) << warn;  // info
  EXPECT_EQ(warn.find("http_access"), std::string::npos) << warn;      // debug
  ServeInstance chatty(base, {"--log-level", "debug"}, {{"SHOPCQRS_LOG_LEVEL", "warn"}});
  const std::string debug = log_of_a_healthz(chatty);
  EXPECT_NE(debug.find("configuration: "), std::string::npos) << debug;
  EXPECT_NE(debug.find("http_access method=GET path=/healthz status=200"), std::string::npos)
      << debug;
}

// auth: on by default (a request without a token is 401 and the log shows no key); off only by
// `auth.mode = "off"` in the file -- then a warning at start and /readyz says so -- and never
// by the environment; `shopcqrs token --config` mints tokens the service accepts.
TEST(ConfigEffectTest, AuthIsOnUnlessTheFileTurnsItOff) {
  const Databases db = Databases::Fresh("auth");
  const std::string base = db.Toml() + "listen = \"127.0.0.1:0\"\n";
  {
    ServeInstance on(base, {}, {{"SHOPCQRS_AUTH_MODE", "off"}});
    Api api(on.Start());
    const auto anonymous = api.Get("/v1/orders", {{"Authorization", ""}});
    EXPECT_EQ(anonymous.status, 401) << anonymous;
    EXPECT_EQ(anonymous.Header("WWW-Authenticate"), "Bearer");
    EXPECT_EQ(api.Get("/v1/orders").status, 200);  // the admin token made with the file's key
    EXPECT_EQ(api.Get("/readyz", {{"Authorization", ""}}).Str("auth"), "on");
    // A token from `shopcqrs token --config` (a customer's: its own record only).
    ShopcqrsProcess token;
    token.Spawn({.args = {"token", "--config", on.config_path(), "--customer",
                          "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "--ttl", "60"},
                 .stdout_path = on.config_path() + ".token",
                 .stderr_path = on.config_path() + ".token.err"});
    const auto status = token.Wait(30s);
    ASSERT_TRUE(status && status->Success()) << ReadFile(on.config_path() + ".token.err");
    std::string minted = ReadFile(on.config_path() + ".token");
    while (!minted.empty() && minted.back() == '\n') minted.pop_back();
    EXPECT_EQ(api.Get("/v1/orders", {{"Authorization", "Bearer " + minted}}).status, 200);
    EXPECT_EQ(api.Get("/metrics", {{"Authorization", "Bearer " + minted}}).status, 403);
    on.Stop();
    EXPECT_EQ(on.Stdout().find(kSigningKey), std::string::npos);
    EXPECT_EQ(ReadFile(on.stderr_path()).find(kSigningKey), std::string::npos);
  }
  {
    ServeInstance off(base + "auth.mode = \"off\"\n");
    Api api(off.Start());
    EXPECT_EQ(api.Get("/v1/orders", {{"Authorization", ""}}).status, 200);
    EXPECT_EQ(api.Get("/readyz", {{"Authorization", ""}}).Str("auth"), "off");
    off.Stop();
    EXPECT_NE(off.Stdout().find("auth.mode is off"), std::string::npos) << off.Stdout();
  }
}

// redis: the Redis projection runs (its checkpoint is in that Redis), /readyz checks it, and with
// query_source = redis the order view is answered from it.
TEST(ConfigEffectTest, RedisRunsTheRedisProjection) {
  const Databases db = Databases::Fresh("redis");
  TempRoot dir("shopcqrs-config-redis");
  devstack::RedisServer redis({.data_dir = dir.data_dir() + "/redis"});
  redis.Start();
  const std::string address = "127.0.0.1:" + std::to_string(redis.Port());
  ServeInstance serve(db.Toml() + "listen = \"127.0.0.1:0\"\nquery_source = \"redis\"\nredis = " +
                      Quoted(address) + "\n");
  Api api(serve.Start());
  const Customer customer = CreateCustomer(api);
  const Product product = CreateProduct(api, 250, 10);
  const auto order = PlaceOrder(api, customer.id, {{product.id, 2}});
  ASSERT_EQ(order.status, 201) << order << serve.Diagnostics();
  EXPECT_EQ(
      GetWithToken(api, "/v1/orders/" + order.Id(), order.Str("consistency_token"), 10s).status,
      200);
  EXPECT_TRUE(Projections(api).contains("redis=running")) << serve.Diagnostics();
  const auto checks = ReadinessChecks(api);
  EXPECT_TRUE(checks.contains("redis") && checks.contains("projector_redis"));
  adapters::redis::RedisProjection store({.endpoint = redis.Endpoint()});
  EXPECT_TRUE(Eventually([&] { return store.LoadCheckpoint().position > 0; }, 30s, 50ms))
      << "the projection's checkpoint is in our Redis";
  // The order view comes from Redis: with Redis gone it falls back to the read PostgreSQL, and
  // /readyz says Redis is down.
  redis.Stop();
  EXPECT_EQ(api.Get("/readyz").status, 503);
  EXPECT_EQ(api.Get("/v1/orders/" + order.Id()).status, 200);
}

// The JetStream stream's last sequence (0 while there is no stream).
std::uint64_t StreamLength(const std::string& url) {
  infra::nats::JetStreamConnection nats({.url = url, .name = "config-effect-test"});
  try {
    return nats.LastSequence(adapters::nats::kDefaultStream);
  } catch (const std::exception&) {
    return 0;
  }
}

// The durable consumers of the event stream.
std::vector<std::string> Consumers(const std::string& url) {
  infra::nats::JetStreamConnection nats({.url = url, .name = "config-effect-test"});
  jsConsumerNamesList* list = nullptr;
  jsErrCode code{};
  std::vector<std::string> names;
  const std::string stream(adapters::nats::kDefaultStream);
  if (js_ConsumerNames(&list, nats.js(), stream.c_str(), nullptr, &code) == NATS_OK) {
    for (int i = 0; i < list->Count; ++i) names.emplace_back(list->List[i]);
    jsConsumerNamesList_Destroy(list);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// nats, relay.enabled and projection_source: the relay fills the stream at `nats`; with
// projection_source = broker the projectors read that stream (through durable consumers of
// their own), so they stand still while no relay runs; with outbox they read the outbox.
TEST(ConfigEffectTest, NatsRelayAndProjectionSourceDecideHowEventsTravel) {
  const Databases db = Databases::Fresh("broker");
  TempRoot dir("shopcqrs-config-nats");
  devstack::NatsServer nats({.data_dir = dir.data_dir() + "/nats"});
  nats.Start();
  const std::string base =
      db.Toml() + "listen = \"127.0.0.1:0\"\nnats = " + Quoted(nats.Url()) + "\n";
  const std::string broker = base + "projection_source = \"broker\"\n";

  std::string target, token;
  {
    ServeInstance no_relay(broker + "relay.enabled = false\n");
    Api api(no_relay.Start());
    const auto created = api.Post("/v1/customers", CustomerBody("Broker", UniqueEmail()));
    ASSERT_EQ(created.status, 201) << created << no_relay.Diagnostics();
    target = "/v1/customers/" + created.Id();
    token = created.Str("consistency_token");
    EXPECT_TRUE(IsProblem(GetWithToken(api, target, token, 1500ms), 503, "read_model_behind"))
        << "no relay: nothing reaches the stream the projectors read";
    EXPECT_EQ(StreamLength(nats.Url()), 0u);
    EXPECT_EQ(Projections(api), (std::set<std::string>{"read_pg=running", "search=running"}));
    EXPECT_TRUE(ReadinessChecks(api).contains("nats"));
    EXPECT_TRUE(Eventually([&] { return Consumers(nats.Url()).size() == 2; }, 30s, 50ms));
    const auto consumers = Consumers(nats.Url());
    ASSERT_EQ(consumers.size(), 2u);
    EXPECT_TRUE(consumers[0].starts_with("shopcqrs_read_pg_")) << consumers[0];
    EXPECT_TRUE(consumers[1].starts_with("shopcqrs_search_")) << consumers[1];
  }
  {
    ServeInstance outbox(base + "projection_source = \"outbox\"\nrelay.enabled = false\n");
    Api api(outbox.Start());
    EXPECT_EQ(GetWithToken(api, target, token, 10s).status, 200)
        << "from the outbox, without the stream" << outbox.Diagnostics();
    EXPECT_EQ(StreamLength(nats.Url()), 0u);
  }
  ServeInstance relay(broker);  // relay.enabled defaults to true
  Api api(relay.Start());
  EXPECT_TRUE(Eventually([&] { return StreamLength(nats.Url()) > 0; }, 30s, 50ms))
      << relay.Diagnostics();
  EXPECT_TRUE(Eventually([&] { return Projections(api).contains("relay=leader"); }, 30s, 50ms))
      << relay.Diagnostics();
  EXPECT_TRUE(ReadinessChecks(api).contains("relay"));
  const auto created = api.Post("/v1/customers", CustomerBody("Relayed", UniqueEmail()));
  ASSERT_EQ(created.status, 201) << created;
  EXPECT_EQ(
      GetWithToken(api, "/v1/customers/" + created.Id(), created.Str("consistency_token"), 10s)
          .status,
      200)
      << "through the relay and the stream" << relay.Diagnostics();
}

// Client connections to the database of `conninfo`, other than the asking one.
std::int64_t DatabaseClients(const std::string& conninfo) {
  return Scalar(conninfo,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                "backend_type = 'client backend' AND pid <> pg_backend_pid()");
}

// Clients of the Redis at `endpoint`, other than the asking one.
std::int64_t RedisClients(const infra::redis::RedisEndpoint& endpoint) {
  infra::redis::RedisClient client(endpoint);
  const std::string list = client.Command({"CLIENT", "LIST"}).str;
  return std::count(list.begin(), list.end(), '\n') - 1;
}

// Client connections of the nats-server whose monitoring endpoint is on `monitor_port`.
std::int64_t NatsClients(unsigned short monitor_port) {
  Api monitor(Endpoint{"127.0.0.1", monitor_port});
  const auto r = monitor.Get("/connz");
  if (r.status != 200) return -1;
  return r.Object().at("num_connections").to_number<std::int64_t>();
}

// roles (API.md "Process roles"): a process of each role runs exactly its part and opens no
// connection its row does not name; a route of another role is 404 route_not_served; /readyz
// covers its own roles; and the four, each in its own process, make one working service.
TEST(ConfigEffectTest, EachRoleOpensOnlyTheConnectionsItsRowNames) {
  const Databases db = Databases::Fresh("each_role");
  TempRoot dir("shopcqrs-config-roles");
  devstack::RedisServer redis({.data_dir = dir.data_dir() + "/redis"});
  redis.Start();
  const unsigned short monitor_port = FreeTcpPort();
  devstack::NatsServer nats({.data_dir = dir.data_dir() + "/nats", .monitor_port = monitor_port});
  nats.Start();
  const std::string toml = db.Toml() +
                           "listen = \"127.0.0.1:0\"\nquery_source = \"redis\"\nredis = " +
                           Quoted("127.0.0.1:" + std::to_string(redis.Port())) +
                           "\nnats = " + Quoted(nats.Url()) + "\nprojection_source = \"broker\"\n";
  struct Opened {
    std::int64_t write, read, redis, nats;
  };
  auto opened = [&] {
    return Opened{DatabaseClients(db.write), DatabaseClients(db.read),
                  RedisClients(redis.Endpoint()), NatsClients(monitor_port)};
  };
  const std::string order_id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
  // The order of the migrations: the command role migrates the write database, the query role
  // the read one.
  {
    ServeInstance command(toml, {"--role", "command"});
    Api api(command.Start());
    EXPECT_EQ(api.Post("/v1/customers", CustomerBody("Role", UniqueEmail())).status, 201);
    EXPECT_TRUE(IsProblem(api.Get("/v1/orders/" + order_id), 404, "route_not_served"));
    EXPECT_TRUE(IsProblem(api.Get("/v1/admin/projections"), 404, "route_not_served"));
    EXPECT_EQ(ReadinessChecks(api), (std::set<std::string>{"write_db"}));
    const Opened o = opened();
    EXPECT_GT(o.write, 0);
    EXPECT_EQ(o.read, 0) << "the command role never connects to the read database";
    EXPECT_EQ(o.redis, 0);
    EXPECT_EQ(o.nats, 0);
  }
  {
    ServeInstance query(toml, {"--role", "query"});
    Api api(query.Start());
    EXPECT_TRUE(IsProblem(api.Get("/v1/orders/" + order_id), 404, "not_found"));
    EXPECT_EQ(api.Get("/v1/search/orders?q=role").status, 200);
    EXPECT_TRUE(IsProblem(api.Post("/v1/customers", CustomerBody("No", UniqueEmail())), 404,
                          "route_not_served"));
    EXPECT_EQ(ReadinessChecks(api), (std::set<std::string>{"read_db", "redis"}));
    const Opened o = opened();
    EXPECT_EQ(o.write, 0) << "the query role never connects to the write database";
    EXPECT_GT(o.read, 0);
    EXPECT_GT(o.redis, 0);
    EXPECT_EQ(o.nats, 0) << "its tokens follow the read stores' progress";
  }
  {
    ServeInstance relay(toml, {"--role", "relay"});
    Api api(relay.Start());
    EXPECT_TRUE(Eventually([&] { return StreamLength(nats.Url()) >= 1; }, 30s, 50ms))
        << relay.Diagnostics();
    EXPECT_EQ(Projections(api), (std::set<std::string>{"relay=leader"}));
    EXPECT_EQ(ReadinessChecks(api), (std::set<std::string>{"relay", "nats"}));
    const Opened o = opened();
    EXPECT_GT(o.write, 0);
    EXPECT_EQ(o.read, 0);
    EXPECT_EQ(o.redis, 0);
    EXPECT_GT(o.nats, 0);
  }
  {
    ServeInstance projector(toml, {"--role", "projector"});
    Api api(projector.Start());
    EXPECT_TRUE(Eventually(
        [&] {
          const auto listed = api.Get("/v1/admin/projections");
          if (listed.status != 200) return false;
          for (const auto& item : listed.Object().at("items").as_array()) {
            if (item.at("events_behind").as_int64() != 0) return false;
          }
          return true;
        },
        30s, 50ms))
        << projector.Diagnostics();
    EXPECT_TRUE(Eventually(
        [&] {
          return Projections(api) ==
                 std::set<std::string>{"read_pg=running", "search=running", "redis=running"};
        },
        30s, 50ms))
        << projector.Diagnostics();
    EXPECT_TRUE(IsProblem(api.Get("/v1/orders/" + order_id), 404, "route_not_served"));
    const Opened o = opened();
    EXPECT_EQ(o.write, 0) << "with projection_source = broker the projectors read the broker only";
    EXPECT_GT(o.read, 0);
    EXPECT_GT(o.redis, 0);
    EXPECT_GT(o.nats, 0);
  }
  // All four at once, each in its own process: a command's token is answered by the query
  // process once the relay and the projector have carried the event.
  ServeInstance command(toml, {"--role", "command"});
  ServeInstance query(toml, {"--role", "query"});
  ServeInstance relay(toml, {"--role", "relay"});
  ServeInstance projector(toml, {"--role", "projector"});
  Api commands(command.Start());
  Api queries(query.Start());
  relay.Start();
  projector.Start();
  const Customer customer = CreateCustomer(commands);
  const Product product = CreateProduct(commands, 250, 10);
  const auto order = PlaceOrder(commands, customer.id, {{product.id, 2}});
  ASSERT_EQ(order.status, 201) << order;
  const auto got =
      GetWithToken(queries, "/v1/orders/" + order.Id(), order.Str("consistency_token"), 10s);
  EXPECT_EQ(got.status, 200) << got << relay.Diagnostics() << projector.Diagnostics();
  EXPECT_EQ(
      GetWithToken(queries, "/v1/customers/" + customer.id, order.Str("consistency_token"), 10s)
          .status,
      200);
}

}  // namespace
}  // namespace shopcqrs::blackbox
