#include "adapters/http/command_routes.h"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "application/command_service.h"
#include "infra/http/router.h"
#include "infra/http/server.h"
#include "support/http_client.h"
#include "support/in_memory_write_store.h"

namespace shopcqrs::adapters::http {
namespace {

using namespace infra::http;

namespace json = boost::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kUnknownId = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

class CommandRoutesTest : public ::testing::Test {
 protected:
  CommandRoutesTest() : service_(store_, clock_, ids_) {
    router_.SetGuard(auth_->Guard());  // auth.mode = "off": every request may do everything
    RegisterCommandRoutes(router_, service_, registry_, auth_);
  }

  // Sends a request through the router, as the server would (JSON content type unless the
  // headers say otherwise or `json` is false).
  Response Call(std::string method, std::string target, std::string body = {}, Headers headers = {},
                bool json = true) {
    Request request;
    request.method = std::move(method);
    request.SetTarget(std::move(target));
    request.body = std::move(body);
    bool has_type = false;
    for (const auto& [key, value] : headers) has_type |= EqualsIgnoreCase(key, "Content-Type");
    if (json && !has_type && !request.body.empty()) {
      headers.emplace_back("Content-Type", "application/json");
    }
    request.headers = std::move(headers);
    request.request_id = "test";
    return router_.Dispatch(request);
  }

  static json::object Body(const Response& response) {
    return json::parse(response.body).as_object();
  }
  static std::string Code(const Response& response) {
    EXPECT_EQ(response.content_type, "application/problem+json") << response.body;
    return std::string(Body(response).at("code").as_string());
  }
  static std::string Detail(const Response& response) {
    return std::string(Body(response).at("detail").as_string());
  }
  static std::string Id(const Response& response) {
    return std::string(Body(response).at("id").as_string());
  }

  std::string NewCustomer(std::string email = "ann@example.com") {
    const Response r =
        Call("POST", "/v1/customers", fmt::format(R"({{"name":"Ann","email":"{}"}})", email));
    EXPECT_EQ(r.status, 201) << r.body;
    return Id(r);
  }
  std::string NewProduct(std::string sku = "SKU-1", std::int64_t price = 250,
                         std::int64_t stock = 10) {
    const Response r =
        Call("POST", "/v1/products",
             fmt::format(R"({{"sku":"{}","name":"Mug","price_cents":{},"stock":{}}})", sku, price,
                         stock));
    EXPECT_EQ(r.status, 201) << r.body;
    return Id(r);
  }
  static std::string OrderBody(const std::string& customer, const std::string& product,
                               int quantity) {
    return fmt::format(R"({{"customer_id":"{}","lines":[{{"product_id":"{}","quantity":{}}}]}})",
                       customer, product, quantity);
  }
  std::string NewOrder(const std::string& customer, const std::string& product, int quantity = 2) {
    const Response r = Call("POST", "/v1/orders", OrderBody(customer, product, quantity));
    EXPECT_EQ(r.status, 201) << r.body;
    return Id(r);
  }
  std::string Rendered() const { return registry_.Render(); }

