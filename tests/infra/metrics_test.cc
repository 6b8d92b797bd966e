#include "infra/metrics/registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

namespace shopcqrs::infra::metrics {
namespace {

TEST(MetricsTest, RendersCountersWithLabels) {
  Registry registry;
  auto& commands =
      registry.AddCounter("shopcqrs_commands_total", "Commands handled.", {"command", "outcome"});
  commands.WithLabels({"place_order", "ok"}).Inc();
  commands.WithLabels({"place_order", "ok"}).Inc(2);
  commands.WithLabels({"place_order", "insufficient_stock"}).Inc();
  commands.WithLabels({"add_product", "ok"}).Inc(-5);  // ignored: counters only go up
  EXPECT_EQ(registry.Render(),
            "# HELP shopcqrs_commands_total Commands handled.\n"
            "# TYPE shopcqrs_commands_total counter\n"
            "shopcqrs_commands_total{command=\"add_product\",outcome=\"ok\"} 0\n"
            "shopcqrs_commands_total{command=\"place_order\",outcome=\"insufficient_stock\"} 1\n"
            "shopcqrs_commands_total{command=\"place_order\",outcome=\"ok\"} 3\n");
}

TEST(MetricsTest, RendersGaugesAndUnlabelledMetrics) {
  Registry registry;
  auto& gauge = registry.AddGauge("shopcqrs_connections", "Open connections.").Get();
  gauge.Set(5);
  gauge.Inc();
  gauge.Dec(0.5);
  auto& events = registry.AddCounter("shopcqrs_events_total", "Events.").Get();
  events.Inc(7);
  EXPECT_EQ(registry.Render(),
            "# HELP shopcqrs_connections Open connections.\n"
            "# TYPE shopcqrs_connections gauge\n"
            "shopcqrs_connections 5.5\n"
            "# HELP shopcqrs_events_total Events.\n"
            "# TYPE shopcqrs_events_total counter\n"
            "shopcqrs_events_total 7\n");
}

TEST(MetricsTest, RendersHistograms) {
  Registry registry;
  auto& family =
      registry.AddHistogram("shopcqrs_lag_seconds", "Lag.", {"projection"}, {0.01, 0.1, 1});
  auto& lag = family.WithLabels({"read_pg"});
  lag.Observe(0.005);
  lag.Observe(0.01);  // le is inclusive
  lag.Observe(0.5);
  lag.Observe(20);
  EXPECT_EQ(registry.Render(),
            "# HELP shopcqrs_lag_seconds Lag.\n"
            "# TYPE shopcqrs_lag_seconds histogram\n"
            // prometheus-cpp writes _count and _sum before the buckets (any order is valid).
            "shopcqrs_lag_seconds_count{projection=\"read_pg\"} 4\n"
            "shopcqrs_lag_seconds_sum{projection=\"read_pg\"} 20.515\n"
            "shopcqrs_lag_seconds_bucket{projection=\"read_pg\",le=\"0.01\"} 2\n"
            "shopcqrs_lag_seconds_bucket{projection=\"read_pg\",le=\"0.1\"} 2\n"
            "shopcqrs_lag_seconds_bucket{projection=\"read_pg\",le=\"1\"} 3\n"
            "shopcqrs_lag_seconds_bucket{projection=\"read_pg\",le=\"+Inf\"} 4\n");
}

TEST(MetricsTest, DefaultBucketsSpanTenthOfMillisecondToTenSeconds) {
  const auto& buckets = DefaultSecondsBuckets();
  EXPECT_DOUBLE_EQ(buckets.front(), 0.0001);
  EXPECT_DOUBLE_EQ(buckets.back(), 10.0);
  EXPECT_TRUE(std::is_sorted(buckets.begin(), buckets.end()));
  Registry registry;
  registry.AddHistogram("d_seconds", "D.").Get().Observe(0.00003);
  const std::string text = registry.Render();
  EXPECT_NE(text.find("d_seconds_bucket{le=\"0.0001\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_bucket{le=\"10\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_count 1\n"), std::string::npos) << text;
}

TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  Registry registry;
  registry.AddCounter("c_total", "Help with \\ and\nnewline.", {"l"})
      .WithLabels({"a\"b\\c\nd"})
      .Inc();
  EXPECT_EQ(registry.Render(),
            "# HELP c_total Help with \\\\ and\\nnewline.\n"
            "# TYPE c_total counter\n"
            "c_total{l=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsTest, CallbackMetricsAreEvaluatedAtScrape) {
  Registry registry;
  double position = 3;
  registry.AddCallbackGauge("shopcqrs_projection_position", "Position.", {"projection"}, [&] {
    return std::vector<Sample>{{{"search"}, position}, {{"read_pg"}, position * 2}};
  });
  registry.AddCallbackGauge("up", "Up.", [] { return 1.0; });
  registry.AddCallbackCounter("broken_total", "Throws.", {}, []() -> std::vector<Sample> {
    throw std::runtime_error("source down");
  });
  position = 10;
  EXPECT_EQ(registry.Render(),
            "# HELP broken_total Throws.\n"
            "# TYPE broken_total counter\n"
            "# HELP shopcqrs_projection_position Position.\n"
            "# TYPE shopcqrs_projection_position gauge\n"
            "shopcqrs_projection_position{projection=\"read_pg\"} 20\n"
            "shopcqrs_projection_position{projection=\"search\"} 10\n"
            "# HELP up Up.\n"
            "# TYPE up gauge\n"
            "up 1\n");
}

TEST(MetricsTest, SpecialValues) {
  Registry registry;
  auto& gauges = registry.AddGauge("g", "G.", {"k"});
  gauges.WithLabels({"a"}).Set(INFINITY);
  gauges.WithLabels({"b"}).Set(-INFINITY);
  gauges.WithLabels({"c"}).Set(NAN);
  gauges.WithLabels({"d"}).Set(0.25);
  gauges.WithLabels({"e"}).Set(3);
  gauges.WithLabels({"f"}).Set(1e21);
  auto& counter = registry.AddCounter("c_total", "C.").Get();
  counter.Inc(NAN);  // ignored, as negative amounts are
  auto& histogram = registry.AddHistogram("h", "H.", {}, {1}).Get();
  histogram.Observe(NAN);  // counted in +Inf, not added to the sum
  histogram.Observe(0.5);
  EXPECT_EQ(registry.Render(),
            "# HELP c_total C.\n"
            "# TYPE c_total counter\n"
            "c_total 0\n"
            "# HELP g G.\n"
            "# TYPE g gauge\n"
            "g{k=\"a\"} +Inf\n"
            "g{k=\"b\"} -Inf\n"
            "g{k=\"c\"} Nan\n"  // prometheus-cpp's spelling; Prometheus parses it
            "g{k=\"d\"} 0.25\n"
            "g{k=\"e\"} 3\n"
            "g{k=\"f\"} 1e+21\n"
            "# HELP h H.\n"
            "# TYPE h histogram\n"
            "h_count 2\n"
            "h_sum 0.5\n"
            "h_bucket{le=\"1\"} 1\n"
            "h_bucket{le=\"+Inf\"} 2\n");
}

TEST(MetricsTest, FamiliesWithoutChildrenAreAnnouncedAndLabelsKeepTheirOrder) {
  Registry registry;
  registry.AddCounter("unused_total", "Never incremented.", {"k"});
  registry.AddCounter("errors_total", "Errors.", {"projection", "fatal"})
      .WithLabels({"search", "false"})
      .Inc();
  EXPECT_EQ(registry.Render(),
            "# HELP errors_total Errors.\n"
            "# TYPE errors_total counter\n"
            "errors_total{projection=\"search\",fatal=\"false\"} 1\n"
            "# HELP unused_total Never incremented.\n"
            "# TYPE unused_total counter\n");
}

TEST(MetricsTest, ReRegisteringReturnsTheSameFamily) {
  Registry registry;
  auto& a = registry.AddCounter("x_total", "X.", {"k"});
  auto& b = registry.AddCounter("x_total", "X again.", {"k"});
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&a.WithLabels({"v"}), &b.WithLabels({"v"}));
  EXPECT_THROW(registry.AddCounter("x_total", "X.", {"other"}), std::invalid_argument);
  EXPECT_THROW(registry.AddGauge("x_total", "X."), std::invalid_argument);
  EXPECT_THROW(registry.AddCallbackGauge("x_total", "X.", [] { return 1.0; }),
               std::invalid_argument);
}

TEST(MetricsTest, RejectsBadNamesAndLabelCounts) {
  Registry registry;
  EXPECT_THROW(registry.AddCounter("1abc", "."), std::invalid_argument);
  EXPECT_THROW(registry.AddCounter("a-b", "."), std::invalid_argument);
  EXPECT_THROW(registry.AddCounter("ok_total", ".", {"bad-label"}), std::invalid_argument);
  EXPECT_THROW(registry.AddHistogram("h", ".", {"le"}), std::invalid_argument);
  auto& family = registry.AddCounter("two_total", ".", {"a", "b"});
  EXPECT_THROW(family.WithLabels({"only-one"}), std::invalid_argument);
}

TEST(MetricsTest, ConcurrentUpdatesAreNotLost) {
  Registry registry;
  auto& counters = registry.AddCounter("n_total", ".", {"t"});
  auto& histogram = registry.AddHistogram("h_seconds", ".").Get();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        counters.WithLabels({i % 2 ? "odd" : "even"}).Inc();
        histogram.Observe(0.001 * (t + 1));
        if (i % 1000 == 0) (void)registry.Render();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counters.WithLabels({"odd"}).Value() + counters.WithLabels({"even"}).Value(),
            kThreads * kPerThread);
  const auto snapshot = histogram.Take();
  EXPECT_EQ(snapshot.count, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_NEAR(snapshot.sum, kPerThread * 0.001 * (1 + 2 + 3 + 4), 1e-6);
}

}  // namespace
}  // namespace shopcqrs::infra::metrics
