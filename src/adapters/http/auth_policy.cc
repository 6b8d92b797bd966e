#include "adapters/http/auth_policy.h"

#include <algorithm>
#include <stdexcept>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "adapters/http/json_input.h"
#include "adapters/http/problem.h"
#include "adapters/http/route_table.h"
#include "domain/time.h"
#include "infra/http/json_body.h"
#include "infra/http/problem.h"

namespace shopcqrs::adapters::http {

using namespace infra::http;
using app::Principal;
using app::PrincipalRole;

namespace {

namespace json = boost::json;

constexpr std::size_t kMaxBuckets = 10'000;

// The token of `Authorization: Bearer <token>`; "" when there is no such header, nullopt when
// the header is there but is not one bearer credential.
std::optional<std::string_view> BearerToken(const Request& request) {
  const auto header = request.Header("Authorization");
  if (!header) return std::string_view();
  if (request.HeaderCount("Authorization") != 1) return std::nullopt;
  std::string_view value = *header;
  constexpr std::string_view kScheme = "Bearer ";
  if (value.size() <= kScheme.size() || !EqualsIgnoreCase(value.substr(0, 6), "Bearer") ||
      value[6] != ' ') {
    return std::nullopt;
  }
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  return value;
}

std::optional<Principal> PrincipalOfClaims(const infra::jwt::Claims& claims) {
  if (claims.role == "admin") return Principal::Admin(claims.sub);
  if (claims.role == "payments") return Principal::Payments(claims.sub);
  if (claims.role == "customer") {
    const auto id = domain::CustomerId::Parse(claims.sub);
    if (!id || id->ToString() != claims.sub) return std::nullopt;  // canonical ids only
    return Principal::Customer(*id);
  }
  return std::nullopt;  // an unknown role is no credential
}

bool Allows(Access access, const Principal& who) {
  switch (who.role) {
    case PrincipalRole::kSystem:
    case PrincipalRole::kAdmin:
      return true;
    case PrincipalRole::kCustomer:
      return access == Access::kOpen || access == Access::kAnyToken ||
             access == Access::kCustomerSelf || access == Access::kCustomer;
    case PrincipalRole::kPayments:
      return access == Access::kOpen || access == Access::kPayments;
    case PrincipalRole::kAnonymous:
      return access == Access::kOpen;
  }
  return false;
}

Response TooManyRequests() {
  Problem problem = MakeProblem(429, "too_many_requests",
                                "too many requests without a token from this address; retry later");
  problem.headers.emplace_back("Retry-After", "1");
  return ToResponse(problem);
}

}  // namespace

Authorizer::Authorizer(Options options) : options_(std::move(options)) {
  if (options_.enabled && !options_.keys) {
    throw std::invalid_argument("authentication needs a signing key");
  }
}

std::shared_ptr<Authorizer> Authorizer::Off() {
  return std::make_shared<Authorizer>(Options{.enabled = false});
}

Guard Authorizer::Guard() {
  return [this](Request& request, std::string_view method, std::string_view pattern) {
    return Check(request, method, pattern);
  };
}

std::optional<Principal> Authorizer::Authenticate(std::string_view token) const {
  if (!options_.keys) return std::nullopt;
  auto claims = options_.keys->Verify(token);
  if (!claims) return std::nullopt;
  return PrincipalOfClaims(*claims);
}

std::optional<Response> Authorizer::Check(Request& request, std::string_view method,
                                          std::string_view pattern) {
  if (!options_.enabled) {
    request.principal = Principal::System();
    return std::nullopt;
  }
  // A route the table does not know is the admin's (nothing is open by omission).
  const RouteSpec* route = FindRoute(method, pattern);
  const Access access = route != nullptr ? route->access : Access::kAdmin;

  const auto bearer = BearerToken(request);
  std::optional<Principal> who;
  if (bearer && !bearer->empty()) who = Authenticate(*bearer);

  if (access == Access::kOpen) {
    const Principal caller = who.value_or(Principal::Anonymous());
    if (caller.role == PrincipalRole::kAnonymous && route != nullptr &&
        route->role != ServingRole::kEvery && !TakeAnonymous(request.client_address)) {
      return TooManyRequests();
    }
    request.principal = caller;
    return std::nullopt;
  }
  if (!bearer) return Unauthorized("the Authorization header is not a bearer token");
  if (bearer->empty()) return Unauthorized("this route needs a bearer token");
  if (!who) return Unauthorized("the bearer token is not valid");
  if (!Allows(access, *who)) return Forbidden("this token may not use this route");
  if (access == Access::kCustomerSelf && who->IsCustomer()) {
    const auto id = domain::CustomerId::Parse(request.PathParam("id"));
    // Another customer's record is not revealed: 404 as for one that does not exist.
    if (!id || !who->IsCustomer(*id)) return ToResponse(NotFound("customer not found"));
  }
  request.principal = std::move(*who);
  return std::nullopt;
}

bool Authorizer::TakeAnonymous(const std::string& address) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(limit_mutex_);
  auto it = buckets_.find(address);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxBuckets) {
      // Forget the buckets that are full again (their addresses were quiet for a while).
      std::erase_if(buckets_, [&](const auto& entry) {
        const double refill = std::chrono::duration<double>(now - entry.second.at).count() *
                              options_.anonymous.per_second;
        return entry.second.tokens + refill >= options_.anonymous.burst;
      });
      if (buckets_.size() >= kMaxBuckets) buckets_.clear();
    }
    it = buckets_.emplace(address, Bucket{options_.anonymous.burst, now}).first;
  }
  Bucket& bucket = it->second;
  bucket.tokens = std::min(options_.anonymous.burst,
                           bucket.tokens + std::chrono::duration<double>(now - bucket.at).count() *
                                               options_.anonymous.per_second);
  bucket.at = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