  testing::InMemoryWriteStore store_;
  testing::TestClock clock_;
  testing::CountingIds ids_;
  app::CommandService service_;
  infra::metrics::Registry registry_;
  std::shared_ptr<Authorizer> auth_ = Authorizer::Off();
  Router router_;
};

void ExpectKeys(const json::object& body, std::vector<std::string> keys) {
  std::vector<std::string> actual;
  for (const auto& [key, value] : body) actual.emplace_back(key);
  std::sort(actual.begin(), actual.end());
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(actual, keys);
}

// ---- success bodies ----

TEST_F(CommandRoutesTest, RegisterCustomer) {
  const Response r =
      Call("POST", "/v1/customers", R"({"name":"Ann Lee","email":"Ann@Example.com","x":1})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  const json::object body = Body(r);
  ExpectKeys(body, {"id", "name", "email", "version", "consistency_token"});
  EXPECT_TRUE(domain::Uuid::Parse(body.at("id").as_string()));
  EXPECT_EQ(body.at("id").as_string(), domain::Uuid::Parse(body.at("id").as_string())->ToString());
  EXPECT_EQ(body.at("name"), "Ann Lee");
  EXPECT_EQ(body.at("email"), "Ann@Example.com");
  EXPECT_EQ(body.at("version"), 1);
  EXPECT_EQ(body.at("consistency_token"), "1");
  EXPECT_EQ(r.Header("X-Consistency-Token"), "1");
  EXPECT_EQ(r.Header("ETag"), "\"1\"");
  EXPECT_EQ(r.Header("Location"), "/v1/customers/" + Id(r));
  EXPECT_EQ(store_.EventCount(), 1u);
}

TEST_F(CommandRoutesTest, ChangeCustomerDetails) {
  const std::string id = NewCustomer();
  Response r = Call("PATCH", "/v1/customers/" + id, R"({"name":"Ann B"})");
  ASSERT_EQ(r.status, 200) << r.body;
  ExpectKeys(Body(r), {"id", "version", "consistency_token"});
  EXPECT_EQ(Body(r).at("id").as_string(), id);
  EXPECT_EQ(Body(r).at("version"), 2);
  EXPECT_EQ(Body(r).at("consistency_token"), "2");
  EXPECT_EQ(r.Header("X-Consistency-Token"), "2");
  EXPECT_FALSE(r.Header("Location"));

  r = Call("PATCH", "/v1/customers/" + id, R"({"email":"new@example.com"})",
           {{"If-Match", "\"2\""}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r).at("version"), 3);
  r = Call("PATCH", "/v1/customers/" + id, R"({"name":"C","email":null})", {{"If-Match", "3"}});
  EXPECT_EQ(r.status, 200) << r.body;
  r = Call("PATCH", "/v1/customers/" + id, R"({"name":"D"})", {{"If-Match", "*"}});
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(CommandRoutesTest, AddProductAndChangeIt) {
  Response r =
      Call("POST", "/v1/products", R"({"sku":"MUG-1","name":"Mug","price_cents":1299,"stock":5})");
  ASSERT_EQ(r.status, 201) << r.body;
  json::object body = Body(r);
  ExpectKeys(body, {"id", "sku", "name", "price_cents", "stock", "version", "consistency_token"});
  EXPECT_EQ(body.at("sku"), "MUG-1");
  EXPECT_EQ(body.at("name"), "Mug");
  EXPECT_EQ(body.at("price_cents"), 1299);
  EXPECT_EQ(body.at("stock"), 5);
  EXPECT_EQ(body.at("version"), 1);
  EXPECT_EQ(r.Header("Location"), "/v1/products/" + Id(r));
  const std::string id = Id(r);

  r = Call("POST", "/v1/products/" + id + "/price", R"({"price_cents":1500})");
  ASSERT_EQ(r.status, 200) << r.body;
  ExpectKeys(Body(r), {"id", "version", "consistency_token"});
  EXPECT_EQ(Body(r).at("version"), 2);

  r = Call("POST", "/v1/products/" + id + "/restock", R"({"quantity":7})", {{"If-Match", "\"2\""}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r).at("version"), 3);
  EXPECT_EQ(store_.Snapshot().products.begin()->second.stock(), 12);
}

TEST_F(CommandRoutesTest, OrderLifecycle) {
  const std::string customer = NewCustomer();
  const std::string product = NewProduct("SKU-1", 250, 10);
  Response r = Call("POST", "/v1/orders",
                    fmt::format(R"({{"customer_id":"{}","lines":[{{"product_id":"{}","quantity":2}},
                                {{"product_id":"{}","quantity":1}}]}})",
                                customer, product, product));
  ASSERT_EQ(r.status, 201) << r.body;
  json::object body = Body(r);
  ExpectKeys(body, {"id", "status", "total_cents", "version", "consistency_token"});
  EXPECT_EQ(body.at("status"), "placed");
  EXPECT_EQ(body.at("total_cents"), 750);
  EXPECT_EQ(body.at("version"), 1);
  EXPECT_EQ(r.Header("Location"), "/v1/orders/" + Id(r));
  const std::string order = Id(r);
  EXPECT_EQ(store_.Snapshot().products.begin()->second.stock(), 7);

