#include "adapters/http/route_table.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <set>

#include "adapters/http/admin_routes.h"
#include "adapters/http/command_routes.h"
#include "adapters/http/openapi.h"
#include "adapters/http/ops_routes.h"
#include "adapters/http/query_routes.h"
#include "application/command_service.h"
#include "infra/http/router.h"
#include "infra/metrics/registry.h"
#include "support/empty_read_model.h"
#include "support/in_memory_write_store.h"

namespace shopcqrs::adapters::http {
namespace {

using namespace infra::http;
using RouteSet = std::set<std::pair<std::string, std::string>>;

RouteSet TableRoutes(ServedRoles served) {
  RouteSet routes;
  for (const RouteSpec& route : RouteTable()) {
    if (served.Serves(route.role)) routes.emplace(route.method, route.pattern);
  }
  return routes;
}

class RouteTableTest : public ::testing::Test {
 protected:
  RouteTableTest() : service_(store_, clock_, ids_) {}

  // Registers the routes of `served` as a process would, then the route_not_served answers.
  void Serve(ServedRoles served) {
    if (served.command) RegisterCommandRoutes(router_, service_, registry_);
    if (served.query) RegisterQueryRoutes(router_, model_, tokens_, progress_, registry_);
    if (served.projector)
      RegisterAdminRoutes(router_, [] { return std::vector<ProjectionInfo>{}; });
    RegisterOpsRoutes(router_, registry_, {});
    RegisterOpenApiRoute(router_, served);
  }

  Response Call(std::string method, std::string target) {
    Request request;
    request.method = std::move(method);
    request.SetTarget(std::move(target));
    request.request_id = "test";
    return router_.Dispatch(request);
  }

  shopcqrs::testing::InMemoryWriteStore store_;
  shopcqrs::testing::TestClock clock_;
  shopcqrs::testing::CountingIds ids_;
  app::CommandService service_;
  test_support::EmptyReadModel model_;
  cqrs::ConsistencyTokens tokens_;
  cqrs::ProgressTracker progress_;
  infra::metrics::Registry registry_;
  Router router_;
};

TEST_F(RouteTableTest, NamesAndRoutesAreUnique) {
  std::set<std::string_view> names;
  RouteSet routes;
  for (const RouteSpec& route : RouteTable()) {
    EXPECT_TRUE(names.insert(route.name).second) << route.name;
    EXPECT_TRUE(routes.emplace(route.method, route.pattern).second) << route.pattern;
  }
}

TEST_F(RouteTableTest, AProcessOfEveryRoleRegistersExactlyTheTable) {
  Serve({.command = true, .query = true, .projector = true});
  const auto added = router_.Routes();
  EXPECT_EQ(RouteSet(added.begin(), added.end()),
            TableRoutes({.command = true, .query = true, .projector = true}));
  EXPECT_EQ(added.size(), RouteTable().size());
}

TEST_F(RouteTableTest, RoutesOfRolesNotRunAnswerRouteNotServed) {
  Serve({.query = true});
  RegisterRoutesNotServed(router_, {.query = true});
  const auto added = router_.Routes();
  EXPECT_EQ(RouteSet(added.begin(), added.end()),
            TableRoutes({.command = true, .query = true, .projector = true}));

  for (const auto& [method, target, role] :
       {std::tuple{"POST", "/v1/orders", "command"},
        std::tuple{"POST", "/v1/orders/3f2504e0-4f89-41d3-9a0c-0305e82c3301/pay", "command"},
        std::tuple{"PATCH", "/v1/customers/3f2504e0-4f89-41d3-9a0c-0305e82c3301", "command"},
        std::tuple{"GET", "/v1/admin/projections", "projector"}}) {
    const Response response = Call(method, target);
    EXPECT_EQ(response.status, 404) << target;
    const auto body = boost::json::parse(response.body).as_object();
    EXPECT_EQ(body.at("code").as_string(), "route_not_served") << target;
    EXPECT_NE(std::string(body.at("detail").as_string()).find(role), std::string::npos);
  }
  // Served routes answer as before: an unknown order is not_found, health is ok.
  EXPECT_EQ(boost::json::parse(Call("GET", "/v1/orders/3f2504e0-4f89-41d3-9a0c-0305e82c3301").body)
                .at("code")
                .as_string(),
            "not_found");
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
  // A path no role serves is still plain not_found; another method on a served path is 405.
  EXPECT_EQ(boost::json::parse(Call("GET", "/v1/nothing").body).at("code").as_string(),
            "not_found");
  EXPECT_EQ(Call("DELETE", "/v1/orders").status, 405);
}

TEST_F(RouteTableTest, ACommandProcessAnswersQueriesWithRouteNotServed) {
  Serve({.command = true});
  RegisterRoutesNotServed(router_, {.command = true});
  for (const RouteSpec& route : RouteTable()) {
    if (route.role != ServingRole::kQuery) continue;
    std::string target(route.pattern);
    if (auto at = target.find("{id}"); at != std::string::npos) {
      target.replace(at, 4, "3f2504e0-4f89-41d3-9a0c-0305e82c3301");
    }
    const Response response = Call(std::string(route.method), target);
    EXPECT_EQ(response.status, 404) << target;
    EXPECT_EQ(boost::json::parse(response.body).at("code").as_string(), "route_not_served");
  }
}

}  // namespace
}  // namespace shopcqrs::adapters::http