Authorizer::Issued Authorizer::Issue(const Principal& who, std::chrono::seconds ttl) const {
  if (!options_.keys) throw std::logic_error("no signing key to issue tokens with");
  std::string role;
  switch (who.role) {
    case PrincipalRole::kAdmin:
      role = "admin";
      break;
    case PrincipalRole::kPayments:
      role = "payments";
      break;
    case PrincipalRole::kCustomer:
      role = "customer";
      break;
    default:
      throw std::logic_error("tokens are issued to admin, payments and customers only");
  }
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  infra::jwt::Claims claims{who.subject, role, now, now + ttl.count(), {}};
  return Issued{options_.keys->Sign(claims), claims.exp};
}

Principal PrincipalOf(const Request& request) {
  if (const auto* who = std::any_cast<Principal>(&request.principal)) return *who;
  return Principal::Anonymous();
}

Response Unauthorized(std::string_view detail) {
  Problem problem = MakeProblem(401, "unauthorized", detail);
  problem.headers.emplace_back("WWW-Authenticate", "Bearer");
  return ToResponse(problem);
}

Response Forbidden(std::string_view detail) {
  return ToResponse(MakeProblem(403, "forbidden", detail));
}

void RegisterTokenRoutes(Router& router, std::shared_ptr<Authorizer> authorizer) {
  const RouteSpec& route = Route("mint_token");
  router.Add(route.method, route.pattern, [authorizer](const Request& request) -> Response {
    auto body = ParseJsonBody(request, BodyPolicy::kRequired);
    if (!body) return ToResponse(body.error());
    if (!authorizer->can_issue()) {
      return ToResponse(
          MakeProblem(409, "auth_off", "authentication is off and no signing key is configured"));
    }
    auto ttl = OptionalInt64(*body, "ttl_s");
    if (!ttl) return ToResponse(FromError(ttl.error()));
    const std::int64_t max_ttl = authorizer->max_ttl().count();
    const std::int64_t ttl_s =
        ttl->value_or(std::min<std::int64_t>(kCustomerTokenTtl.count(), max_ttl));
    if (ttl_s < 1 || ttl_s > max_ttl) {
      return ToResponse(
          ValidationFailed("ttl_s must be an integer between 1 and " + std::to_string(max_ttl)));
    }
    auto customer = OptionalString(*body, "customer_id");
    if (!customer) return ToResponse(FromError(customer.error()));
    auto role = OptionalString(*body, "role");
    if (!role) return ToResponse(FromError(role.error()));
    if (customer->has_value() == role->has_value()) {
      return ToResponse(ValidationFailed("exactly one of customer_id, role is required"));
    }
    Principal who;
    if (*customer) {
      const auto id = domain::CustomerId::Parse(**customer);
      if (!id) return ToResponse(ValidationFailed("customer_id must be a UUID"));
      who = Principal::Customer(*id);
    } else if (**role == "admin") {
      who = Principal::Admin("admin");
    } else if (**role == "payments") {
      who = Principal::Payments("payments");
    } else {
      return ToResponse(ValidationFailed("role must be admin or payments"));
    }
    // Never stored under an Idempotency-Key: stored answers hold no credentials.
    const auto issued = authorizer->Issue(who, std::chrono::seconds(ttl_s));
    const auto expires = domain::Timestamp(std::chrono::seconds(issued.expires_at));
    Response response = Response::Json(
        201, json::serialize(json::object{{"access_token", issued.access_token},
                                          {"expires_at", domain::FormatTimestamp(expires)}}));
    response.SetHeader("Cache-Control", "no-store");
    return response;
  });
}

}  // namespace shopcqrs::adapters::http
