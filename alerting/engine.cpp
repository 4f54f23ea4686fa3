#include "alerting/engine.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>

#include "alerting/recovery.h"
#include "alerting/store.h"
#include "common/log.h"

namespace pgphase::alerting {

namespace json = boost::json;
namespace pg = migration::pg;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(5);

std::string new_alert_id() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "alert_%Y%m%d%H%M%S_", &tm);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char rnd[20];
  std::snprintf(rnd, sizeof rnd, "%08llx", static_cast<unsigned long long>(rng() & 0xffffffffu));
  return std::string(buf) + rnd;
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// The value an SQL condition returned: nullopt for no row or NULL; throws std::runtime_error for
// more than one column or a non-number.
std::optional<double> value_of(const pg::Result& r) {
  if (r.cols() != 1)
    throw std::runtime_error("the condition returns " + std::to_string(r.cols()) +
                             " columns; it must return one number");
  if (r.rows() == 0 || r.is_null(0, 0)) return std::nullopt;
  const std::string v = r.str(0, 0);
  if (v == "t" || v == "f") return v == "t" ? 1.0 : 0.0;
  std::size_t used = 0;
  double d = 0;
  try {
    d = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v.size())
    throw std::runtime_error("the condition returned \"" + v.substr(0, 40) +
                             "\", which is not a number");
  return d;
}

// The outcome of one rule's query in a round.
struct QueryOutcome {
  std::optional<pg::Result> result;  // the query's rows
  std::string error;                 // its error ("" when it ran)
  bool aborted = false;              // skipped: an earlier query of the round failed
};

// Runs `queries` (one statement each, no parameters) one after the other, inside the caller's
// transaction; after a failure the rest come back aborted (the transaction is). A libpq pipeline
// would save the round trips, but pipelines (blocking or not) stalled for seconds while the
// server was saturated; one statement at a time never did.
std::vector<QueryOutcome> run_in_order(pg::Connection& c, const std::vector<std::string>& queries) {
  std::vector<QueryOutcome> out(queries.size());
  bool failed = false;
  for (std::size_t i = 0; i < queries.size(); ++i) {
    if (failed) {
      out[i].aborted = true;
      continue;
    }
    try {
      c.send(queries[i]);
      out[i].result.emplace(c.receive());
    } catch (const pg::PgError& e) {
      if (e.connection_lost()) throw;
      out[i].error =
          std::string(e.what()) + (e.sqlstate().empty() ? "" : " (SQLSTATE " + e.sqlstate() + ")");
      failed = true;
    }
  }
  return out;
}

}  // namespace

struct AlertEngine::Pending {
  Notification n;
  AlertRule rule;
};

AlertEngine::AlertEngine(std::string dsn, EngineOptions options, std::unique_ptr<Signals> signals,
                         Notifier& notifier, Recovery* recovery, prometheus::Registry* registry)
    : dsn_(std::move(dsn)),
      options_(options),
      signals_(std::move(signals)),
      notifier_(notifier),
      recovery_(recovery) {
  if (registry == nullptr) return;
  evaluations_family_ = &prometheus::BuildCounter()
                             .Name("pgphase_alert_evaluations_total")
                             .Help("Alert rule evaluations by result (ok, error)")
                             .Register(*registry);
  active_family_ = &prometheus::BuildGauge()
                        .Name("pgphase_alerts_active")
                        .Help("Alerts firing or acknowledged, by severity (from the evaluator)")
                        .Register(*registry);
}

AlertEngine::~AlertEngine() {
  stop();
}

