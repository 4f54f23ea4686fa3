#include "admin/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>

#include "admin/metric_builders.h"
#include "admin/routing_metrics.h"
#include "stats/stats.h"

namespace pgphase::admin {

Metrics::Metrics(const stats::Stats& stats)
    : stats_(stats), registry_(std::make_shared<prometheus::Registry>()) {}

Metrics::~Metrics() = default;

void Metrics::add_collectable(std::weak_ptr<const prometheus::Collectable> collectable) {
  const std::lock_guard lock(collectables_mutex_);
  collectables_.push_back(std::move(collectable));
}

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using stats::Counter;
using stats::StatsShard;

template <class Field>
uint64_t sum(const stats::Stats& shards, Field field) {
  uint64_t total = 0;
  for (size_t i = 0; i < shards.workers(); ++i) total += stats::load(field(shards.relay(i)));
  return total;
}

void add_message_counts(MetricFamily& f, const stats::Stats& shards, bool frontend) {
  for (int t = 0; t < 256; ++t) {
    const uint64_t n = sum(shards, [&](const StatsShard& s) -> const Counter& {
      return frontend ? s.frontend_messages[t] : s.backend_messages[t];
    });
    if (n == 0) continue;
    const std::string type(1, static_cast<char>(t));
    f.metric.push_back(value_metric(
        MetricType::Counter, static_cast<double>(n),
        {{"direction", frontend ? "client_to_backend" : "backend_to_client"}, {"type", type}}));
  }
}

}  // namespace

std::string Metrics::render() const {
  std::vector<MetricFamily> families;
  const stats::Stats& s = stats_;
  const auto counter = [&](std::string name, std::string help, uint64_t v) {
    auto f = family(std::move(name), std::move(help), MetricType::Counter);
    f.metric.push_back(value_metric(MetricType::Counter, static_cast<double>(v)));
    families.push_back(std::move(f));
  };
  const auto gauge = [&](std::string name, std::string help, int64_t v) {
    auto f = family(std::move(name), std::move(help), MetricType::Gauge);
    f.metric.push_back(value_metric(MetricType::Gauge, static_cast<double>(v)));
    families.push_back(std::move(f));
  };

  const uint64_t c_open =
      sum(s, [](const StatsShard& x) -> const Counter& { return x.client_connections_opened; });
  const uint64_t c_closed =
      sum(s, [](const StatsShard& x) -> const Counter& { return x.client_connections_closed; });
  const uint64_t b_open =
      sum(s, [](const StatsShard& x) -> const Counter& { return x.backend_connections_opened; });
  const uint64_t b_closed =
      sum(s, [](const StatsShard& x) -> const Counter& { return x.backend_connections_closed; });
  gauge("pgphase_client_connections", "Client connections currently open",
        static_cast<int64_t>(c_open) - static_cast<int64_t>(c_closed));
  counter("pgphase_client_connections_total", "Client connections accepted", c_open);
  gauge("pgphase_backend_connections", "Backend connections currently open",
        static_cast<int64_t>(b_open) - static_cast<int64_t>(b_closed));
  counter("pgphase_backend_connections_total", "Backend connections opened", b_open);
  counter("pgphase_backend_connect_failures_total", "Failed attempts to connect to the backend",
          sum(s, [](const StatsShard& x) -> const Counter& { return x.backend_connect_failures; }));
  counter("pgphase_cancel_requests_total", "CancelRequests received from clients",
          sum(s, [](const StatsShard& x) -> const Counter& { return x.cancel_requests; }));

  {
    auto f = family("pgphase_bytes_total", "Bytes relayed, by direction", MetricType::Counter);
    f.metric.push_back(value_metric(
        MetricType::Counter,
        static_cast<double>(sum(
            s, [](const StatsShard& x) -> const Counter& { return x.bytes_client_to_backend; })),
        {{"direction", "client_to_backend"}}));
    f.metric.push_back(value_metric(
        MetricType::Counter,
        static_cast<double>(sum(
            s, [](const StatsShard& x) -> const Counter& { return x.bytes_backend_to_client; })),
        {{"direction", "backend_to_client"}}));
    families.push_back(std::move(f));
  }
  {
    auto f = family("pgphase_messages_total",
                    "Protocol messages relayed, by direction and type byte", MetricType::Counter);
    add_message_counts(f, s, true);
    add_message_counts(f, s, false);
    families.push_back(std::move(f));
  }
  {
    auto f = family("pgphase_statements_total",
                    "Statements completed (CommandComplete), by command", MetricType::Counter);
    for (size_t c = 0; c < static_cast<size_t>(protocol::Command::kCount); ++c) {
      const uint64_t n =
          sum(s, [&](const StatsShard& x) -> const Counter& { return x.statements[c]; });
      f.metric.push_back(
          value_metric(MetricType::Counter, static_cast<double>(n),
                       {{"command", protocol::command_name(static_cast<protocol::Command>(c))}}));
    }
    families.push_back(std::move(f));
  }
  {
    auto f = family("pgphase_protocol_errors_total", "Protocol violations seen, by kind",
                    MetricType::Counter);
    for (size_t k = 0; k < static_cast<size_t>(stats::ProtocolError::kCount); ++k) {
      const uint64_t n =
          sum(s, [&](const StatsShard& x) -> const Counter& { return x.protocol_errors[k]; });
      f.metric.push_back(value_metric(
          MetricType::Counter, static_cast<double>(n),
          {{"kind", stats::protocol_error_name(static_cast<stats::ProtocolError>(k))}}));
    }
    families.push_back(std::move(f));
  }
  {
    auto f = family("pgphase_statement_duration_seconds",
                    "Time from a client's Query/Sync/FunctionCall to the backend's ReadyForQuery",
                    MetricType::Histogram);
    std::array<uint64_t, stats::kLatencyBuckets.size() + 1> counts{};
    for (size_t b = 0; b < counts.size(); ++b)
      counts[b] =
          sum(s, [&](const StatsShard& x) -> const Counter& { return x.latency_buckets[b]; });
    f.metric.push_back(histogram_metric(
        stats::kLatencyBuckets, counts,
        static_cast<double>(
            sum(s, [](const StatsShard& x) -> const Counter& { return x.latency_sum_ns; })) /
            1e9));
    families.push_back(std::move(f));
  }

  const auto append = [&families](std::vector<MetricFamily> more) {
    families.insert(families.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
  };
  if (s.routing_enabled()) append(routing_families(s.routing().totals()));
  append(registry_->Collect());
  {
    const std::lock_guard lock(collectables_mutex_);
    for (const auto& weak : collectables_) {
      if (const auto c = weak.lock()) append(c->Collect());
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace pgphase::admin
