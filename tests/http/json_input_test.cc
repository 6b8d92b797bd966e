#include "adapters/http/json_input.h"
#include "infra/http/json_body.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace shopcqrs::adapters::http {
namespace {

using namespace infra::http;

namespace json = boost::json;

Request JsonRequest(std::string body, std::string content_type = "application/json") {
  Request request;
  request.method = "POST";
  request.SetTarget("/x");
  if (!content_type.empty()) request.headers.emplace_back("Content-Type", content_type);
  request.body = std::move(body);
  return request;
}

std::string ErrorCode(const std::expected<json::object, Problem>& parsed) {
  return parsed ? "" : parsed.error().code;
}

json::object Obj(std::string_view text) { return json::parse(text).as_object(); }

template <class T>
std::string Detail(const domain::Result<T>& result) {
  EXPECT_FALSE(result.has_value());
  if (result) return "";
  EXPECT_EQ(result.error().code, "validation_failed");
  EXPECT_EQ(result.error().category, domain::ErrorCategory::kValidation);
  return result.error().detail;
}

TEST(ContentTypeTest, AcceptsJsonWithParameters) {
  for (const char* type : {"application/json", "Application/JSON",
                           "application/json; charset=utf-8", "application/json;charset=UTF-8",
                           "application/json; charset=\"utf-8\"", " application/json ; foo=bar"}) {
    EXPECT_TRUE(IsJsonContentType(type)) << type;
  }
  for (const char* type :
       {"", "text/plain", "application/jsonx", "application/problem+json",
        "application/x-www-form-urlencoded", "application/json; charset=latin1"}) {
    EXPECT_FALSE(IsJsonContentType(type)) << type;
  }
}

TEST(ParseJsonBodyTest, ChecksMediaType) {
  EXPECT_EQ(ErrorCode(ParseJsonBody(JsonRequest("{}", ""))), "unsupported_media_type");
  EXPECT_EQ(ErrorCode(ParseJsonBody(JsonRequest("{}", "text/plain"))), "unsupported_media_type");
  const auto parsed = ParseJsonBody(JsonRequest("{}", "text/plain"));
  EXPECT_EQ(parsed.error().status, 415);
  EXPECT_TRUE(ParseJsonBody(JsonRequest("{}", "application/json; charset=utf-8")));
}

TEST(ParseJsonBodyTest, MalformedJson) {
  for (const char* body : {"{", "{\"a\":}", "nul", "{\"a\":1,}", "{} {}", "{\"a\":1} x", "// c\n{}",
                           "{'a':1}", "{\"a\":01}"}) {
    const auto parsed = ParseJsonBody(JsonRequest(body));
    EXPECT_EQ(ErrorCode(parsed), "malformed_json") << body;
    if (!parsed) {
      EXPECT_EQ(parsed.error().status, 400);
    }
  }
}

TEST(ParseJsonBodyTest, InvalidUtf8AndSurrogatesAreMalformed) {
  EXPECT_EQ(ErrorCode(ParseJsonBody(JsonRequest("{\"name\":\"\xff\xfe\"}"))), "malformed_json");
  EXPECT_EQ(ErrorCode(ParseJsonBody(JsonRequest("{\"name\":\"\xc3\"}"))), "malformed_json");
  EXPECT_EQ(ErrorCode(ParseJsonBody(JsonRequest("{\"name\":\"\\ud800\"}"))), "malformed_json");
  EXPECT_EQ(ErrorCode(ParseJsonBody(JsonRequest("{\"name\":\"\\udc00x\"}"))), "malformed_json");
  const auto ok = ParseJsonBody(JsonRequest("{\"name\":\"caf\xc3\xa9 \\ud83d\\ude00\"}"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->at("name"), "caf\xc3\xa9 \xf0\x9f\x98\x80");
}

TEST(ParseJsonBodyTest, TopLevelMustBeAnObject) {
  for (const char* body : {"[]", "1", "\"x\"", "null", "true"}) {
    EXPECT_EQ(ErrorCode(ParseJsonBody(JsonRequest(body))), "validation_failed") << body;
  }
}

TEST(ParseJsonBodyTest, DeepNestingIsMalformed) {
  std::string deep = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_EQ(ErrorCode(ParseJsonBody(JsonRequest(deep))), "malformed_json");
}

TEST(ParseJsonBodyTest, EmptyBody) {
  EXPECT_EQ(ErrorCode(ParseJsonBody(JsonRequest(""))), "malformed_json");
  EXPECT_EQ(ErrorCode(ParseJsonBody(JsonRequest("", ""))), "malformed_json");
  auto optional = ParseJsonBody(JsonRequest("", ""), BodyPolicy::kOptional);
  ASSERT_TRUE(optional);
  EXPECT_TRUE(optional->empty());
  EXPECT_TRUE(ParseJsonBody(JsonRequest("", "text/plain"), BodyPolicy::kOptional));
  // A body still needs its media type.
  EXPECT_EQ(ErrorCode(ParseJsonBody(JsonRequest("{}", ""), BodyPolicy::kOptional)),
            "unsupported_media_type");
  EXPECT_TRUE(ParseJsonBody(JsonRequest("{}"), BodyPolicy::kOptional));
}

TEST(ParseJsonBodyTest, UnknownFieldsAreKept) {
  auto parsed = ParseJsonBody(JsonRequest(R"({"name":"a","extra":{"x":[1,2]}})"));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*RequiredString(*parsed, "name"), "a");
}

TEST(StringFieldTest, Errors) {
  const json::object body = Obj(R"({"s":"x","n":1,"z":null,"nul":"a\u0000b","a":[]})");
  EXPECT_EQ(*RequiredString(body, "s"), "x");
  EXPECT_EQ(Detail(RequiredString(body, "missing")), "missing is required");
  EXPECT_EQ(Detail(RequiredString(body, "n")), "n must be a string");
  EXPECT_EQ(Detail(RequiredString(body, "z")), "z must be a string");
  EXPECT_EQ(Detail(RequiredString(body, "a")), "a must be a string");
  EXPECT_EQ(Detail(RequiredString(body, "nul")), "nul must not contain NUL (U+0000) characters");
  EXPECT_EQ(Detail(RequiredString(body, "n", "lines[3].")), "lines[3].n must be a string");
}

TEST(StringFieldTest, Optional) {
  const json::object body = Obj(R"({"s":"","n":1,"z":null})");
  EXPECT_EQ(*OptionalString(body, "s"), std::optional<std::string>(""));
  EXPECT_EQ(*OptionalString(body, "missing"), std::nullopt);
  EXPECT_EQ(*OptionalString(body, "z"), std::nullopt);
  EXPECT_EQ(Detail(OptionalString(body, "n")), "n must be a string");
}

TEST(IntFieldTest, AcceptsIntegersOnly) {
  const json::object body = Obj(R"({
    "zero": 0, "neg": -5, "max": 9223372036854775807, "min": -9223372036854775808,
    "too_big": 9223372036854775808, "huge": 100000000000000000000000000000,
    "float": 1.5, "whole_float": 5.0, "exp": 1e3, "neg_zero": -0.0,
    "bool": true, "str": "5", "null": null, "arr": [1], "obj": {}
  })");
  EXPECT_EQ(*RequiredInt64(body, "zero"), 0);
  EXPECT_EQ(*RequiredInt64(body, "neg"), -5);
  EXPECT_EQ(*RequiredInt64(body, "max"), INT64_MAX);
  EXPECT_EQ(*RequiredInt64(body, "min"), INT64_MIN);
  EXPECT_EQ(Detail(RequiredInt64(body, "too_big")), "too_big is out of range");
  EXPECT_EQ(Detail(RequiredInt64(body, "huge")), "huge is out of range");
  for (const char* key :
       {"float", "whole_float", "exp", "neg_zero", "bool", "str", "null", "arr", "obj"}) {
    EXPECT_EQ(Detail(RequiredInt64(body, key)), std::string(key) + " must be an integer");
  }
  EXPECT_EQ(Detail(RequiredInt64(body, "missing")), "missing is required");
}