  r = Call("POST", "/v1/orders/" + order + "/pay",
           R"({"amount_cents":750,"payment_reference":"pay-1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  ExpectKeys(Body(r), {"id", "status", "version", "consistency_token"});
  EXPECT_EQ(Body(r).at("status"), "paid");
  EXPECT_EQ(Body(r).at("version"), 2);

  r = Call("POST", "/v1/orders/" + order + "/ship", R"({"tracking_number":"TRK-1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r).at("status"), "shipped");

  // "none or {}": an empty body needs no Content-Type.
  r = Call("POST", "/v1/orders/" + order + "/deliver", "", {}, false);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r).at("status"), "delivered");
  EXPECT_EQ(Body(r).at("version"), 4);
  EXPECT_EQ(r.Header("X-Consistency-Token"),
            std::string_view(Body(r).at("consistency_token").as_string()));
}

TEST_F(CommandRoutesTest, DeliverAcceptsAnEmptyObject) {
  const std::string order = NewOrder(NewCustomer(), NewProduct());
  ASSERT_EQ(Call("POST", "/v1/orders/" + order + "/pay",
                 R"({"amount_cents":500,"payment_reference":"p"})")
                .status,
            200);
  ASSERT_EQ(Call("POST", "/v1/orders/" + order + "/ship", R"({"tracking_number":"t"})").status,
            200);
  const Response r = Call("POST", "/v1/orders/" + order + "/deliver", "{}");
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(CommandRoutesTest, CancelWithAndWithoutReason) {
  const std::string customer = NewCustomer();
  const std::string product = NewProduct("SKU-1", 100, 10);
  const std::string first = NewOrder(customer, product, 3);
  Response r = Call("POST", "/v1/orders/" + first + "/cancel", R"({"reason":"changed my mind"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r).at("status"), "cancelled");
  const std::string second = NewOrder(customer, product, 3);
  r = Call("POST", "/v1/orders/" + second + "/cancel", "", {}, false);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r).at("status"), "cancelled");
  EXPECT_EQ(store_.Snapshot().products.begin()->second.stock(), 10);  // stock returned
}

// ---- error paths ----

TEST_F(CommandRoutesTest, NonUuidPathIdsAre404) {
  for (const char* target :
       {"/v1/customers/nope", "/v1/products/123/price", "/v1/products/x/restock",
        "/v1/orders/3f2504e0-4f89-41d3-9a0c/pay", "/v1/orders/zz/ship", "/v1/orders/a/deliver",
        "/v1/orders/%00/cancel"}) {
    const std::string method =
        std::string_view(target).starts_with("/v1/customers") ? "PATCH" : "POST";
    const Response r = Call(method, target, R"({"name":"x"})");
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(Code(r), "not_found") << target;
  }
}

TEST_F(CommandRoutesTest, UnknownAggregatesAre404) {
  const std::string u = kUnknownId;
  EXPECT_EQ(Code(Call("PATCH", "/v1/customers/" + u, R"({"name":"x"})")), "not_found");
  EXPECT_EQ(Code(Call("POST", "/v1/products/" + u + "/price", R"({"price_cents":1})")),
            "not_found");
  EXPECT_EQ(Code(Call("POST", "/v1/products/" + u + "/restock", R"({"quantity":1})")), "not_found");
  EXPECT_EQ(Code(Call("POST", "/v1/orders/" + u + "/pay",
                      R"({"amount_cents":1,"payment_reference":"p"})")),
            "not_found");
  EXPECT_EQ(Code(Call("POST", "/v1/orders/" + u + "/ship", R"({"tracking_number":"t"})")),
            "not_found");
  EXPECT_EQ(Code(Call("POST", "/v1/orders/" + u + "/deliver")), "not_found");
  const Response r = Call("POST", "/v1/orders/" + u + "/cancel");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(store_.Commits(), 0u);
}