void AlertEngine::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void AlertEngine::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AlertEngine::kick() {
  {
    std::lock_guard lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

std::optional<double> AlertEngine::run_sql(pg::Connection& c, const std::string& sql) {
  try {
    // One round trip for the transaction and its limits (pgphase's own fixed text).
    c.exec("BEGIN READ ONLY; SET LOCAL statement_timeout = " +
           std::to_string(options_.sql_timeout.count()) + "; SET LOCAL lock_timeout = 1000");
    c.send(sql);
    const pg::Result r = c.receive();
    c.exec("ROLLBACK");
    return value_of(r);
  } catch (...) {
    if (c.ok()) {
      try {
        c.exec("ROLLBACK");
      } catch (const std::exception&) {
      }
    }
    throw;
  }
}

pg::Connection AlertEngine::open_connection() const {
  pg::Connection c = pg::Connection::open(dsn_, kConnectTimeout);
  // The rules' SQL runs under statement_timeout = sql_timeout; a server that stops answering
  // altogether (hung, or a silent network path) must not stop alert evaluation for good.
  c.set_answer_timeout(options_.sql_timeout + std::chrono::seconds(5));
  return c;
}

std::string AlertEngine::check_rule(const AlertRule& r) {
  if (!r.is_sql()) return {};
  try {
    pg::Connection c = open_connection();
    (void)run_sql(c, r.condition);
    return {};
  } catch (const pg::PgError& e) {
    return "condition: " + std::string(e.what()) +
           (e.sqlstate().empty() ? "" : " (SQLSTATE " + e.sqlstate() + ")");
  } catch (const std::exception& e) {
    return "condition: " + std::string(e.what());
  }
}

void AlertEngine::loop() {
  pg::Connection c;
  auto last_error = Clock::time_point{};
  // Rounds start at a fixed rate (a slow round does not push the next ones back).
  auto next = Clock::now() + options_.interval;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, next, [&] { return stop_ || kicked_; });
      if (stop_) return;
      kicked_ = false;
    }
    if (const auto now = Clock::now(); now >= next) {  // a scheduled round (not a kick)
      next += options_.interval;
      if (next < now) next = now + options_.interval;  // fell behind: no burst
    }
    try {
      if (!c.ok() || !c.alive()) {
        leading_ = false;
        c = open_connection();
      }
      if (!leading_) {
        leading_ =
            c.exec("SELECT pg_try_advisory_lock($1)", {pg::param(kAlertLockKey)}).boolean(0, 0);
        if (!leading_) continue;  // another pgphase evaluates
        log::info("alerting: this pgphase evaluates the alert rules");
      }
      round(c);
    } catch (const std::exception& e) {
      if (Clock::now() - last_error > std::chrono::seconds(30)) {
        log::warn("alerting: evaluation round failed: ", e.what());
        last_error = Clock::now();
      }
      if (!c.alive()) {
        c.close();
        leading_ = false;
      }
    }
  }
}

