#include "adapters/http/problem.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace shopcqrs::adapters::http {
namespace {

using namespace infra::http;

namespace json = boost::json;

TEST(ProblemTest, MapsErrorCategoriesToStatus) {
  EXPECT_EQ(StatusFor(domain::ErrorCategory::kValidation), 400);
  EXPECT_EQ(StatusFor(domain::ErrorCategory::kNotFound), 404);
  EXPECT_EQ(StatusFor(domain::ErrorCategory::kConflict), 409);
  EXPECT_EQ(StatusFor(domain::ErrorCategory::kPrecondition), 412);
  EXPECT_EQ(StatusFor(domain::ErrorCategory::kBusinessRule), 422);
}

TEST(ProblemTest, RendersRfc7807Json) {
  const Response response =
      ToResponse(FromError(domain::InvalidTransition("cannot ship an order in status placed")));
  EXPECT_EQ(response.status, 409);
  EXPECT_EQ(response.content_type, "application/problem+json");
  const json::object body = json::parse(response.body).as_object();
  EXPECT_EQ(body.size(), 5u);
  EXPECT_EQ(body.at("type"), "urn:shopcqrs:problem:invalid_transition");
  EXPECT_EQ(body.at("title"), "Conflict");
  EXPECT_EQ(body.at("status"), 409);
  EXPECT_EQ(body.at("detail"), "cannot ship an order in status placed");
  EXPECT_EQ(body.at("code"), "invalid_transition");
}

TEST(ProblemTest, DetailIsJsonEscaped) {
  const Response response = ToResponse(ValidationFailed("name \"x\"\n\\ <ok>"));
  EXPECT_EQ(json::parse(response.body).at("detail"), "name \"x\"\n\\ <ok>");
}

TEST(ProblemTest, Helpers) {
  struct Case {
    Problem problem;
    int status;
    const char* code;
  };
  const Case cases[] = {
      {ValidationFailed("name is required"), 400, "validation_failed"},
      {MalformedJson("bad"), 400, "malformed_json"},
      {NotFound(), 404, "not_found"},
      {MethodNotAllowed("GET"), 405, "method_not_allowed"},
      {PayloadTooLarge(), 413, "payload_too_large"},
      {UnsupportedMediaType(), 415, "unsupported_media_type"},
      {IdempotencyKeyReused(), 422, "idempotency_key_reused"},
      {InternalError(), 500, "internal_error"},
      {ServiceUnavailable("read_model_behind", "behind"), 503, "read_model_behind"},
      {FromError(domain::VersionMismatch("v")), 412, "version_mismatch"},
      {FromError(domain::BusinessRule("amount_mismatch", "x")), 422, "amount_mismatch"},
      {FromError(domain::NotFound("order not found")), 404, "not_found"},
  };
  for (const Case& c : cases) {
    const Response response = ToResponse(c.problem);
    EXPECT_EQ(response.status, c.status) << c.code;
    const json::value body = json::parse(response.body);
    EXPECT_EQ(body.at("status"), c.status) << c.code;
    EXPECT_EQ(body.at("code"), c.code);
    EXPECT_FALSE(body.at("title").as_string().empty());
    EXPECT_FALSE(body.at("detail").as_string().empty());
  }
}

TEST(ProblemTest, InternalErrorLeaksNothing) {
  const json::value body = json::parse(ToResponse(InternalError()).body);
  EXPECT_EQ(body.at("title"), "Internal Server Error");
  EXPECT_EQ(body.at("code"), "internal_error");
}

TEST(ProblemTest, ExtraHeadersAndMembers) {
  Response response = ToResponse(MethodNotAllowed("GET, HEAD"));
  EXPECT_EQ(response.Header("Allow"), "GET, HEAD");

  Problem problem = ServiceUnavailable("read_model_behind", "waited 2000 ms", 1);
  problem.extras["checks"] = json::object{{"redis", "down"}};
  problem.extras["status"] = "ignored: standard members win";
  response = ToResponse(problem);
  EXPECT_EQ(response.Header("Retry-After"), "1");
  const json::value body = json::parse(response.body);
  EXPECT_EQ(body.at("checks").at("redis"), "down");
  EXPECT_EQ(body.at("status"), 503);
}

}  // namespace
}  // namespace shopcqrs::adapters::http