TEST(IntFieldTest, Optional) {
  const json::object body = Obj(R"({"a":3,"z":null,"f":2.5})");
  EXPECT_EQ(*OptionalInt64(body, "a"), std::optional<std::int64_t>(3));
  EXPECT_EQ(*OptionalInt64(body, "z"), std::nullopt);
  EXPECT_EQ(*OptionalInt64(body, "missing"), std::nullopt);
  EXPECT_EQ(Detail(OptionalInt64(body, "f")), "f must be an integer");
}

TEST(UuidFieldTest, RequiresCanonicalText) {
  const json::object body = Obj(R"({
    "ok": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
    "upper": "3F2504E0-4F89-41D3-9A0C-0305E82C3301",
    "short": "3f2504e0-4f89-41d3-9a0c-0305e82c330",
    "braces": "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}",
    "nodash": "3f2504e04f8941d39a0c0305e82c3301",
    "num": 5
  })");
  ASSERT_TRUE(RequiredUuid(body, "ok"));
  EXPECT_EQ(RequiredUuid(body, "ok")->ToString(), "3f2504e0-4f89-41d3-9a0c-0305e82c3301");
  EXPECT_TRUE(RequiredUuid(body, "upper"));
  for (const char* key : {"short", "braces", "nodash", "num"}) {
    EXPECT_EQ(Detail(RequiredUuid(body, key)), std::string(key) + " must be a UUID");
  }
  EXPECT_EQ(Detail(RequiredUuid(body, "missing")), "missing is required");
}

