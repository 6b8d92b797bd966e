// shopcqrs-bench-metrics: micro-benchmarks of the Prometheus metrics registry
// (src/infra/metrics/registry.h) on the paths the service runs.
//
//   nice cmake --build build -j2 --target shopcqrs-bench-metrics
//   ./build/bench/shopcqrs-bench-metrics --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one command line)
//
// The BM_Facade* cases use only the metrics::Registry facade, so they measure whichever
// implementation is behind it. The BM_PrometheusCpp* cases call prometheus-cpp directly, as a
// thin facade without its own child lookup would (for comparison with the facade's cache).
//
// The registry is shaped like the service's: 10 commands and 8 queries, each with a duration
// histogram and an outcome counter with 5 outcomes seen, the projection metrics of 3
// projections and the callback gauges main.cc registers (see BuildServiceRegistry).

#include <benchmark/benchmark.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "infra/metrics/registry.h"

namespace {

namespace metrics = shopcqrs::infra::metrics;

constexpr std::array<std::string_view, 10> kCommands = {
    "register_customer", "change_customer_details",
    "add_product",       "change_product_price",
    "restock_product",   "place_order",
    "pay_order",         "ship_order",
    "deliver_order",     "cancel_order"};
constexpr std::array<std::string_view, 8> kQueries = {
    "get_order",    "list_orders", "customer_orders", "get_customer",
    "top_products", "get_product", "search_orders",   "daily_sales"};
constexpr std::array<std::string_view, 5> kOutcomes = {"ok", "validation_failed", "not_found",
                                                       "conflict", "service_unavailable"};
constexpr std::array<std::string_view, 3> kProjections = {"read_pg", "search", "redis"};

// Request durations spread log-uniformly over 50 µs .. 2 s, so every bucket gets hits.
const std::vector<double>& Durations() {
  static const std::vector<double> values = [] {
    std::vector<double> out;
    for (int i = 0; i < 64; ++i) out.push_back(50e-6 * std::pow(40000.0, i / 63.0));
    return out;
  }();
  return values;
}

struct ServiceMetrics {
  metrics::CounterFamily* commands = nullptr;
  metrics::HistogramFamily* command_duration = nullptr;
  metrics::CounterFamily* queries = nullptr;
  metrics::HistogramFamily* query_duration = nullptr;
  metrics::HistogramFamily* projection_lag = nullptr;
  metrics::CounterFamily* events = nullptr;
};

// The counter (`total`, by `label` and outcome) and the duration histogram (by `label`) of one
// kind of request, as command_routes.cc and query_routes.cc register them.
std::pair<metrics::CounterFamily*, metrics::HistogramFamily*> AddRequestMetrics(
    metrics::Registry& registry, const std::string& label, const std::string& total,
    const std::string& total_help, const std::string& duration_help) {
  return {
      &registry.AddCounter(total, total_help, {label, "outcome"}),
      &registry.AddHistogram("shopcqrs_" + label + "_duration_seconds", duration_help, {label})};
}

// Observations of one kind of request (commands or queries): each of `names` counted `count`
// times with every outcome in `total`, and 20 durations of it (taken in turn from Durations(),
// from `d` on) in `duration`.
void FillRequests(metrics::CounterFamily& total, metrics::HistogramFamily& duration,
                  const auto& names, double count, std::size_t& d) {
  const auto& durations = Durations();
  for (std::string_view name : names) {
    for (std::string_view outcome : kOutcomes) total.WithLabels({name, outcome}).Inc(count);
    for (int i = 0; i < 20; ++i) {
      duration.WithLabels({name}).Observe(durations[d++ % durations.size()]);
    }
  }
}

// What the service registers (command_routes.cc, query_routes.cc, projection_metrics.cc,
// main.cc), with every series created and holding a few observations.
ServiceMetrics BuildServiceRegistry(metrics::Registry& registry) {
  ServiceMetrics m;
  std::tie(m.commands, m.command_duration) = AddRequestMetrics(
      registry, "command", "shopcqrs_commands_total",
      "Commands handled over HTTP, by command and outcome (ok or the problem code).",
      "Time to handle a command over HTTP, from parsed request to response.");
  std::tie(m.queries, m.query_duration) = AddRequestMetrics(
      registry, "query", "shopcqrs_queries_total",
      "Queries answered over HTTP, by query and outcome (ok or the problem code).",
      "Time to answer a query over HTTP, including any wait for a consistency token.");
  m.projection_lag = &registry.AddHistogram(
      "shopcqrs_projection_lag_seconds",
      "Time from an event's commit to its application by a projection.", {"projection"},
      {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
       10, 30, 60});
  auto& position =
      registry.AddGauge("shopcqrs_projection_position",
                        "Outbox position of the last event a projection applied.", {"projection"});
  auto& bound = registry.AddGauge("shopcqrs_projection_bound",
                                  "Commit bound a projection has reached.", {"projection"});
  m.events = &registry.AddCounter("shopcqrs_events_total", "Events applied by each projection.",
                                  {"projection"});
  auto& errors = registry.AddCounter("shopcqrs_projection_errors_total",
                                     "Failed projection attempts, by projection and fatality.",
                                     {"projection", "fatal"});

  const auto& durations = Durations();
  std::size_t d = 0;
  FillRequests(*m.commands, *m.command_duration, kCommands, 3, d);
  FillRequests(*m.queries, *m.query_duration, kQueries, 7, d);
  for (std::string_view projection : kProjections) {
    for (int i = 0; i < 20; ++i) {
      m.projection_lag->WithLabels({projection}).Observe(durations[d++ % durations.size()]);
    }
    position.WithLabels({projection}).Set(123456);
    bound.WithLabels({projection}).Set(987654);
    m.events->WithLabels({projection}).Inc(123456);
    errors.WithLabels({projection, "false"}).Inc(2);
  }

  registry.AddCallbackGauge("shopcqrs_outbox_blocking_xid_age_seconds",
                            "Age of the oldest transaction holding an xid on the write server.",
                            [] { return 0.25; });
  registry.AddCallbackGauge("shopcqrs_outbox_blocking_xid",
                            "The xid of that oldest transaction (0 when none).",
                            [] { return 4242.0; });
  const auto per_projection = [](double value) {
    return [value] {
      std::vector<metrics::Sample> samples;
      for (std::string_view p : kProjections) samples.push_back({{std::string(p)}, value});
      return samples;
    };
  };
  registry.AddCallbackGauge("shopcqrs_projection_events_behind",
                            "Committed events a projection has not applied yet.", {"projection"},
                            per_projection(3));
  registry.AddCallbackGauge("shopcqrs_projection_heartbeat_age_seconds",
                            "Time since the projector loop last turned.", {"projection"},
                            per_projection(0.05));
  for (const char* name : {"shopcqrs_relay_leader", "shopcqrs_relay_events_published_total",
                           "shopcqrs_relay_resyncs_total", "shopcqrs_relay_stream_sequence",
                           "shopcqrs_relay_lag_seconds"}) {
    registry.AddCallbackGauge(name, "A relay statistic.", [] { return 17.0; });
  }
  return m;
}

// Every (command, outcome) label pair, for lookups that rotate over the command series.
std::vector<std::pair<std::string, std::string_view>> CommandOutcomes() {
  std::vector<std::pair<std::string, std::string_view>> keys;
  for (std::string_view c : kCommands) {
    for (std::string_view o : kOutcomes) keys.emplace_back(std::string(c), o);
  }
  return keys;
}

// (a) The error path of a command or query: look the child up by label values, then Inc. The
// label values rotate over the 50 command series so the lookup is not always the same key.
void BM_FacadeLabelledCounterInc(benchmark::State& state) {
  metrics::Registry registry;
  ServiceMetrics m = BuildServiceRegistry(registry);
  const auto keys = CommandOutcomes();
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& [command, outcome] = keys[i++ % keys.size()];
    m.commands->WithLabels({command, outcome}).Inc();
  }
}
BENCHMARK(BM_FacadeLabelledCounterInc);

