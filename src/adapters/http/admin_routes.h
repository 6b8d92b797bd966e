#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "infra/http/router.h"

namespace shopcqrs::adapters::http {

struct ProjectionInfo {
  std::string name;
  std::string store;   // e.g. "read_pg"
  std::string status;  // running, catching_up, stalled, error, stopped, ...
  std::int64_t position = 0;
  std::int64_t events_behind = 0;  // -1 when it could not be counted
  std::int64_t lag_ms = 0;
  std::int64_t dead_letters = 0;
  std::string last_error;
};

// GET /v1/admin/projections → {items: [{name, store, status, position, events_behind, lag_ms,
// dead_letters, last_error}]}.
void RegisterAdminRoutes(infra::http::Router& router,
                         std::function<std::vector<ProjectionInfo>()> projections);

}  // namespace shopcqrs::adapters::http
