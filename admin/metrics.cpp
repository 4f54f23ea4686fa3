#include "admin/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>

namespace pgphase::admin {

const char* protocol_error_name(ProtocolError e) noexcept {
  switch (e) {
    case ProtocolError::kLengthTooShort:
      return "length_too_short";
    case ProtocolError::kLengthTooLong:
      return "length_too_long";
    case ProtocolError::kUnknownType:
      return "unknown_message_type";
    case ProtocolError::kBadStartupPacket:
      return "bad_startup_packet";
    case ProtocolError::kUnencryptedAfterSsl:
      return "unencrypted_data_after_ssl_request";
    case ProtocolError::kTlsHandshake:
      return "tls_handshake";
    case ProtocolError::kReplyMismatch:
      return "unexpected_server_reply";
    case ProtocolError::kCount:
      break;
  }
  return "other";
}

void StatsShard::observe_latency_ns(uint64_t ns) noexcept {
  const double seconds = static_cast<double>(ns) / 1e9;
  const auto it = std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), seconds);
  bump(latency_buckets[static_cast<size_t>(it - kLatencyBuckets.begin())]);
  bump(latency_count);
  bump(latency_sum_ns, ns);
}

Metrics::Metrics(size_t shards) : registry_(std::make_shared<prometheus::Registry>()) {
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<StatsShard>());
}

Metrics::~Metrics() = default;

void Metrics::add_collectable(std::weak_ptr<const prometheus::Collectable> collectable) {
  const std::lock_guard lock(collectables_mutex_);
  collectables_.push_back(std::move(collectable));
}

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

uint64_t load(const Counter& c) {
  return c.load(std::memory_order_relaxed);
}

template <class Field>
uint64_t sum(const std::vector<std::unique_ptr<StatsShard>>& shards, Field field) {
  uint64_t total = 0;
  for (const auto& s : shards) total += load(field(*s));
  return total;
}

MetricFamily family(std::string name, std::string help, MetricType type) {
  return MetricFamily{std::move(name), std::move(help), type, {}};
}

ClientMetric value_metric(MetricType type, double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Gauge)
    m.gauge.value = v;
  else
    m.counter.value = v;
  return m;
}

void add_message_counts(MetricFamily& f, const std::vector<std::unique_ptr<StatsShard>>& shards,
                        bool frontend) {
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
  const auto& s = shards_;
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
    for (size_t k = 0; k < static_cast<size_t>(ProtocolError::kCount); ++k) {
      const uint64_t n =
          sum(s, [&](const StatsShard& x) -> const Counter& { return x.protocol_errors[k]; });
      f.metric.push_back(
          value_metric(MetricType::Counter, static_cast<double>(n),
                       {{"kind", protocol_error_name(static_cast<ProtocolError>(k))}}));
    }
    families.push_back(std::move(f));
  }
  {
    auto f = family("pgphase_statement_duration_seconds",
                    "Time from a client's Query/Sync/FunctionCall to the backend's ReadyForQuery",
                    MetricType::Histogram);
    ClientMetric m;
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= kLatencyBuckets.size(); ++b) {
      cumulative +=
          sum(s, [&](const StatsShard& x) -> const Counter& { return x.latency_buckets[b]; });
      m.histogram.bucket.push_back({cumulative, b < kLatencyBuckets.size()
                                                    ? kLatencyBuckets[b]
                                                    : std::numeric_limits<double>::infinity()});
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum =
        static_cast<double>(
            sum(s, [](const StatsShard& x) -> const Counter& { return x.latency_sum_ns; })) /
        1e9;
    f.metric.push_back(std::move(m));
    families.push_back(std::move(f));
  }

  const auto append = [&families](std::vector<MetricFamily> more) {
    families.insert(families.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
  };
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
