#include "admin/routing_metrics.h"

#include <string>

#include "admin/metric_builders.h"
#include "common/metric_names.h"
#include "stats/routing_stats.h"

namespace pgphase::admin {

namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

// Counters appear once they count (as prometheus-cpp series do once first incremented).
void add_counter(MetricFamily& f, uint64_t n, std::vector<prometheus::ClientMetric::Label> labels) {
  if (n > 0) f.metric.push_back(value_metric(MetricType::Counter, static_cast<double>(n), labels));
}

const char* side_name(size_t side) {
  return side == 1 ? "target" : "source";
}

}  // namespace

std::vector<MetricFamily> routing_families(const stats::RoutingTotals& t) {
  auto statements =
      family(metrics::kDualWriteStatements, metrics::kDualWriteStatementsHelp, MetricType::Counter);
  auto rows = family("pgphase_dual_write_rows_total",
                     "Rows written by mirrored statements (as the client's command tag counts "
                     "them), by migration and operation",
                     MetricType::Counter);
  auto unsupported = family("pgphase_unsupported_writes_total",
                            "Writes to a migrating table pgphase cannot mirror, by migration and "
                            "action (refused under reject, flagged under allow_and_flag)",
                            MetricType::Counter);
  for (const auto& [id, d] : t.dual_writes) {
    for (size_t o = 0; o < stats::kWriteOps; ++o) {
      const std::string op = stats::write_op_name(static_cast<stats::WriteOp>(o));
      add_counter(statements, d.statements[o][1],
                  {{"migration_id", id}, {"operation", op}, {"result", "ok"}});
      add_counter(statements, d.statements[o][0],
                  {{"migration_id", id}, {"operation", op}, {"result", "error"}});
      add_counter(rows, d.rows[o], {{"migration_id", id}, {"operation", op}});
    }
    add_counter(unsupported, d.refused, {{"migration_id", id}, {"action", "refused"}});
    add_counter(unsupported, d.flagged, {{"migration_id", id}, {"action", "flagged"}});
  }

  auto analysis = family("pgphase_statement_analysis_total",
                         "Statement texts naming a migrating table analysed, by parse-cache "
                         "result (hit, miss)",
                         MetricType::Counter);
  analysis.metric.push_back(
      value_metric(MetricType::Counter, static_cast<double>(t.analysis.hits), {{"result", "hit"}}));
  analysis.metric.push_back(value_metric(
      MetricType::Counter, static_cast<double>(t.analysis.misses), {{"result", "miss"}}));
  auto analysis_seconds =
      family("pgphase_statement_analysis_seconds_total",
             "Time spent analysing and rewriting statement texts", MetricType::Counter);
  analysis_seconds.metric.push_back(
      value_metric(MetricType::Counter, static_cast<double>(t.analysis.nanoseconds) / 1e9));

  auto reads = family("pgphase_read_switch_statements_total",
                      "Reads of a switching table by read switch config, side (source, target) "
                      "and result (ok, error)",
                      MetricType::Counter);
  auto latency = family("pgphase_read_switch_latency_seconds",
                        "Time from forwarding a routed read to its completion, by read switch "
                        "config and side",
                        MetricType::Histogram);
  for (const auto& [id, sides] : t.reads) {
    // A config's series appear together with its first routed read (not with an unroutable one).
    uint64_t routed = 0;
    for (const auto& s : sides) routed += s.ok + s.errors;
    if (routed == 0) continue;
    for (size_t side = 0; side < 2; ++side) {
      const stats::ReadSideTotals& s = sides[side];
      reads.metric.push_back(
          value_metric(MetricType::Counter, static_cast<double>(s.ok),
                       {{"config_id", id}, {"side", side_name(side)}, {"result", "ok"}}));
      reads.metric.push_back(
          value_metric(MetricType::Counter, static_cast<double>(s.errors),
                       {{"config_id", id}, {"side", side_name(side)}, {"result", "error"}}));
      latency.metric.push_back(histogram_metric(stats::kReadLatencyBuckets, s.latency,
                                                static_cast<double>(s.latency_ns) / 1e9,
                                                {{"config_id", id}, {"side", side_name(side)}}));
    }
  }

  auto unroutable = family("pgphase_read_unroutable_total",
                           "Reads of a switching table kept on the source because pgphase cannot "
                           "redirect them with certainty, by migration and config",
                           MetricType::Counter);
  for (const auto& [key, n] : t.unroutable)
    add_counter(unroutable, n, {{"migration_id", key.first}, {"config_id", key.second}});

  // A family without series is left out (as prometheus-cpp's registry leaves it out).
  std::vector<MetricFamily> out;
  for (MetricFamily* f : {&statements, &rows, &unsupported, &analysis, &analysis_seconds, &reads,
                          &latency, &unroutable}) {
    if (!f->metric.empty()) out.push_back(std::move(*f));
  }
  return out;
}

}  // namespace pgphase::admin
