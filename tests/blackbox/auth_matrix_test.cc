// The authorization matrix (API.md "Authentication and authorization"): every route of the
// route table × {no token, malformed, bad signature, alg: none, expired, customer A, customer B,
// admin, payments}, against the running service. The expected status of each cell is generated
// from the same route table (and its Access policies) the service enforces, and for the order
// and customer routes also checked against an independent, hand-written table.
//
// The requests act on customer A's record and one placed order of A, and are built so that they
// change nothing that matters to the others (a pay with the wrong amount, a cancel with a stale
// If-Match, a ship of an unpaid order): each cell's status then says what the policy decided.

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/http/route_table.h"
#include "blackbox/service_fixture.h"
#include "infra/jwt/jwt.h"

namespace shopcqrs::blackbox {
namespace {

using adapters::http::Access;
using adapters::http::RouteSpec;
using adapters::http::RouteTable;

enum Column { kNone, kMalformed, kBadSignature, kAlgNone, kExpired, kA, kB, kAdmin, kPayments };
constexpr Column kColumns[] = {kNone, kMalformed, kBadSignature, kAlgNone, kExpired,
                               kA,    kB,         kAdmin,        kPayments};
constexpr const char* kColumnNames[] = {"no token",   "malformed", "bad signature",
                                        "alg none",   "expired",   "customer A",
                                        "customer B", "admin",     "payments"};

// The request each route gets, and the status the policy's admission leads to (an admin's).
struct Probe {
  std::string method;
  std::string target;
  std::string body;  // JSON; "" for none
  HttpHeaders headers;
  int admitted = 200;
};

constexpr int kAdmitted = 0;  // the probe's admitted status
constexpr int kHidden =
    -1;  // another customer's data: the use case or query decides (404/403/empty)

// Generated from the table: what the policy alone decides for `column` on `route`.
int Generated(const RouteSpec& route, Column column) {
  const bool unusable = column <= kExpired;
  if (route.access == Access::kOpen) return kAdmitted;  // credentials ignored, anonymous allowed
  if (unusable) return 401;
  switch (route.access) {
    case Access::kOpen:
      return kAdmitted;
    case Access::kAnyToken:
      return column == kPayments ? 403 : kAdmitted;
    case Access::kCustomerSelf:
      return column == kPayments ? 403 : column == kB ? 404 : kAdmitted;
    case Access::kCustomer:
      return column == kPayments ? 403 : column == kB ? kHidden : kAdmitted;
    case Access::kPayments:
      return column == kA || column == kB ? 403 : kAdmitted;
    case Access::kAdmin:
      return column == kAdmin ? kAdmitted : 403;
  }
  return 403;
}

// Hand-written, independently of the table: the order and customer routes. Columns: no token,
// malformed, bad signature, alg none, expired, customer A, customer B, admin, payments.
// clang-format off
const std::map<std::string, std::vector<int>> kHandWritten = {
    //                          none mal  sig  alg  exp  A    B    adm  pay
    {"register_customer",       {201, 201, 201, 201, 201, 201, 201, 201, 201}},
    {"change_customer_details", {401, 401, 401, 401, 401, 200, 404, 200, 403}},
    {"get_customer",            {401, 401, 401, 401, 401, 200, 404, 200, 403}},
    {"customer_orders",         {401, 401, 401, 401, 401, 200, 404, 200, 403}},
    {"place_order",             {401, 401, 401, 401, 401, 201, 403, 201, 403}},
    {"pay_order",               {401, 401, 401, 401, 401, 403, 403, 422, 422}},
    {"ship_order",              {401, 401, 401, 401, 401, 403, 403, 409, 403}},
    {"deliver_order",           {401, 401, 401, 401, 401, 403, 403, 409, 403}},
    {"cancel_order",            {401, 401, 401, 401, 401, 412, 404, 412, 403}},
    {"get_order",               {401, 401, 401, 401, 401, 200, 404, 200, 403}},
    {"list_orders",             {401, 401, 401, 401, 401, 200, 200, 200, 403}},
    {"search_orders",           {401, 401, 401, 401, 401, 200, 200, 200, 403}},
};
// clang-format on

std::int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string PayloadOf(const std::string& token) {
  const auto first = token.find('.');
  return token.substr(first + 1, token.rfind('.') - first - 1);
}

class AuthMatrixTest : public BlackboxTest {
 protected:
  // The signing key of the service this binary started (nullopt with SHOPCQRS_BLACKBOX_URL,
  // unless SHOPCQRS_BLACKBOX_SIGNING_KEY names it).
  static std::optional<std::string> SigningKey() {
    if (const char* key = std::getenv("SHOPCQRS_BLACKBOX_SIGNING_KEY"); key && *key) return key;
    const std::string root = SharedService::Instance().Root();
    if (root.empty()) return std::nullopt;
    std::string key = ReadFile(root + "/data/auth-key");
    while (!key.empty() && key.back() == '\n') key.pop_back();
    if (key.empty()) return std::nullopt;
    return key;
  }

