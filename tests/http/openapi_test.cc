#include "adapters/http/openapi.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <set>
#include <string>

#include <boost/json.hpp>

#include "adapters/http/admin_routes.h"
#include "adapters/http/auth_policy.h"
#include "adapters/http/command_routes.h"
#include "adapters/http/ops_routes.h"
#include "adapters/http/query_routes.h"
#include "adapters/http/route_table.h"
#include "application/command_service.h"
#include "infra/http/router.h"
#include "infra/metrics/registry.h"
#include "support/empty_read_model.h"
#include "support/in_memory_write_store.h"

namespace shopcqrs::adapters::http {
namespace {

using namespace infra::http;
namespace json = boost::json;
using RouteSet = std::set<std::pair<std::string, std::string>>;

// The (METHOD, path) operations of a document.
RouteSet Operations(const json::object& document) {
  RouteSet operations;
  for (const auto& [path, item] : document.at("paths").as_object()) {
    for (const auto& [method, operation] : item.as_object()) {
      std::string upper(method);
      std::transform(upper.begin(), upper.end(), upper.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      operations.emplace(upper, std::string(path));
    }
  }
  return operations;
}

// Resolves a local JSON pointer ("#/components/schemas/Uuid"); nullptr when it names nothing.
const json::value* Resolve(const json::value& document, std::string_view ref) {
  if (!ref.starts_with("#/")) return nullptr;
  boost::system::error_code ec;
  const json::value* found = document.find_pointer(ref.substr(1), ec);
  return ec ? nullptr : found;
}

// Calls `visit(value, where)` for every value under `value`.
void Walk(const json::value& value, const std::string& where,
          const std::function<void(const json::value&, const std::string&)>& visit) {
  visit(value, where);
  if (value.is_object()) {
    for (const auto& [key, child] : value.as_object()) {
      Walk(child, where + "/" + std::string(key), visit);
    }
  } else if (value.is_array()) {
    std::size_t i = 0;
    for (const auto& child : value.as_array())
      Walk(child, where + "/" + std::to_string(i++), visit);
  }
}

class OpenApiTest : public ::testing::Test {
 protected:
  OpenApiTest() : service_(store_, clock_, ids_) {}

  // Registers the routes of `served` as a process does (apps/shopcqrs/serve.cc): the routes of
  // its roles, then those of every process, /openapi.json among them.
  void Serve(ServedRoles served) {
    if (served.command) RegisterCommandRoutes(router_, service_, registry_);
    if (served.query) RegisterQueryRoutes(router_, model_, tokens_, progress_, registry_);
    if (served.projector) {
      RegisterAdminRoutes(router_, [] { return std::vector<ProjectionInfo>{}; });
    }
    RegisterOpsRoutes(router_, registry_, {});
    RegisterOpenApiRoute(router_, served);
  }

  Response Get(std::string target, std::vector<std::pair<std::string, std::string>> headers = {}) {
    Request request;
    request.method = "GET";
    request.SetTarget(std::move(target));
    request.headers = std::move(headers);
    request.request_id = "test";
    request.client_address = "10.0.0.1";
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

TEST_F(OpenApiTest, EveryRouteOfTheTableIsDescribed) {
  EXPECT_EQ(UndescribedRoutes(), std::vector<std::string_view>{})
      << "describe these routes in src/adapters/http/openapi.cc";
  EXPECT_EQ(DescriptionsWithoutRoute(), std::vector<std::string_view>{})
      << "descriptions of routes the table does not have";
  EXPECT_EQ(CodesWithoutMeaning(), std::vector<std::string>{})
      << "give these problem codes a meaning in openapi.cc";
}

TEST_F(OpenApiTest, TheDocumentHasExactlyTheRoutesTheRouterServesForEachRoleCombination) {
  for (const ServedRoles served :
       {ServedRoles{.command = true}, ServedRoles{.query = true}, ServedRoles{.projector = true},
        ServedRoles{}, ServedRoles{.command = true, .query = true},
        ServedRoles{.command = true, .query = true, .projector = true}}) {
    router_ = Router();
    Serve(served);
    const auto added = router_.Routes();
    const RouteSet routes(added.begin(), added.end());
    const Response answer = Get("/openapi.json");
    ASSERT_EQ(answer.status, 200);
    EXPECT_EQ(answer.content_type, "application/json");
    const json::object document = json::parse(answer.body).as_object();
    const std::string roles = std::string(served.command ? "command " : "") +
                              (served.query ? "query " : "") +
                              (served.projector ? "projector" : "");
    EXPECT_EQ(Operations(document), routes) << "roles: " << roles;
    EXPECT_EQ(document, OpenApiDocument(served)) << roles;
    // Nothing of a role not served; what every process serves, always.
    for (const RouteSpec& route : RouteTable()) {
      EXPECT_EQ(routes.contains({std::string(route.method), std::string(route.pattern)}),
                served.Serves(route.role))
          << route.name << " with roles " << roles;
    }
  }
}

TEST_F(OpenApiTest, TheDocumentIsOpenApi31AndEveryRefResolves) {
  const json::value document = json::parse(
      json::serialize(OpenApiDocument({.command = true, .query = true, .projector = true})));
  ASSERT_TRUE(document.is_object());
  EXPECT_EQ(document.at("openapi"), "3.1.0");
  EXPECT_EQ(document.at("info").at("title"), "shopcqrs");
  EXPECT_EQ(document.at("components").at("securitySchemes").at("bearer").at("scheme"), "bearer");
  EXPECT_EQ(document.at("components").at("securitySchemes").at("bearer").at("bearerFormat"), "JWT");
  int refs = 0;
  Walk(document, "#", [&](const json::value& value, const std::string& where) {
    if (!value.is_object()) return;
    const auto* ref = value.as_object().if_contains("$ref");
    if (ref == nullptr) return;
    ASSERT_TRUE(ref->is_string()) << where;
    EXPECT_NE(Resolve(document, ref->as_string()), nullptr) << where << ": " << ref->as_string();
    ++refs;
  });
  EXPECT_GT(refs, 100);
  // Every schema, parameter, response and header of the components is used.
  const std::string text = json::serialize(document);
  for (const char* section : {"schemas", "responses", "parameters", "headers"}) {
    for (const auto& [name, value] : document.at("components").at(section).as_object()) {
      const std::string ref =
          std::string("\"#/components/") + section + "/" + std::string(name) + "\"";
      EXPECT_NE(text.find(ref), std::string::npos) << section << "/" << name << " is unused";
    }
  }
}

TEST_F(OpenApiTest, EveryOperationNamesItsSecurityAnswersAndParameters) {
  const json::object document =
      OpenApiDocument({.command = true, .query = true, .projector = true});
  std::set<std::string> ids;
  for (const RouteSpec& route : RouteTable()) {
    std::string method(route.method);
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const json::object& op = document.at("paths").at(route.pattern).at(method).as_object();
    EXPECT_TRUE(ids.insert(std::string(op.at("operationId").as_string())).second);
    EXPECT_EQ(std::string_view(op.at("operationId").as_string()), route.name);
    const json::object& responses = op.at("responses").as_object();
    EXPECT_TRUE(responses.contains("500")) << route.name;
    EXPECT_TRUE(responses.contains("400")) << route.name;
    if (route.access == Access::kOpen) {
      EXPECT_EQ(op.at("security"), json::array()) << route.name;
      EXPECT_FALSE(responses.contains("401")) << route.name;
    } else {
      EXPECT_EQ(op.at("security"), json::parse(R"([{"bearer":[]}])")) << route.name;
      EXPECT_TRUE(responses.contains("401")) << route.name;
      EXPECT_TRUE(responses.contains("403")) << route.name;
    }
    // One success answer, with a schema.
    int successes = 0;
    for (const auto& [status, answer] : responses) {
      if (status.starts_with("2")) {
        ++successes;
        if (status != "204") {
          EXPECT_TRUE(answer.at("content").is_object()) << route.name;
        }
      }
    }
    EXPECT_EQ(successes, 1) << route.name;
    // Path parameters: each {name} of the pattern.
    std::set<std::string> path_params;
    for (const auto& p : op.at("parameters").as_array()) {
      if (p.as_object().contains("in") && p.at("in") == "path") {
        path_params.insert(std::string(p.at("name").as_string()));
      }
    }
    EXPECT_EQ(path_params.contains("id"), route.pattern.find("{id}") != std::string_view::npos)
        << route.name;
  }
  // Spot checks of what the contract says.
  auto op = [&](const char* path, const char* method) -> const json::object& {
    return document.at("paths").at(path).at(method).as_object();
  };
  auto has_param = [&](const json::object& o, std::string_view ref) {
    for (const auto& p : o.at("parameters").as_array()) {
      const auto* r = p.as_object().if_contains("$ref");
      if (r && r->as_string().ends_with(ref)) return true;
      const auto* n = p.as_object().if_contains("name");
      if (n && n->is_string() && n->get_string() == ref) return true;
    }
    return false;
  };
  EXPECT_TRUE(has_param(op("/v1/orders/{id}/pay", "post"), "Idempotency-Key"));
  EXPECT_TRUE(has_param(op("/v1/orders/{id}/pay", "post"), "If-Match"));
  EXPECT_FALSE(has_param(op("/v1/orders", "post"), "If-Match"));
  EXPECT_TRUE(has_param(op("/v1/orders/{id}", "get"), "X-Consistency-Token"));
  EXPECT_TRUE(has_param(op("/v1/orders/{id}", "get"), "X-Consistency-Wait-Ms"));
  EXPECT_TRUE(has_param(op("/v1/orders", "get"), "cursor"));
  EXPECT_TRUE(has_param(op("/v1/stats/daily-sales", "get"), "from"));
  EXPECT_TRUE(op("/v1/orders/{id}/pay", "post").at("responses").as_object().contains("412"));
  EXPECT_TRUE(op("/v1/orders/{id}/pay", "post").at("responses").as_object().contains("422"));
  EXPECT_TRUE(op("/v1/orders/{id}", "get").at("responses").as_object().contains("503"));
  EXPECT_TRUE(op("/v1/customers", "post").at("responses").as_object().contains("429"));
  EXPECT_TRUE(op("/v1/customers", "post").at("responses").as_object().contains("409"));
  EXPECT_EQ(op("/openapi.json", "get").at("security"), json::array());
}

// The service's own answers are closed: an object schema with properties forbids others, and no
// schema accepts everything.
TEST_F(OpenApiTest, AnswerSchemasAreClosed) {
  const json::value document = OpenApiDocument({.command = true, .query = true, .projector = true});
  // The schemas reachable from the answers (not from request bodies, which stay open).
  std::set<std::string> reached;
  std::function<void(const json::value&)> reach = [&](const json::value& value) {
    Walk(value, "", [&](const json::value& v, const std::string&) {
      if (!v.is_object()) return;
      const auto* ref = v.as_object().if_contains("$ref");
      if (ref == nullptr || !ref->as_string().starts_with("#/components/")) return;
      const std::string name(ref->as_string());
      if (!reached.insert(name).second) return;
      reach(*Resolve(document, name));
    });
  };
  for (const auto& [path, item] : document.at("paths").as_object()) {
    for (const auto& [method, op] : item.as_object()) reach(op.at("responses"));
  }
  EXPECT_TRUE(reached.contains("#/components/schemas/OrderView"));
  EXPECT_FALSE(reached.contains("#/components/schemas/PlaceOrderRequest"));
  int closed = 0;
  auto check = [&](const json::value& root, const std::string& name) {
    Walk(root, name, [&](const json::value& v, const std::string& where) {
      if (!v.is_object()) return;
      const json::object& schema = v.as_object();
      if (schema.contains("properties") && !where.ends_with("/properties")) {
        EXPECT_EQ(schema.if_contains("additionalProperties") != nullptr &&
                      *schema.if_contains("additionalProperties") == false,
                  true)
            << where << " is not closed";
        ++closed;
      }
    });
  };
  for (const std::string& name : reached) {
    const json::value& target = *Resolve(document, name);
    if (name.starts_with("#/components/schemas/")) check(target, name);
    if (name.starts_with("#/components/responses/")) {
      for (const auto& [media, content] : target.at("content").as_object()) {
        check(content.at("schema"), name + "/" + std::string(media));
      }
    }
  }
  EXPECT_GT(closed, 30);
  // No schema is {} (it would accept anything).
  Walk(document, "#", [&](const json::value& v, const std::string& where) {
    if (where.ends_with("/schema") || where.find("/properties/") != std::string::npos ||
        where.ends_with("/items")) {
      EXPECT_FALSE(v.is_object() && v.as_object().empty()) << where << " accepts anything";
    }
  });
}

TEST_F(OpenApiTest, ProblemAnswersNameTheirStatusAndCodes) {
  const json::value document = OpenApiDocument({.command = true});
  const json::value& conflict =
      document.at("paths").at("/v1/customers").at("post").at("responses").at("409");
  const json::value* response = Resolve(document, conflict.at("$ref").as_string());
  ASSERT_NE(response, nullptr);
  const json::value& schema = response->at("content").at("application/problem+json").at("schema");
  EXPECT_EQ(schema.at("properties").at("status").at("const"), 409);
  EXPECT_EQ(schema.at("properties").at("code").at("enum"), json::parse(R"(["email_taken"])"));
  EXPECT_EQ(schema.at("additionalProperties"), false);
  EXPECT_TRUE(response->at("headers").as_object().contains("X-Request-Id"));
  const json::value* unauthorized = Resolve(document, document.at("paths")
                                                          .at("/v1/products")
                                                          .at("post")
                                                          .at("responses")
                                                          .at("401")
                                                          .at("$ref")
                                                          .as_string());
  ASSERT_NE(unauthorized, nullptr);
  EXPECT_TRUE(unauthorized->at("headers").as_object().contains("WWW-Authenticate"));
}

TEST_F(OpenApiTest, TheDocumentIsOpenWithoutAToken) {
  auto keys = std::make_shared<const infra::jwt::KeyRing>(
      std::vector<infra::jwt::Key>{{"k1", "0123456789abcdef0123456789abcdef"}});
  Authorizer::Options options;
  options.keys = keys;
  options.anonymous = {.per_second = 0.0001, .burst = 1};
  Authorizer auth(options);
  router_.SetGuard(auth.Guard());
  Serve({.query = true});
  // Never rate-limited either (every process serves it, as /healthz).
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Get("/openapi.json").status, 200);
  EXPECT_EQ(Get("/openapi.json", {{"Authorization", "Bearer nonsense"}}).status, 200);
  EXPECT_EQ(Get("/v1/orders").status, 401);
}

}  // namespace
}  // namespace shopcqrs::adapters::http