// (a) The ok path: the child was looked up once when the route was registered.
void BM_FacadeResolvedCounterInc(benchmark::State& state) {
  metrics::Registry registry;
  ServiceMetrics m = BuildServiceRegistry(registry);
  metrics::Counter& ok = m.commands->WithLabels({"place_order", "ok"});
  for (auto _ : state) ok.Inc();
  benchmark::DoNotOptimize(ok.Value());
}
BENCHMARK(BM_FacadeResolvedCounterInc);

// (b) Every request: a pre-resolved duration histogram (16 default buckets).
void BM_FacadeHistogramObserve(benchmark::State& state) {
  metrics::Registry registry;
  ServiceMetrics m = BuildServiceRegistry(registry);
  metrics::Histogram& duration = m.command_duration->WithLabels({"place_order"});
  const auto& durations = Durations();
  std::size_t i = 0;
  for (auto _ : state) duration.Observe(durations[i++ % durations.size()]);
}
BENCHMARK(BM_FacadeHistogramObserve);

// (a) and (b) from 2 threads on the same children, as concurrent HTTP requests of one route
// do (one registry for the whole process, shared by the threads).
metrics::Registry& SharedRegistry() {
  static metrics::Registry registry;
  static const ServiceMetrics built = BuildServiceRegistry(registry);
  (void)built;
  return registry;
}