TEST_F(CommandRoutesTest, MediaTypeAndSyntax) {
  Response r = Call("POST", "/v1/customers", R"({"name":"a","email":"a@b"})",
                    {{"Content-Type", "text/plain"}});
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(Code(r), "unsupported_media_type");
  r = Call("POST", "/v1/customers", R"({"name":"a","email":"a@b"})", {}, false);
  EXPECT_EQ(r.status, 415);
  r = Call("POST", "/v1/customers", R"({"name":"a",)");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Code(r), "malformed_json");
  r = Call("POST", "/v1/customers", R"(["name"])");
  EXPECT_EQ(Code(r), "validation_failed");
  r = Call("POST", "/v1/customers", "");
  EXPECT_EQ(Code(r), "malformed_json");
  r = Call("POST", "/v1/customers", R"({"name":"a","email":"a@b"})",
           {{"Content-Type", "application/json; charset=UTF-8"}});
  EXPECT_EQ(r.status, 201);
  // Deliver with a body but no media type.
  r = Call("POST", std::string("/v1/orders/") + kUnknownId + "/deliver", "{}", {}, false);
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(store_.Commits(), 1u);
}

TEST_F(CommandRoutesTest, FieldValidation) {
  const std::string product = NewProduct();
  const std::string customer = NewCustomer();
  struct Case {
    std::string method, target, body, detail_part;
  };
  const std::string order_prefix = R"({"customer_id":")" + customer + R"(","lines":)";
  const std::vector<Case> cases = {
      {"POST", "/v1/customers", R"({"email":"a@b"})", "name is required"},
      {"POST", "/v1/customers", R"({"name":5,"email":"a@b"})", "name must be a string"},
      {"POST", "/v1/customers", R"({"name":"","email":"a@b"})", "name"},
      {"POST", "/v1/customers", R"({"name":")" + std::string(201, 'n') + R"(","email":"a@b"})",
       "name"},
      {"POST", "/v1/customers", R"({"name":"a","email":"no-at-sign"})", "email"},
      {"POST", "/v1/customers", R"({"name":"a\u0000b","email":"a@b"})",
       "name must not contain NUL"},
      {"PATCH", "/v1/customers/" + customer, R"({})", "at least one of name, email"},
      {"PATCH", "/v1/customers/" + customer, R"({"name":null,"email":null})", "at least one"},
      {"PATCH", "/v1/customers/" + customer, R"({"email":3})", "email must be a string"},
      {"POST", "/v1/products", R"({"sku":"A","name":"B","price_cents":1.5,"stock":1})",
       "price_cents must be an integer"},
      {"POST", "/v1/products", R"({"sku":"A","name":"B","price_cents":5.0,"stock":1})",
       "price_cents must be an integer"},
      {"POST", "/v1/products", R"({"sku":"A","name":"B","price_cents":"5","stock":1})",
       "price_cents must be an integer"},
      {"POST", "/v1/products", R"({"sku":"A","name":"B","price_cents":-1,"stock":1})",
       "price_cents"},
      {"POST", "/v1/products", R"({"sku":"A","name":"B","price_cents":1000000001,"stock":1})",
       "price_cents"},
      {"POST", "/v1/products", R"({"sku":"A","name":"B","price_cents":1,"stock":true})",
       "stock must be an integer"},
      {"POST", "/v1/products",
       R"({"sku":"A","name":"B","price_cents":1,"stock":99999999999999999999})",
       "stock is out of range"},
      {"POST", "/v1/products", R"({"name":"B","price_cents":1,"stock":1})", "sku is required"},
      {"POST", "/v1/products",
       R"({"sku":")" + std::string(65, 's') + R"(","name":"B","price_cents":1,"stock":1})", "sku"},
      {"POST", "/v1/products/" + product + "/price", R"({})", "price_cents is required"},
      {"POST", "/v1/products/" + product + "/restock", R"({"quantity":0})", "quantity"},
      {"POST", "/v1/products/" + product + "/restock", R"({"quantity":2.5})",
       "quantity must be an integer"},
      {"POST", "/v1/orders", R"({"customer_id":"nope","lines":[]})", "customer_id must be a UUID"},
      {"POST", "/v1/orders", R"({"lines":[]})", "customer_id is required"},
      {"POST", "/v1/orders", order_prefix + "[]}", "lines must contain between 1 and 100"},
      {"POST", "/v1/orders", order_prefix + "5}", "lines must be an array"},
      {"POST", "/v1/orders",
       order_prefix + R"([{"product_id":")" + product +
           R"(","quantity":1},{"product_id":"x","quantity":1}]})",
       "lines[1].product_id must be a UUID"},
      {"POST", "/v1/orders",
       order_prefix + R"([{"product_id":")" + product + R"(","quantity":0}]})",
       "lines[0].quantity"},
      {"POST", "/v1/orders",
       order_prefix + R"([{"product_id":")" + product + R"(","quantity":1001}]})",
       "lines[0].quantity"},
      {"POST", "/v1/orders",
       order_prefix + R"([{"product_id":")" + product + R"(","quantity":"1"}]})",
       "lines[0].quantity must be an integer"},
      {"POST", std::string("/v1/orders/") + kUnknownId + "/pay", R"({"amount_cents":1})",
       "payment_reference is required"},
      {"POST", std::string("/v1/orders/") + kUnknownId + "/ship", R"({"tracking_number":[]})",
       "tracking_number must be a string"},
      {"POST", std::string("/v1/orders/") + kUnknownId + "/cancel", R"({"reason":false})",
       "reason must be a string"},
  };
  const auto commits = store_.Commits();
  for (const Case& c : cases) {
    const Response r = Call(c.method, c.target, c.body);
    EXPECT_EQ(r.status, 400) << c.target << " " << c.body << " -> " << r.body;
    if (r.status != 400) continue;
    EXPECT_EQ(Code(r), "validation_failed") << c.body;
    EXPECT_NE(Detail(r).find(c.detail_part), std::string::npos) << c.body << " -> " << Detail(r);
  }
  EXPECT_EQ(store_.Commits(), commits);  // nothing changed
}

