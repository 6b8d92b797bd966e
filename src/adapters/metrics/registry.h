#pragma once

// A small, thread-safe Prometheus metrics registry.
//
// Hot path: a metric child (Counter, Gauge, Histogram) is a handful of relaxed atomics. Looking
// a child up by label values takes a shared lock and one hash lookup; callers on very hot paths
// look children up once and keep the reference (children live as long as the registry).
//
// Families are registered once by name; registering the same name again with the same type and
// label names returns the existing family, so independent components may share a metric.
// Render() writes the Prometheus text exposition format (version 0.0.4).

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace shopcqrs::adapters::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// Monotonic counter. Inc with a negative amount is ignored.
class Counter {
 public:
  void Inc(double amount = 1.0) noexcept;
  double Value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double value) noexcept { value_.store(value, std::memory_order_relaxed); }
  void Inc(double amount = 1.0) noexcept { value_.fetch_add(amount, std::memory_order_relaxed); }
  void Dec(double amount = 1.0) noexcept { value_.fetch_sub(amount, std::memory_order_relaxed); }
  double Value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Fixed-bucket histogram. Bucket upper bounds are inclusive (Prometheus `le`).
class Histogram {
 public:
  // `bounds` must be sorted ascending and finite; +Inf is implicit.
  explicit Histogram(std::shared_ptr<const std::vector<double>> bounds);

  void Observe(double value) noexcept;

  struct Snapshot {
    std::vector<double> bounds;             // upper bounds, without +Inf
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    std::uint64_t count = 0;
    double sum = 0.0;
  };
  Snapshot Take() const;

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // bounds_->size() + 1 (last is +Inf)
  std::atomic<double> sum_{0.0};
};

// 0.0001 s .. 10 s, suitable for request and command durations in seconds.
const std::vector<double>& DefaultSecondsBuckets();

namespace detail {

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Appends the sample lines (not HELP/TYPE) of this family to `out`.
  virtual void RenderSamples(std::string& out) const = 0;

 protected:
  // Joins label values into a map key; throws std::invalid_argument on a count mismatch.
  std::string Key(std::span<const std::string_view> values) const;

 private:
  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
};

// A family of children keyed by label values.
template <class Metric>
class Family : public FamilyBase {
 public:
  using Factory = std::function<std::unique_ptr<Metric>()>;
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> labels,
         Factory factory)
      : FamilyBase(std::move(name), std::move(help), type, std::move(labels)),
        factory_(std::move(factory)) {}

  // The child for these label values (in label-name order), created on first use. The
  // reference stays valid for the registry's lifetime.
  Metric& WithLabels(std::initializer_list<std::string_view> values) {
    return Get(std::span<const std::string_view>(values.begin(), values.size()));
  }
  Metric& WithLabels(const std::vector<std::string>& values) {
    std::vector<std::string_view> views(values.begin(), values.end());
    return Get(views);
  }
  // The only child of a family without labels.
  Metric& Get() { return Get(std::span<const std::string_view>()); }

  Metric& Get(std::span<const std::string_view> values) {
    std::string key = Key(values);
    {
      std::shared_lock lock(mu_);
      if (auto it = children_.find(key); it != children_.end()) return *it->second.metric;
    }
    std::unique_lock lock(mu_);
    auto [it, inserted] = children_.try_emplace(std::move(key));
    if (inserted) {
      it->second.values.assign(values.begin(), values.end());
      it->second.metric = factory_();
    }
    return *it->second.metric;
  }

  void RenderSamples(std::string& out) const override;

 private:
  struct Child {
    std::vector<std::string> values;
    std::unique_ptr<Metric> metric;
  };
  Factory factory_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Child> children_;
};

}  // namespace detail

using CounterFamily = detail::Family<Counter>;
using GaugeFamily = detail::Family<Gauge>;
using HistogramFamily = detail::Family<Histogram>;

// One sample produced by a callback metric at scrape time.
struct Sample {
  std::vector<std::string> label_values;  // in label-name order
  double value = 0.0;
};
using Collector = std::function<std::vector<Sample>()>;

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (not "le"
  // for histograms). Re-registering a name with the same type and labels returns the existing
  // family; with a different type or labels it throws std::invalid_argument.
  CounterFamily& AddCounter(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names = {});
  GaugeFamily& AddGauge(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names = {});
  HistogramFamily& AddHistogram(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names = {},
                                std::vector<double> buckets = DefaultSecondsBuckets());

  // Metrics whose values are computed at scrape time (e.g. a projection position read from a
  // component). A collector that throws contributes no samples to that scrape. Registering a
  // name twice throws.
  void AddCallbackGauge(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names, Collector collect);
  void AddCallbackGauge(const std::string& name, const std::string& help,
                        std::function<double()> value);
  void AddCallbackCounter(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names, Collector collect);

  // Prometheus text exposition format; families sorted by name, children by label values.
  std::string Render() const;

 private:
  template <class F, class... Args>
  F& AddFamily(const std::string& name, MetricType type, std::vector<std::string>& labels,
               Args&&... args);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<detail::FamilyBase>, std::less<>> families_;
};

// Prometheus text helpers (exposed for tests and for other exporters).
std::string FormatValue(double value);                // "+Inf", "NaN", "0.25", "3"
std::string EscapeLabelValue(std::string_view text);  // \\, \" and \n escaped
std::string EscapeHelp(std::string_view text);        // \\ and \n escaped

}  // namespace shopcqrs::adapters::metrics
