#include "alerting/recovery.h"

#include <boost/json.hpp>
#include <chrono>
#include <set>

#include "common/log.h"
#include "migration/control_plane.h"
#include "migration/pg_client.h"
#include "migration/store.h"

namespace pgphase::alerting {

namespace json = boost::json;
namespace pg = migration::pg;
using migration::ControlPlane;

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(5);

template <class T>
std::string outcome(const migration::OpResult<T>& r) {
  return r.ok() ? "ok" : "failed: " + (r.error ? r.error->message : std::string("unknown error"));
}

}  // namespace

Recovery::Recovery(std::string dsn, ControlPlane& control)
    : dsn_(std::move(dsn)), control_(control) {}

RecoveryOutcome Recovery::run(const std::string& action, const std::string& alert_id,
                              const std::string& rule_id, const std::string& scope,
                              const std::string& migration_id) {
  const std::string actor = "alert:" + alert_id;
  const std::string reason = "alert " + alert_id + " (rule " + rule_id + ")";
  const migration::SnapshotPtr snap = control_.snapshot();
  RecoveryOutcome out;
  std::vector<std::string> done;
  bool all_ok = true;
  auto note = [&](const std::string& what, const std::string& result) {
    done.push_back(what + ": " + result);
    all_ok = all_ok && result == "ok";
  };
  // The migrations the action applies to.
  std::vector<std::string> migrations;
  if (!migration_id.empty()) {
    migrations.push_back(migration_id);
  } else if (snap) {
    for (const auto& m : snap->migrations)
      if (m.phase != migration::Phase::kPreparation && m.phase != migration::Phase::kCompleted)
        migrations.push_back(m.migration_id);
  }
  try {
    pg::Connection c = pg::Connection::open(dsn_, kConnectTimeout);
    c.set_answer_timeout(pg::Connection::kControlAnswerTimeout);
    if (action == "rollback_read_switch") {
      std::set<std::string> ids;
      if (snap && snap->find_switch(scope) != nullptr) {
        ids.insert(scope);  // the alert is about this switch
      } else if (snap) {
        for (const auto& s : snap->switches) {
          const auto* m = snap->migration_for(s);
          const std::string mid = m != nullptr ? m->migration_id : s.migration_id;
          const bool live = s.status == migration::SwitchStatus::kActive ||
                            s.status == migration::SwitchStatus::kPaused;
          if (live && (migration_id.empty() || mid == migration_id)) ids.insert(s.config_id);
        }
      }
      for (const auto& id : ids)
        note("switch " + id, outcome(control_.rollback_switch(id, actor, reason)));
    } else if (action == "disable_dual_write") {
      for (const auto& id : migrations)
        note("migration " + id, outcome(control_.set_dual_write(id, false, true, actor)));
    } else if (action == "retry_failed_dual_writes") {
      for (const auto& id : migrations) {
        const auto r = control_.repair(id, actor);
        note("repair " + id, r.ok() ? "ok" : outcome(r));
        if (r.ok())
          done.back() += " (" + std::to_string(r.value->log_rows) + " failed writes repaired)";
      }
    } else if (action == "pause_backfill") {
      for (const auto& id : migrations) {
        const pg::Result r = c.exec(
            "UPDATE t_sys_backfills SET status = 'paused', updated_at = now() WHERE "
            "migration_id = $1 AND status = 'running' RETURNING 1",
            {id});
        if (r.rows() > 0) note("backfill " + id, "ok");
      }
    } else if (action == "retry_migration" || action == "retry_failed_migrations") {
      // The alert's migration when it has one, else every migration.
      const pg::Result r = c.exec(
          "SELECT DISTINCT ON (migration_id) migration_id, to_state FROM t_sys_migration_logs "
          "WHERE status = 'failed' AND created_at > now() - interval '1 hour' "
          "AND ($1 = '' OR migration_id = $1) ORDER BY migration_id, id DESC",
          {migration_id});
      for (int i = 0; i < r.rows(); ++i) {
        const auto phase = migration::parse_phase(r.str(i, 1));
        if (!phase) {
          note("migration " + r.str(i, 0),
               "nothing to retry (the failed action was not a phase "
               "change)");
          all_ok = true;
          continue;
        }
        note("migration " + r.str(i, 0) + " -> " + r.str(i, 1),
             outcome(control_.set_phase(r.str(i, 0), *phase, false, actor)));
      }
    } else {
      note(action, "unknown action");
    }
    out.ok = all_ok;
    if (done.empty()) done.push_back("nothing to do");
    for (const auto& d : done) out.result += (out.result.empty() ? "" : "; ") + d;
    json::object details{{"alert_id", alert_id},
                         {"rule_id", rule_id},
                         {"action", action},
                         {"scope", scope},
                         {"result", out.result}};
    migration::store::insert_log(
        c, {migration_id.empty() ? scope : migration_id, "alert_recovery", actor, "", action,
            out.ok ? "success" : "failed", reason + ": " + out.result, json::serialize(details)});
  } catch (const std::exception& e) {
    out.ok = false;
    out.result = std::string("failed: ") + e.what();
    log::warn("alert recovery ", action, " for ", alert_id, " failed: ", e.what());
  }
  return out;
}

}  // namespace pgphase::alerting