TEST_F(CommandRoutesTest, BusinessErrors) {
  // The call answers `status` with the problem `code`.
  auto expect = [&](const std::string& method, const std::string& target, const std::string& body,
                    int status, const std::string& code) {
    const Response r = Call(method, target, body);
    EXPECT_EQ(r.status, status) << method << " " << target << " " << body;
    EXPECT_EQ(Code(r), code) << method << " " << target << " " << body;
  };
  const std::string customer = NewCustomer("ann@example.com");
  const std::string product = NewProduct("SKU-1", 100, 2);

  expect("POST", "/v1/customers", R"({"name":"Other","email":"ANN@example.COM"})", 409,
         "email_taken");
  const std::string other = NewCustomer("bob@example.com");
  expect("PATCH", "/v1/customers/" + other, R"({"email":"Ann@Example.com"})", 409, "email_taken");

  expect("POST", "/v1/products", R"({"sku":"SKU-1","name":"Dup","price_cents":1,"stock":1})", 409,
         "sku_taken");

  expect("POST", "/v1/orders", OrderBody(kUnknownId, product, 1), 422, "unknown_customer");
  expect("POST", "/v1/orders", OrderBody(customer, kUnknownId, 1), 422, "unknown_product");
  expect("POST", "/v1/orders", OrderBody(customer, product, 3), 409, "insufficient_stock");

  const std::string order = NewOrder(customer, product, 2);
  const std::string orders = "/v1/orders/" + order;
  expect("POST", orders + "/pay", R"({"amount_cents":1,"payment_reference":"p"})", 422,
         "amount_mismatch");
  expect("POST", orders + "/ship", R"({"tracking_number":"t"})", 409, "invalid_transition");
  expect("POST", orders + "/deliver", "", 409, "invalid_transition");
  ASSERT_EQ(Call("POST", orders + "/cancel").status, 200);
  expect("POST", orders + "/cancel", "", 409, "invalid_transition");
  expect("POST", orders + "/pay", R"({"amount_cents":200,"payment_reference":"p"})", 409,
         "invalid_transition");
}

