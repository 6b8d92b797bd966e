#include "adapters/http/command_routes.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <memory>

#include <openssl/evp.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "adapters/http/auth_policy.h"
#include "adapters/http/json_input.h"
#include "adapters/http/problem.h"
#include "adapters/http/route_table.h"
#include "domain/ids.h"
#include "infra/http/json_body.h"

namespace shopcqrs::adapters::http {

using namespace infra::http;

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using Outcome = std::expected<Response, Problem>;

// ---- instrumentation ----

struct Instruments {
  infra::metrics::CounterFamily* total;
  infra::metrics::Counter* ok;
  infra::metrics::Histogram* duration;
  std::string command;
};

template <class Fn>
Handler Instrumented(infra::metrics::Registry& registry, std::string command, Fn fn) {
  auto& total = registry.AddCounter("shopcqrs_commands_total",
                                    "Commands handled over HTTP, by command and outcome (ok or "
                                    "the problem code).",
                                    {"command", "outcome"});
  auto& duration = registry.AddHistogram("shopcqrs_command_duration_seconds",
                                         "Time to handle a command over HTTP, from parsed "
                                         "request to response.",
                                         {"command"});
  auto instruments = std::make_shared<Instruments>(Instruments{
      &total, &total.WithLabels({command, "ok"}), &duration.WithLabels({command}), command});
  return [instruments, fn = std::move(fn)](const Request& request) -> Response {
    const auto start = Clock::now();
    auto finish = [&](std::string_view outcome) {
      instruments->duration->Observe(std::chrono::duration<double>(Clock::now() - start).count());
      if (outcome == "ok") {
        instruments->ok->Inc();
      } else {
        instruments->total->WithLabels({instruments->command, outcome}).Inc();
      }
    };
    try {
      Outcome outcome = fn(request);
      if (outcome) {
        finish("ok");
        return std::move(*outcome);
      }
      finish(outcome.error().code);
      return ToResponse(outcome.error());
    } catch (const app::TransientStoreError& e) {
      spdlog::warn("command {} failed after retries request_id={} error={}", instruments->command,
                   request.request_id, e.what());
      finish("service_unavailable");
      return ToResponse(ServiceUnavailable("service_unavailable",
                                           "the write database is busy; retry the request", 1));
    } catch (const app::StoreUnavailable& e) {
      spdlog::warn("command {} failed: store unavailable request_id={} error={}",
                   instruments->command, request.request_id, e.what());
      finish("service_unavailable");
      return ToResponse(
          ServiceUnavailable("service_unavailable", "the write database is unavailable", 1));
    } catch (...) {
      finish("internal_error");
      throw;
    }
  };
}

// ---- request pieces ----

struct Envelope {
  json::object body;
  std::optional<app::Idempotency> key;
  std::optional<std::int64_t> expected_version;
};

std::expected<Envelope, Problem> ReadEnvelope(const Request& request, BodyPolicy policy,
                                              bool uses_if_match) {
  Envelope envelope;
  auto body = ParseJsonBody(request, policy);
  if (!body) return std::unexpected(std::move(body.error()));
  envelope.body = std::move(*body);
  auto key = ParseIdempotencyKey(request);
  if (!key) return std::unexpected(std::move(key.error()));
  envelope.key = std::move(*key);
  if (uses_if_match) {
    auto version = ParseIfMatch(request);
    if (!version) return std::unexpected(std::move(version.error()));
    envelope.expected_version = *version;
  }
  return envelope;
}

template <class IdType>
std::expected<IdType, Problem> PathId(const Request& request, std::string_view what) {
  auto id = IdType::Parse(request.PathParam("id"));
  if (!id) return std::unexpected(NotFound(fmt::format("{} not found", what)));
  return *id;
}

Problem Invalid(const domain::Error& error) { return FromError(error); }

// ---- responses ----

Response Success(int status, const app::CommandResult& result, json::object body,
                 std::string_view location_prefix) {
  Response response = Response::Json(status, json::serialize(body));
  response.headers.reserve(3);
  response.headers.emplace_back("X-Consistency-Token", result.consistency_token);
  response.headers.emplace_back("ETag", fmt::format("\"{}\"", result.version));
  if (status == 201 && !location_prefix.empty()) {
    response.headers.emplace_back("Location", fmt::format("{}/{}", location_prefix, result.id));
  }
  return response;
}

// A sign-up answers a customer token for the new customer (when the service has a signing key)
// -- but a replayed one does not: stored answers never hold credentials.
Outcome CustomerCreated(const app::CommandResult& r, const Authorizer& authorizer) {
  json::object body;
  body["id"] = r.id;
  body["name"] = r.name.value_or("");
  body["email"] = r.email.value_or("");
  body["version"] = r.version;
  body["consistency_token"] = r.consistency_token;
  const auto id = domain::CustomerId::Parse(r.id);
  const bool with_token = !r.replayed && authorizer.can_issue() && id;
  if (with_token) {
    body["access_token"] =
        authorizer.Issue(app::Principal::Customer(*id), authorizer.customer_ttl()).access_token;
  }
  Response response = Success(201, r, std::move(body), "/v1/customers");
  if (with_token) response.SetHeader("Cache-Control", "no-store");
  return response;
}

Outcome ProductCreated(const app::CommandResult& r) {
  json::object body;
  body["id"] = r.id;
  body["sku"] = r.sku.value_or("");
  body["name"] = r.name.value_or("");
  body["price_cents"] = r.price_cents.value_or(0);
  body["stock"] = r.stock.value_or(0);
  body["version"] = r.version;
  body["consistency_token"] = r.consistency_token;
  return Success(201, r, std::move(body), "/v1/products");
}

Outcome OrderCreated(const app::CommandResult& r) {
  json::object body;
  body["id"] = r.id;
  body["status"] = r.status.value_or("placed");
  body["total_cents"] = r.total_cents.value_or(0);
  body["version"] = r.version;
  body["consistency_token"] = r.consistency_token;
  return Success(201, r, std::move(body), "/v1/orders");
}

Outcome VersionOnly(const app::CommandResult& r) {
  json::object body;
  body["id"] = r.id;
  body["version"] = r.version;
  body["consistency_token"] = r.consistency_token;
  return Success(200, r, std::move(body), {});
}

Outcome OrderStatus(const app::CommandResult& r, std::string_view expected_status) {
  json::object body;
  body["id"] = r.id;
  body["status"] = r.status ? std::string_view(*r.status) : expected_status;
  body["version"] = r.version;
  body["consistency_token"] = r.consistency_token;
  return Success(200, r, std::move(body), {});
}

template <class Render>
Outcome Map(const domain::Result<app::CommandResult>& result, Render render) {
  if (!result) return std::unexpected(FromError(result.error()));
  return render(*result);
}

// ---- commands ----

Outcome RegisterCustomer(app::CommandService& service, const Request& request,
                         const Authorizer& authorizer) {
  auto envelope = ReadEnvelope(request, BodyPolicy::kRequired, false);
  if (!envelope) return std::unexpected(std::move(envelope.error()));
  app::RegisterCustomer cmd;
  auto name = RequiredString(envelope->body, "name");
  if (!name) return std::unexpected(Invalid(name.error()));
  auto email = RequiredString(envelope->body, "email");
  if (!email) return std::unexpected(Invalid(email.error()));
  cmd.name = std::move(*name);
  cmd.email = std::move(*email);
  return Map(service.Handle(cmd, envelope->key, PrincipalOf(request)),
             [&](const app::CommandResult& r) { return CustomerCreated(r, authorizer); });
}

Outcome ChangeCustomerDetails(app::CommandService& service, const Request& request) {
  auto id = PathId<domain::CustomerId>(request, "customer");
  if (!id) return std::unexpected(std::move(id.error()));
  auto envelope = ReadEnvelope(request, BodyPolicy::kRequired, true);
  if (!envelope) return std::unexpected(std::move(envelope.error()));
  app::ChangeCustomerDetails cmd;
  cmd.id = *id;
  cmd.expected_version = envelope->expected_version;
  auto name = OptionalString(envelope->body, "name");
  if (!name) return std::unexpected(Invalid(name.error()));
  auto email = OptionalString(envelope->body, "email");
  if (!email) return std::unexpected(Invalid(email.error()));
  if (!*name && !*email) {
    return std::unexpected(ValidationFailed("at least one of name, email is required"));
  }
  cmd.name = std::move(*name);
  cmd.email = std::move(*email);
  return Map(service.Handle(cmd, envelope->key, PrincipalOf(request)), VersionOnly);
}

Outcome AddProduct(app::CommandService& service, const Request& request) {
  auto envelope = ReadEnvelope(request, BodyPolicy::kRequired, false);
  if (!envelope) return std::unexpected(std::move(envelope.error()));
  const json::object& body = envelope->body;
  app::AddProduct cmd;
  auto sku = RequiredString(body, "sku");
  if (!sku) return std::unexpected(Invalid(sku.error()));
  auto name = RequiredString(body, "name");
  if (!name) return std::unexpected(Invalid(name.error()));
  auto price = RequiredInt64(body, "price_cents");
  if (!price) return std::unexpected(Invalid(price.error()));
  auto stock = RequiredInt64(body, "stock");
  if (!stock) return std::unexpected(Invalid(stock.error()));
  cmd.sku = std::move(*sku);
  cmd.name = std::move(*name);
  cmd.price_cents = *price;
  cmd.stock = *stock;
  return Map(service.Handle(cmd, envelope->key, PrincipalOf(request)), ProductCreated);
}

Outcome ChangeProductPrice(app::CommandService& service, const Request& request) {
  auto id = PathId<domain::ProductId>(request, "product");
  if (!id) return std::unexpected(std::move(id.error()));
  auto envelope = ReadEnvelope(request, BodyPolicy::kRequired, true);
  if (!envelope) return std::unexpected(std::move(envelope.error()));
  app::ChangeProductPrice cmd;
  cmd.id = *id;
  cmd.expected_version = envelope->expected_version;
  auto price = RequiredInt64(envelope->body, "price_cents");
  if (!price) return std::unexpected(Invalid(price.error()));
  cmd.price_cents = *price;
  return Map(service.Handle(cmd, envelope->key, PrincipalOf(request)), VersionOnly);
}

Outcome RestockProduct(app::CommandService& service, const Request& request) {
  auto id = PathId<domain::ProductId>(request, "product");
  if (!id) return std::unexpected(std::move(id.error()));
  auto envelope = ReadEnvelope(request, BodyPolicy::kRequired, true);
  if (!envelope) return std::unexpected(std::move(envelope.error()));
  app::RestockProduct cmd;
  cmd.id = *id;
  cmd.expected_version = envelope->expected_version;
  auto quantity = RequiredInt64(envelope->body, "quantity");
  if (!quantity) return std::unexpected(Invalid(quantity.error()));
  cmd.quantity = *quantity;
  return Map(service.Handle(cmd, envelope->key, PrincipalOf(request)), VersionOnly);
}

Outcome PlaceOrder(app::CommandService& service, const Request& request) {
  auto envelope = ReadEnvelope(request, BodyPolicy::kRequired, false);
  if (!envelope) return std::unexpected(std::move(envelope.error()));
  app::PlaceOrder cmd;
  auto customer = RequiredUuid(envelope->body, "customer_id");
  if (!customer) return std::unexpected(Invalid(customer.error()));
  auto lines = OrderLines(envelope->body);
  if (!lines) return std::unexpected(Invalid(lines.error()));
  cmd.customer_id = domain::CustomerId(*customer);
  cmd.lines = std::move(*lines);
  return Map(service.Handle(cmd, envelope->key, PrincipalOf(request)), OrderCreated);
}

Outcome PayOrder(app::CommandService& service, const Request& request) {
  auto id = PathId<domain::OrderId>(request, "order");
  if (!id) return std::unexpected(std::move(id.error()));
  auto envelope = ReadEnvelope(request, BodyPolicy::kRequired, true);
  if (!envelope) return std::unexpected(std::move(envelope.error()));
  app::PayOrder cmd;
  cmd.id = *id;
  cmd.expected_version = envelope->expected_version;
  auto amount = RequiredInt64(envelope->body, "amount_cents");
  if (!amount) return std::unexpected(Invalid(amount.error()));
  auto reference = RequiredString(envelope->body, "payment_reference");
  if (!reference) return std::unexpected(Invalid(reference.error()));
  cmd.amount_cents = *amount;
  cmd.payment_reference = std::move(*reference);
  return Map(service.Handle(cmd, envelope->key, PrincipalOf(request)),
             [](const app::CommandResult& r) { return OrderStatus(r, "paid"); });
}

Outcome ShipOrder(app::CommandService& service, const Request& request) {
  auto id = PathId<domain::OrderId>(request, "order");
  if (!id) return std::unexpected(std::move(id.error()));
  auto envelope = ReadEnvelope(request, BodyPolicy::kRequired, true);
  if (!envelope) return std::unexpected(std::move(envelope.error()));
  app::ShipOrder cmd;
  cmd.id = *id;
  cmd.expected_version = envelope->expected_version;
  auto tracking = RequiredString(envelope->body, "tracking_number");
  if (!tracking) return std::unexpected(Invalid(tracking.error()));
  cmd.tracking_number = std::move(*tracking);
  return Map(service.Handle(cmd, envelope->key, PrincipalOf(request)),
             [](const app::CommandResult& r) { return OrderStatus(r, "shipped"); });
}

Outcome DeliverOrder(app::CommandService& service, const Request& request) {
  auto id = PathId<domain::OrderId>(request, "order");
  if (!id) return std::unexpected(std::move(id.error()));
  auto envelope = ReadEnvelope(request, BodyPolicy::kOptional, true);
  if (!envelope) return std::unexpected(std::move(envelope.error()));
  app::DeliverOrder cmd;
  cmd.id = *id;
  cmd.expected_version = envelope->expected_version;
  return Map(service.Handle(cmd, envelope->key, PrincipalOf(request)),
             [](const app::CommandResult& r) { return OrderStatus(r, "delivered"); });
}

Outcome CancelOrder(app::CommandService& service, const Request& request) {
  auto id = PathId<domain::OrderId>(request, "order");
  if (!id) return std::unexpected(std::move(id.error()));
  auto envelope = ReadEnvelope(request, BodyPolicy::kOptional, true);
  if (!envelope) return std::unexpected(std::move(envelope.error()));
  app::CancelOrder cmd;
  cmd.id = *id;
  cmd.expected_version = envelope->expected_version;
  auto reason = OptionalString(envelope->body, "reason");
  if (!reason) return std::unexpected(Invalid(reason.error()));
  cmd.reason = reason->value_or("");
  return Map(service.Handle(cmd, envelope->key, PrincipalOf(request)),
             [](const app::CommandResult& r) { return OrderStatus(r, "cancelled"); });
}

bool ValidKeyChar(char c) { return c >= 0x20 && c <= 0x7E; }  // printable ASCII

// Lowercase hex of `md` over method + "\n" + path + "\n" + body (OpenSSL EVP).
std::string DigestHex(const EVP_MD* md, std::string_view method, std::string_view path,
                      std::string_view body) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), method.data(), method.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), "\n", 1) != 1 ||
      EVP_DigestUpdate(ctx.get(), path.data(), path.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), "\n", 1) != 1 ||
      EVP_DigestUpdate(ctx.get(), body.data(), body.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &size) != 1) {
    throw std::runtime_error("request digest failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * size, '0');
  for (unsigned int i = 0; i < size; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace

std::string RequestFingerprint(std::string_view method, std::string_view path,
                               std::string_view body) {
  return "sha256:" + DigestHex(EVP_sha256(), method, path, body);
}

std::string LegacyRequestFingerprint(std::string_view method, std::string_view path,
                                     std::string_view body) {
  return DigestHex(EVP_sha1(), method, path, body);
}

std::expected<std::optional<app::Idempotency>, Problem> ParseIdempotencyKey(
    const Request& request) {
  const auto key = request.Header("Idempotency-Key");
  if (!key) return std::optional<app::Idempotency>();
  if (request.HeaderCount("Idempotency-Key") > 1) {
    return std::unexpected(ValidationFailed("Idempotency-Key must be sent at most once"));
  }
  if (key->empty() || key->size() > kMaxIdempotencyKeyLength ||
      !std::all_of(key->begin(), key->end(), ValidKeyChar)) {
    return std::unexpected(
        ValidationFailed("Idempotency-Key must be 1..200 printable ASCII characters"));
  }
  return std::optional<app::Idempotency>(app::Idempotency{
      std::string(*key), RequestFingerprint(request.method, request.path, request.body),
      LegacyRequestFingerprint(request.method, request.path, request.body)});
}

std::expected<std::optional<std::int64_t>, Problem> ParseIfMatch(const Request& request) {
  const auto header = request.Header("If-Match");
  if (!header) return std::optional<std::int64_t>();
  const auto invalid = [] {
    return std::unexpected(ValidationFailed(
        "If-Match must be a version in double quotes, e.g. \"3\" (or bare digits)"));
  };
  if (request.HeaderCount("If-Match") > 1) return invalid();
  std::string_view value = *header;
  if (value == "*") return std::optional<std::int64_t>();
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  if (value.empty() || value.size() > 18 ||
      !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return invalid();
  }
  std::int64_t version = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), version);
  if (ec != std::errc() || end != value.data() + value.size()) return invalid();
  return std::optional<std::int64_t>(version);
}

void RegisterCommandRoutes(Router& router, app::CommandService& service,
                           infra::metrics::Registry& registry,
                           std::shared_ptr<Authorizer> authorizer) {
  if (!authorizer) authorizer = Authorizer::Off();
  auto add = [&](std::string_view name, auto fn) {
    const RouteSpec& route = Route(name);
    router.Add(
        route.method, route.pattern,
        Instrumented(registry, std::string(route.name),
                     [&service, fn](const Request& request) { return fn(service, request); }));
  };
  add("register_customer", [authorizer](app::CommandService& service, const Request& request) {
    return RegisterCustomer(service, request, *authorizer);
  });
  add("change_customer_details", ChangeCustomerDetails);
  add("add_product", AddProduct);
  add("change_product_price", ChangeProductPrice);
  add("restock_product", RestockProduct);
  add("place_order", PlaceOrder);
  add("pay_order", PayOrder);
  add("ship_order", ShipOrder);
  add("deliver_order", DeliverOrder);
  add("cancel_order", CancelOrder);
  RegisterTokenRoutes(router, std::move(authorizer));
}

}  // namespace shopcqrs::adapters::http
