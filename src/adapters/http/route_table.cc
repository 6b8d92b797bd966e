#include "adapters/http/route_table.h"

#include <array>
#include <stdexcept>

#include "infra/http/problem.h"

namespace shopcqrs::adapters::http {

namespace {

using enum ServingRole;

constexpr std::array kRoutes{
    // Commands (API.md "Commands").
    RouteSpec{"POST", "/v1/customers", "register_customer", kCommand, Access::kOpen},
    RouteSpec{"PATCH", "/v1/customers/{id}", "change_customer_details", kCommand,
              Access::kCustomerSelf},
    RouteSpec{"POST", "/v1/products", "add_product", kCommand, Access::kAdmin},
    RouteSpec{"POST", "/v1/products/{id}/price", "change_product_price", kCommand, Access::kAdmin},
    RouteSpec{"POST", "/v1/products/{id}/restock", "restock_product", kCommand, Access::kAdmin},
    RouteSpec{"POST", "/v1/orders", "place_order", kCommand, Access::kCustomer},
    RouteSpec{"POST", "/v1/orders/{id}/pay", "pay_order", kCommand, Access::kPayments},
    RouteSpec{"POST", "/v1/orders/{id}/ship", "ship_order", kCommand, Access::kAdmin},
    RouteSpec{"POST", "/v1/orders/{id}/deliver", "deliver_order", kCommand, Access::kAdmin},
    RouteSpec{"POST", "/v1/orders/{id}/cancel", "cancel_order", kCommand, Access::kCustomer},
    RouteSpec{"POST", "/v1/admin/tokens", "mint_token", kCommand, Access::kAdmin},
    // Queries (API.md "Queries").
    RouteSpec{"GET", "/v1/orders/{id}", "get_order", kQuery, Access::kCustomer},
    RouteSpec{"GET", "/v1/orders", "list_orders", kQuery, Access::kCustomer},
    RouteSpec{"GET", "/v1/customers/{id}/orders", "customer_orders", kQuery, Access::kCustomerSelf},
    RouteSpec{"GET", "/v1/customers/{id}", "get_customer", kQuery, Access::kCustomerSelf},
    RouteSpec{"GET", "/v1/products/top", "top_products", kQuery, Access::kAnyToken},
    RouteSpec{"GET", "/v1/products/{id}", "get_product", kQuery, Access::kAnyToken},
    RouteSpec{"GET", "/v1/search/orders", "search_orders", kQuery, Access::kCustomer},
    RouteSpec{"GET", "/v1/stats/daily-sales", "daily_sales", kQuery, Access::kAdmin},
    // Operations.
    RouteSpec{"GET", "/v1/admin/projections", "list_projections", kProjector, Access::kAdmin},
    RouteSpec{"GET", "/v1/admin/dead-letters", "list_dead_letters", kProjector, Access::kAdmin},
    RouteSpec{"POST", "/v1/admin/dead-letters/{projection}/{aggregate_id}/retry",
              "retry_dead_letters", kProjector, Access::kAdmin},
    RouteSpec{"POST", "/v1/admin/dead-letters/{projection}/{aggregate_id}/skip",
              "skip_dead_letters", kProjector, Access::kAdmin},
    RouteSpec{"GET", "/healthz", "healthz", kEvery, Access::kOpen},
    RouteSpec{"GET", "/readyz", "readyz", kEvery, Access::kOpen},
    RouteSpec{"GET", "/metrics", "metrics", kEvery, Access::kAdmin},
    // The OpenAPI description of the routes the process serves (adapters/http/openapi.h).
    RouteSpec{"GET", "/openapi.json", "openapi", kEvery, Access::kOpen},
};

}  // namespace

std::string_view RoleName(ServingRole role) {
  switch (role) {
    case kCommand:
      return "command";
    case kQuery:
      return "query";
    case kProjector:
      return "projector";
    case kEvery:
      return "every";
  }
  return "unknown";
}

std::string_view AccessName(Access access) {
  switch (access) {
    case Access::kOpen:
      return "open";
    case Access::kAnyToken:
      return "any_token";
    case Access::kCustomerSelf:
      return "customer_self";
    case Access::kCustomer:
      return "customer";
    case Access::kPayments:
      return "payments";
    case Access::kAdmin:
      return "admin";
  }
  return "unknown";
}

std::span<const RouteSpec> RouteTable() { return kRoutes; }

const RouteSpec* FindRoute(std::string_view method, std::string_view pattern) {
  for (const RouteSpec& route : kRoutes) {
    if (route.method == method && route.pattern == pattern) return &route;
  }
  return nullptr;
}

const RouteSpec& Route(std::string_view name) {
  for (const RouteSpec& route : kRoutes) {
    if (route.name == name) return route;
  }
  throw std::logic_error("no route named " + std::string(name));
}

bool ServedRoles::Serves(ServingRole role) const {
  switch (role) {
    case kCommand:
      return command;
    case kQuery:
      return query;
    case kProjector:
      return projector;
    case kEvery:
      return true;
  }
  return false;
}

void RegisterRoutesNotServed(infra::http::Router& router, ServedRoles served) {
  for (const RouteSpec& route : kRoutes) {
    if (served.Serves(route.role)) continue;
    const std::string detail =
        "this process does not run the " + std::string(RoleName(route.role)) + " role";
    router.Add(route.method, route.pattern, [detail](const infra::http::Request&) {
      return infra::http::ToResponse(infra::http::MakeProblem(404, "route_not_served", detail));
    });
  }
}

}  // namespace shopcqrs::adapters::http
