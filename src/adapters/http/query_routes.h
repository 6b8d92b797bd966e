#pragma once

#include <chrono>

#include "application/read_model.h"
#include "cqrs/consistency_token.h"
#include "cqrs/projector.h"
#include "infra/http/router.h"
#include "infra/metrics/registry.h"

namespace shopcqrs::adapters::http {

// The query half of the API. Every handler reads through `model` (read stores only) after
// honouring the request's consistency token: it waits on `progress` (woken by the projector,
// no polling) until the read store has applied the token, for at most X-Consistency-Wait-Ms,
// else answers 503 read_model_behind with Retry-After.
struct QueryRouteOptions {
  std::chrono::milliseconds default_wait{2000};
  std::chrono::milliseconds max_wait{10000};
};

// `cache_progress`, when given, is the progress of the cache (Redis) that answers the order
// view and top sellers; those two queries then wait for both stores.
// `search_progress`, when given, is the progress of the search projection whose documents
// select the orders of GET /v1/search/orders (their summaries come from the store of
// `progress`); that query then waits for both.
void RegisterQueryRoutes(infra::http::Router& router, app::ReadModel& model,
                         const cqrs::ConsistencyTokens& tokens,
                         const cqrs::ProgressTracker& progress, infra::metrics::Registry& registry,
                         const cqrs::ProgressTracker* cache_progress = nullptr,
                         QueryRouteOptions options = {},
                         const cqrs::ProgressTracker* search_progress = nullptr);

}  // namespace shopcqrs::adapters::http
