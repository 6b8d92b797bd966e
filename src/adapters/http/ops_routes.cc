#include "adapters/http/ops_routes.h"

#include <memory>

#include <spdlog/spdlog.h>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "adapters/http/route_table.h"
#include "infra/http/problem.h"

namespace shopcqrs::adapters::http {

using namespace infra::http;

namespace {

namespace json = boost::json;

Response Readiness(const std::vector<ReadinessCheck>& checks, bool auth_on) {
  json::object states;
  std::string down;
  for (const ReadinessCheck& check : checks) {
    bool up = false;
    try {
      up = check.check();
    } catch (const std::exception& e) {
      spdlog::warn("readiness check {} threw: {}", check.name, e.what());
    } catch (...) {
      spdlog::warn("readiness check {} threw", check.name);
    }
    states[check.name] = up ? "up" : "down";
    if (!up) {
      if (!down.empty()) down += ", ";
      down += check.name;
    }
  }
  if (down.empty()) {
    json::object body;
    body["status"] = "ready";
    body["checks"] = std::move(states);
    body["auth"] = auth_on ? "on" : "off";
    return Response::Json(200, json::serialize(body));
  }
  Problem problem = ServiceUnavailable("service_unavailable", "not ready: " + down + " down", 1);
  problem.extras["checks"] = std::move(states);
  problem.extras["auth"] = auth_on ? "on" : "off";
  return ToResponse(problem);
}

}  // namespace

void RegisterOpsRoutes(Router& router, infra::metrics::Registry& registry,
                       std::vector<ReadinessCheck> checks, bool auth_on) {
  router.Add(Route("healthz").method, Route("healthz").pattern,
             [](const Request&) { return Response::Json(200, R"({"status":"ok"})"); });
  auto shared_checks = std::make_shared<const std::vector<ReadinessCheck>>(std::move(checks));
  router.Add(
      Route("readyz").method, Route("readyz").pattern,
      [shared_checks, auth_on](const Request&) { return Readiness(*shared_checks, auth_on); });
  router.Add(Route("metrics").method, Route("metrics").pattern, [&registry](const Request&) {
    return Response::Text(200, registry.Render(), std::string(kPrometheusContentType));
  });
}

}  // namespace shopcqrs::adapters::http
