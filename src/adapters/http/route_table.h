#pragma once

// The service's HTTP routes, in one table: which role of a process serves each (API.md
// "Process roles"), and the name it is known by (metrics labels, logs). The Register*Routes
// functions add the handlers of the routes they implement under the table's method and pattern;
// a process adds `route_not_served` answers for the table's routes whose role it does not run.
// Every route is also described, under its name, in adapters/http/openapi.cc (GET /openapi.json);
// a route without a description fails OpenApiTest.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "infra/http/router.h"

namespace shopcqrs::adapters::http {

// A process role that serves routes (the relay serves none of its own).
enum class ServingRole {
  kCommand,    // the command routes, /v1/admin/tokens
  kQuery,      // the query routes (and live push)
  kProjector,  // /v1/admin/projections (and dead letters, rebuilds, the dashboard)
  kEvery,      // /healthz, /readyz, /metrics, /openapi.json: every process
};
std::string_view RoleName(ServingRole role);  // "command", "query", "projector", "every"

// Who may call a route (API.md "Authentication and authorization"). The policy of every route
// is this table's; adapters/http/auth_policy.h enforces it before any handler runs, and the
// use cases keep a customer to its own aggregates.
enum class Access {
  kOpen,          // no token needed (a valid one still names the caller; an unusable one is
                  // ignored); anonymous callers are rate-limited per client address
  kAnyToken,      // any valid customer or admin token (products' reads)
  kCustomerSelf,  // admin, or the customer whose id is the path's {id} (another: 404)
  kCustomer,      // admin, or a customer: the use case or query keeps it to its own orders
  kPayments,      // payments or admin
  kAdmin,         // admin only
  // Live push (not there yet) will add the stream routes with kCustomerSelf / kCustomer and a
  // flag accepting a `ticket` query parameter; POST /v1/tickets will be kAnyToken.
};
std::string_view AccessName(Access access);  // "open", "any_token", "customer_self", ...

struct RouteSpec {
  std::string_view method;
  std::string_view pattern;
  std::string_view name;  // e.g. "place_order"
  ServingRole role;
  Access access;
};

// The route added as (method, pattern); nullptr when the table has none.
const RouteSpec* FindRoute(std::string_view method, std::string_view pattern);

// Every route of the service, in registration order (literal segments before parameters:
// /v1/products/top before /v1/products/{id}).
std::span<const RouteSpec> RouteTable();

// The route named `name`; throws std::logic_error for a name the table lacks.
const RouteSpec& Route(std::string_view name);

// The roles a process serves routes for.
struct ServedRoles {
  bool command = false;
  bool query = false;
  bool projector = false;
  bool Serves(ServingRole role) const;
};

// For every route of the table whose role `served` lacks: 404 route_not_served ("this process
// does not run the <role> role"). Call after the served routes are registered.
void RegisterRoutesNotServed(infra::http::Router& router, ServedRoles served);

}  // namespace shopcqrs::adapters::http
