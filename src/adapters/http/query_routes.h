#pragma once

#include <chrono>

#include "adapters/http/router.h"
#include "adapters/metrics/registry.h"
#include "application/read_model.h"
#include "cqrs/consistency_token.h"
#include "cqrs/projector.h"

namespace shopcqrs::adapters::http {

// The query half of the API. Every handler reads through `model` (read stores only) after
// honouring the request's consistency token: it waits on `progress` (woken by the projector,
// no polling) until the read store has applied the token, for at most X-Consistency-Wait-Ms,
// else answers 503 read_model_behind with Retry-After.
struct QueryRouteOptions {
  std::chrono::milliseconds default_wait{2000};
  std::chrono::milliseconds max_wait{10000};
};

void RegisterQueryRoutes(Router& router, app::ReadModel& model,
                         const cqrs::ConsistencyTokens& tokens,
                         const cqrs::ProgressTracker& progress, metrics::Registry& registry,
                         QueryRouteOptions options = {});

}  // namespace shopcqrs::adapters::http