TEST(OrderLinesTest, ParsesLines) {
  const json::object body = Obj(R"({"lines":[
    {"product_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","quantity":2,"extra":true},
    {"product_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3302","quantity":1}]})");
  auto lines = OrderLines(body);
  ASSERT_TRUE(lines) << lines.error().detail;
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[0].product_id.ToString(), "3f2504e0-4f89-41d3-9a0c-0305e82c3301");
  EXPECT_EQ((*lines)[0].quantity, 2);
  EXPECT_EQ((*lines)[1].quantity, 1);
}

TEST(OrderLinesTest, NamesTheOffendingElement) {
  const std::string good = R"({"product_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","quantity":1})";
  EXPECT_EQ(Detail(OrderLines(Obj("{}"))), "lines is required");
  EXPECT_EQ(Detail(OrderLines(Obj(R"({"lines":{}})"))), "lines must be an array");
  EXPECT_EQ(Detail(OrderLines(Obj(R"({"lines":[]})"))),
            "lines must contain between 1 and 100 items");
  EXPECT_EQ(Detail(OrderLines(Obj("{\"lines\":[" + good + ",5]}"))), "lines[1] must be an object");
  EXPECT_EQ(Detail(OrderLines(Obj("{\"lines\":[" + good + "," + good +
                                  R"(,{"product_id":"nope","quantity":1}]})"))),
            "lines[2].product_id must be a UUID");
  EXPECT_EQ(Detail(OrderLines(
                Obj(R"({"lines":[{"product_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301"}]})"))),
            "lines[0].quantity is required");
  EXPECT_EQ(
      Detail(OrderLines(Obj(
          R"({"lines":[{"product_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","quantity":1.5}]})"))),
      "lines[0].quantity must be an integer");
  std::string many = "{\"lines\":[";
  for (int i = 0; i < 101; ++i) many += (i ? "," : "") + good;
  many += "]}";
  EXPECT_EQ(Detail(OrderLines(Obj(many))), "lines must contain between 1 and 100 items");
}

}  // namespace
}  // namespace shopcqrs::adapters::http
