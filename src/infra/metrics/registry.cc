#include "infra/metrics/registry.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <fmt/format.h>
#include <prometheus/check_names.h>
#include <prometheus/client_metric.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace shopcqrs::infra::metrics {

namespace {

using Label = prometheus::ClientMetric::Label;

prometheus::MetricType ToPrometheus(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return prometheus::MetricType::Counter;
    case MetricType::kGauge:
      return prometheus::MetricType::Gauge;
    case MetricType::kHistogram:
      return prometheus::MetricType::Histogram;
  }
  return prometheus::MetricType::Untyped;
}

bool LabelValuesLess(const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) {
  return std::ranges::lexicographical_compare(a.label, b.label, std::less<>{}, &Label::value,
                                              &Label::value);
}

// prometheus-cpp reports a child's labels sorted by name; put them back in the declared order
// and sort the children by their label values.
void ToDeclaredOrder(prometheus::MetricFamily& family, const std::vector<std::string>& names) {
  for (prometheus::ClientMetric& metric : family.metric) {
    std::vector<Label> ordered;
    ordered.reserve(names.size());
    for (const std::string& name : names) {
      auto it = std::ranges::find(metric.label, name, &Label::name);
      if (it != metric.label.end()) ordered.push_back(std::move(*it));
    }
    metric.label = std::move(ordered);
  }
  std::ranges::sort(family.metric, LabelValuesLess);
}

// Registers the prometheus-cpp family behind one of ours.
template <class Impl>
prometheus::Family<Impl>& RegisterImpl(prometheus::Registry& registry, const std::string& name,
                                       const std::string& help) {
  if constexpr (std::is_same_v<Impl, prometheus::Counter>) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
  } else if constexpr (std::is_same_v<Impl, prometheus::Gauge>) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
  } else {
    return prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
  }
}

// A family whose samples come from a callback at scrape time.
class CallbackFamily : public detail::FamilyBase {
 public:
  CallbackFamily(std::string name, std::string help, MetricType type,
                 std::vector<std::string> labels, Collector collect)
      : FamilyBase(std::move(name), std::move(help), type, std::move(labels)),
        collect_(std::move(collect)) {}

  void Collect(std::vector<prometheus::MetricFamily>& out) const override {
    prometheus::MetricFamily& family = out.emplace_back();
    family.name = name();
    family.help = help();
    family.type = ToPrometheus(type());
    std::vector<Sample> samples;
    try {
      samples = collect_();
    } catch (...) {
      return;  // a failing source contributes nothing to this scrape
    }
    family.metric.reserve(samples.size());
    for (Sample& sample : samples) {
      if (sample.label_values.size() != label_names().size()) continue;
      prometheus::ClientMetric& metric = family.metric.emplace_back();
      for (std::size_t i = 0; i < label_names().size(); ++i) {
        metric.label.push_back(Label{label_names()[i], std::move(sample.label_values[i])});
      }
      if (type() == MetricType::kCounter) {
        metric.counter.value = sample.value;
      } else {
        metric.gauge.value = sample.value;
      }
    }
    std::ranges::sort(family.metric, LabelValuesLess);
  }

 private:
  Collector collect_;
};

}  // namespace

// ---- children ----

void Counter::Inc(double amount) noexcept {
  if (!(amount >= 0.0)) return;  // also rejects NaN, which prometheus-cpp would add
  impl_->Increment(amount);
}

double Counter::Value() const noexcept { return impl_->Value(); }

void Gauge::Set(double value) noexcept { impl_->Set(value); }
void Gauge::Inc(double amount) noexcept { impl_->Increment(amount); }
void Gauge::Dec(double amount) noexcept { impl_->Decrement(amount); }
double Gauge::Value() const noexcept { return impl_->Value(); }

void Histogram::Observe(double value) noexcept {
  if (std::isnan(value)) {
    impl_->ObserveMultiple(*nan_increments_, 0.0);  // +Inf bucket, sum unchanged
    return;
  }
  impl_->Observe(value);
}

Histogram::Snapshot Histogram::Take() const {
  const prometheus::ClientMetric metric = impl_->Collect();
  Snapshot snap;
  for (const prometheus::ClientMetric::Bucket& bucket : metric.histogram.bucket) {
    if (!std::isinf(bucket.upper_bound)) snap.bounds.push_back(bucket.upper_bound);
    snap.cumulative.push_back(bucket.cumulative_count);
  }
  snap.count = metric.histogram.sample_count;
  snap.sum = metric.histogram.sample_sum;
  return snap;
}

const std::vector<double>& DefaultSecondsBuckets() {
  static const std::vector<double> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                               0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                               1.0,    2.5,     5.0,    10.0};
  return kBuckets;
}

// ---- families ----

namespace detail {

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {}

std::string FamilyBase::Key(std::span<const std::string_view> values) const {
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument(fmt::format("metric {} expects {} label values, got {}", name_,
                                            label_names_.size(), values.size()));
  }
  std::string key;
  for (std::string_view value : values) {
    key += fmt::format_int(value.size()).c_str();
    key += ':';
    key += value;
  }
  return key;
}

template <class Metric>
Family<Metric>::Family(std::string name, std::string help, MetricType type,
                       std::vector<std::string> labels, Impl& impl, std::vector<double> buckets)
    : FamilyBase(std::move(name), std::move(help), type, std::move(labels)),
      impl_(impl),
      buckets_(std::move(buckets)) {
  if constexpr (std::is_same_v<Metric, Histogram>) {
    nan_increments_.assign(buckets_.size() + 1, 0.0);
    nan_increments_.back() = 1.0;
  }
}

