#include "adapters/metrics/registry.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace shopcqrs::adapters::metrics {

namespace {

bool ValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return true;
}

bool ValidLabelName(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return true;
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Appends `{a="x",b="y"}` (with an optional extra label such as le), or nothing when there
// are no labels at all.
void AppendLabels(std::string& out, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (!first) out += ',';
    first = false;
    out += names[i];
    out += "=\"";
    out += EscapeLabelValue(values[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

void AppendSample(std::string& out, std::string_view name, std::string_view suffix,
                  const std::vector<std::string>& label_names,
                  const std::vector<std::string>& values, double value,
                  std::string_view extra_name = {}, std::string_view extra_value = {}) {
  out += name;
  out += suffix;
  AppendLabels(out, label_names, values, extra_name, extra_value);
  out += ' ';
  out += FormatValue(value);
  out += '\n';
}

void AppendCount(std::string& out, std::string_view name, std::string_view suffix,
                 const std::vector<std::string>& label_names,
                 const std::vector<std::string>& values, std::uint64_t value,
                 std::string_view extra_name = {}, std::string_view extra_value = {}) {
  out += name;
  out += suffix;
  AppendLabels(out, label_names, values, extra_name, extra_value);
  out += ' ';
  out += fmt::format_int(value).c_str();
  out += '\n';
}

void RenderValue(std::string& out, const detail::FamilyBase& family,
                 const std::vector<std::string>& values, double value) {
  AppendSample(out, family.name(), "", family.label_names(), values, value);
}

void RenderChild(std::string& out, const detail::FamilyBase& family,
                 const std::vector<std::string>& values, const Counter& counter) {
  RenderValue(out, family, values, counter.Value());
}

void RenderChild(std::string& out, const detail::FamilyBase& family,
                 const std::vector<std::string>& values, const Gauge& gauge) {
  RenderValue(out, family, values, gauge.Value());
}

void RenderChild(std::string& out, const detail::FamilyBase& family,
                 const std::vector<std::string>& values, const Histogram& histogram) {
  const Histogram::Snapshot snap = histogram.Take();
  for (std::size_t i = 0; i < snap.bounds.size(); ++i) {
    AppendCount(out, family.name(), "_bucket", family.label_names(), values, snap.cumulative[i],
                "le", FormatValue(snap.bounds[i]));
  }
  AppendCount(out, family.name(), "_bucket", family.label_names(), values, snap.count, "le",
              "+Inf");
  AppendSample(out, family.name(), "_sum", family.label_names(), values, snap.sum);
  AppendCount(out, family.name(), "_count", family.label_names(), values, snap.count);
}

// A family whose samples come from a callback at scrape time.
class CallbackFamily : public detail::FamilyBase {
 public:
  CallbackFamily(std::string name, std::string help, MetricType type,
                 std::vector<std::string> labels, Collector collect)
      : FamilyBase(std::move(name), std::move(help), type, std::move(labels)),
        collect_(std::move(collect)) {}

  void RenderSamples(std::string& out) const override {
    std::vector<Sample> samples;
    try {
      samples = collect_();
    } catch (...) {
      return;  // a failing source contributes nothing to this scrape
    }
    std::sort(samples.begin(), samples.end(),
              [](const Sample& a, const Sample& b) { return a.label_values < b.label_values; });
    for (const Sample& sample : samples) {
      if (sample.label_values.size() != label_names().size()) continue;
      RenderValue(out, *this, sample.label_values, sample.value);
    }
  }

 private:
  Collector collect_;
};

}  // namespace

// ---- children ----

void Counter::Inc(double amount) noexcept {
  if (!(amount >= 0.0)) return;  // also rejects NaN
  value_.fetch_add(amount, std::memory_order_relaxed);
}

Histogram::Histogram(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_->size() + 1)) {}

void Histogram::Observe(double value) noexcept {
  const auto& bounds = *bounds_;
  // First bound >= value: that bucket (le is inclusive); NaN lands in +Inf.
  const std::size_t index =
      std::isnan(value)
          ? bounds.size()
          : static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) -
                                     bounds.begin());
  counts_[index].fetch_add(1, std::memory_order_relaxed);
  if (!std::isnan(value)) sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Take() const {
  Snapshot snap;
  snap.bounds = *bounds_;
  snap.cumulative.resize(bounds_->size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_->size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snap.cumulative[i] = running;
  }
  snap.count = running;  // equals the +Inf bucket by construction
  snap.sum = sum_.load(std::memory_order_relaxed);
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
void Family<Metric>::RenderSamples(std::string& out) const {
  std::vector<std::pair<const std::vector<std::string>*, const Metric*>> children;
  {
    std::shared_lock lock(mu_);
    children.reserve(children_.size());
    for (const auto& [key, child] : children_) {
      children.emplace_back(&child.values, child.metric.get());
    }
  }
  // Children are never removed, so the pointers stay valid without the lock.
  std::sort(children.begin(), children.end(),
            [](const auto& a, const auto& b) { return *a.first < *b.first; });
  for (const auto& [values, metric] : children) {
    RenderChild(out, *this, *values, *metric);
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

}  // namespace detail

// ---- registry ----

Registry::Registry() = default;
Registry::~Registry() = default;

template <class F, class... Args>
F& Registry::AddFamily(const std::string& name, MetricType type, std::vector<std::string>& labels,
                       Args&&... args) {
  if (!ValidMetricName(name)) throw std::invalid_argument("invalid metric name: " + name);
  for (const std::string& label : labels) {
    if (!ValidLabelName(label) || label.starts_with("__") ||
        (type == MetricType::kHistogram && label == "le")) {
      throw std::invalid_argument(fmt::format("invalid label name {} for {}", label, name));
    }
  }
  std::lock_guard lock(mu_);
  if (auto it = families_.find(name); it != families_.end()) {
    auto* existing = dynamic_cast<F*>(it->second.get());
    if (existing == nullptr || existing->type() != type || existing->label_names() != labels) {
      throw std::invalid_argument("metric registered twice with a different shape: " + name);
    }
    return *existing;
  }
  auto family = std::make_unique<F>(name, std::forward<Args>(args)...);
  F& ref = *family;
  families_.emplace(name, std::move(family));
  return ref;
}

CounterFamily& Registry::AddCounter(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names) {
  return AddFamily<CounterFamily>(name, MetricType::kCounter, label_names, help,
                                  MetricType::kCounter, label_names,
                                  [] { return std::make_unique<Counter>(); });
}

GaugeFamily& Registry::AddGauge(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names) {
  return AddFamily<GaugeFamily>(name, MetricType::kGauge, label_names, help, MetricType::kGauge,
                                label_names, [] { return std::make_unique<Gauge>(); });
}

HistogramFamily& Registry::AddHistogram(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> buckets) {
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  for (double b : buckets) {
    if (!std::isfinite(b)) throw std::invalid_argument("histogram buckets must be finite");
  }
  auto bounds = std::make_shared<const std::vector<double>>(std::move(buckets));
  return AddFamily<HistogramFamily>(name, MetricType::kHistogram, label_names, help,
                                    MetricType::kHistogram, label_names,
                                    [bounds] { return std::make_unique<Histogram>(bounds); });
}

void Registry::AddCallbackGauge(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names, Collector collect) {
  {
    std::lock_guard lock(mu_);
    if (families_.contains(name)) {
      throw std::invalid_argument("metric registered twice: " + name);
    }
  }
  AddFamily<CallbackFamily>(name, MetricType::kGauge, label_names, help, MetricType::kGauge,
                            label_names, std::move(collect));
}

void Registry::AddCallbackGauge(const std::string& name, const std::string& help,
                                std::function<double()> value) {
  AddCallbackGauge(name, help, {}, [value = std::move(value)] {
    return std::vector<Sample>{Sample{{}, value()}};
  });
}

void Registry::AddCallbackCounter(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names, Collector collect) {
  {
    std::lock_guard lock(mu_);
    if (families_.contains(name)) {
      throw std::invalid_argument("metric registered twice: " + name);
    }
  }
  AddFamily<CallbackFamily>(name, MetricType::kCounter, label_names, help, MetricType::kCounter,
                            label_names, std::move(collect));
}

std::string Registry::Render() const {
  std::vector<const detail::FamilyBase*> families;
  {
    std::lock_guard lock(mu_);
    families.reserve(families_.size());
    for (const auto& [name, family] : families_) families.push_back(family.get());
  }
  // Families are never removed, so they outlive this call without the lock.
  std::string out;
  out.reserve(families.size() * 256);
  for (const detail::FamilyBase* family : families) {
    out += "# HELP ";
    out += family->name();
    out += ' ';
    out += EscapeHelp(family->help());
    out += "\n# TYPE ";
    out += family->name();
    out += ' ';
    out += TypeName(family->type());
    out += '\n';
    family->RenderSamples(out);
  }
  return out;
}

// ---- text helpers ----

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

std::string EscapeLabelValue(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
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

}  // namespace shopcqrs::adapters::metrics
