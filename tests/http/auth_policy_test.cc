#include "adapters/http/auth_policy.h"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

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
using Headers = std::vector<std::pair<std::string, std::string>>;

const std::string kKey = "0123456789abcdef0123456789abcdef";
constexpr const char* kOtherId = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

std::int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class AuthPolicyTest : public ::testing::Test {
 protected:
  AuthPolicyTest() : service_(store_, clock_, ids_) {
    keys_ = std::make_shared<const infra::jwt::KeyRing>(std::vector<infra::jwt::Key>{{"k1", kKey}});
    Authorizer::Options options;
    options.keys = keys_;
    options.max_ttl = std::chrono::hours(48);
    options.anonymous = {.per_second = 0.0001, .burst = 5};
    auth_ = std::make_shared<Authorizer>(options);
    router_.SetGuard(auth_->Guard());
    RegisterCommandRoutes(router_, service_, registry_, auth_);
    RegisterQueryRoutes(router_, model_, tokens_, progress_, registry_);
    RegisterOpsRoutes(router_, registry_, {});
    admin_ = "Bearer " +
             auth_->Issue(app::Principal::Admin("admin"), std::chrono::hours(1)).access_token;
  }

  Response Call(std::string method, std::string target, std::string body = {}, Headers headers = {},
                std::string address = "10.0.0.1") {
    Request request;
    request.method = std::move(method);
    request.SetTarget(std::move(target));
    request.body = std::move(body);
    if (!request.body.empty()) headers.emplace_back("Content-Type", "application/json");
    request.headers = std::move(headers);
    request.request_id = "test";
    request.client_address = std::move(address);
    return router_.Dispatch(request);
  }
  Headers As(const std::string& bearer) { return {{"Authorization", bearer}}; }
  std::string CustomerBearer(const std::string& id) {
    return "Bearer " + auth_
                           ->Issue(app::Principal::Customer(*domain::CustomerId::Parse(id)),
                                   std::chrono::hours(1))
                           .access_token;
  }
  static json::object Body(const Response& r) { return json::parse(r.body).as_object(); }
  static std::string Code(const Response& r) { return std::string(Body(r).at("code").as_string()); }
  std::string SignUp(const std::string& email, Headers headers = {}) {
    const Response r = Call("POST", "/v1/customers",
                            fmt::format(R"({{"name":"Ann","email":"{}"}})", email), headers);
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(Body(r).at("id").as_string());
  }
  std::string Product() {
    const Response r =
        Call("POST", "/v1/products", R"({"sku":"S1","name":"Mug","price_cents":100,"stock":50})",
             As(admin_));
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(Body(r).at("id").as_string());
  }
  std::string Order(const std::string& customer, const std::string& product) {
    return fmt::format(R"({{"customer_id":"{}","lines":[{{"product_id":"{}","quantity":1}}]}})",
                       customer, product);
  }

  shopcqrs::testing::InMemoryWriteStore store_;
  shopcqrs::testing::TestClock clock_;
  shopcqrs::testing::CountingIds ids_;
  app::CommandService service_;
  test_support::EmptyReadModel model_;
  cqrs::ConsistencyTokens tokens_;
  cqrs::ProgressTracker progress_;
  infra::metrics::Registry registry_;
  std::shared_ptr<const infra::jwt::KeyRing> keys_;
  std::shared_ptr<Authorizer> auth_;
  Router router_;
  std::string admin_;
};

TEST_F(AuthPolicyTest, UnusableTokensAre401WithWwwAuthenticate) {
  const infra::jwt::KeyRing other({{"k1", std::string(32, 'x')}});
  const std::string forged = other.Sign({"admin", "admin", Now(), Now() + 3600, {}});
  const std::string expired = keys_->Sign({"admin", "admin", Now() - 7200, Now() - 3600, {}});
  const std::string unknown_role = keys_->Sign({"x", "root", Now(), Now() + 3600, {}});
  const std::string bad_customer = keys_->Sign({"not-a-uuid", "customer", Now(), Now() + 3600, {}});
  const std::string none =
      infra::jwt::Base64UrlEncode(R"({"alg":"none","typ":"JWT","kid":"k1"})") + "." +
      forged.substr(forged.find('.') + 1, forged.rfind('.') - forged.find('.') - 1) + ".";
  for (const Headers& headers :
       {Headers{}, As("Bearer"), As("Bearer "), As("Basic YWRtaW46YWRtaW4="), As("Bearer abc.def"),
        As("Bearer " + forged), As("Bearer " + expired), As("Bearer " + none),
        As("Bearer " + unknown_role), As("Bearer " + bad_customer),
        Headers{{"Authorization", admin_}, {"Authorization", admin_}}}) {
    const Response r =
        Call("GET", "/v1/stats/daily-sales?from=2026-01-01&to=2026-01-02", {}, headers);
    EXPECT_EQ(r.status, 401) << (headers.empty() ? "none" : headers[0].second);
    EXPECT_EQ(Code(r), "unauthorized");
    EXPECT_EQ(r.Header("WWW-Authenticate"), "Bearer");
  }
  EXPECT_EQ(
      Call("GET", "/v1/stats/daily-sales?from=2026-01-01&to=2026-01-02", {}, As(admin_)).status,
      200);
  // The access token is never taken from the query string.
  const std::string bare = admin_.substr(7);
  EXPECT_EQ(Call("GET", "/metrics?access_token=" + bare).status, 401);
}