void BM_FacadeResolvedCounterIncContended(benchmark::State& state) {
  metrics::Counter& ok = SharedRegistry()
                             .AddCounter("shopcqrs_commands_total", "", {"command", "outcome"})
                             .WithLabels({"place_order", "ok"});
  for (auto _ : state) ok.Inc();
}
BENCHMARK(BM_FacadeResolvedCounterIncContended)->Threads(2)->UseRealTime();

void BM_FacadeHistogramObserveContended(benchmark::State& state) {
  metrics::Histogram& duration =
      SharedRegistry()
          .AddHistogram("shopcqrs_command_duration_seconds", "", {"command"})
          .WithLabels({"place_order"});
  const auto& durations = Durations();
  std::size_t i = 0;
  for (auto _ : state) duration.Observe(durations[i++ % durations.size()]);
}
BENCHMARK(BM_FacadeHistogramObserveContended)->Threads(2)->UseRealTime();

// Every applied event (ProjectionMetrics::OnEventApplied): two lookups, an Observe and an Inc.
void BM_FacadeProjectionEventApplied(benchmark::State& state) {
  metrics::Registry registry;
  ServiceMetrics m = BuildServiceRegistry(registry);
  const auto& durations = Durations();
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string_view projection = kProjections[i % kProjections.size()];
    m.projection_lag->WithLabels({projection}).Observe(durations[i % durations.size()]);
    m.events->WithLabels({projection}).Inc();
    ++i;
  }
}
BENCHMARK(BM_FacadeProjectionEventApplied);

// (c) A scrape of GET /metrics: the whole registry rendered as Prometheus text.
void BM_FacadeScrape(benchmark::State& state) {
  metrics::Registry registry;
  BuildServiceRegistry(registry);
  std::size_t bytes = 0;
  std::size_t lines = 0;
  for (auto _ : state) {
    std::string text = registry.Render();
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
    if (lines == 0) {
      for (char c : text) lines += c == '\n' ? 1 : 0;
    }
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["lines"] = static_cast<double>(lines);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_FacadeScrape);

// ---- prometheus-cpp used directly (reference) ----

// Family<Counter>::Add with the label map: what WithLabels costs without a lookup cache of its
// own (prometheus-cpp builds the child before it looks for an existing one).
void BM_PrometheusCppFamilyAddInc(benchmark::State& state) {
  prometheus::Registry registry;
  auto& family =
      prometheus::BuildCounter().Name("shopcqrs_commands_total").Help(".").Register(registry);
  for (std::string_view c : kCommands) {
    for (std::string_view o : kOutcomes) {
      family.Add({{"command", std::string(c)}, {"outcome", std::string(o)}}).Increment();
    }
  }
  const auto keys = CommandOutcomes();
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& [command, outcome] = keys[i++ % keys.size()];
    family.Add({{"command", command}, {"outcome", std::string(outcome)}}).Increment();
  }
}
BENCHMARK(BM_PrometheusCppFamilyAddInc);

void BM_PrometheusCppCounterIncrement(benchmark::State& state) {
  prometheus::Registry registry;
  auto& counter =
      prometheus::BuildCounter().Name("c_total").Help(".").Register(registry).Add({{"k", "v"}});
  for (auto _ : state) counter.Increment();
  benchmark::DoNotOptimize(counter.Value());
}
BENCHMARK(BM_PrometheusCppCounterIncrement);

void BM_PrometheusCppHistogramObserve(benchmark::State& state) {
  prometheus::Registry registry;
  auto& histogram = prometheus::BuildHistogram()
                        .Name("h_seconds")
                        .Help(".")
                        .Register(registry)
                        .Add({{"command", "place_order"}}, metrics::DefaultSecondsBuckets());
  const auto& durations = Durations();
  std::size_t i = 0;
  for (auto _ : state) histogram.Observe(durations[i++ % durations.size()]);
}
BENCHMARK(BM_PrometheusCppHistogramObserve);

}  // namespace

BENCHMARK_MAIN();
