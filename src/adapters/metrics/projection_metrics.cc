#include "adapters/metrics/projection_metrics.h"

namespace shopcqrs::adapters::metrics {

namespace {
// Lag is milliseconds at most in the steady state, so the buckets start at 100 µs.
std::vector<double> LagBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,   5,     10,   30,    60};
}
}  // namespace

ProjectionMetrics::ProjectionMetrics(infra::metrics::Registry& registry)
    : lag_(registry.AddHistogram("shopcqrs_projection_lag_seconds",
                                 "Time from an event's commit to its application by a projection.",
                                 {"projection"}, LagBuckets())),
      position_(registry.AddGauge("shopcqrs_projection_position",
                                  "Outbox position of the last event a projection applied.",
                                  {"projection"})),
      bound_(registry.AddGauge("shopcqrs_projection_bound",
                               "Commit bound a projection has reached: every transaction with a "
                               "smaller xid is applied (what consistency tokens are compared to).",
                               {"projection"})),
      events_(registry.AddCounter("shopcqrs_events_total", "Events applied by each projection.",
                                  {"projection"})),
      errors_(registry.AddCounter("shopcqrs_projection_errors_total",
                                  "Failed projection attempts, by projection and fatality.",
                                  {"projection", "fatal"})) {}

void ProjectionMetrics::OnEventApplied(std::string_view projection, const cqrs::StoredEvent&,
                                       std::chrono::duration<double> lag) {
  lag_.WithLabels({projection}).Observe(std::max(0.0, lag.count()));
  events_.WithLabels({projection}).Inc();
}

void ProjectionMetrics::OnProgress(std::string_view projection,
                                   const cqrs::Checkpoint& checkpoint) {
  position_.WithLabels({projection}).Set(static_cast<double>(checkpoint.position));
  bound_.WithLabels({projection}).Set(static_cast<double>(checkpoint.bound));
}

void ProjectionMetrics::OnError(std::string_view projection, std::string_view, bool fatal) {
  errors_.WithLabels({projection, fatal ? "true" : "false"}).Inc();
}

}  // namespace shopcqrs::adapters::metrics
