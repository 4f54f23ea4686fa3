#include "alerting/signals.h"

#include <algorithm>
#include <boost/json.hpp>

#include "alerting/rule.h"
#include "common/log.h"
#include "migration/read_stats.h"
#include "stats/routing_stats.h"

namespace pgphase::alerting {

namespace pg = migration::pg;

Signals::Signals(std::function<migration::SnapshotPtr()> snapshot, migration::ReadStats* reads,
                 const stats::RoutingStats* routing)
    : snapshot_(std::move(snapshot)), reads_(reads), routing_(routing) {}

void Signals::begin_round() {
  round_.clear();
  sampled_ = false;
}

void Signals::sample() {
  if (sampled_ || routing_ == nullptr) return;
  sampled_ = true;
  Sample s;
  s.at = std::chrono::steady_clock::now();
  for (const auto& [id, d] : routing_->totals().dual_writes) {
    auto& slot = s.dual_write[id];
    for (const auto& by_result : d.statements) {
      slot.first += static_cast<double>(by_result[1]);
      slot.second += static_cast<double>(by_result[0]);
    }
  }
  samples_.push_back(std::move(s));
  // Keep one sample at least kWindow old (the window's start) and everything after it.
  while (samples_.size() > 2 && samples_[1].at <= samples_.back().at - kWindow)
    samples_.erase(samples_.begin());
}

std::vector<SignalValue> Signals::values(pg::Connection& c, const std::string& signal,
                                         const std::string& migration_id,
                                         const std::string& config_id) {
  auto it = round_.find(signal);
  if (it == round_.end()) {
    const auto t0 = std::chrono::steady_clock::now();
    it = round_.emplace(signal, compute(c, signal)).first;
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (ms > 100) log::debug("alerting: signal ", signal, " took ", ms, " ms");
  }
  std::vector<SignalValue> out;
  for (const auto& v : it->second) {
    if (!migration_id.empty() && v.migration_id != migration_id) continue;
    if (!config_id.empty() && signal_per_switch(signal) && v.scope != config_id) continue;
    out.push_back(v);
  }
  return out;
}

// Every scope's value of `signal` (no filtering).
std::vector<SignalValue> Signals::compute(pg::Connection& c, const std::string& signal) {
  std::vector<SignalValue> out;
  const migration::SnapshotPtr snap = snapshot_ ? snapshot_() : nullptr;
  if (signal == "consistency_score") {
    const pg::Result r = c.exec(
        "SELECT DISTINCT ON (migration_id) migration_id, consistency_score "
        "FROM t_sys_consistency_checks WHERE coalesce(migration_id, '') <> '' "
        "ORDER BY migration_id, created_at DESC, check_id DESC");
    for (int i = 0; i < r.rows(); ++i) out.push_back({r.str(i, 0), r.str(i, 0), r.float64(i, 1)});
    return out;
  }
  if (signal == "migration_success_rate") {
    const pg::Result r = c.exec(
        "SELECT migration_id, count(*) FILTER (WHERE status = 'success')::float8 / count(*) "
        "FROM t_sys_migration_logs WHERE status IN ('success', 'failed') AND created_at > now() "
        "- interval '1 hour' GROUP BY 1");
    for (int i = 0; i < r.rows(); ++i) out.push_back({r.str(i, 0), r.str(i, 0), r.float64(i, 1)});
    return out;
  }
  if (signal == "dual_write_success_rate") {
    sample();
    std::map<std::string, std::pair<double, double>> totals;  // ok, failed
    if (samples_.size() >= 2) {
      const auto& first = samples_.front().dual_write;
      for (const auto& [id, now] : samples_.back().dual_write) {
        const auto it = first.find(id);
        const double ok = now.first - (it == first.end() ? 0 : it->second.first);
        const double err = now.second - (it == first.end() ? 0 : it->second.second);
        totals[id].first += ok;
        totals[id].second += err;
      }
    }
    const pg::Result r = c.exec(
        "SELECT migration_id, count(*) FROM t_sys_dual_write_logs WHERE NOT target_success AND "
        "created_at > now() - make_interval(secs => $1) GROUP BY 1",
        {pg::param(static_cast<double>(kWindow.count()))});
    for (int i = 0; i < r.rows(); ++i) totals[r.str(i, 0)].second += r.float64(i, 1);
    for (const auto& [id, t] : totals) {
      // Failed eventual writes are also counted as mirrored statements (the client succeeded).
      const double all = std::max(t.first, t.second);
      if (all <= 0) continue;
      out.push_back({id, id, std::max(0.0, (all - t.second) / all)});
    }
    return out;
  }
  // Per switch config.
  if (reads_ == nullptr || !snap) return out;
  for (const auto& s : snap->switches) {
    const migration::Migration* m = snap->migration_for(s);
    const std::string mid = m != nullptr ? m->migration_id : s.migration_id;
    // The switch's own window (conditions.window_seconds, as its auto-rollback uses), else 60 s.
    std::chrono::seconds window = kWindow;
    boost::json::error_code ec;
    const boost::json::value cond = boost::json::parse(s.conditions_json, ec);
    if (!ec && cond.is_object())
      if (const auto* w = cond.as_object().if_contains("window_seconds"); w && w->is_number())
        window = std::chrono::seconds(
            static_cast<int64_t>(std::clamp(w->to_number<double>(), 1.0, 120.0)));
    const migration::ReadView v = reads_->view(s.config_id, window);
    if (v.target.statements == 0) continue;
    out.push_back(
        {s.config_id, mid, signal == "switch_error_rate" ? v.target.error_rate : v.target.p95_ms});
  }
  return out;
}

}  // namespace pgphase::alerting
