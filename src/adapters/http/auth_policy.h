#pragma once

// Authentication and authorization of the HTTP API (API.md "Authentication and
// authorization"), decided in one place: the router's guard (Authorizer::Guard) runs before every
// handler, looks the matched route up in the route table (route_table.h) and applies its
// Access policy:
//
//   - credentials: `Authorization: Bearer <JWT>` only (never a query parameter); a token must
//     verify against the key ring (infra/jwt: HS256, kid, bounded skew) and carry a known role
//     (`admin`, `payments`, `customer` with a customer id as `sub`);
//   - no or unusable token on a route that needs one: 401 unauthorized with
//     `WWW-Authenticate: Bearer`; a valid token the route's policy refuses: 403 forbidden; a
//     customer naming another customer in a kCustomerSelf route's {id}: 404 not_found;
//   - kOpen routes: a valid token names the caller, an unusable one is ignored; callers without
//     one are limited per client address on the open routes that do work (sign-up), 429
//     too_many_requests with Retry-After;
//   - the principal goes into `request.principal` (PrincipalOf), and from there into the use
//     cases, which keep a customer to its own aggregates.
//
// With auth.mode = "off" every request is app::Principal::System() (and /readyz says so).
// Nothing here logs a token or a key.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "application/principal.h"
#include "infra/http/router.h"
#include "infra/jwt/jwt.h"

namespace shopcqrs::adapters::http {

inline constexpr std::chrono::seconds kCustomerTokenTtl{24 * 3600};
inline constexpr std::chrono::seconds kDefaultMaxTtl{30 * 24 * 3600};

// Requests without a token on the open routes that do work, per client address: a token bucket
// of `burst` requests refilled at `per_second`.
struct AnonymousLimit {
  double per_second = 20;
  double burst = 100;
};

class Authorizer {
 public:
  struct Options {
    bool enabled = true;                              // false: auth.mode = "off"
    std::shared_ptr<const infra::jwt::KeyRing> keys;  // needed when enabled; optional when off
    std::chrono::seconds max_ttl = kDefaultMaxTtl;
    std::chrono::seconds customer_ttl = kCustomerTokenTtl;  // sign-up tokens
    AnonymousLimit anonymous;
  };

  // Throws std::invalid_argument when enabled without keys.
  explicit Authorizer(Options options);
  // Authentication off, no keys: every request is Principal::System().
  static std::shared_ptr<Authorizer> Off();

  bool enabled() const { return options_.enabled; }
  bool can_issue() const { return options_.keys != nullptr; }
  std::chrono::seconds max_ttl() const { return options_.max_ttl; }
  std::chrono::seconds customer_ttl() const { return options_.customer_ttl; }

  // The router guard (see above). The Authorizer must outlive the router.
  infra::http::Guard Guard();
  std::optional<infra::http::Response> Check(infra::http::Request& request, std::string_view method,
                                             std::string_view pattern);

  // The principal of a bearer token (nullopt when it is not a usable one).
  std::optional<app::Principal> Authenticate(std::string_view token) const;

  struct Issued {
    std::string access_token;
    std::int64_t expires_at = 0;  // seconds since the epoch
  };
  // A token for `who` (admin, payments or customer) valid for `ttl`. Throws std::logic_error
  // without keys or for another role.
  Issued Issue(const app::Principal& who, std::chrono::seconds ttl) const;

 private:
  bool TakeAnonymous(const std::string& address);

  Options options_;
  std::mutex limit_mutex_;
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
  };
  std::map<std::string, Bucket, std::less<>> buckets_;
};

// The principal the guard put on the request; Principal::Anonymous() when none did.
app::Principal PrincipalOf(const infra::http::Request& request);

// The problems of authentication.
infra::http::Response Unauthorized(std::string_view detail);  // 401 + WWW-Authenticate: Bearer
infra::http::Response Forbidden(std::string_view detail);     // 403

// POST /v1/admin/tokens (admin): {"customer_id", "ttl_s"} or {"role": "admin"|"payments",
// "ttl_s"} → 201 {"access_token", "expires_at"}. Registered with the command routes.
void RegisterTokenRoutes(infra::http::Router& router, std::shared_ptr<Authorizer> authorizer);

}  // namespace shopcqrs::adapters::http
