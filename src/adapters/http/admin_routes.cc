#include "adapters/http/admin_routes.h"

#include <boost/json.hpp>

#include "adapters/http/route_table.h"

namespace shopcqrs::adapters::http {

using namespace infra::http;

void RegisterAdminRoutes(Router& router, std::function<std::vector<ProjectionInfo>()> projections) {
  const RouteSpec& route = Route("list_projections");
  router.Add(route.method, route.pattern, [projections](const Request&) {
    boost::json::array items;
    for (const auto& p : projections()) {
      items.push_back(boost::json::object{
          {"name", p.name},
          {"store", p.store},
          {"status", p.status},
          {"position", p.position},
          {"events_behind", p.events_behind},
          {"lag_ms", p.lag_ms},
          {"dead_letters", p.dead_letters},
          {"last_error",
           p.last_error.empty() ? boost::json::value(nullptr) : boost::json::value(p.last_error)}});
    }
    return Response::Json(200, boost::json::serialize(boost::json::object{{"items", items}}));
  });
}

}  // namespace shopcqrs::adapters::http