TEST_F(CommandRoutesTest, IfMatch) {
  const std::string id = NewCustomer();
  Response r = Call("PATCH", "/v1/customers/" + id, R"({"name":"B"})", {{"If-Match", "\"7\""}});
  EXPECT_EQ(r.status, 412);
  EXPECT_EQ(Code(r), "version_mismatch");
  for (const char* bad :
       {"W/\"1\"", "\"1\", \"2\"", "abc", "\"\"", "-1", "\"1", "1.0", "99999999999999999999", ""}) {
    r = Call("PATCH", "/v1/customers/" + id, R"({"name":"B"})", {{"If-Match", bad}});
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(Code(r), "validation_failed") << bad;
    EXPECT_NE(Detail(r).find("If-Match"), std::string::npos);
  }
  r = Call("PATCH", "/v1/customers/" + id, R"({"name":"B"})",
           {{"If-Match", "\"1\""}, {"If-Match", "\"1\""}});
  EXPECT_EQ(r.status, 400);

  const std::string order = NewOrder(id, NewProduct());
  r = Call("POST", "/v1/orders/" + order + "/cancel", "", {{"If-Match", "\"2\""}}, false);
  EXPECT_EQ(r.status, 412);
  r = Call("POST", "/v1/orders/" + order + "/cancel", "", {{"If-Match", "\"1\""}}, false);
  EXPECT_EQ(r.status, 200);
  // If-Match means nothing to creating commands.
  r = Call("POST", "/v1/customers", R"({"name":"C","email":"c@x"})", {{"If-Match", "junk"}});
  EXPECT_EQ(r.status, 201);
}

TEST_F(CommandRoutesTest, IdempotentReplay) {
  const std::string body = R"({"name":"Ann","email":"ann@example.com"})";
  const Headers key = {{"Idempotency-Key", "key-1"}};
  const Response first = Call("POST", "/v1/customers", body, key);
  ASSERT_EQ(first.status, 201);
  const auto commits = store_.Commits();
  const Response again = Call("POST", "/v1/customers", body, key);
  EXPECT_EQ(again.status, 201);
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(again.Header("X-Consistency-Token"), first.Header("X-Consistency-Token"));
  EXPECT_EQ(store_.Commits(), commits);  // no work done again

  // Without the key it is a new command (and here a conflict).
  EXPECT_EQ(Call("POST", "/v1/customers", body).status, 409);

  // The same key with a different body.
  const Response reused =
      Call("POST", "/v1/customers", R"({"name":"Ann","email":"other@example.com"})", key);
  EXPECT_EQ(reused.status, 422);
  EXPECT_EQ(Code(reused), "idempotency_key_reused");
  // ... or the same body on another route.
  const Response other_route = Call("PATCH", "/v1/customers/" + Id(first), body, key);
  EXPECT_EQ(Code(other_route), "idempotency_key_reused");
}

TEST_F(CommandRoutesTest, IdempotentReplayOfATransition) {
  const std::string order = NewOrder(NewCustomer(), NewProduct());
  const Headers key = {{"Idempotency-Key", "pay-once"}};
  const std::string body = R"({"amount_cents":500,"payment_reference":"p"})";
  const Response first = Call("POST", "/v1/orders/" + order + "/pay", body, key);
  ASSERT_EQ(first.status, 200) << first.body;
  const Response again = Call("POST", "/v1/orders/" + order + "/pay", body, key);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, first.body);
}

TEST_F(CommandRoutesTest, InvalidIdempotencyKeys) {
  for (const std::string& bad :
       {std::string(""), std::string(201, 'k'), std::string("t\tab"), std::string("caf\xc3\xa9")}) {
    const Response r =
        Call("POST", "/v1/customers", R"({"name":"a","email":"a@b"})", {{"Idempotency-Key", bad}});
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(Code(r), "validation_failed");
    EXPECT_NE(Detail(r).find("Idempotency-Key"), std::string::npos);
  }
  const Response twice = Call("POST", "/v1/customers", R"({"name":"a","email":"a@b"})",
                              {{"Idempotency-Key", "a"}, {"Idempotency-Key", "b"}});
  EXPECT_EQ(twice.status, 400);
  const Response longest = Call("POST", "/v1/customers", R"({"name":"a","email":"a@b"})",
                                {{"Idempotency-Key", std::string(200, '~')}});
  EXPECT_EQ(longest.status, 201);
  EXPECT_EQ(store_.Commits(), 1u);
}

TEST_F(CommandRoutesTest, FingerprintIsSha256OfMethodPathBody) {
  // printf 'POST\n/v1/customers\n{}' | sha256sum
  EXPECT_EQ(RequestFingerprint("POST", "/v1/customers", "{}"),
            "sha256:7a5826c8b0caabe5b8f07e6b35161e12e04fbcda0313e8bf57b2667a570088de");
  // The earlier format, still matched for keys stored before: sha1 of the same text.
  EXPECT_EQ(LegacyRequestFingerprint("POST", "/v1/customers", "{}"),
            "6f7fb6a37fe1f763ee3bba1a1db7601c87f237aa");
}