TEST_F(AuthPolicyTest, RolesTheRouteRefusesAre403) {
  const std::string customer = CustomerBearer(kOtherId);
  const std::string payments =
      "Bearer " + auth_->Issue(app::Principal::Payments("psp"), std::chrono::hours(1)).access_token;
  EXPECT_EQ(Code(Call("GET", "/metrics", {}, As(customer))), "forbidden");
  EXPECT_EQ(Call("POST", "/v1/products", R"({"sku":"S","name":"N","price_cents":1,"stock":1})",
                 As(customer))
                .status,
            403);
  EXPECT_EQ(Call("POST", fmt::format("/v1/orders/{}/ship", kOtherId), R"({"tracking_number":"T"})",
                 As(customer))
                .status,
            403);
  EXPECT_EQ(Call("GET", fmt::format("/v1/products/{}", kOtherId), {}, As(payments)).status, 403);
  EXPECT_EQ(Call("GET", "/v1/orders", {}, As(payments)).status, 403);
  EXPECT_EQ(Call("POST", "/v1/admin/tokens", R"({"role":"admin"})", As(payments)).status, 403);
  // payments may pay (the order is unknown here: 404, past the policy).
  EXPECT_EQ(Call("POST", fmt::format("/v1/orders/{}/pay", kOtherId),
                 R"({"amount_cents":1,"payment_reference":"r"})", As(payments))
                .status,
            404);
  EXPECT_EQ(Call("POST", fmt::format("/v1/orders/{}/pay", kOtherId),
                 R"({"amount_cents":1,"payment_reference":"r"})", As(customer))
                .status,
            403);
}

TEST_F(AuthPolicyTest, ACustomerSeesAndChangesItselfOnly) {
  const std::string ann = SignUp("ann@example.com");
  const std::string bob = SignUp("bob@example.com");
  const std::string as_ann = CustomerBearer(ann);
  EXPECT_EQ(Call("PATCH", "/v1/customers/" + ann, R"({"name":"Ann B"})", As(as_ann)).status, 200);
  // Another customer is not revealed, whatever the body says.
  const Response other = Call("PATCH", "/v1/customers/" + bob, R"({"name":"X"})", As(as_ann));
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(Code(other), "not_found");
  EXPECT_EQ(Call("GET", "/v1/customers/" + bob, {}, As(as_ann)).status, 404);
  EXPECT_EQ(Call("GET", "/v1/customers/" + bob + "/orders", {}, As(as_ann)).status, 404);
  EXPECT_EQ(Call("GET", "/v1/customers/not-a-uuid", {}, As(as_ann)).status, 404);
  // Orders: for itself 201, for another 403.
  const std::string product = Product();
  EXPECT_EQ(Call("POST", "/v1/orders", Order(ann, product), As(as_ann)).status, 201);
  const Response for_bob = Call("POST", "/v1/orders", Order(bob, product), As(as_ann));
  EXPECT_EQ(for_bob.status, 403);
  EXPECT_EQ(Code(for_bob), "forbidden");
}

TEST_F(AuthPolicyTest, ACustomerCancelsItsOwnPlacedOrdersOnly) {
  const std::string ann = SignUp("ann@example.com");
  const std::string bob = SignUp("bob@example.com");
  const std::string product = Product();
  auto place = [&](const std::string& customer) {
    const Response r = Call("POST", "/v1/orders", Order(customer, product), As(admin_));
    EXPECT_EQ(r.status, 201);
    return std::string(Body(r).at("id").as_string());
  };
  const std::string bobs = place(bob);
  EXPECT_EQ(Call("POST", "/v1/orders/" + bobs + "/cancel", "{}", As(CustomerBearer(ann))).status,
            404);
  const std::string anns = place(ann);
  const std::string paid = place(ann);
  ASSERT_EQ(Call("POST", "/v1/orders/" + paid + "/pay",
                 R"({"amount_cents":100,"payment_reference":"r"})", As(admin_))
                .status,
            200);
  EXPECT_EQ(Call("POST", "/v1/orders/" + paid + "/cancel", "{}", As(CustomerBearer(ann))).status,
            403);
  EXPECT_EQ(Call("POST", "/v1/orders/" + anns + "/cancel", "{}", As(CustomerBearer(ann))).status,
            200);
}

