// Sequenced dead letters from outside, on a private `shopcqrs up`: an outbox row with a payload
// the codec rejects (written by SQL, as a buggy writer would) parks its order in every
// projection; the admin API and `shopcqrs dead-letters` list it; a token that covers it is
// answered 503 read_model_behind with parked: true for that order only; a skip from the
// command line releases it, and the order goes on.

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "blackbox/service_fixture.h"
#include "devstack/process.h"
#include "infra/pg/connection.h"
#include "support/eventually.h"
#include "support/poison.h"

namespace shopcqrs::blackbox {
namespace {

using namespace std::chrono_literals;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The write database of the `up` whose configuration file is `config`.
std::string WriteDb(const std::string& config) {
  const std::string text = Slurp(config);
  std::smatch match;
  if (!std::regex_search(text, match,
                         std::regex(R"(\[write_db\][^\[]*conninfo = '?\"?([^'\"\n]+))"))) {
    throw std::runtime_error("no write_db conninfo in " + config);
  }
  return match[1];
}

struct Cli {
  int exit_code = -1;
  std::string out;
};

// `shopcqrs dead-letters ARGS --config CONFIG`.
Cli DeadLettersCli(const std::string& root, const std::string& config, const std::string& url,
                   std::vector<std::string> args) {
  devstack::ChildProcessOptions options;
  options.argv = {SHOPCQRS_BINARY, "dead-letters"};
  for (auto& a : args) options.argv.push_back(std::move(a));
  options.argv.insert(options.argv.end(), {"--config", config, "--log-level", "warn"});
  options.argv.insert(options.argv.end(), {"--url", url});
  const std::string out = root + "/cli.out";
  std::filesystem::remove(out);
  options.log_file = out;
  const auto status = devstack::RunToCompletion(options, 60s);
  return {status.signal == 0 ? status.exit_code : -1, Slurp(out)};
}

TEST(DeadLettersBlackbox, APoisonEventIsParkedListedBlockedForItsTokensAndSkippedByTheCli) {
  ServiceProcess up("shopcqrs-dl");
  up.Start();
  Api api({up.host(), up.port()});
  const std::string config = up.data_dir() + "/shopcqrs.toml";
  const std::string write = WriteDb(config);
  // It listens on a port of its own choosing (--listen 127.0.0.1:0): the commands are told.
  const std::string url = fmt::format("http://{}:{}", up.host(), up.port());

  const auto customer = CreateCustomer(api, "Dee Letter");
  const auto product = CreateProduct(api, 500, 100);
  const auto order = PlaceOrderOk(api, customer.id, {{product.id, 2}});
  ASSERT_EQ(Pay(api, order, 1000).status, 200);
  // From now on the writer puts a payload no projection can decode into this order's shipment.
  test_support::PoisonPayloads(write, order, "OrderShipped");
  const auto shipped = Ship(api, order, "TRK-DL");
  ASSERT_EQ(shipped.status, 200) << shipped;
  const auto ship_token = shipped.Str("consistency_token");

  // Parked in each projection (retried a few times first).
  const std::vector<std::string> projections{"read_pg", "redis", "search"};
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        auto r = api.Get("/v1/admin/dead-letters");
        return r.status == 200 && r.Object().at("items").as_array().size() == projections.size();
      },
      20s))
      << api.Get("/v1/admin/dead-letters");
  const auto listed = api.Get("/v1/admin/dead-letters");
  for (const auto& value : listed.Object().at("items").as_array()) {
    const auto& item = value.as_object();
    EXPECT_EQ(item.at("aggregate_id").as_string(), order);
    EXPECT_EQ(item.at("aggregate_type").as_string(), "Order");
    EXPECT_EQ(item.at("events").as_int64(), 1);
    EXPECT_NE(std::string(item.at("error").as_string()).find("cannot decode event"),
              std::string::npos);
  }
  const auto only_search = api.Get("/v1/admin/dead-letters?projection=search");
  ASSERT_EQ(only_search.status, 200);
  EXPECT_EQ(only_search.Object().at("items").as_array().size(), 1u);
  EXPECT_EQ(api.Get("/v1/admin/dead-letters?projection=nope").status, 404);
  // Each goes on running, with an alert-worthy status.
  auto all_parked = [&] {
    const auto infos = api.Get("/v1/admin/projections");
    for (const auto& value : infos.Object().at("items").as_array()) {
      const auto& p = value.as_object();
      if (p.at("name").as_string() == "relay") continue;
      if (p.at("dead_letters").as_int64() != 1 || p.at("status").as_string() != "parked") {
        return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(test_support::Eventually(all_parked, 5s)) << api.Get("/v1/admin/projections");
  EXPECT_NE(api.Get("/metrics").body.find("shopcqrs_dead_letters{projection=\"read_pg\"} 1"),
            std::string::npos);

  // The shipment's token: answers about the order are parked; other answers are not.
  const HttpHeaders with_ship_token{{"X-Consistency-Token", ship_token},
                                    {"X-Consistency-Wait-Ms", "300"}};
  const auto parked = api.Get("/v1/orders/" + order, with_ship_token);
  EXPECT_EQ(parked.status, 503) << parked;
  EXPECT_EQ(parked.Code(), "read_model_behind");
  EXPECT_TRUE(parked.Object().contains("parked") && parked.Object().at("parked").as_bool())
      << parked;
  EXPECT_EQ(api.Get("/v1/products/" + product.id, with_ship_token).status, 200)
      << "its parked event names no product row";
  EXPECT_EQ(api.Get("/v1/customers/" + customer.id, with_ship_token).status, 200)
      << "its parked event names no customer row";
  // Without a token the order's last applied state is answered: paid.
  EXPECT_EQ(api.Get("/v1/orders/" + order).Str("status"), "paid");

  // The command line: list (exit 3: parked), a retry that cannot cure a payload (exit 4), a
  // skip in every projection (exit 0), a second skip (exit 2: nothing parked).
  auto list = DeadLettersCli(up.root(), config, url, {"list"});
  EXPECT_EQ(list.exit_code, 3) << list.out;
  EXPECT_NE(list.out.find(order), std::string::npos) << list.out;
  auto retry = DeadLettersCli(up.root(), config, url, {"retry", "read_pg", order});
  EXPECT_EQ(retry.exit_code, 4) << retry.out;
  for (const auto& projection : projections) {
    auto skip = DeadLettersCli(up.root(), config, url, {"skip", projection, order});
    EXPECT_EQ(skip.exit_code, 0) << projection << ": " << skip.out;
  }
  EXPECT_EQ(DeadLettersCli(up.root(), config, url, {"skip", "read_pg", order}).exit_code, 2);
  list = DeadLettersCli(up.root(), config, url, {"list"});
  EXPECT_EQ(list.exit_code, 0) << list.out;
  EXPECT_EQ(
      api.Post("/v1/admin/dead-letters/nope/" + order + "/retry", std::string_view("{}")).status,
      404);

  // The token is honoured now (the shipment set aside), and the order goes on.
  const auto after = api.Get("/v1/orders/" + order, with_ship_token);
  ASSERT_EQ(after.status, 200) << after;
  EXPECT_EQ(after.Str("status"), "paid");
  EXPECT_EQ(after.Version(), 2) << "the last applied version: the skipped one had no effect";
  const auto delivered = Deliver(api, order);
  ASSERT_EQ(delivered.status, 200) << delivered;
  const auto final_view =
      api.Get("/v1/orders/" + order, {{"X-Consistency-Token", delivered.Str("consistency_token")}});
  ASSERT_EQ(final_view.status, 200) << final_view;
  EXPECT_EQ(final_view.Str("status"), "delivered");
  EXPECT_EQ(final_view.Version(), 4);
  const auto infos = api.Get("/v1/admin/projections");
  for (const auto& value : infos.Object().at("items").as_array()) {
    EXPECT_EQ(value.as_object().at("dead_letters").as_int64(), 0);
  }
}

}  // namespace
}  // namespace shopcqrs::blackbox