TEST_F(CommandRoutesTest, TransientFailuresBeyondRetriesAre503) {
  store_.FailCommitsTransiently(1000);
  const Response r = Call("POST", "/v1/customers", R"({"name":"a","email":"a@b"})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Code(r), "service_unavailable");
  EXPECT_EQ(r.Header("Retry-After"), "1");
  store_.FailCommitsTransiently(0);
  EXPECT_EQ(Call("POST", "/v1/customers", R"({"name":"a","email":"a@b"})").status, 201);
}

TEST_F(CommandRoutesTest, AFewTransientFailuresAreRetried) {
  store_.FailCommitsTransiently(2);
  EXPECT_EQ(Call("POST", "/v1/customers", R"({"name":"a","email":"a@b"})").status, 201);
}

TEST_F(CommandRoutesTest, InfrastructureFaultsPropagateAndAreCounted) {
  store_.FailCommitsHard(1, "connection to server lost: secret");
  EXPECT_THROW(Call("POST", "/v1/customers", R"({"name":"a","email":"a@b"})"), std::runtime_error);
  EXPECT_NE(
      Rendered().find(
          R"(shopcqrs_commands_total{command="register_customer",outcome="internal_error"} 1)"),
      std::string::npos);
}

TEST_F(CommandRoutesTest, Metrics) {
  NewCustomer("a@x");
  Call("POST", "/v1/customers", R"({"name":"a","email":"a@x"})");
  Call("POST", "/v1/customers", R"({"name":"a"})");
  Call("POST", "/v1/customers", "{", {});
  const std::string text = Rendered();
  for (const char* line :
       {R"(shopcqrs_commands_total{command="register_customer",outcome="ok"} 1)",
        R"(shopcqrs_commands_total{command="register_customer",outcome="email_taken"} 1)",
        R"(shopcqrs_commands_total{command="register_customer",outcome="validation_failed"} 1)",
        R"(shopcqrs_commands_total{command="register_customer",outcome="malformed_json"} 1)",
        R"(shopcqrs_commands_total{command="place_order",outcome="ok"} 0)",
        R"(shopcqrs_command_duration_seconds_count{command="register_customer"} 4)",
        R"(shopcqrs_command_duration_seconds_bucket{command="register_customer",le="+Inf"} 4)",
        "# TYPE shopcqrs_command_duration_seconds histogram",
        "# TYPE shopcqrs_commands_total counter"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

TEST_F(CommandRoutesTest, RoutesRejectOtherMethods) {
  Response r = Call("GET", "/v1/orders/" + std::string(kUnknownId) + "/pay");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("Allow"), "POST");
  r = Call("PUT", "/v1/customers/" + std::string(kUnknownId), "{}");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("Allow"), "PATCH");
}

// The same routes behind the real server, over HTTP.
TEST_F(CommandRoutesTest, OverHttp) {
  HttpServer::Options options;
  options.host = "127.0.0.1";
  options.port = 0;
  HttpServer server(options, router_);
  server.Start();
  testing::HttpClient client("127.0.0.1", server.port());
  auto r = client.Post("/v1/customers", R"({"name":"Ann","email":"ann@x"})",
                       {{"Idempotency-Key", "k1"}, {"X-Request-Id", "req-7"}});
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.Header("X-Request-Id"), "req-7");
  EXPECT_FALSE(r.Header("X-Consistency-Token").empty());
  EXPECT_EQ(r.Header("Location"), "/v1/customers/" + std::string(r.Json().at("id").as_string()));
  auto again = client.Post("/v1/customers", R"({"name":"Ann","email":"ann@x"})",
                           {{"Idempotency-Key", "k1"}});
  EXPECT_EQ(again.status, 201);
  EXPECT_EQ(again.body, r.body);
  r = client.Request("POST", "/v1/orders/not-a-uuid/deliver");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.Json().at("code"), "not_found");
  server.Stop();
}

}  // namespace
}  // namespace shopcqrs::adapters::http
