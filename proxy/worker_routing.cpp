#include "proxy/worker_routing.h"

#include "common/metric_names.h"

#include <chrono>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "common/log.h"
#include "migration/read_stats.h"
#include "migration/shadow.h"

namespace pgphase::proxy {

namespace {
std::string_view op_name(router::TagKind k) {
  switch (k) {
    case router::TagKind::kInsert:
      return "insert";
    case router::TagKind::kUpdate:
      return "update";
    case router::TagKind::kDelete:
      return "delete";
  }
  return "other";
}
}  // namespace

DualWriteFamilies::DualWriteFamilies(prometheus::Registry& registry)
    : statements(prometheus::BuildCounter()
                     .Name(metrics::kDualWriteStatements)
                     .Help(metrics::kDualWriteStatementsHelp)
                     .Register(registry)),
      rows(prometheus::BuildCounter()
               .Name("pgphase_dual_write_rows_total")
               .Help("Rows written by mirrored statements (as the client's command tag counts "
                     "them), by migration and operation")
               .Register(registry)),
      unsupported(prometheus::BuildCounter()
                      .Name("pgphase_unsupported_writes_total")
                      .Help("Writes to a migrating table pgphase cannot mirror, by migration and "
                            "action (refused under reject, flagged under allow_and_flag)")
                      .Register(registry)),
      analysis(prometheus::BuildCounter()
                   .Name("pgphase_statement_analysis_total")
                   .Help("Statement texts naming a migrating table analysed, by parse-cache "
                         "result (hit, miss)")
                   .Register(registry)),
      analysis_seconds(prometheus::BuildCounter()
                           .Name("pgphase_statement_analysis_seconds_total")
                           .Help("Time spent analysing and rewriting statement texts")
                           .Register(registry)),
      reads(prometheus::BuildCounter()
                .Name("pgphase_read_switch_statements_total")
                .Help("Reads of a switching table by read switch config, side (source, target) "
                      "and result (ok, error)")
                .Register(registry)),
      read_latency(prometheus::BuildHistogram()
                       .Name("pgphase_read_switch_latency_seconds")
                       .Help("Time from forwarding a routed read to its completion, by read "
                             "switch config and side")
                       .Register(registry)),
      unroutable(prometheus::BuildCounter()
                     .Name("pgphase_read_unroutable_total")
                     .Help("Reads of a switching table kept on the source because pgphase cannot "
                           "redirect them with certainty, by migration and config")
                     .Register(registry)) {}

WorkerRouting::WorkerRouting(MigrationSnapshotSource snapshots, size_t plan_cache_bytes,
                             DualWriteFamilies& families, FlagSink flag_sink,
                             migration::ReadStats* read_stats, migration::ShadowRunner* shadow)
    : snapshots_(std::move(snapshots)),
      cache_(plan_cache_bytes),
      families_(families),
      flag_sink_(std::move(flag_sink)),
      read_stats_(read_stats),
      shadow_(shadow) {
  hits_ = &families_.analysis.Add({{"result", "hit"}});
  misses_ = &families_.analysis.Add({{"result", "miss"}});
  seconds_ = &families_.analysis_seconds.Add({});
}

std::shared_ptr<const router::RoutingTable> WorkerRouting::table_for(const std::string& database) {
  const migration::SnapshotPtr snap = snapshots_ ? snapshots_() : nullptr;
  if (snap == nullptr) return nullptr;
  if (snap->generation != generation_) {
    tables_.clear();
    generation_ = snap->generation;
  }
  auto found = tables_.find(database);
  if (found == tables_.end())
    found = tables_.emplace(database, router::RoutingTable::build(*snap, database)).first;
  return found->second;
}

prometheus::Counter& WorkerRouting::counter(prometheus::Family<prometheus::Counter>& family,
                                            const std::string& key,
                                            const std::map<std::string, std::string>& labels) {
  auto& slot = counters_[key];
  if (slot == nullptr) slot = &family.Add(labels);
  return *slot;
}

void WorkerRouting::mirrored(std::string_view migration_id, router::TagKind op, bool ok,
                             int64_t rows) {
  const std::string id(migration_id);
  const std::string opn(op_name(op));
  const std::string result = ok ? "ok" : "error";
  counter(families_.statements, "s\x1f" + id + "\x1f" + opn + "\x1f" + result,
          {{"migration_id", id}, {"operation", opn}, {"result", result}})
      .Increment();
  if (ok && rows > 0) {
    counter(families_.rows, "r\x1f" + id + "\x1f" + opn, {{"migration_id", id}, {"operation", opn}})
        .Increment(static_cast<double>(rows));
  }
}

void WorkerRouting::refused(std::string_view migration_id) {
  const std::string id(migration_id);
  counter(families_.unsupported, "u\x1f" + id + "\x1frefused",
          {{"migration_id", id}, {"action", "refused"}})
      .Increment();
}

void WorkerRouting::flagged(std::string_view migration_id, std::string_view reason,
                            std::string_view sql) {
  const std::string id(migration_id);
  counter(families_.unsupported, "u\x1f" + id + "\x1f" + "flagged",
          {{"migration_id", id}, {"action", "flagged"}})
      .Increment();
  log::warn("migration ", id, ": passed a write pgphase cannot mirror (allow_and_flag): ", reason);
  if (flag_sink_) flag_sink_(id, std::string(reason), std::string(sql.substr(0, 2000)));
}

void WorkerRouting::read(std::string_view config_id, bool target, bool ok, uint64_t nanoseconds) {
  // Per read: one lookup by view, no allocation (the label maps are built once per config).
  auto it = read_metrics_.find(config_id);
  if (it == read_metrics_.end()) {
    const std::string id(config_id);
    ReadMetrics m;
    for (int side = 0; side < 2; ++side) {
      const std::string s = side == 1 ? "target" : "source";
      m.ok[side] = &families_.reads.Add({{"config_id", id}, {"side", s}, {"result", "ok"}});
      m.error[side] = &families_.reads.Add({{"config_id", id}, {"side", s}, {"result", "error"}});
      m.latency[side] = &families_.read_latency.Add(
          {{"config_id", id}, {"side", s}},
          prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1, 0.25, 0.5, 1, 2.5, 5});
    }
    it = read_metrics_.emplace(id, m).first;
  }
  const int side = target ? 1 : 0;
  (ok ? it->second.ok[side] : it->second.error[side])->Increment();
  it->second.latency[side]->Observe(static_cast<double>(nanoseconds) / 1e9);
  if (read_stats_ != nullptr)
    read_stats_->record(config_id, target, ok, static_cast<double>(nanoseconds) / 1e6);
}

void WorkerRouting::unroutable(std::string_view migration_id, std::string_view config_id,
                               std::string_view reason) {
  const std::string id(migration_id);
  const std::string cfg(config_id);
  counter(families_.unroutable, "ur\x1f" + id + "\x1f" + cfg,
          {{"migration_id", id}, {"config_id", cfg}})
      .Increment();
  if (read_stats_ != nullptr && !config_id.empty()) read_stats_->record_unroutable(config_id);
  log::debug("migration ", id, ": read kept on the source: ", reason);
}

void WorkerRouting::shadow(migration::ShadowJob job) {
  if (shadow_ != nullptr) (void)shadow_->submit(std::move(job));
}

void WorkerRouting::analysed(bool cache_hit, uint64_t nanoseconds) {
  (cache_hit ? hits_ : misses_)->Increment();
  seconds_->Increment(static_cast<double>(nanoseconds) / 1e9);
  if (read_stats_ != nullptr) read_stats_->record_analysis(cache_hit, nanoseconds);
}

}  // namespace pgphase::proxy