void AlertEngine::round(pg::Connection& c) {
  const auto t0 = Clock::now();
  auto ms = [&] { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); };
  signals_->begin_round();
  const std::vector<AlertRule> rules = store::load_rules(c);
  std::map<std::string, store::OpenAlert> open;  // rule_id \x1f scope
  for (auto& a : store::open_alerts(c)) open.emplace(a.rule_id + "\x1f" + a.scope, a);

  // Read phase: every enabled rule's values, in one read-only transaction under the statement
  // timeout (one round trip per SQL rule; a failing rule restarts the transaction).
  struct Evaluated {
    const AlertRule* rule;
    std::vector<SignalValue> values;
    bool failed = false;
  };
  std::vector<Evaluated> evaluated;
  for (const AlertRule& rule : rules)
    if (rule.enabled) evaluated.push_back({&rule, {}, false});
  const std::string begin = "BEGIN READ ONLY; SET LOCAL statement_timeout = " +
                            std::to_string(options_.sql_timeout.count()) +
                            "; SET LOCAL lock_timeout = 1000";
  auto counted = [&](bool ok) {
    ++evaluations_;
    if (evaluations_family_)
      evaluations_family_->Add({{"result", ok ? "ok" : "error"}}).Increment();
  };
  c.exec(begin);
  // SQL rules, one round trip each; a failing one aborts the transaction, so the rules after it
  // run again in a new one.
  std::vector<Evaluated*> pending;
  for (auto& ev : evaluated)
    if (ev.rule->is_sql()) pending.push_back(&ev);
  while (!pending.empty()) {
    std::vector<std::string> queries;
    for (const Evaluated* ev : pending) queries.push_back(ev->rule->condition);
    const std::vector<QueryOutcome> piped = run_in_order(c, queries);
    std::vector<Evaluated*> again;
    for (std::size_t i = 0; i < pending.size(); ++i) {
      Evaluated& ev = *pending[i];
      if (piped[i].aborted) {
        again.push_back(&ev);
        continue;
      }
      std::string error = piped[i].error;
      if (error.empty()) {
        try {
          if (const auto v = value_of(*piped[i].result))
            ev.values.push_back({"", ev.rule->migration_id, *v});
        } catch (const std::exception& e) {
          error = e.what();
        }
      }
      if (!error.empty()) {
        ev.failed = true;
        log::warn("alerting: rule ", ev.rule->rule_id, " could not be evaluated: ", error);
      }
      counted(error.empty());
    }
    if (!again.empty() ||
        std::any_of(pending.begin(), pending.end(), [](const Evaluated* e) { return e->failed; })) {
      c.exec("ROLLBACK");
      c.exec(begin);
    }
    pending = std::move(again);
  }
  const double sql_ms = ms();
  for (auto& ev : evaluated) {
    if (ev.rule->is_sql()) continue;
    try {
      ev.values = signals_->values(c, ev.rule->signal(), ev.rule->migration_id, ev.rule->config_id);
      counted(true);
    } catch (const std::exception& e) {
      counted(false);
      if (!c.alive()) throw;
      log::warn("alerting: rule ", ev.rule->rule_id, " could not be evaluated: ", e.what());
      ev.failed = true;
      c.exec("ROLLBACK");
      c.exec(begin);
    }
  }
  c.exec("ROLLBACK");
  const double read_ms = ms();

  // Lifecycle phase.
  std::map<std::string, Pending> out;
  std::set<std::string> seen;
  for (const Evaluated& ev : evaluated) {
    const AlertRule& rule = *ev.rule;
    if (ev.failed) {  // unknown this round: its alerts keep their state
      for (const auto& [key, a] : open)
        if (a.rule_id == rule.rule_id) seen.insert(key);
      continue;
    }
    for (const auto& v : ev.values) {
      const std::string key = rule.rule_id + "\x1f" + v.scope;
      seen.insert(key);
      const auto it = open.find(key);
      process(c, rule, v.scope, v.migration_id, v.value, it == open.end() ? nullptr : &it->second,
              out);
    }
    // Open alerts of this rule without a value this round: the condition does not hold there.
    for (const auto& [key, a] : open) {
      if (a.rule_id != rule.rule_id || seen.count(key)) continue;
      seen.insert(key);
      process(c, rule, a.scope, a.migration_id, std::nullopt, &a, out);
    }
  }
  // Alerts of rules that were removed or disabled are resolved.
  for (const auto& [key, a] : open) {
    if (seen.count(key)) continue;
    store::resolve(c, a.alert_id, "auto");
    tracks_.erase(key);
  }
  send(c, out);
  if (active_family_) {
    const pg::Result r = c.exec(
        "SELECT s, (SELECT count(*) FROM t_sys_alerts WHERE status <> 'resolved' AND severity = s) "
        "FROM unnest(ARRAY['info', 'warning', 'critical']) s");
    for (int i = 0; i < r.rows(); ++i)
      active_family_->Add({{"severity", r.str(i, 0)}}).Set(static_cast<double>(r.int64(i, 1)));
  }
  ++rounds_;
  log::debug("alerting: round ", rounds_.load(), ": ", evaluated.size(), " rules read in ", read_ms,
             " ms (sql ", sql_ms, "), done in ", ms(), " ms");
}

bool AlertEngine::group_recently_notified(pg::Connection& c, const AlertRule& rule,
                                          const std::string& migration_id) {
  const std::string key = rule.rule_id + "\x1f" + migration_id;
  auto it = group_notified_.find(key);
  if (it == group_notified_.end()) {
    // Seed from the table (a restarted or newly leading pgphase).
    const pg::Result r = c.exec(
        "SELECT extract(epoch FROM now() - max(last_notified_at))::float8 FROM t_sys_alerts "
        "WHERE rule_id = $1 AND coalesce(migration_id, '') = $2",
        {rule.rule_id, migration_id});
    if (r.is_null(0, 0)) return false;
    const auto when =
        Clock::now() - std::chrono::milliseconds(static_cast<int64_t>(r.float64(0, 0) * 1000));
    it = group_notified_.emplace(key, when).first;
  }
  return Clock::now() - it->second < std::chrono::seconds(rule.suppression_duration);
}

