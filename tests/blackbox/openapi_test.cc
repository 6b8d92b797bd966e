// GET /openapi.json of the running service (API.md "Description and dashboard"): open without a
// token, OpenAPI 3.1.0, and describing exactly the routes of the route table (`shopcqrs up` runs
// every role). The answers of every black-box test are validated against this document by
// the blackbox_openapi test (tests/blackbox/openapi_check.py).

#include <algorithm>
#include <cctype>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "adapters/http/route_table.h"
#include "blackbox/service_fixture.h"

namespace shopcqrs::blackbox {
namespace {

class ServedOpenApiTest : public BlackboxTest {};

TEST_F(ServedOpenApiTest, IsOpenAndDescribesEveryRouteTheServiceServes) {
  const ApiResponse r = api().Get("/openapi.json", {{"Authorization", ""}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_TRUE(r.Header("Content-Type").starts_with("application/json")) << r.Header("Content-Type");
  ASSERT_TRUE(r.IsObject()) << r.body.substr(0, 200);
  EXPECT_EQ(r.Str("openapi"), "3.1.0");

  std::set<std::string> described;
  for (const auto& [path, item] : r.Object().at("paths").as_object()) {
    for (const auto& [method, operation] : item.as_object()) {
      std::string upper(method);
      std::transform(upper.begin(), upper.end(), upper.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      described.insert(upper + " " + std::string(path));
    }
  }
  std::set<std::string> table;
  for (const auto& route : adapters::http::RouteTable()) {
    table.insert(std::string(route.method) + " " + std::string(route.pattern));
  }
  EXPECT_EQ(described, table);

  // The same with any credential, and never rate-limited.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(api().Get("/openapi.json", {{"Authorization", "Bearer not-a-token"}}).status, 200);
    EXPECT_EQ(api().Get("/openapi.json").body, r.body);
  }
}

}  // namespace
}  // namespace shopcqrs::blackbox
