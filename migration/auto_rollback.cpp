#include "migration/auto_rollback.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>

#include "common/log.h"
#include "migration/control_plane.h"

namespace pgphase::migration {
namespace {

std::optional<double> number(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return std::nullopt;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

RollbackThresholds thresholds_of(const SwitchConfig& s) {
  RollbackThresholds t;
  t.error_rate = s.auto_rollback_threshold;
  boost::system::error_code ec;
  const boost::json::value c = boost::json::parse(s.conditions_json, ec);
  if (ec || !c.is_object()) return t;
  const auto& o = c.as_object();
  if (const auto e = number(o, "error_rate_threshold")) t.error_rate = std::min(t.error_rate, *e);
  t.latency_ms = number(o, "latency_threshold");
  t.consistency = number(o, "consistency_threshold");
  if (const auto m = number(o, "min_samples"); m && *m >= 1)
    t.min_samples = static_cast<uint64_t>(*m);
  if (const auto w = number(o, "window_seconds"); w && *w >= 1)
    t.window_seconds = static_cast<int>(std::min(*w, 120.0));
  if (const auto* st = o.if_contains("steps"); st && st->is_array()) {
    for (const auto& v : st->as_array()) {
      if (v.is_number()) t.steps.push_back(v.to_number<double>());
    }
    std::sort(t.steps.begin(), t.steps.end());
  }
  if (const auto i = number(o, "step_interval"); i && *i >= 0)
    t.step_interval_seconds = static_cast<int>(*i);
  return t;
}

std::optional<double> next_step(const RollbackThresholds& t, double percentage) {
  for (double step : t.steps) {
    if (step > percentage + 1e-9 && step <= 100) return step;
  }
  return std::nullopt;
}

RollbackCheck evaluate(const SwitchConfig& s, const ReadView& window,
                       std::optional<double> consistency_score) {
  RollbackCheck c;
  c.config_id = s.config_id;
  c.thresholds = thresholds_of(s);
  c.window = window;
  c.consistency_score = consistency_score;
  const RollbackThresholds& t = c.thresholds;
  if (consistency_score && t.consistency && *consistency_score < *t.consistency) {
    c.reasons.push_back("latest consistency score " + fmt(*consistency_score) + " below " +
                        fmt(*t.consistency));
  }
  if (window.shadow_mismatches > 0) {
    c.reasons.push_back(std::to_string(window.shadow_mismatches) + " of " +
                        std::to_string(window.shadow_comparisons) +
                        " shadow comparisons differ between source and target");
  }
  const SideStats& target = window.target;
  if (target.statements < t.min_samples) {
    c.inconclusive = true;
  } else {
    if (target.error_rate > t.error_rate) {
      c.reasons.push_back("target error rate " + fmt(target.error_rate) + " (" +
                          std::to_string(target.errors) + " of " +
                          std::to_string(target.statements) + " reads in " + fmt(window.seconds) +
                          " s) above " + fmt(t.error_rate));
    }
    if (t.latency_ms && target.p95_ms > *t.latency_ms) {
      c.reasons.push_back("target p95 latency " + fmt(target.p95_ms) + " ms above " +
                          fmt(*t.latency_ms) + " ms");
    }
  }
  c.breach = !c.reasons.empty();
  return c;
}

AutoRollback::AutoRollback(ControlPlane& control, ReadStats& stats,
                           std::chrono::milliseconds interval)
    : control_(control), stats_(stats), interval_(interval) {}

AutoRollback::~AutoRollback() {
  stop();
}

void AutoRollback::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void AutoRollback::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

RollbackCheck AutoRollback::run_check(const SwitchConfig& s, const std::string& actor) {
  const RollbackThresholds t = thresholds_of(s);
  std::optional<double> score;
  if (t.consistency) score = control_.latest_consistency_score(s);
  RollbackCheck c =
      evaluate(s, stats_.view(s.config_id, std::chrono::seconds(t.window_seconds)), score);
  const bool switched = s.status == SwitchStatus::kActive && s.switch_percentage > 0;
  if (c.breach && switched && s.rollback_enabled) {
    std::string why = "auto-rollback: ";
    for (size_t i = 0; i < c.reasons.size(); ++i) why += (i > 0 ? "; " : "") + c.reasons[i];
    const auto r = control_.rollback_switch(s.config_id, actor, why);
    c.rolled_back = r.ok();
    if (r.ok()) {
      log::warn("read switch ", s.config_id, " rolled back: ", why);
    } else {
      log::warn("read switch ", s.config_id, ": auto-rollback failed: ", r.error->message);
    }
  }
  std::lock_guard lock(mu_);
  last_[s.config_id] = c;
  return c;
}

void AutoRollback::maybe_ramp(const SwitchConfig& s, const RollbackCheck& c) {
  const RollbackThresholds& t = c.thresholds;
  if (t.steps.empty() || c.breach || s.status != SwitchStatus::kActive) return;
  const auto next = next_step(t, s.switch_percentage);
  if (!next) return;
  std::chrono::steady_clock::time_point changed;
  {
    std::lock_guard lock(mu_);
    changed = seen_percentage_[s.config_id].second;
  }
  const auto since = std::chrono::steady_clock::now() - changed;
  const bool from_zero = s.switch_percentage <= 0;
  const auto wait = std::chrono::seconds(
      from_zero ? t.step_interval_seconds : std::max(t.step_interval_seconds, t.window_seconds));
  if (since < wait) return;
  if (!from_zero && c.inconclusive) return;  // no evidence at this step yet
  const auto r = control_.set_switch_percentage(
      s.config_id, *next, "auto-ramp",
      "ramp step: " + fmt(s.switch_percentage) + "% healthy for " +
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(since).count()) + " s");
  if (!r.ok()) log::warn("read switch ", s.config_id, ": ramp step failed: ", r.error->message);
}

std::string AutoRollback::promote(const std::string& config_id, const std::string& actor) {
  const SnapshotPtr snap = control_.snapshot();
  const SwitchConfig* s = snap->find_switch(config_id);
  if (s == nullptr) return "no switch config \"" + config_id + "\"";
  if (s->status != SwitchStatus::kActive) return config_id + " is not active";
  const RollbackThresholds t = thresholds_of(*s);
  if (t.steps.empty()) return config_id + " has no ramp (conditions.steps)";
  const auto next = next_step(t, s->switch_percentage);
  if (!next) return config_id + " is at its last step";
  const RollbackCheck c = run_check(*s, actor);
  if (c.breach) return "the latest check of " + config_id + " breached: " + c.reasons.front();
  const auto r = control_.set_switch_percentage(config_id, *next, actor, "ramp promoted");
  return r.ok() ? std::string() : r.error->message;
}

std::optional<RollbackCheck> AutoRollback::check_now(const std::string& config_id,
                                                     const std::string& actor) {
  const SnapshotPtr snap = control_.snapshot();
  const SwitchConfig* s = snap->find_switch(config_id);
  if (s == nullptr) return std::nullopt;
  return run_check(*s, actor);
}

std::optional<RollbackCheck> AutoRollback::last(const std::string& config_id) const {
  std::lock_guard lock(mu_);
  const auto it = last_.find(config_id);
  if (it == last_.end()) return std::nullopt;
  return it->second;
}

void AutoRollback::loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, interval_, [&] { return stop_; })) return;
    }
    try {
      const SnapshotPtr snap = control_.snapshot();
      for (const SwitchConfig& s : snap->switches) {
        {
          // A new activation starts with fresh figures.
          std::lock_guard lock(mu_);
          const auto it = seen_status_.find(s.config_id);
          if (it != seen_status_.end() && s.status == SwitchStatus::kActive &&
              it->second != SwitchStatus::kActive)
            stats_.reset(s.config_id);
          seen_status_[s.config_id] = s.status;
          auto& pct = seen_percentage_[s.config_id];
          if (pct.second == std::chrono::steady_clock::time_point{} ||
              pct.first != s.switch_percentage)
            pct = {s.switch_percentage, std::chrono::steady_clock::now()};
        }
        if (s.status != SwitchStatus::kActive) continue;
        const Migration* m = snap->migration_for(s);
        if (m == nullptr || m->phase != Phase::kReadSwitch) continue;
        if (s.switch_percentage > 0) {
          const RollbackCheck c = run_check(s, "auto-rollback");
          if (c.rolled_back) continue;
          maybe_ramp(s, c);
        } else if (!thresholds_of(s).steps.empty()) {
          RollbackCheck idle;
          idle.thresholds = thresholds_of(s);
          idle.inconclusive = true;
          maybe_ramp(s, idle);
        }
      }
    } catch (const std::exception& e) {
      log::warn("auto-rollback check failed: ", e.what());
    }
  }
}

}  // namespace pgphase::migration
