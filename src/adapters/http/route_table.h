#pragma once

// The service's HTTP routes, in one table: which role of a process serves each (API.md
// "Process roles"), and the name it is known by (metrics labels, logs). The Register*Routes
// functions add the handlers of the routes they implement under the table's method and pattern;
// a process adds `route_not_served` answers for the table's routes whose role it does not run.

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
  kEvery,      // /healthz, /readyz, /metrics: every process
};
std::string_view RoleName(ServingRole role);  // "command", "query", "projector", "every"

struct RouteSpec {
  std::string_view method;
  std::string_view pattern;
  std::string_view name;  // e.g. "place_order"
  ServingRole role;
};

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