  std::string AdminToken() {
    const auto header = shopcqrs::testing::DefaultCredentials::For(endpoint().port);
    return header ? header->substr(std::string_view("Bearer ").size()) : std::string();
  }
};

TEST_F(AuthMatrixTest, EveryRouteTimesEveryCredential) {
  const std::string admin = AdminToken();
  ASSERT_FALSE(admin.empty()) << "no admin token for the service";

  // Customers A and B sign up (anonymously) and get their tokens.
  auto sign_up = [&](const char* name) {
    const auto r =
        api().Post("/v1/customers", CustomerBody(name, UniqueEmail()), {{"Authorization", ""}});
    EXPECT_EQ(r.status, 201) << r;
    EXPECT_FALSE(r.Str("access_token").empty()) << r;
    return std::pair{r.Id(), r.Str("access_token")};
  };
  const auto [a, a_token] = sign_up("Matrix A");
  const auto [b, b_token] = sign_up("Matrix B");
  const auto payments_r =
      api().Post("/v1/admin/tokens", std::string_view(R"({"role":"payments","ttl_s":600})"));
  ASSERT_EQ(payments_r.status, 201) << payments_r;
  const std::string payments = payments_r.Str("access_token");

  // A product and an order of A (placed), projected before the queries run.
  const auto product =
      api().Post("/v1/products", ProductBody(UniqueSku("MX"), "Matrix", 100, 1000));
  ASSERT_EQ(product.status, 201) << product;
  const std::string p = product.Id();
  const auto order = PlaceOrder(api(), a, {{p, 1}});
  ASSERT_EQ(order.status, 201) << order;
  const std::string o = order.Id();
  const std::string ct = order.Str("consistency_token");
  ASSERT_EQ(api().Get("/v1/orders/" + o, {{"X-Consistency-Token", ct}}).status, 200);

  // The unusable credentials.
  std::map<Column, std::string> bearer = {{kA, "Bearer " + a_token},
                                          {kB, "Bearer " + b_token},
                                          {kAdmin, "Bearer " + admin},
                                          {kPayments, "Bearer " + payments},
                                          {kNone, ""},
                                          {kMalformed, "Bearer not-a-token"}};
  {
    std::string forged = admin;
    const auto at = forged.rfind('.') + 5;
    forged[at] = forged[at] == 'x' ? 'y' : 'x';
    bearer[kBadSignature] = "Bearer " + forged;
    bearer[kAlgNone] = "Bearer " + infra::jwt::Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") +
                       "." + PayloadOf(admin) + ".";
  }
  const auto key = SigningKey();
  if (key) {
    const infra::jwt::KeyRing ring({{infra::jwt::DerivedKid(*key), *key}});
    bearer[kExpired] =
        "Bearer " + ring.Sign({"admin", "admin", NowSeconds() - 7200, NowSeconds() - 3600, {}});
  }

  // One probe per route name; every route of the table must have one.
  const std::string stale = R"("999")";
  const std::map<std::string, Probe> probes = {
      {"register_customer", {"POST", "/v1/customers", "", {}, 201}},
      {"change_customer_details",
       {"PATCH", "/v1/customers/" + a, R"({"name":"Matrix A"})", {}, 200}},
      {"add_product", {"POST", "/v1/products", "", {}, 201}},
      {"change_product_price",
       {"POST", "/v1/products/" + p + "/price", R"({"price_cents":100})", {}, 200}},
      {"restock_product", {"POST", "/v1/products/" + p + "/restock", R"({"quantity":1})", {}, 200}},
      {"place_order",
       {"POST", "/v1/orders", boost::json::serialize(OrderBody(a, {{p, 1}})), {}, 201}},
      {"pay_order",
       {"POST",
        "/v1/orders/" + o + "/pay",
        R"({"amount_cents":1,"payment_reference":"m"})",
        {},
        422}},
      {"ship_order", {"POST", "/v1/orders/" + o + "/ship", R"({"tracking_number":"T"})", {}, 409}},
      {"deliver_order", {"POST", "/v1/orders/" + o + "/deliver", "{}", {}, 409}},
      {"cancel_order", {"POST", "/v1/orders/" + o + "/cancel", "{}", {{"If-Match", stale}}, 412}},
      {"mint_token", {"POST", "/v1/admin/tokens", R"({"role":"payments","ttl_s":60})", {}, 201}},
      {"get_order", {"GET", "/v1/orders/" + o, "", {}, 200}},
      {"list_orders", {"GET", "/v1/orders", "", {}, 200}},
      {"customer_orders",
       {"GET", "/v1/customers/" + a + "/orders", "", {{"X-Consistency-Token", ct}}, 200}},
      {"get_customer", {"GET", "/v1/customers/" + a, "", {{"X-Consistency-Token", ct}}, 200}},
      {"top_products", {"GET", "/v1/products/top", "", {}, 200}},
      {"get_product", {"GET", "/v1/products/" + p, "", {{"X-Consistency-Token", ct}}, 200}},
      {"search_orders", {"GET", "/v1/search/orders?q=Matrix", "", {}, 200}},
      {"daily_sales", {"GET", "/v1/stats/daily-sales?from=2026-01-01&to=2026-01-31", "", {}, 200}},
      {"list_projections", {"GET", "/v1/admin/projections", "", {}, 200}},
      {"list_dead_letters", {"GET", "/v1/admin/dead-letters", "", {}, 200}},
      // Nothing of the order is parked: found by the route, not there (404).
      {"retry_dead_letters",
       {"POST", "/v1/admin/dead-letters/read_pg/" + o + "/retry", "{}", {}, 404}},
      {"skip_dead_letters",
       {"POST", "/v1/admin/dead-letters/read_pg/" + o + "/skip", "{}", {}, 404}},
      {"healthz", {"GET", "/healthz", "", {}, 200}},
      {"readyz", {"GET", "/readyz", "", {}, 200}},
      {"metrics", {"GET", "/metrics", "", {}, 200}},
      {"openapi", {"GET", "/openapi.json", "", {}, 200}},
  };

  int cells = 0;
  for (const RouteSpec& route : RouteTable()) {
    const auto found = probes.find(std::string(route.name));
    ASSERT_NE(found, probes.end()) << "no probe for route " << route.name;
    const Probe& probe = found->second;
    for (const Column column : kColumns) {
      if (column == kExpired && !key) continue;  // cannot forge one without the key
      std::string body = probe.body;
      if (route.name == "register_customer")
        body = boost::json::serialize(CustomerBody("Cell", UniqueEmail()));
      if (route.name == "add_product")
        body = boost::json::serialize(ProductBody(UniqueSku("MXC"), "Cell", 1, 1));
      HttpHeaders headers = probe.headers;
      headers.emplace_back("Authorization", bearer.at(column));
      const ApiResponse r = probe.body.empty() && body.empty()
                                ? api().Raw(probe.method, probe.target, {}, headers)
                                : api().Send(probe.method, probe.target, body, headers);
      ++cells;
      const std::string where =
          fmt::format("{} {} as {}: {}", probe.method, probe.target, kColumnNames[column], r.body);

      const int generated = Generated(route, column);
      if (generated == kAdmitted) {
        EXPECT_EQ(r.status, probe.admitted) << where;
      } else if (generated == kHidden) {
        // Customer B on A's order: never A's data; not found, forbidden, or B's own (empty) list.
        EXPECT_TRUE(r.status == 404 || r.status == 403 || r.status == 200) << where;
        if (r.status == 200) {
          EXPECT_EQ(r.body.find(o), std::string::npos) << where;
        }
      } else {
        EXPECT_EQ(r.status, generated) << where;
      }
      if (r.status == 401) {
        EXPECT_EQ(r.Code(), "unauthorized") << where;
        EXPECT_EQ(r.Header("WWW-Authenticate"), "Bearer") << where;
      }
      if (r.status == 403) {
        EXPECT_EQ(r.Code(), "forbidden") << where;
      }
      if (r.status == 404) {
        EXPECT_EQ(r.Code(), "not_found") << where;
      }

      if (const auto hand = kHandWritten.find(std::string(route.name));
          hand != kHandWritten.end()) {
        EXPECT_EQ(r.status, hand->second[column]) << "hand-written: " << where;
      }
    }
  }
  EXPECT_GE(cells, static_cast<int>(RouteTable().size()) * 8);
  // Every order and customer route is in the hand-written table.
  for (const RouteSpec& route : RouteTable()) {
    const std::string pattern(route.pattern);
    if (pattern.starts_with("/v1/orders") || pattern.starts_with("/v1/customers") ||
        pattern.starts_with("/v1/search")) {
      EXPECT_TRUE(kHandWritten.contains(std::string(route.name))) << route.name;
    }
  }
}

TEST_F(AuthMatrixTest, ProductsHideRevenueFromCustomers) {
  const auto product = api().Post("/v1/products", ProductBody(UniqueSku("RV"), "Rev", 100, 10));
  ASSERT_EQ(product.status, 201);
  const std::string ct = product.Str("consistency_token");
  const auto customer =
      api().Post("/v1/customers", CustomerBody("Rev C", UniqueEmail()), {{"Authorization", ""}});
  ASSERT_EQ(customer.status, 201);
  const HttpHeaders as_customer{{"Authorization", "Bearer " + customer.Str("access_token")},
                                {"X-Consistency-Token", ct}};
  const auto seen = api().Get("/v1/products/" + product.Id(), as_customer);
  ASSERT_EQ(seen.status, 200) << seen;
  EXPECT_TRUE(seen.Object().at("revenue_cents").is_null()) << seen;
  const auto admin = api().Get("/v1/products/" + product.Id(), {{"X-Consistency-Token", ct}});
  EXPECT_TRUE(admin.Object().at("revenue_cents").is_int64()) << admin;
  const auto top = api().Get("/v1/products/top", as_customer);
  ASSERT_EQ(top.status, 200);
  for (const auto& item : top.Object().at("items").as_array()) {
    EXPECT_TRUE(item.as_object().at("revenue_cents").is_null());
  }
}

TEST_F(AuthMatrixTest, ReplayedSignUpHoldsNoToken) {
  const std::string body = boost::json::serialize(CustomerBody("Replay", UniqueEmail()));
  const HttpHeaders headers{{"Authorization", ""}, {"Idempotency-Key", "signup-" + UniqueSuffix()}};
  const auto first = api().Post("/v1/customers", body, headers);
  ASSERT_EQ(first.status, 201) << first;
  EXPECT_FALSE(first.Str("access_token").empty());
  const auto replay = api().Post("/v1/customers", body, headers);
  ASSERT_EQ(replay.status, 201) << replay;
  EXPECT_EQ(replay.Id(), first.Id());
  EXPECT_FALSE(replay.Object().contains("access_token")) << replay;
}

TEST_F(AuthMatrixTest, CustomersListAndSearchTheirOwnOrdersOnly) {
  const std::string name = "Twin" + UniqueSuffix();
  auto sign_up = [&] {
    const auto r = api().Post("/v1/customers", CustomerBody(name, UniqueEmail("twin")),
                              {{"Authorization", ""}});
    EXPECT_EQ(r.status, 201) << r;
    return std::pair{r.Id(), "Bearer " + r.Str("access_token")};
  };
  const auto [a, as_a] = sign_up();
  const auto [b, as_b] = sign_up();
  const auto product = api().Post("/v1/products", ProductBody(UniqueSku("TW"), "Twin", 10, 100));
  ASSERT_EQ(product.status, 201);
  const auto a_order = PlaceOrder(api(), a, {{product.Id(), 1}}, {{"Authorization", as_a}});
  ASSERT_EQ(a_order.status, 201) << a_order;
  const auto b_order = PlaceOrder(api(), b, {{product.Id(), 1}}, {{"Authorization", as_b}});
  ASSERT_EQ(b_order.status, 201) << b_order;
  const std::string ct = b_order.Str("consistency_token");
  auto ids = [](const ApiResponse& r) {
    std::set<std::string> out;
    for (const auto& item : r.Object().at("items").as_array()) {
      out.insert(std::string(item.as_object().at("id").as_string()));
    }
    return out;
  };
  const std::string search = "/v1/search/orders?q=" + name;
  const auto mine = api().Get(search, {{"Authorization", as_a}, {"X-Consistency-Token", ct}});
  ASSERT_EQ(mine.status, 200) << mine;
  EXPECT_EQ(ids(mine), std::set<std::string>{a_order.Id()});
  const auto all = api().Get(search, {{"X-Consistency-Token", ct}});
  EXPECT_EQ(ids(all), (std::set<std::string>{a_order.Id(), b_order.Id()}));
  // GET /v1/orders is limited to its own; naming the other customer lists nothing.
  const auto listed =
      api().Get("/v1/orders?limit=100", {{"Authorization", as_a}, {"X-Consistency-Token", ct}});
  ASSERT_EQ(listed.status, 200);
  EXPECT_TRUE(ids(listed).contains(a_order.Id()));
  EXPECT_FALSE(ids(listed).contains(b_order.Id()));
  const auto other = api().Get("/v1/orders?customer_id=" + b,
                               {{"Authorization", as_a}, {"X-Consistency-Token", ct}});
  ASSERT_EQ(other.status, 200);
  EXPECT_TRUE(ids(other).empty()) << other;
  EXPECT_EQ(api().Get("/v1/orders/" + b_order.Id(), {{"Authorization", as_a}}).status, 404);
}

TEST_F(AuthMatrixTest, ReadyzSaysAuthIsOn) {
  const auto r = api().Get("/readyz", {{"Authorization", ""}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.Str("auth"), "on");
}

}  // namespace
}  // namespace shopcqrs::blackbox
