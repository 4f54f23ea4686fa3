// Building prometheus-cpp's MetricFamily values by hand, for figures pgphase keeps itself (the
// workers' shards) and renders at scrape time.
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace pgphase::admin {

inline prometheus::MetricFamily family(std::string name, std::string help,
                                       prometheus::MetricType type) {
  return prometheus::MetricFamily{std::move(name), std::move(help), type, {}};
}

inline prometheus::ClientMetric value_metric(
    prometheus::MetricType type, double v,
    std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (type == prometheus::MetricType::Gauge)
    m.gauge.value = v;
  else
    m.counter.value = v;
  return m;
}

// A histogram from non-cumulative bucket counts (one more than `bounds`: +Inf) and a sum.
template <class Bounds, class Counts>
prometheus::ClientMetric histogram_metric(
    const Bounds& bounds, const Counts& counts, double sum,
    std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  uint64_t cumulative = 0;
  for (size_t b = 0; b <= bounds.size(); ++b) {
    cumulative += counts[b];
    m.histogram.bucket.push_back(
        {cumulative, b < bounds.size() ? bounds[b] : std::numeric_limits<double>::infinity()});
  }
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = sum;
  return m;
}

}  // namespace pgphase::admin