template <class Metric>
Metric& Family<Metric>::Create(std::string key, std::span<const std::string_view> values) {
  prometheus::Labels labels;
  for (std::size_t i = 0; i < values.size(); ++i) {
    labels.emplace(label_names()[i], std::string(values[i]));
  }
  std::unique_lock lock(mu_);
  if (auto it = children_.find(key); it != children_.end()) return it->second;
  if constexpr (std::is_same_v<Metric, Histogram>) {
    return children_.try_emplace(std::move(key), impl_.Add(labels, buckets_), nan_increments_)
        .first->second;
  } else {
    return children_.try_emplace(std::move(key), impl_.Add(labels)).first->second;
  }
}

template <class Metric>
void Family<Metric>::Collect(std::vector<prometheus::MetricFamily>& out) const {
  std::vector<prometheus::MetricFamily> collected = impl_.Collect();
  if (collected.empty()) {
    // prometheus-cpp leaves out a family without children; we still announce it.
    prometheus::MetricFamily& family = out.emplace_back();
    family.name = name();
    family.help = help();
    family.type = ToPrometheus(type());
    return;
  }
  for (prometheus::MetricFamily& family : collected) {
    ToDeclaredOrder(family, label_names());
    out.push_back(std::move(family));
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

}  // namespace detail

// ---- registry ----

Registry::Registry() : registry_(std::make_unique<prometheus::Registry>()) {}
Registry::~Registry() = default;

template <class F, class Make>
F& Registry::AddFamily(const std::string& name, MetricType type,
                       const std::vector<std::string>& labels, bool merge, Make make) {
  if (!prometheus::CheckMetricName(name)) {
    throw std::invalid_argument("invalid metric name: " + name);
  }
  for (const std::string& label : labels) {
    if (!prometheus::CheckLabelName(label) || (type == MetricType::kHistogram && label == "le")) {
      throw std::invalid_argument(fmt::format("invalid label name {} for {}", label, name));
    }
  }
  std::lock_guard lock(mu_);
  if (auto it = families_.find(name); it != families_.end()) {
    if (!merge) throw std::invalid_argument("metric registered twice: " + name);
    auto* existing = dynamic_cast<F*>(it->second.get());
    if (existing == nullptr || existing->type() != type || existing->label_names() != labels) {
      throw std::invalid_argument("metric registered twice with a different shape: " + name);
    }
    return *existing;
  }
  std::unique_ptr<F> family = make();
  F& ref = *family;
  families_.emplace(name, std::move(family));
  return ref;
}

CounterFamily& Registry::AddCounter(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names) {
  return AddFamily<CounterFamily>(name, MetricType::kCounter, label_names, true, [&] {
    const std::string escaped = EscapeHelp(help);
    return std::make_unique<CounterFamily>(
        name, escaped, MetricType::kCounter, label_names,
        RegisterImpl<prometheus::Counter>(*registry_, name, escaped));
  });
}

GaugeFamily& Registry::AddGauge(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names) {
  return AddFamily<GaugeFamily>(name, MetricType::kGauge, label_names, true, [&] {
    const std::string escaped = EscapeHelp(help);
    return std::make_unique<GaugeFamily>(
        name, escaped, MetricType::kGauge, label_names,
        RegisterImpl<prometheus::Gauge>(*registry_, name, escaped));
  });
}

HistogramFamily& Registry::AddHistogram(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> buckets) {
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  for (double b : buckets) {
    if (!std::isfinite(b)) throw std::invalid_argument("histogram buckets must be finite");
  }
  return AddFamily<HistogramFamily>(name, MetricType::kHistogram, label_names, true, [&] {
    const std::string escaped = EscapeHelp(help);
    return std::make_unique<HistogramFamily>(
        name, escaped, MetricType::kHistogram, label_names,
        RegisterImpl<prometheus::Histogram>(*registry_, name, escaped), std::move(buckets));
  });
}

void Registry::AddCallbackGauge(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names, Collector collect) {
  AddFamily<CallbackFamily>(name, MetricType::kGauge, label_names, false, [&] {
    return std::make_unique<CallbackFamily>(name, EscapeHelp(help), MetricType::kGauge, label_names,
                                            std::move(collect));
  });
}

void Registry::AddCallbackGauge(const std::string& name, const std::string& help,
                                std::function<double()> value) {
  AddCallbackGauge(name, help, {}, [value = std::move(value)] {
    return std::vector<Sample>{Sample{{}, value()}};
  });
}

void Registry::AddCallbackCounter(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names, Collector collect) {
  AddFamily<CallbackFamily>(name, MetricType::kCounter, label_names, false, [&] {
    return std::make_unique<CallbackFamily>(name, EscapeHelp(help), MetricType::kCounter,
                                            label_names, std::move(collect));
  });
}

std::string Registry::Render() const {
  std::vector<const detail::FamilyBase*> families;
  {
    std::lock_guard lock(mu_);
    families.reserve(families_.size());
    for (const auto& [name, family] : families_) families.push_back(family.get());
  }
  // Families are never removed, so they outlive this call without the lock (and callbacks run
  // without it).
  std::vector<prometheus::MetricFamily> collected;
  collected.reserve(families.size());
  for (const detail::FamilyBase* family : families) family->Collect(collected);
  return prometheus::TextSerializer().Serialize(collected);
}

// ---- text helpers ----

std::string EscapeHelp(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace shopcqrs::infra::metrics
