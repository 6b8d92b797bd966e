#include "adapters/http/openapi.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "infra/http/problem.h"

namespace shopcqrs::adapters::http {

using namespace infra::http;

namespace {

namespace json = boost::json;

// ---------------------------------------------------------------------------------------------
// The description of each route, keyed by its name in the route table.
//
// To describe a new route: add its entry below (any order), with
//   .route    the table's name;            .summary  one line;  .description  optional prose;
//   .query    its query parameters ({name, JSON schema, description, required});
//   .headers  the request headers it reads: kIdempotencyKey, kIfMatch, kConsistency (the
//             consistency token, as header or query parameter, and X-Consistency-Wait-Ms);
//   .body     kRequired / kOptional with .request, the body's schema (openapi_schemas.cc);
//   .status / .answer / .media   its success: status, the schema of the body (a name in
//             openapi_schemas.cc; none for an answer without a body) and the media type
//             (text/html, text/event-stream: a schema of type string); .answer_headers
//             (components.headers);
//   .errors   the problems of its own: {status, {codes}} (e.g. {409, {"email_taken"}}).
// Do not list what the generator derives (Generate below): 400 validation_failed and 500
// internal_error (every route), 401/403 (every route that needs a token), 404 not_found (a path
// id, kCustomerSelf), 429 (open routes that do work), 400 malformed_json / 413 / 415 (a body),
// 422 idempotency_key_reused (kIdempotencyKey), 412 version_mismatch (kIfMatch),
// 503 read_model_behind (kConsistency). Give every new problem code a meaning in kMeanings.
// Then run http_tests (OpenApiTest) and the black-box validation (blackbox_openapi).
// ---------------------------------------------------------------------------------------------

enum RequestHeaders : unsigned {
  kIdempotencyKey = 1,
  kIfMatch = 2,
  kConsistency = 4,
};

enum class Body { kNone, kRequired, kOptional };

struct Param {
  std::string_view name;
  std::string_view schema;  // JSON
  std::string_view description;
  bool required = false;
};

struct Errors {
  int status;
  std::vector<std::string_view> codes;
  std::string_view extras = {};  // JSON object: extension members of the problem and their schemas
};

struct Description {
  std::string_view route;
  std::string_view summary;
  std::string_view description = {};
  std::vector<Param> query = {};
  unsigned headers = 0;
  Body body = Body::kNone;
  std::string_view request = {};
  int status = 200;
  std::string_view answer = {};
  std::string_view media = "application/json";
  std::vector<std::string_view> answer_headers = {};
  std::vector<Errors> errors = {};
};

const Param kLimit{"limit", R"({"type":"integer","minimum":1,"maximum":100,"default":20})",
                   "Page size."};
const Param kCursor{"cursor", R"({"type":"string"})",
                    "Opaque: the next_cursor of the previous page."};
const Param kStatusFilter{"status", R"({"$ref":"#/components/schemas/OrderStatus"})",
                          "Only orders in this status."};

const std::vector<std::string_view> kCommandAnswer = {"X-Consistency-Token", "ETag"};
const std::vector<std::string_view> kCreatedAnswer = {"X-Consistency-Token", "ETag", "Location"};
const Errors kWriteDbDown{503, {"service_unavailable"}};
const Errors kReadStoreDown{503, {"service_unavailable"}};

const std::vector<Description>& Descriptions() {
  static const std::vector<Description> kDescriptions = {
      // ---- commands (API.md "Commands") ----
      {.route = "register_customer",
       .summary = "Sign up a customer",
       .description = "Needs no token. Answers a customer token for the new customer as "
                      "access_token (with Cache-Control: no-store), except on a replay.",
       .headers = kIdempotencyKey,
       .body = Body::kRequired,
       .request = "RegisterCustomerRequest",
       .status = 201,
       .answer = "CustomerRegistered",
       .answer_headers = {"X-Consistency-Token", "ETag", "Location", "Cache-Control"},
       .errors = {{409, {"email_taken"}}, kWriteDbDown}},
      {.route = "change_customer_details",
       .summary = "Change a customer's name or e-mail",
       .headers = kIdempotencyKey | kIfMatch,
       .body = Body::kRequired,
       .request = "ChangeCustomerDetailsRequest",
       .answer = "Changed",
       .answer_headers = kCommandAnswer,
       .errors = {{409, {"email_taken"}}, kWriteDbDown}},
      {.route = "add_product",
       .summary = "Add a product",
       .headers = kIdempotencyKey,
       .body = Body::kRequired,
       .request = "AddProductRequest",
       .status = 201,
       .answer = "ProductAdded",
       .answer_headers = kCreatedAnswer,
       .errors = {{409, {"sku_taken"}}, kWriteDbDown}},
      {.route = "change_product_price",
       .summary = "Change a product's price",
       .headers = kIdempotencyKey | kIfMatch,
       .body = Body::kRequired,
       .request = "ChangeProductPriceRequest",
       .answer = "Changed",
       .answer_headers = kCommandAnswer,
       .errors = {kWriteDbDown}},
      {.route = "restock_product",
       .summary = "Add stock to a product",
       .headers = kIdempotencyKey | kIfMatch,
       .body = Body::kRequired,
       .request = "RestockProductRequest",
       .answer = "Changed",
       .answer_headers = kCommandAnswer,
       .errors = {kWriteDbDown}},
      {.route = "place_order",
       .summary = "Place an order",
       .description = "Captures each line's unit price, SKU and product name and reserves the "
                      "stock atomically. A customer places orders for itself only (another "
                      "customer_id: 403 forbidden).",
       .headers = kIdempotencyKey,
       .body = Body::kRequired,
       .request = "PlaceOrderRequest",
       .status = 201,
       .answer = "OrderPlaced",
       .answer_headers = kCreatedAnswer,
       .errors = {{409, {"insufficient_stock"}},
                  {422, {"unknown_customer", "unknown_product"}},
                  kWriteDbDown}},
      {.route = "pay_order",
       .summary = "Record the payment of a placed order",
       .headers = kIdempotencyKey | kIfMatch,
       .body = Body::kRequired,
       .request = "PayOrderRequest",
       .answer = "OrderPaid",
       .answer_headers = kCommandAnswer,
       .errors = {{409, {"invalid_transition"}}, {422, {"amount_mismatch"}}, kWriteDbDown}},
      {.route = "ship_order",
       .summary = "Ship a paid order",
       .headers = kIdempotencyKey | kIfMatch,
       .body = Body::kRequired,
       .request = "ShipOrderRequest",
       .answer = "OrderShipped",
       .answer_headers = kCommandAnswer,
       .errors = {{409, {"invalid_transition"}}, kWriteDbDown}},
      {.route = "deliver_order",
       .summary = "Mark a shipped order delivered",
       .headers = kIdempotencyKey | kIfMatch,
       .body = Body::kOptional,
       .request = "DeliverOrderRequest",
       .answer = "OrderDelivered",
       .answer_headers = kCommandAnswer,
       .errors = {{409, {"invalid_transition"}}, kWriteDbDown}},
      {.route = "cancel_order",
       .summary = "Cancel a placed or paid order",
       .description = "Returns the reserved stock; a paid order records a refund of its total. "
                      "A customer cancels its own orders only while they are placed (a paid "
                      "one: 403 forbidden).",
       .headers = kIdempotencyKey | kIfMatch,
       .body = Body::kOptional,
       .request = "CancelOrderRequest",
       .answer = "OrderCancelled",
       .answer_headers = kCommandAnswer,
       .errors = {{409, {"invalid_transition"}}, kWriteDbDown}},
      {.route = "mint_token",
       .summary = "Mint an access token",
       .description = "Never stored under an Idempotency-Key: a retry mints a new token.",
       .body = Body::kRequired,
       .request = "MintTokenRequest",
       .status = 201,
       .answer = "TokenMinted",
       .answer_headers = {"Cache-Control"},
       .errors = {{409, {"auth_off"}}}},

      // ---- queries (API.md "Queries") ----
      {.route = "get_order",
       .summary = "An order",
       .description = "404 until the order is projected (send the command's consistency token).",
       .headers = kConsistency,
       .answer = "OrderView",
       .errors = {kReadStoreDown}},
      {.route = "list_orders",
       .summary = "Order summaries, newest placed_at first",
       .description = "A customer lists its own orders only.",
       .query = {kStatusFilter,
                 {"customer_id", R"({"$ref":"#/components/schemas/Uuid"})",
                  "Only this customer's orders."},
                 kLimit,
                 kCursor},
       .headers = kConsistency,
       .answer = "OrderPage",
       .errors = {kReadStoreDown}},
      {.route = "customer_orders",
       .summary = "A customer's order summaries, newest first",
       .description = "404 while the customer is not in the read model.",
       .query = {kLimit, kCursor},
       .headers = kConsistency,
       .answer = "OrderPage",
       .errors = {kReadStoreDown}},
      {.route = "get_customer",
       .summary = "A customer and its statistics",
       .headers = kConsistency,
       .answer = "CustomerView",
       .errors = {kReadStoreDown}},
      {.route = "top_products",
       .summary = "Products by units sold",
       .description = "revenue_cents is null for customers.",
       .query = {kLimit},
       .headers = kConsistency,
       .answer = "TopProducts",
       .errors = {kReadStoreDown}},
      {.route = "get_product",
       .summary = "A product and its sales",
       .description = "revenue_cents is null for customers.",
       .headers = kConsistency,
       .answer = "ProductView",
       .errors = {kReadStoreDown}},
      {.route = "search_orders",
       .summary = "Ranked, typo-tolerant order search",
       .description = "Orders whose customer name or e-mail, product name or SKU, or tracking "
                      "number match the words of q, best first. A customer searches its own "
                      "orders only.",
       .query = {{"q", R"({"type":"string","minLength":1,"maxLength":200})", "The words.", true},
                 kStatusFilter,
                 {"from", R"({"$ref":"#/components/schemas/Date"})", "Placed on or after."},
                 {"to", R"({"$ref":"#/components/schemas/Date"})", "Placed on or before."},
                 kLimit,
                 kCursor},
       .headers = kConsistency,
       .answer = "OrderPage",
       .errors = {kReadStoreDown}},
      {.route = "daily_sales",
       .summary = "Sales per UTC day",
       .query = {{"from", R"({"$ref":"#/components/schemas/Date"})", "First day.", true},
                 {"to", R"({"$ref":"#/components/schemas/Date"})",
                  "Last day (at most 366 days after from).", true}},
       .headers = kConsistency,
       .answer = "DailySales",
       .errors = {kReadStoreDown}},

      // ---- operations (API.md "Operations") ----
      {.route = "list_projections",
       .summary = "The projections and the relay this process runs",
       .answer = "Projections"},
      {.route = "list_dead_letters",
       .summary = "The aggregates the projections of this process have parked (dead letters)",
       .query = {{"projection", R"({"type":"string","minLength":1})",
                  "Only this projection's (404 not_found when this process runs none of that "
                  "name)."}},
       .answer = "DeadLetters",
       .errors = {{404, {"not_found"}}}},
      {.route = "retry_dead_letters",
       .summary = "Re-apply a parked aggregate's events in order",
       .description = "One transaction with the projection's checkpoint; when they still fail "
                      "they stay parked (409).",
       .answer = "Resolved",
       .errors = {{409, {"still_failing"}}, {503, {"service_unavailable"}}}},
      {.route = "skip_dead_letters",
       .summary = "Set a parked aggregate's first event aside, then re-apply the rest",
       .description = "The skip is recorded (who, when, which event) in the projection's skip "
                      "list, which every later projection of the log into that store honours.",
       .answer = "Resolved",
       .errors = {{409, {"still_failing"}}, {503, {"service_unavailable"}}}},
      {.route = "healthz", .summary = "Liveness", .answer = "Health"},
      {.route = "readyz",
       .summary = "Readiness of the stores and the broker of this process's roles",
       .answer = "Ready",
       .errors = {{503,
                   {"service_unavailable"},
                   R"({"checks":{"$ref":"#/components/schemas/Checks"},)"
                   R"("auth":{"type":"string","enum":["on","off"]}})"}}},
      {.route = "metrics",
       .summary = "Prometheus metrics",
       .answer = "Metrics",
       .media = "text/plain"},
      {.route = "openapi",
       .summary = "This document: the routes this process serves",
       .answer = "OpenApi"},
  };
  return kDescriptions;
}

// What each problem code means (the answers' descriptions).
const std::map<std::string_view, std::string_view>& Meanings() {
  static const std::map<std::string_view, std::string_view> kMeanings = {
      {"validation_failed",
       "a parameter, header or body field is missing, mistyped or out of range (detail names "
       "it), or the query string is not valid percent-encoding"},
      {"malformed_json", "the body is not JSON (or not UTF-8), or is empty where one is needed"},
      {"unauthorized", "no or unusable bearer token"},
      {"forbidden", "the token may not do this"},
      {"not_found",
       "no such resource (a path id that is not a UUID, or another customer's, included)"},
      {"payload_too_large", "the body is over 1 MiB"},
      {"unsupported_media_type", "the body is not sent as application/json"},
      {"too_many_requests", "too many requests without a token from this address"},
      {"idempotency_key_reused", "the Idempotency-Key was used with another request"},
      {"version_mismatch", "If-Match names another version than the current one"},
      {"read_model_behind",
       "the read store has not applied the consistency token within X-Consistency-Wait-Ms "
       "(parked: the events it waits for are parked as dead letters)"},
      {"service_unavailable", "a store the answer needs cannot be reached, or is not ready"},
      {"internal_error", "an unexpected fault (logged with the request id)"},
      {"email_taken", "another customer has this e-mail"},
      {"sku_taken", "another product has this SKU"},
      {"insufficient_stock", "a line asks for more than the product's stock"},
      {"unknown_customer", "customer_id names no customer"},
      {"unknown_product", "a line names no product"},
      {"invalid_transition", "the order's status does not allow this"},
      {"amount_mismatch", "amount_cents differs from the order's total"},
      {"auth_off", "authentication is off and no signing key is configured"},
      {"still_failing",
       "the parked events still cannot be applied (detail says why); they stay parked"},
  };
  return kMeanings;
}

const Description* DescriptionOf(std::string_view route) {
  for (const Description& d : Descriptions()) {
    if (d.route == route) return &d;
  }
  return nullptr;
}

json::value Json(std::string_view text) { return json::parse(text); }

json::object Ref(std::string_view where, std::string_view name) {
  return json::object{
      {"$ref", std::string("#/components/") + std::string(where) + "/" + std::string(name)}};
}

std::string_view TagOf(ServingRole role) {
  switch (role) {
    case ServingRole::kCommand:
      return "commands";
    case ServingRole::kQuery:
      return "queries";
    case ServingRole::kProjector:
      return "projections";
    case ServingRole::kEvery:
      return "operations";
  }
  return "operations";
}

std::string_view AccessText(Access access) {
  switch (access) {
    case Access::kOpen:
      return "Open: no token needed.";
    case Access::kAnyToken:
      return "Any valid customer or admin token.";
    case Access::kCustomerSelf:
      return "Admin, or the customer whose id is in the path (another customer: 404).";
    case Access::kCustomer:
      return "Admin, or a customer (kept to its own orders).";
    case Access::kPayments:
      return "Payments or admin.";
    case Access::kAdmin:
      return "Admin only.";
  }
  return "";
}

// The problem answers of one operation, merged by status.
struct ProblemAnswer {
  std::set<std::string> codes;
  json::object extras;
};
using ProblemAnswers = std::map<int, ProblemAnswer>;

void AddProblem(ProblemAnswers& answers, int status, std::initializer_list<std::string_view> codes,
                std::string_view extras = {}) {
  ProblemAnswer& answer = answers[status];
  for (std::string_view code : codes) answer.codes.emplace(code);
  if (!extras.empty()) {
    const json::value parsed = Json(extras);
    for (const auto& [key, value] : parsed.as_object()) answer.extras[key] = value;
  }
}

// The problems of a route: derived from its table row and its description, then its own.
ProblemAnswers ProblemsOf(const RouteSpec& route, const Description* d) {
  ProblemAnswers answers;
  AddProblem(answers, 400, {"validation_failed"});
  AddProblem(answers, 500, {"internal_error"});
  if (route.access != Access::kOpen) {
    AddProblem(answers, 401, {"unauthorized"});
    AddProblem(answers, 403, {"forbidden"});
  }
  if (route.access == Access::kCustomerSelf || route.pattern.find('{') != std::string_view::npos) {
    AddProblem(answers, 404, {"not_found"});
  }
  // The anonymous limit (auth_policy.h) applies to the open routes that do work.
  if (route.access == Access::kOpen && route.role != ServingRole::kEvery) {
    AddProblem(answers, 429, {"too_many_requests"});
  }
  if (d == nullptr) return answers;
  if (d->body != Body::kNone) {
    AddProblem(answers, 400, {"malformed_json"});
    AddProblem(answers, 413, {"payload_too_large"});
    AddProblem(answers, 415, {"unsupported_media_type"});
  }
  if (d->headers & kIdempotencyKey) AddProblem(answers, 422, {"idempotency_key_reused"});
  if (d->headers & kIfMatch) AddProblem(answers, 412, {"version_mismatch"});
  if (d->headers & kConsistency) {
    AddProblem(answers, 503, {"read_model_behind"},
               R"({"parked":{"type":"boolean","description":"The token waits for events )"
               R"(parked as dead letters."}})");
  }
  for (const Errors& errors : d->errors) {
    ProblemAnswer& answer = answers[errors.status];
    for (std::string_view code : errors.codes) answer.codes.emplace(code);
    if (!errors.extras.empty()) {
      const json::value parsed = Json(errors.extras);
      for (const auto& [key, value] : parsed.as_object()) answer.extras[key] = value;
    }
  }
  return answers;
}

// components.responses: each distinct problem answer once, named after its status, codes and
// extension members (e.g. problem_409_email_taken).
class Components {
 public:
  json::object ProblemResponse(int status, const ProblemAnswer& answer) {
    std::string name = "problem_" + std::to_string(status);
    for (const std::string& code : answer.codes) name += "_" + code;
    if (!answer.extras.empty()) {
      name += "_with";
      for (const auto& [key, value] : answer.extras) name += "_" + std::string(key);
    }
    if (!responses_.contains(name)) responses_[name] = Build(status, answer);
    return Ref("responses", name);
  }