TEST_F(AuthPolicyTest, SignUpAnswersACustomerTokenButAReplayDoesNot) {
  const Headers key{{"Idempotency-Key", "signup-1"}};
  const std::string body = R"({"name":"Ann","email":"ann@example.com"})";
  const Response first = Call("POST", "/v1/customers", body, key);
  ASSERT_EQ(first.status, 201) << first.body;
  const auto token = Body(first).at("access_token").as_string();
  const auto principal = auth_->Authenticate(token);
  ASSERT_TRUE(principal);
  EXPECT_EQ(principal->role, app::PrincipalRole::kCustomer);
  EXPECT_EQ(principal->subject, Body(first).at("id").as_string());
  const Response replay = Call("POST", "/v1/customers", body, key);
  EXPECT_EQ(replay.status, 201);
  EXPECT_FALSE(Body(replay).contains("access_token")) << replay.body;
  EXPECT_EQ(Body(replay).at("id"), Body(first).at("id"));
}

TEST_F(AuthPolicyTest, IdempotencyKeysAreScopedToThePrincipal) {
  const std::string ann = SignUp("ann@example.com");
  const std::string bob = SignUp("bob@example.com");
  const std::string product = Product();
  const Headers key{{"Idempotency-Key", "same"}};
  auto with = [&](const std::string& bearer) {
    Headers h = key;
    h.emplace_back("Authorization", bearer);
    return h;
  };
  const Response a = Call("POST", "/v1/orders", Order(ann, product), with(CustomerBearer(ann)));
  const Response b = Call("POST", "/v1/orders", Order(bob, product), with(CustomerBearer(bob)));
  ASSERT_EQ(a.status, 201);
  ASSERT_EQ(b.status, 201) << b.body;  // not idempotency_key_reused: another principal's key
  EXPECT_NE(Body(a).at("id"), Body(b).at("id"));
  // The same principal, same key, same body: the stored answer.
  const Response again = Call("POST", "/v1/orders", Order(ann, product), with(CustomerBearer(ann)));
  EXPECT_EQ(Body(again).at("id"), Body(a).at("id"));
}

TEST_F(AuthPolicyTest, OpenRoutesIgnoreUnusableTokensAndLimitAnonymousCallers) {
  EXPECT_EQ(Call("GET", "/healthz", {}, As("Bearer junk")).status, 200);
  SignUp("x0@example.com", As("Bearer junk"));
  for (int i = 1; i < 5; ++i) SignUp(fmt::format("x{}@example.com", i));
  const Response limited = Call("POST", "/v1/customers", R"({"name":"A","email":"y@example.com"})");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(Code(limited), "too_many_requests");
  EXPECT_EQ(limited.Header("Retry-After"), "1");
  // Another address, a caller with a token, and the probes are not limited.
  EXPECT_EQ(Call("POST", "/v1/customers", R"({"name":"A","email":"z@example.com"})", {}, "10.0.0.2")
                .status,
            201);
  EXPECT_EQ(
      Call("POST", "/v1/customers", R"({"name":"A","email":"w@example.com"})", As(admin_)).status,
      201);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Call("GET", "/healthz").status, 200);
}

TEST_F(AuthPolicyTest, AdminMintsTokensWithBoundedTtl) {
  const Response customer =
      Call("POST", "/v1/admin/tokens",
           fmt::format(R"({{"customer_id":"{}","ttl_s":60}})", kOtherId), As(admin_));
  ASSERT_EQ(customer.status, 201) << customer.body;
  const auto who = auth_->Authenticate(Body(customer).at("access_token").as_string());
  ASSERT_TRUE(who);
  EXPECT_TRUE(who->IsCustomer(*domain::CustomerId::Parse(kOtherId)));
  EXPECT_TRUE(Body(customer).at("expires_at").is_string());
  const Response payments =
      Call("POST", "/v1/admin/tokens", R"({"role":"payments","ttl_s":60})", As(admin_));
  ASSERT_EQ(payments.status, 201);
  EXPECT_EQ(auth_->Authenticate(Body(payments).at("access_token").as_string())->role,
            app::PrincipalRole::kPayments);
  for (const char* body :
       {R"({"role":"admin","ttl_s":0})", R"({"role":"admin","ttl_s":172801})", R"({"role":"root"})",
        R"({})", R"({"role":"admin","customer_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301"})",
        R"({"customer_id":"nope"})"}) {
    const Response r = Call("POST", "/v1/admin/tokens", body, As(admin_));
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(Code(r), "validation_failed");
  }
  EXPECT_EQ(
      Call("POST", "/v1/admin/tokens", R"({"role":"admin"})", As(CustomerBearer(kOtherId))).status,
      403);
}

TEST_F(AuthPolicyTest, AuthOffMakesEveryRequestTheSystem) {
  Router router;
  auto off = Authorizer::Off();
  router.SetGuard(off->Guard());
  RegisterCommandRoutes(router, service_, registry_, off);
  Request request;
  request.method = "POST";
  request.SetTarget("/v1/products");
  request.body = R"({"sku":"S9","name":"N","price_cents":1,"stock":1})";
  request.headers = {{"Content-Type", "application/json"}};
  EXPECT_EQ(router.Dispatch(request).status, 201);
}

}  // namespace
}  // namespace shopcqrs::adapters::http
