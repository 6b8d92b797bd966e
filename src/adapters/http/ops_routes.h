#pragma once

// Operational routes (API.md "Operations"):
//   GET /healthz  200 {"status":"ok"} while the process serves.
//   GET /readyz   runs every readiness check; 200 {"status":"ready","checks":{"name":"up",...}}
//                 or 503 service_unavailable naming what is down, with the same "checks"
//                 member. A check that throws counts as down.
//   GET /metrics  the registry in Prometheus text format (text/plain; version=0.0.4).

#include <functional>
#include <string>
#include <vector>

#include "infra/http/router.h"
#include "infra/metrics/registry.h"

namespace shopcqrs::adapters::http {

struct ReadinessCheck {
  std::string name;             // e.g. "write_db", "read_db", "broker"
  std::function<bool()> check;  // true when the dependency answers; should time out quickly
};

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// `registry` must outlive the router. /readyz also answers "auth": "on" or "off" (auth.mode).
void RegisterOpsRoutes(infra::http::Router& router, infra::metrics::Registry& registry,
                       std::vector<ReadinessCheck> checks, bool auth_on = true);

}  // namespace shopcqrs::adapters::http
