#include "adapters/http/admin_routes.h"

#include <boost/json.hpp>

#include "adapters/http/auth_policy.h"
#include "adapters/http/route_table.h"
#include "domain/time.h"
#include "infra/http/problem.h"

namespace shopcqrs::adapters::http {

using namespace infra::http;

namespace {

void RegisterDeadLetterRoutes(Router& router, DeadLetterAdmin admin);

}  // namespace

DeadLetterAdmin NoDeadLetters() {
  return {.list = [](const std::optional<std::string>& projection)
              -> std::optional<std::vector<DeadLetterItem>> {
            if (projection) return std::nullopt;
            return std::vector<DeadLetterItem>{};
          },
          .resolve =
              [](const std::string&, const std::string&, bool, const std::string&) {
                return ResolveOutcome{.kind = ResolveOutcome::Kind::kUnknownProjection};
              }};
}

void RegisterAdminRoutes(Router& router, std::function<std::vector<ProjectionInfo>()> projections,
                         DeadLetterAdmin dead_letters) {
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
  RegisterDeadLetterRoutes(router, std::move(dead_letters));
}

namespace {

void RegisterDeadLetterRoutes(Router& router, DeadLetterAdmin admin) {
  auto shared = std::make_shared<DeadLetterAdmin>(std::move(admin));
  const RouteSpec& list = Route("list_dead_letters");
  router.Add(list.method, list.pattern, [shared](const Request& request) {
    std::optional<std::string> projection;
    if (auto p = request.Query("projection"); p && !p->empty()) projection = std::string(*p);
    auto letters = shared->list(projection);
    if (!letters) return ToResponse(NotFound("no projection named " + *projection));
    boost::json::array items;
    for (const auto& l : *letters) {
      items.push_back(boost::json::object{{"projection", l.projection},
                                          {"aggregate_type", l.aggregate_type},
                                          {"aggregate_id", l.aggregate_id},
                                          {"first_position", l.first_position},
                                          {"events", l.events},
                                          {"error", l.error},
                                          {"parked_at", domain::FormatTimestamp(l.parked_at)}});
    }
    return Response::Json(200, boost::json::serialize(boost::json::object{{"items", items}}));
  });
  for (const bool skip : {false, true}) {
    const RouteSpec& route = Route(skip ? "skip_dead_letters" : "retry_dead_letters");
    router.Add(route.method, route.pattern, [shared, skip](const Request& request) {
      const std::string projection(request.PathParam("projection"));
      const std::string aggregate(request.PathParam("aggregate_id"));
      const auto who = PrincipalOf(request);
      const auto by = std::string(app::RoleName(who.role)) + ":" + who.subject;
      const auto outcome = shared->resolve(projection, aggregate, skip, by);
      using Kind = ResolveOutcome::Kind;
      switch (outcome.kind) {
        case Kind::kUnknownProjection:
          return ToResponse(NotFound("no projection named " + projection));
        case Kind::kNotParked:
          return ToResponse(NotFound("no parked events of that aggregate in " + projection));
        case Kind::kStillFailing:
          return ToResponse(MakeProblem(
              409, "still_failing",
              "the parked events still cannot be applied and stay parked: " + outcome.error));
        case Kind::kUnavailable:
          return ToResponse(ServiceUnavailable("service_unavailable", outcome.error, 1));
        case Kind::kResolved:
          break;
      }
      return Response::Json(
          200, boost::json::serialize(boost::json::object{{"projection", projection},
                                                          {"aggregate_id", aggregate},
                                                          {"resolved", true},
                                                          {"applied", outcome.applied},
                                                          {"skipped", outcome.skipped}}));
    });
  }
}

}  // namespace

}  // namespace shopcqrs::adapters::http