  json::object TakeResponses() { return std::move(responses_); }

 private:
  static json::object Build(int status, const ProblemAnswer& answer) {
    json::array codes;
    json::array types;
    std::string description = std::string(ReasonPhrase(status)) + ".";
    for (const std::string& code : answer.codes) {
      codes.emplace_back(code);
      types.emplace_back(ProblemType(code));
      const auto meaning = Meanings().find(code);
      description += " `" + code + "`";
      if (meaning != Meanings().end()) description += ": " + std::string(meaning->second);
      description += ".";
    }
    json::object properties{
        {"type", {{"$ref", "#/components/schemas/ProblemType"}, {"enum", types}}},
        {"title", {{"const", ReasonPhrase(status)}}},
        {"status", {{"const", status}}},
        {"detail", {{"type", "string"}}},
        {"code", {{"enum", codes}}}};
    for (const auto& [key, value] : answer.extras) properties[key] = value;
    json::object schema{{"type", "object"},
                        {"required", json::array{"type", "title", "status", "detail", "code"}},
                        {"additionalProperties", false},
                        {"properties", std::move(properties)}};
    json::object headers{{"X-Request-Id", Ref("headers", "X-Request-Id")}};
    if (status == 401) headers["WWW-Authenticate"] = Ref("headers", "WWW-Authenticate");
    if (status == 429 || status == 503) headers["Retry-After"] = Ref("headers", "Retry-After");
    return json::object{
        {"description", description},
        {"headers", std::move(headers)},
        {"content",
         {{std::string(kProblemContentType), json::object{{"schema", std::move(schema)}}}}}};
  }

