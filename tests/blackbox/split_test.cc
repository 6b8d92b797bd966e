// `shopcqrs up --split` (API.md "Process roles"): each role in a supervised process of its own,
// each on its own address, working together as one service.

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <signal.h>

#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "adapters/http/route_table.h"
#include "blackbox/fault_support.h"
#include "support/eventually.h"

namespace shopcqrs::blackbox {
namespace {

using namespace std::chrono_literals;
using test_support::Eventually;

struct RoleServed {
  std::string role;
  Endpoint endpoint;
  pid_t pid = 0;
};

// The "shopcqrs serving http://HOST:PORT (roles R, pid N)" lines of `text`, in order.
std::vector<RoleServed> ServingLines(const std::string& text) {
  std::vector<RoleServed> roles;
  std::istringstream in(text);
  std::string line;
  constexpr std::string_view kPrefix = "shopcqrs serving http://";
  while (std::getline(in, line)) {
    if (!line.starts_with(kPrefix)) continue;
    const std::string rest = line.substr(kPrefix.size());
    const std::string address = rest.substr(0, rest.find(' '));
    const auto role_at = rest.find("(roles ");
    const auto pid_at = rest.find(", pid ");
    if (role_at == std::string::npos || pid_at == std::string::npos) continue;
    const std::string role = rest.substr(role_at + 7, pid_at - role_at - 7);
    const auto colon = address.rfind(':');
    roles.push_back({role,
                     Endpoint{address.substr(0, colon),
                              static_cast<unsigned short>(std::stoi(address.substr(colon + 1)))},
                     static_cast<pid_t>(std::stol(rest.substr(pid_at + 6)))});
  }
  return roles;
}

// Requests to every role process carry the admin token `up` wrote.
void UseAdminToken(const fault::UpInstance& up, const std::vector<RoleServed>& served) {
  std::string token = ReadFile(up.data_dir() + "/admin-token");
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  for (const auto& line : served) {
    shopcqrs::testing::DefaultCredentials::Set(line.endpoint.port, "Bearer " + token);
  }
}

ApiResponse GetWithToken(Api& api, const std::string& target, const std::string& token) {
  return api.Get(target, {{"X-Consistency-Token", token}, {"X-Consistency-Wait-Ms", "10000"}});
}

TEST(SplitTest, UpSplitRunsEachRoleInASupervisedProcessOfItsOwn) {
  fault::UpInstance up("shopcqrs-split", {"--split", "--query-processes", "2"});
  up.Start();  // its first serving line is the command process's, on up's --listen port
  std::vector<RoleServed> served_lines;
  ASSERT_TRUE(Eventually(
      [&] {
        served_lines = ServingLines(ReadFile(up.stdout_path()));
        return served_lines.size() == 5;
      },
      30s, 50ms))
      << ReadFile(up.stdout_path());
  UseAdminToken(up, served_lines);
  // command on P, the query processes on P+1 and P+2, relay on P+3, projector on P+4.
  std::vector<std::string> sequence;
  for (std::size_t i = 0; i < served_lines.size(); ++i) {
    sequence.push_back(served_lines[i].role);
    EXPECT_EQ(served_lines[i].endpoint.port, up.port() + i) << served_lines[i].role;
  }
  EXPECT_EQ(sequence,
            (std::vector<std::string>{"command", "query", "query", "relay", "projector"}));
  std::map<std::string, RoleServed> roles;
  for (const auto& line : served_lines) roles.emplace(line.role, line);
  for (const RoleServed& served : served_lines) {
    EXPECT_NE(served.pid, up.pid()) << served.role;
    EXPECT_NE(Cmdline(served.pid).find("--role " + served.role), std::string::npos) << served.role;
    Api api(served.endpoint);
    EXPECT_TRUE(Eventually([&] { return api.Get("/readyz").status == 200; }, 30s, 50ms))
        << served.role << ": " << api.Get("/readyz");
  }

  // Each process describes exactly the routes of its roles (GET /openapi.json, without a token).
  for (const RoleServed& served : served_lines) {
    Api api(served.endpoint);
    const auto document = api.Get("/openapi.json", {{"Authorization", ""}});
    ASSERT_EQ(document.status, 200) << served.role << ": " << document;
    std::set<std::string> described;
    for (const auto& [path, item] : document.Object().at("paths").as_object()) {
      for (const auto& [method, operation] : item.as_object()) {
        std::string upper(method);
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        described.insert(upper + " " + std::string(path));
      }
    }
    using adapters::http::ServingRole;
    std::set<std::string> expected;
    for (const auto& route : adapters::http::RouteTable()) {
      const bool serves = route.role == ServingRole::kEvery ||
                          (route.role == ServingRole::kCommand && served.role == "command") ||
                          (route.role == ServingRole::kQuery && served.role == "query") ||
                          (route.role == ServingRole::kProjector &&
                           (served.role == "projector" || served.role == "relay"));
      if (serves) expected.insert(std::string(route.method) + " " + std::string(route.pattern));
    }
    EXPECT_EQ(described, expected) << served.role;
  }

  Api commands(roles["command"].endpoint);
  Api queries(roles["query"].endpoint);
  const Customer customer = CreateCustomer(commands, "Split Customer");
  const Product product = CreateProduct(commands, 300, 10);
  const auto order = PlaceOrder(commands, customer.id, {{product.id, 1}});
  ASSERT_EQ(order.status, 201) << order;
  EXPECT_EQ(
      GetWithToken(queries, "/v1/orders/" + order.Id(), order.Str("consistency_token")).status,
      200);
  EXPECT_TRUE(
      IsProblem(queries.Post("/v1/orders", std::string_view("{}")), 404, "route_not_served"));
  EXPECT_TRUE(IsProblem(commands.Get("/v1/orders/" + order.Id()), 404, "route_not_served"));

  // A projector that dies is started again on its address, and carries on where it stopped.
  ASSERT_EQ(::kill(roles["projector"].pid, SIGKILL), 0);
  const auto paid = Pay(commands, order.Id(), 300);
  ASSERT_EQ(paid.status, 200) << paid;
  const auto got = GetWithToken(queries, "/v1/orders/" + order.Id(), paid.Str("consistency_token"));
  ASSERT_EQ(got.status, 200) << got << ReadFile(up.stdout_path());
  EXPECT_EQ(got.Str("status"), "paid");
  Api projector(roles["projector"].endpoint);
  EXPECT_TRUE(Eventually([&] { return projector.Get("/readyz").status == 200; }, 30s, 50ms));
  const std::string log = ReadFile(up.stdout_path()) + ReadFile(up.stderr_path());
  EXPECT_NE(log.find("the projector process"), std::string::npos) << log;

  // SIGTERM stops every role process, then the servers.
  const auto status = up.Stop();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->Success()) << status->Describe();
  EXPECT_TRUE(up.Leftovers().empty());
}

// The names of the items of /v1/admin/projections.
std::set<std::string> ProjectionNames(Api& api) {
  std::set<std::string> names;
  const auto r = api.Get("/v1/admin/projections");
  if (r.status != 200) return names;
  for (const auto& item : r.Object().at("items").as_array()) {
    names.insert(std::string(item.at("name").as_string()));
  }
  return names;
}

// --read-servers 2: a second read PostgreSQL, fed by a projector process of its own; the query
// processes are spread over the two, and each answers tokens from its own read server.
TEST(SplitTest, UpSplitFeedsEachReadServerFromAProjectorOfItsOwn) {
  fault::UpInstance up("shopcqrs-split2",
                       {"--split", "--query-processes", "2", "--read-servers", "2"});
  up.Start();
  std::vector<RoleServed> served;
  ASSERT_TRUE(Eventually(
      [&] {
        served = ServingLines(ReadFile(up.stdout_path()));
        return served.size() == 6;
      },
      30s, 50ms))
      << ReadFile(up.stdout_path());
  UseAdminToken(up, served);
  std::vector<RoleServed> queries, projectors;
  for (const auto& line : served) {
    if (line.role == "query") queries.push_back(line);
    if (line.role == "projector") projectors.push_back(line);
  }
  ASSERT_EQ(queries.size(), 2u);
  ASSERT_EQ(projectors.size(), 2u);
  const std::string out = ReadFile(up.stdout_path());
  EXPECT_NE(out.find("read PostgreSQL 2: "), std::string::npos) << out;
  EXPECT_NE(out.find(fmt::format("query http://127.0.0.1:{} uses read PostgreSQL 2",
                                 queries[1].endpoint.port)),
            std::string::npos)
      << out;
  // The first projector feeds read server 1 and Redis, the second only read server 2.
  Api first(projectors[0].endpoint), second(projectors[1].endpoint);
  EXPECT_TRUE(Eventually(
      [&] {
        return ProjectionNames(first) == std::set<std::string>{"read_pg", "search", "redis"};
      },
      30s, 50ms));
  EXPECT_TRUE(Eventually(
      [&] {
        return ProjectionNames(second) == std::set<std::string>{"read_pg", "search"};
      },
      30s, 50ms));

  Api commands(served.front().endpoint);
  const Customer customer = CreateCustomer(commands, "Two Servers");
  const auto changed = commands.Patch("/v1/customers/" + customer.id,
                                      boost::json::object{{"name", "Two Servers Renamed"}});
  ASSERT_EQ(changed.status, 200) << changed;
  for (const auto& query : queries) {
    Api api(query.endpoint);
    const auto got =
        GetWithToken(api, "/v1/customers/" + customer.id, changed.Str("consistency_token"));
    ASSERT_EQ(got.status, 200) << got << " from " << query.endpoint.port;
    EXPECT_EQ(got.Str("name"), "Two Servers Renamed");
  }
  const auto status = up.Stop();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->Success()) << status->Describe();
  EXPECT_TRUE(up.Leftovers().empty());
}

}  // namespace
}  // namespace shopcqrs::blackbox
