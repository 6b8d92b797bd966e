#include "infra/http/router.h"

#include <gtest/gtest.h>

#include <ostream>

#include <boost/json/parse.hpp>

namespace shopcqrs::infra::http {
namespace {

Request MakeRequest(std::string method, std::string target) {
  Request request;
  request.method = std::move(method);
  request.SetTarget(std::move(target));
  return request;
}

Handler Echo(std::string name) {
  return [name](const Request& request) {
    std::string body = name;
    for (const auto& [key, value] : request.path_params) body += "|" + key + "=" + value;
    return Response::Text(200, body, "text/plain");
  };
}

std::string Code(const Response& response) {
  return std::string(boost::json::parse(response.body).at("code").as_string());
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("GET", "/v1/orders", Echo("list"));
    router_.Add("POST", "/v1/orders", Echo("place"));
    router_.Add("GET", "/v1/orders/{id}", Echo("get"));
    router_.Add("POST", "/v1/orders/{id}/pay", Echo("pay"));
    router_.Add("GET", "/v1/products/{id}", Echo("product"));
    router_.Add("GET", "/v1/products/top", Echo("top"));
    router_.Add("GET", "/", Echo("root"));
  }
  Response Dispatch(std::string method, std::string target) {
    Request request = MakeRequest(std::move(method), std::move(target));
    return router_.Dispatch(request);
  }
  Router router_;
};

// A request and the handler it reaches (each handler echoes its name and path parameters).
struct Route {
  const char* method;
  const char* target;
  const char* reached;
};

void PrintTo(const Route& route, std::ostream* os) { *os << route.method << " " << route.target; }

class RouterDispatchTest : public RouterTest, public ::testing::WithParamInterface<Route> {};

TEST_P(RouterDispatchTest, ReachesItsHandler) {
  EXPECT_EQ(Dispatch(GetParam().method, GetParam().target).body, GetParam().reached);
}

INSTANTIATE_TEST_SUITE_P(
    Routes, RouterDispatchTest,
    ::testing::Values(
        // Literal and parameter routes.
        Route{"GET", "/v1/orders", "list"}, Route{"POST", "/v1/orders", "place"},
        Route{"GET", "/v1/orders/abc", "get|id=abc"},
        Route{"POST", "/v1/orders/abc/pay", "pay|id=abc"}, Route{"GET", "/", "root"},
        // The query string is not part of the path.
        Route{"GET", "/v1/orders?limit=5&status=paid", "list"},
        Route{"GET", "/v1/orders/x?y=1", "get|id=x"},
        // Literal segments beat parameters.
        Route{"GET", "/v1/products/top", "top"},
        Route{"GET", "/v1/products/tops", "product|id=tops"},
        // Path parameters are percent-decoded; an encoded literal still matches its route.
        Route{"GET", "/v1/orders/a%20b%2Fc", "get|id=a b/c"},
        Route{"GET", "/v1/%6Frders", "list"}));

TEST_F(RouterTest, InvalidPercentEncodingIs404InPathsAnd400InQueries) {
  EXPECT_EQ(Dispatch("GET", "/v1/orders/a%zz").status, 404);
  const Response bad_query = Dispatch("GET", "/v1/orders?limit=%zz");
  EXPECT_EQ(bad_query.status, 400);
  EXPECT_EQ(Code(bad_query), "validation_failed");
  EXPECT_EQ(Dispatch("GET", "/v1/orders?limit=5").body, "list");
}

TEST_F(RouterTest, UnknownPathIs404NotFound) {
  for (const char* target : {"/nope", "/v1/orders/", "/v1/orders/a/b", "//v1/orders",
                             "/v1/orders//pay", "v1/orders", "*", ""}) {
    const Response response = Dispatch("GET", target);
    EXPECT_EQ(response.status, 404) << target;
    EXPECT_EQ(response.content_type, "application/problem+json");
    EXPECT_EQ(Code(response), "not_found") << target;
  }
}

TEST_F(RouterTest, WrongMethodIs405WithAllow) {
  Response response = Dispatch("DELETE", "/v1/orders");
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(Code(response), "method_not_allowed");
  ASSERT_TRUE(response.Header("Allow"));
  EXPECT_EQ(*response.Header("allow"), "GET, POST, HEAD");

  response = Dispatch("GET", "/v1/orders/x/pay");
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(*response.Header("Allow"), "POST");

  // Allow names the methods of every pattern matching the path.
  response = Dispatch("POST", "/v1/products/top");
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(*response.Header("Allow"), "GET, HEAD");
}

TEST_F(RouterTest, MethodsAreCaseSensitive) {
  EXPECT_EQ(Dispatch("get", "/v1/orders").status, 405);
}

TEST_F(RouterTest, HeadFallsBackToGet) {
  EXPECT_EQ(Dispatch("HEAD", "/v1/orders").body, "list");
  EXPECT_EQ(Dispatch("HEAD", "/v1/orders/x/pay").status, 405);
}

TEST_F(RouterTest, RejectsDuplicateAndMalformedRoutes) {
  EXPECT_THROW(router_.Add("GET", "/v1/orders", Echo("again")), std::invalid_argument);
  EXPECT_THROW(router_.Add("GET", "/v1/orders/{order}", Echo("renamed")), std::invalid_argument);
  EXPECT_THROW(router_.Add("GET", "no-slash", Echo("x")), std::invalid_argument);
  EXPECT_THROW(router_.Add("GET", "/a/{}", Echo("x")), std::invalid_argument);
  EXPECT_THROW(router_.Add("GET", "/a/b{c}", Echo("x")), std::invalid_argument);
  EXPECT_THROW(router_.Add("GET", "/a", Handler()), std::invalid_argument);
}

TEST(QueryTest, ParsesAndPercentDecodes) {
  const auto params = ParseQuery("q=red+shoes&email=a%40b.c&empty=&flag&x=1&x=2&&caf%C3%A9=%2B");
  ASSERT_TRUE(params);
  EXPECT_EQ(params->at("q"), "red shoes");
  EXPECT_EQ(params->at("email"), "a@b.c");
  EXPECT_EQ(params->at("empty"), "");
  EXPECT_EQ(params->at("flag"), "");
  EXPECT_EQ(params->at("x"), "1");  // first occurrence wins
  EXPECT_EQ(params->at("caf\xC3\xA9"), "+");
  EXPECT_EQ(params->size(), 6u);
}

// Found by tests/fuzz/router_fuzz: Boost.URL 1.81's parse_query measured the query with strlen,
// so a query that is not the end of a NUL-terminated string read past it (ASan: heap overflow)
// and took the bytes after it as part of the last value.
TEST(QueryTest, ParsesAQueryThatIsPartOfALargerBuffer) {
  const std::string buffer = "a=1&b=2 and more text";
  const auto params = ParseQuery(std::string_view(buffer).substr(0, 7));
  ASSERT_TRUE(params);
  EXPECT_EQ(params->size(), 2u);
  EXPECT_EQ(params->at("a"), "1");
  EXPECT_EQ(params->at("b"), "2");
  const std::string with_nul("q=x\0y", 5);
  EXPECT_FALSE(ParseQuery(with_nul));  // a NUL byte is no query character
}

TEST(QueryTest, InvalidPercentEncodingIsRefused) {
  for (const char* query : {"%zz=1", "q=%4", "q=%", "q=a%2"}) {
    EXPECT_FALSE(ParseQuery(query)) << query;
  }
  Request request;
  request.SetTarget("/v1/search/orders?q=%zz");
  EXPECT_TRUE(request.malformed_query);
  EXPECT_TRUE(request.query.empty());
  request.SetTarget("/v1/search/orders?q=ok");
  EXPECT_FALSE(request.malformed_query);
}

TEST(QueryTest, RequestSetTargetSplitsPathAndQuery) {
  Request request;
  request.SetTarget("/v1/search/orders?q=caf%C3%A9&limit=5");
  EXPECT_EQ(request.path, "/v1/search/orders");
  EXPECT_EQ(request.Query("q"), "caf\xC3\xA9");
  EXPECT_EQ(request.Query("limit"), "5");
  EXPECT_FALSE(request.Query("cursor"));
}

TEST(QueryTest, PercentDecodeKeepsPlusInPaths) {
  EXPECT_EQ(PercentDecode("a+b%2B", false), "a+b+");
  EXPECT_EQ(PercentDecode("a+b%2B", true), "a b+");
  EXPECT_EQ(PercentDecode("%41", true), "A");
  EXPECT_FALSE(PercentDecode("%", true));
  EXPECT_FALSE(PercentDecode("%4", true));
  EXPECT_FALSE(PercentDecode("%zz", false));
}

TEST(MessageTest, HeadersAreCaseInsensitive) {
  Request request;
  request.headers = {{"Content-Type", "application/json"}, {"X-A", "1"}, {"x-a", "2"}};
  EXPECT_EQ(request.Header("content-type"), "application/json");
  EXPECT_EQ(request.Header("X-A"), "1");
  EXPECT_EQ(request.HeaderCount("x-A"), 2u);
  EXPECT_FALSE(request.Header("missing"));

  Response response;
  response.SetHeader("Location", "/a");
  response.SetHeader("location", "/b");
  EXPECT_EQ(response.headers.size(), 1u);
  EXPECT_EQ(response.Header("LOCATION"), "/b");
}

TEST(RouterGuardTest, RunsBeforeTheHandlerWithTheRoutePattern) {
  Router router;
  router.Add("GET", "/v1/orders/{id}", Echo("order"));
  router.Add("POST", "/v1/orders", Echo("place"));
  std::vector<std::string> seen;
  router.SetGuard([&](Request& request, std::string_view method,
                      std::string_view pattern) -> std::optional<Response> {
    seen.push_back(std::string(method) + " " + std::string(pattern));
    if (request.Header("Authorization")) {
      request.principal = std::string("someone");
      return std::nullopt;
    }
    return Response::Json(401, R"({"code":"unauthorized"})");
  });
  Request anonymous = MakeRequest("GET", "/v1/orders/abc?x=%zz");
  EXPECT_EQ(router.Dispatch(anonymous).status, 401);  // before the malformed query's 400
  Request head = MakeRequest("HEAD", "/v1/orders/abc");
  head.headers.emplace_back("Authorization", "x");
  EXPECT_EQ(router.Dispatch(head).status, 200);
  EXPECT_EQ(std::any_cast<std::string>(head.principal), "someone");
  // Unknown paths and methods are answered without the guard.
  Request unknown = MakeRequest("GET", "/nothing");
  EXPECT_EQ(router.Dispatch(unknown).status, 404);
  Request wrong = MakeRequest("DELETE", "/v1/orders");
  EXPECT_EQ(router.Dispatch(wrong).status, 405);
  EXPECT_EQ(seen, (std::vector<std::string>{"GET /v1/orders/{id}", "GET /v1/orders/{id}"}));
}

}  // namespace
}  // namespace shopcqrs::infra::http
