#pragma once

#include "cqrs/projector.h"
#include "infra/metrics/registry.h"

namespace shopcqrs::adapters::metrics {

// Records what projectors report: shopcqrs_projection_lag_seconds (histogram, commit to
// applied), shopcqrs_projection_position, shopcqrs_projection_bound, shopcqrs_events_total
// (events applied) and shopcqrs_projection_errors_total, each labelled by projection.
class ProjectionMetrics final : public cqrs::ProjectorObserver {
 public:
  explicit ProjectionMetrics(infra::metrics::Registry& registry);

  void OnEventApplied(std::string_view projection, const cqrs::StoredEvent& event,
                      std::chrono::duration<double> lag) override;
  void OnProgress(std::string_view projection, const cqrs::Checkpoint& checkpoint) override;
  void OnError(std::string_view projection, std::string_view what, bool fatal) override;

 private:
  infra::metrics::HistogramFamily& lag_;
  infra::metrics::GaugeFamily& position_;
  infra::metrics::GaugeFamily& bound_;
  infra::metrics::CounterFamily& events_;
  infra::metrics::CounterFamily& errors_;
};

}  // namespace shopcqrs::adapters::metrics