  json::object responses_;
};

json::object Parameter(std::string_view in, const Param& param) {
  json::object p{{"name", param.name},
                 {"in", in},
                 {"required", param.required},
                 {"schema", Json(param.schema)}};
  if (!param.description.empty()) p["description"] = param.description;
  return p;
}

json::object Operation(const RouteSpec& route, const Description* d, Components& components) {
  json::object op;
  op["operationId"] = route.name;
  op["tags"] = json::array{TagOf(route.role)};
  op["summary"] = d != nullptr ? d->summary : std::string_view("(not described)");
  std::string description(AccessText(route.access));
  if (d != nullptr && !d->description.empty()) description += " " + std::string(d->description);
  op["description"] = description;
  op["x-shopcqrs-access"] = AccessName(route.access);
  op["x-shopcqrs-role"] = RoleName(route.role);
  if (d == nullptr) op["x-shopcqrs-undescribed"] = true;
  op["security"] = route.access == Access::kOpen
                       ? json::array()
                       : json::array{json::object{{"bearer", json::array()}}};

  json::array parameters;
  // The path's parameters: every `{name}` of the pattern is an id.
  for (std::size_t at = route.pattern.find('{'); at != std::string_view::npos;
       at = route.pattern.find('{', at + 1)) {
    const std::size_t end = route.pattern.find('}', at);
    const std::string_view name = route.pattern.substr(at + 1, end - at - 1);
    if (name == "projection") {  // a name, not an id
      parameters.push_back(
          json::object{{"name", name},
                       {"in", "path"},
                       {"required", true},
                       {"description",
                        "A projection's name (read_pg, search, redis); another is 404 not_found."},
                       {"schema", json::object{{"type", "string"}, {"minLength", 1}}}});
      continue;
    }
    parameters.push_back(
        json::object{{"name", name},
                     {"in", "path"},
                     {"required", true},
                     {"description", "An id; any text that is not a UUID is 404 not_found."},
                     {"schema", Ref("schemas", "Uuid")}});
  }
  if (d != nullptr) {
    for (const Param& param : d->query) parameters.push_back(Parameter("query", param));
    if (d->headers & kConsistency) {
      parameters.push_back(Ref("parameters", "X-Consistency-Token"));
      parameters.push_back(Ref("parameters", "consistency_token"));
      parameters.push_back(Ref("parameters", "X-Consistency-Wait-Ms"));
    }
    if (d->headers & kIdempotencyKey) parameters.push_back(Ref("parameters", "Idempotency-Key"));
    if (d->headers & kIfMatch) parameters.push_back(Ref("parameters", "If-Match"));
  }
  parameters.push_back(Ref("parameters", "X-Request-Id"));
  op["parameters"] = std::move(parameters);

  if (d != nullptr && d->body != Body::kNone) {
    op["requestBody"] = json::object{
        {"required", d->body == Body::kRequired},
        {"description", d->body == Body::kOptional ? "Optional: no body is the same as {}."
                                                   : "A JSON object; unknown fields are ignored."},
        {"content", {{"application/json", json::object{{"schema", Ref("schemas", d->request)}}}}}};
  }

  json::object responses;
  if (d != nullptr) {
    json::object headers{{"X-Request-Id", Ref("headers", "X-Request-Id")}};
    for (std::string_view header : d->answer_headers) {
      headers[header] = Ref("headers", header);
    }
    json::object success{{"description", d->summary}, {"headers", std::move(headers)}};
    // No .answer: an answer without a body (e.g. 204).
    if (!d->answer.empty()) {
      success["content"] =
          json::object{{d->media, json::object{{"schema", Ref("schemas", d->answer)}}}};
    }
    responses[std::to_string(d->status)] = std::move(success);
  }
  for (const auto& [status, answer] : ProblemsOf(route, d)) {
    responses[std::to_string(status)] = components.ProblemResponse(status, answer);
  }
  op["responses"] = std::move(responses);
  return op;
}

json::object Parameters() {
  return json::object{
      {"X-Consistency-Token",
       {{"name", "X-Consistency-Token"},
        {"in", "header"},
        {"required", false},
        {"description",
         "A command's consistency token: the query waits until its read store has applied it "
         "(else 503 read_model_behind). A token the service did not issue is 400."},
        {"schema", Ref("schemas", "ConsistencyToken")}}},
      {"consistency_token",
       {{"name", "consistency_token"},
        {"in", "query"},
        {"required", false},
        {"description", "The same as X-Consistency-Token (the header wins)."},
        {"schema", Ref("schemas", "ConsistencyToken")}}},
      {"X-Consistency-Wait-Ms",
       {{"name", "X-Consistency-Wait-Ms"},
        {"in", "header"},
        {"required", false},
        {"description", "How long to wait for the consistency token, in ms."},
        {"schema", Json(R"({"type":"integer","minimum":0,"maximum":10000,"default":2000})")}}},
      {"Idempotency-Key",
       {{"name", "Idempotency-Key"},
        {"in", "header"},
        {"required", false},
        {"description",
         "A retry with the same key and request answers the stored answer; the same key with "
         "another request is 422 idempotency_key_reused. Scoped to the caller; kept 24 h."},
        {"schema", Json(R"({"type":"string","minLength":1,"maxLength":200,)"
                        R"("pattern":"^[\\x20-\\x7e]+$"})")}}},
      {"If-Match",
       {{"name", "If-Match"},
        {"in", "header"},
        {"required", false},
        {"description",
         "\"<version>\" (or bare digits, or *): when the aggregate's version differs, 412 "
         "version_mismatch and nothing changes."},
        {"schema", Json(R"({"type":"string","pattern":"^(\\*|\"[0-9]{1,18}\"|[0-9]{1,18})$"})")}}},
      {"X-Request-Id",
       {{"name", "X-Request-Id"},
        {"in", "header"},
        {"required", false},
        {"description", "Echoed in the answer when 1..200 printable characters."},
        {"schema", Json(R"({"type":"string","maxLength":200})")}}},
  };
}

json::object Headers() {
  auto header = [](std::string_view description, std::string_view schema, bool required) {
    return json::object{
        {"description", description}, {"required", required}, {"schema", Json(schema)}};
  };
  return json::object{
      {"X-Request-Id", header("The request's id (the client's when usable, else a new UUID).",
                              R"({"type":"string","minLength":1})", true)},
      {"X-Consistency-Token", header("The consistency_token of the answer.",
                                     R"({"$ref":"#/components/schemas/ConsistencyToken"})", true)},
      {"ETag", header("\"<version>\"", R"({"type":"string","pattern":"^\"[0-9]+\"$"})", true)},
      {"Location",
       header("The created resource's path.", R"({"type":"string","pattern":"^/v1/"})", true)},
      {"Cache-Control",
       header("no-store on answers that hold a credential.", R"({"const":"no-store"})", false)},
      {"Retry-After", header("Seconds.", R"({"type":"string","pattern":"^[0-9]+$"})", true)},
      {"WWW-Authenticate", header("The scheme to use.", R"({"const":"Bearer"})", true)},
  };
}

std::string DescribeRoles(ServedRoles served) {
  std::string roles;
  auto add = [&](bool on, std::string_view name) {
    if (!on) return;
    if (!roles.empty()) roles += ", ";
    roles += name;
  };
  add(served.command, "command");
  add(served.query, "query");
  add(served.projector, "projector");
  return roles.empty() ? std::string("none") : roles;
}

}  // namespace

json::object OpenApiDocument(ServedRoles served) {
  Components components;
  json::object paths;
  for (const RouteSpec& route : RouteTable()) {
    if (!served.Serves(route.role)) continue;
    std::string method(route.method);
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    json::value& path = paths[route.pattern];
    if (!path.is_object()) path = json::object();
    path.as_object()[method] = Operation(route, DescriptionOf(route.name), components);
  }

  json::object info{
      {"title", "shopcqrs"},
      {"version", "v1"},
      {"description",
       "The CQRS order service's HTTP API (contract v1). This document describes the routes "
       "this process serves (roles: " +
           DescribeRoles(served) +
           "); a route of another role answers 404 route_not_served here. Errors are RFC 7807 "
           "problems; `code` is the stable machine code."}};
  json::array tags;
  for (const auto& [name, text] : {std::pair{"commands", "Write side (the write database)."},
                                   std::pair{"queries", "Read side (the read stores)."},
                                   std::pair{"projections", "The projections and the relay."},
                                   std::pair{"operations", "Every process."}}) {
    tags.push_back(json::object{{"name", name}, {"description", text}});
  }
  json::object security_schemes{
      {"bearer",
       {{"type", "http"},
        {"scheme", "bearer"},
        {"bearerFormat", "JWT"},
        {"description",
         "An access token signed by the service (JWS HS256 with kid; claims sub, role "
         "(admin, payments, customer), iat, exp). From POST /v1/customers (customer), "
         "POST /v1/admin/tokens, `shopcqrs token`, or <data-dir>/admin-token of `shopcqrs up`."}}}};
  json::object document{
      {"openapi", "3.1.0"},
      {"jsonSchemaDialect", "https://json-schema.org/draft/2020-12/schema"},
      {"info", std::move(info)},
      {"tags", std::move(tags)},
      {"security", json::array{json::object{{"bearer", json::array()}}}},
      {"paths", std::move(paths)},
  };
  document["components"] = json::object{{"schemas", OpenApiSchemas()},
                                        {"responses", components.TakeResponses()},
                                        {"parameters", Parameters()},
                                        {"headers", Headers()},
                                        {"securitySchemes", std::move(security_schemes)}};
  return document;
}

std::vector<std::string_view> UndescribedRoutes() {
  std::vector<std::string_view> names;
  for (const RouteSpec& route : RouteTable()) {
    if (DescriptionOf(route.name) == nullptr) names.push_back(route.name);
  }
  return names;
}

std::vector<std::string_view> DescriptionsWithoutRoute() {
  std::vector<std::string_view> names;
  for (const Description& d : Descriptions()) {
    const bool known = std::any_of(RouteTable().begin(), RouteTable().end(),
                                   [&](const RouteSpec& r) { return r.name == d.route; });
    if (!known) names.push_back(d.route);
  }
  return names;
}

std::vector<std::string> CodesWithoutMeaning() {
  std::set<std::string> missing;
  for (const RouteSpec& route : RouteTable()) {
    for (const auto& [status, answer] : ProblemsOf(route, DescriptionOf(route.name))) {
      for (const std::string& code : answer.codes) {
        if (!Meanings().contains(code)) missing.insert(code);
      }
    }
  }
  return {missing.begin(), missing.end()};
}

void RegisterOpenApiRoute(Router& router, ServedRoles served) {
  const RouteSpec& route = Route("openapi");
  auto body = std::make_shared<const std::string>(json::serialize(OpenApiDocument(served)));
  router.Add(route.method, route.pattern,
             [body](const Request&) { return Response::Json(200, *body); });
}

}  // namespace shopcqrs::adapters::http