void AlertEngine::process(pg::Connection& c, const AlertRule& rule, const std::string& scope,
                          const std::string& migration_id, std::optional<double> value,
                          const store::OpenAlert* open, std::map<std::string, Pending>& out) {
  const std::string key = rule.rule_id + "\x1f" + scope;
  Track& t = tracks_[key];
  const auto now = Clock::now();
  const bool holding = value && holds(*value, rule.comparison, rule.threshold);
  auto queue = [&](const std::string& event, const json::object& alert) {
    Pending& p = out[rule.rule_id + "\x1f" + migration_id + "\x1f" + event];
    p.rule = rule;
    p.n.event = event;
    p.n.rule_id = rule.rule_id;
    p.n.rule_name = rule.rule_name;
    p.n.alert_type = rule.alert_type;
    p.n.severity = rule.severity;
    p.n.migration_id = migration_id;
    p.n.channels = rule.notification_channels;
    p.n.alerts.push_back(alert);
  };
  if (open == nullptr) {
    t.clear_since.reset();
    if (!holding) {
      t.pending_since.reset();
      return;
    }
    if (!t.pending_since) t.pending_since = now;
    if (now - *t.pending_since < std::chrono::seconds(rule.duration)) return;  // pending
    t.pending_since.reset();
    store::NewAlert a;
    a.alert_id = new_alert_id();
    a.rule = rule;
    a.scope = scope;
    a.migration_id = migration_id;
    a.value = *value;
    a.message = rule.rule_name + ": " + (rule.is_sql() ? std::string("condition") : rule.signal()) +
                (scope.empty() ? "" : " of " + scope) + " = " + number(*value) + " " +
                to_string(rule.comparison) + " " + number(rule.threshold) + " for " +
                std::to_string(rule.duration) + " s";
    store::insert_alert(c, a);
    log::warn("alert ", a.alert_id, " firing: ", a.message);
    queue("firing", {{"alert_id", a.alert_id},
                     {"scope", scope},
                     {"value", *value},
                     {"threshold", rule.threshold},
                     {"message", a.message},
                     {"status", "firing"}});
    if (rule.auto_recovery && !rule.recovery_action.empty() && recovery_ != nullptr) {
      const RecoveryOutcome r =
          recovery_->run(rule.recovery_action, a.alert_id, rule.rule_id, scope, migration_id);
      store::set_recovery(c, a.alert_id, rule.recovery_action, r.ok ? "succeeded" : "failed",
                          r.result);
      log::info("alert ", a.alert_id, " recovery ", rule.recovery_action, ": ", r.result);
    }
    return;
  }
  if (value) store::touch_alert(c, open->alert_id, *value);
  if (holding) {
    t.clear_since.reset();
    // A firing alert is notified again after suppression_duration (grouping decides in send()).
    if (open->status == "firing" &&
        (open->since_notified < 0 || open->since_notified >= rule.suppression_duration))
      queue("repeat", {{"alert_id", open->alert_id},
                       {"scope", scope},
                       {"value", *value},
                       {"threshold", rule.threshold},
                       {"status", "firing"}});
    return;
  }
  if (!t.clear_since) t.clear_since = now;
  if (now - *t.clear_since < options_.resolve_after) return;  // clearing: still the same alert
  store::resolve(c, open->alert_id, "auto");
  log::info("alert ", open->alert_id, " resolved: the condition cleared");
  tracks_.erase(key);
  if (open->since_notified >= 0)
    queue("resolved", {{"alert_id", open->alert_id}, {"scope", scope}, {"status", "resolved"}});
}

void AlertEngine::send(pg::Connection& c, std::map<std::string, Pending>& out) {
  for (auto& [key, p] : out) {
    const bool resolved = p.n.event == "resolved";
    bool suppressed = false;
    if (store::silenced(c, p.rule.rule_id, p.n.migration_id, p.rule.severity)) {
      suppressed = true;
    } else if (!resolved && group_recently_notified(c, p.rule, p.n.migration_id)) {
      suppressed = true;
    }
    if (suppressed) {
      // Repeats are simply not due yet; a new firing that is muted is counted on its alert.
      if (p.n.event == "firing")
        for (const auto& id : p.n.alert_ids()) store::mark_notified(c, id, true);
      continue;
    }
    if (!resolved) {
      for (const auto& id : p.n.alert_ids()) store::mark_notified(c, id, false);
      group_notified_[p.rule.rule_id + "\x1f" + p.n.migration_id] = Clock::now();
    }
    notifier_.notify(p.n);
  }
}

}  // namespace pgphase::alerting
