#include "alerting/store.h"

#include <boost/json.hpp>
#include <stdexcept>

#include "migration/sql_text.h"

namespace pgphase::alerting::store {

namespace json = boost::json;

namespace {

constexpr const char* kRuleColumns =
    "rule_id, rule_name, alert_type, severity, condition, comparison, threshold, duration, "
    "enabled, notification_channels::text, suppression_duration, auto_recovery, "
    "coalesce(recovery_action, ''), coalesce(migration_id, ''), coalesce(config_id, '')";

constexpr const char* kAlertColumns =
    "alert_id, rule_id, rule_name, alert_type, severity, scope, coalesce(migration_id, ''), "
    "status, value, threshold, message, notifications, suppressed, "
    "coalesce(recovery_action, ''), coalesce(recovery_status, ''), coalesce(recovery_result, ''), "
    PGPHASE_ISO("fired_at") ", " PGPHASE_ISO("last_seen_at") ", coalesce(" PGPHASE_ISO("acknowledged_at") ", ''), "
    "coalesce(acknowledged_by, ''), coalesce(" PGPHASE_ISO("resolved_at") ", ''), "
    "coalesce(resolved_by, ''), coalesce(" PGPHASE_ISO("last_notified_at") ", '')";

json::value opt(const std::string& s) {
  return s.empty() ? json::value() : json::value(s);
}

json::object alert_json(const pg::Result& r, int i) {
  json::object o{{"alert_id", r.str(i, 0)},
                 {"rule_id", r.str(i, 1)},
                 {"rule_name", r.str(i, 2)},
                 {"alert_type", r.str(i, 3)},
                 {"severity", r.str(i, 4)},
                 {"scope", r.str(i, 5)},
                 {"migration_id", opt(r.str(i, 6))},
                 {"status", r.str(i, 7)},
                 {"value", r.is_null(i, 8) ? json::value() : json::value(r.float64(i, 8))},
                 {"threshold", r.is_null(i, 9) ? json::value() : json::value(r.float64(i, 9))},
                 {"message", r.str(i, 10)},
                 {"notifications", r.int64(i, 11)},
                 {"suppressed_notifications", r.int64(i, 12)},
                 {"recovery_action", opt(r.str(i, 13))},
                 {"recovery_status", opt(r.str(i, 14))},
                 {"recovery_result", opt(r.str(i, 15))},
                 {"fired_at", r.str(i, 16)},
                 {"last_seen_at", r.str(i, 17)},
                 {"acknowledged_at", opt(r.str(i, 18))},
                 {"acknowledged_by", opt(r.str(i, 19))},
                 {"resolved_at", opt(r.str(i, 20))},
                 {"resolved_by", opt(r.str(i, 21))},
                 {"last_notified_at", opt(r.str(i, 22))}};
  return o;
}

}  // namespace

std::vector<AlertRule> load_rules(pg::Connection& c) {
  const pg::Result r =
      c.exec(std::string("SELECT ") + kRuleColumns + " FROM t_sys_alert_rules ORDER BY rule_id");
  std::vector<AlertRule> out;
  for (int i = 0; i < r.rows(); ++i) {
    AlertRule a;
    a.rule_id = r.str(i, 0);
    a.rule_name = r.str(i, 1);
    a.alert_type = r.str(i, 2);
    a.severity = r.str(i, 3);
    a.condition = r.str(i, 4);
    a.comparison = parse_comparison(r.str(i, 5)).value_or(Comparison::kGe);
    a.threshold = r.float64(i, 6);
    a.duration = static_cast<int>(r.int64(i, 7));
    a.enabled = r.boolean(i, 8);
    const json::value channels = json::parse(r.str(i, 9));
    if (channels.is_array())
      for (const auto& ch : channels.as_array())
        if (ch.is_string()) a.notification_channels.emplace_back(ch.as_string());
    a.suppression_duration = static_cast<int>(r.int64(i, 10));
    a.auto_recovery = r.boolean(i, 11);
    a.recovery_action = r.str(i, 12);
    a.migration_id = r.str(i, 13);
    a.config_id = r.str(i, 14);
    out.push_back(std::move(a));
  }
  return out;
}

bool save_rule(pg::Connection& c, const AlertRule& a, bool replace) {
  json::array channels;
  for (const auto& ch : a.notification_channels) channels.push_back(json::value(ch));
  const std::vector<pg::Param> params{
      a.rule_id,
      a.rule_name,
      a.alert_type,
      a.severity,
      a.condition,
      std::string(to_string(a.comparison)),
      pg::param(a.threshold),
      pg::param(static_cast<int64_t>(a.duration)),
      pg::param(a.enabled),
      json::serialize(channels),
      pg::param(static_cast<int64_t>(a.suppression_duration)),
      pg::param(a.auto_recovery),
      a.recovery_action.empty() ? pg::Param() : pg::Param(a.recovery_action),
      a.migration_id.empty() ? pg::Param() : pg::Param(a.migration_id),
      a.config_id.empty() ? pg::Param() : pg::Param(a.config_id)};
  const std::string insert =
      "INSERT INTO t_sys_alert_rules (rule_id, rule_name, alert_type, severity, condition, "
      "comparison, threshold, duration, enabled, notification_channels, suppression_duration, "
      "auto_recovery, recovery_action, migration_id, config_id) VALUES ($1, $2, $3, $4, $5, $6, "
      "$7, $8, $9, $10::jsonb, $11, $12, $13, $14, $15) ";
  const pg::Result r = c.exec(
      insert + (replace ? "ON CONFLICT (rule_id) DO UPDATE SET rule_name = EXCLUDED.rule_name, "
                          "alert_type = EXCLUDED.alert_type, severity = EXCLUDED.severity, "
                          "condition = EXCLUDED.condition, comparison = EXCLUDED.comparison, "
                          "threshold = EXCLUDED.threshold, duration = EXCLUDED.duration, "
                          "enabled = EXCLUDED.enabled, "
                          "notification_channels = EXCLUDED.notification_channels, "
                          "suppression_duration = EXCLUDED.suppression_duration, "
                          "auto_recovery = EXCLUDED.auto_recovery, "
                          "recovery_action = EXCLUDED.recovery_action, "
                          "migration_id = EXCLUDED.migration_id, config_id = EXCLUDED.config_id, "
                          "updated_at = now() RETURNING (xmax = 0)"
                        : "ON CONFLICT (rule_id) DO NOTHING RETURNING true"),
      params);
  return r.rows() == 1 && r.boolean(0, 0);
}

std::vector<OpenAlert> open_alerts(pg::Connection& c) {
  const pg::Result r = c.exec(
      "SELECT alert_id, rule_id, scope, coalesce(migration_id, ''), status, "
      "coalesce(extract(epoch FROM now() - last_notified_at)::float8, -1) "
      "FROM t_sys_alerts WHERE status <> 'resolved'");
  std::vector<OpenAlert> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back(
        {r.str(i, 0), r.str(i, 1), r.str(i, 2), r.str(i, 3), r.str(i, 4), r.float64(i, 5)});
  return out;
}

void insert_alert(pg::Connection& c, const NewAlert& a) {
  c.exec(
      "INSERT INTO t_sys_alerts (alert_id, rule_id, rule_name, alert_type, severity, scope, "
      "migration_id, status, value, threshold, message) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, 'firing', $8, $9, $10)",
      {a.alert_id, a.rule.rule_id, a.rule.rule_name, a.rule.alert_type, a.rule.severity, a.scope,
       a.migration_id.empty() ? pg::Param() : pg::Param(a.migration_id), pg::param(a.value),
       pg::param(a.rule.threshold), a.message});
}

void touch_alert(pg::Connection& c, const std::string& alert_id, double value) {
  c.exec("UPDATE t_sys_alerts SET value = $2, last_seen_at = now() WHERE alert_id = $1",
         {alert_id, pg::param(value)});
}

void mark_notified(pg::Connection& c, const std::string& alert_id, bool suppressed) {
  c.exec(suppressed ? "UPDATE t_sys_alerts SET suppressed = suppressed + 1 WHERE alert_id = $1"
                    : "UPDATE t_sys_alerts SET notifications = notifications + 1, "
                      "last_notified_at = now() WHERE alert_id = $1",
         {alert_id});
}

void set_recovery(pg::Connection& c, const std::string& alert_id, const std::string& action,
                  const std::string& status, const std::string& result) {
  c.exec(
      "UPDATE t_sys_alerts SET recovery_action = $2, recovery_status = $3, recovery_result = $4 "
      "WHERE alert_id = $1",
      {alert_id, action, status, result});
}

std::optional<json::object> get_alert(pg::Connection& c, const std::string& alert_id) {
  const pg::Result r =
      c.exec(std::string("SELECT ") + kAlertColumns + " FROM t_sys_alerts WHERE alert_id = $1",
             {alert_id});
  if (r.rows() == 0) return std::nullopt;
  return alert_json(r, 0);
}

std::optional<json::object> acknowledge(pg::Connection& c, const std::string& alert_id,
                                        const std::string& user) {
  const auto a = get_alert(c, alert_id);
  if (!a) return std::nullopt;
  if (a->at("status") == json::value("resolved"))
    throw std::logic_error("alert " + alert_id + " is resolved");
  c.exec(
      "UPDATE t_sys_alerts SET status = 'acknowledged', acknowledged_at = coalesce("
      "acknowledged_at, now()), acknowledged_by = coalesce(acknowledged_by, $2) "
      "WHERE alert_id = $1",
      {alert_id, user});
  return get_alert(c, alert_id);
}

std::optional<json::object> resolve(pg::Connection& c, const std::string& alert_id,
                                    const std::string& user) {
  const auto a = get_alert(c, alert_id);
  if (!a) return std::nullopt;
  c.exec(
      "UPDATE t_sys_alerts SET status = 'resolved', resolved_at = coalesce(resolved_at, now()), "
      "resolved_by = coalesce(resolved_by, $2) WHERE alert_id = $1",
      {alert_id, user});
  return get_alert(c, alert_id);
}

json::array list_alerts(pg::Connection& c, const std::string& status, int limit) {
  std::string where;
  std::vector<pg::Param> params{pg::param(static_cast<int64_t>(std::clamp(limit, 1, 1000)))};
  if (status == "active") {
    where = " WHERE status <> 'resolved'";
  } else if (status != "all") {
    where = " WHERE status = $2";
    params.emplace_back(status);
  }
  const pg::Result r = c.exec(std::string("SELECT ") + kAlertColumns + " FROM t_sys_alerts" +
                                  where + " ORDER BY fired_at DESC, alert_id DESC LIMIT $1",
                              params);
  json::array out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(alert_json(r, i));
  return out;
}

json::object statistics(pg::Connection& c, int days) {
  const std::string d = std::to_string(days);
  const std::vector<pg::Param> p{d};
  auto counts = [&](const std::string& col) {
    const pg::Result r = c.exec("SELECT " + col +
                                    "::text, count(*) FROM t_sys_alerts WHERE fired_at > now() - "
                                    "make_interval(days => $1::int) GROUP BY 1 ORDER BY 1",
                                p);
    json::object o;
    for (int i = 0; i < r.rows(); ++i) o[r.str(i, 0)] = r.int64(i, 1);
    return o;
  };
  const pg::Result t = c.exec(
      "SELECT count(*), "
      "avg(extract(epoch FROM acknowledged_at - fired_at))::float8, "
      "avg(extract(epoch FROM resolved_at - fired_at))::float8, "
      "count(*) FILTER (WHERE resolved_by = 'auto'), "
      "count(*) FILTER (WHERE status <> 'resolved'), "
      "count(*) FILTER (WHERE recovery_status IS NOT NULL) "
      "FROM t_sys_alerts WHERE fired_at > now() - make_interval(days => $1::int)",
      p);
  const pg::Result n = c.exec(
      "SELECT channel || ':' || status, count(*) FROM t_sys_alert_notifications "
      "WHERE created_at > now() - make_interval(days => $1::int) GROUP BY 1 ORDER BY 1",
      p);
  json::object notifications;
  for (int i = 0; i < n.rows(); ++i) notifications[n.str(i, 0)] = n.int64(i, 1);
  json::object o{{"days", days},
                 {"total", t.int64(0, 0)},
                 {"active", t.int64(0, 4)},
                 {"resolved_automatically", t.int64(0, 3)},
                 {"with_recovery", t.int64(0, 5)},
                 {"mean_time_to_acknowledge_seconds",
                  t.is_null(0, 1) ? json::value() : json::value(t.float64(0, 1))},
                 {"mean_time_to_resolve_seconds",
                  t.is_null(0, 2) ? json::value() : json::value(t.float64(0, 2))},
                 {"by_severity", counts("severity")},
                 {"by_type", counts("alert_type")},
                 {"by_status", counts("status")},
                 {"by_rule", counts("rule_id")},
                 {"by_day", counts("to_char(fired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')")},
                 {"notifications", notifications}};
  return o;
}

json::object insert_silence(pg::Connection& c, const Silence& s) {
  const pg::Result r = c.exec(
      "INSERT INTO t_sys_alert_silences (silence_id, rule_id, migration_id, severity, comment, "
      "created_by, ends_at) VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7)) "
      "RETURNING " PGPHASE_ISO("starts_at") ", " PGPHASE_ISO("ends_at"),
      {s.silence_id, s.rule_id.empty() ? pg::Param() : pg::Param(s.rule_id),
       s.migration_id.empty() ? pg::Param() : pg::Param(s.migration_id),
       s.severity.empty() ? pg::Param() : pg::Param(s.severity), s.comment, s.created_by,
       pg::param(s.duration_seconds)});
  return {{"silence_id", s.silence_id},
          {"rule_id", opt(s.rule_id)},
          {"migration_id", opt(s.migration_id)},
          {"severity", opt(s.severity)},
          {"comment", s.comment},
          {"created_by", s.created_by},
          {"starts_at", r.str(0, 0)},
          {"ends_at", r.str(0, 1)}};
}

json::array list_silences(pg::Connection& c, bool all) {
  const pg::Result r =
      c.exec(std::string("SELECT silence_id, coalesce(rule_id, ''), coalesce(migration_id, ''), "
                         "coalesce(severity, ''), comment, created_by, ") +
             PGPHASE_ISO("starts_at") ", " PGPHASE_ISO(
                 "ends_at") ", ends_at > now() FROM t_sys_alert_silences" +
             (all ? "" : " WHERE ends_at > now()") + " ORDER BY starts_at DESC LIMIT 200");
  json::array out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back(json::object{{"silence_id", r.str(i, 0)},
                               {"rule_id", opt(r.str(i, 1))},
                               {"migration_id", opt(r.str(i, 2))},
                               {"severity", opt(r.str(i, 3))},
                               {"comment", r.str(i, 4)},
                               {"created_by", r.str(i, 5)},
                               {"starts_at", r.str(i, 6)},
                               {"ends_at", r.str(i, 7)},
                               {"active", r.boolean(i, 8)}});
  return out;
}

bool silenced(pg::Connection& c, const std::string& rule_id, const std::string& migration_id,
              const std::string& severity) {
  const pg::Result r = c.exec(
      "SELECT EXISTS (SELECT FROM t_sys_alert_silences WHERE ends_at > now() AND "
      "starts_at <= now() AND coalesce(rule_id, $1) = $1 AND coalesce(migration_id, $2) = $2 "
      "AND coalesce(severity, $3) = $3)",
      {rule_id, migration_id, severity});
  return r.boolean(0, 0);
}

void record_notification(pg::Connection& c, const std::vector<std::string>& alert_ids,
                         const std::string& channel, const std::string& event, bool ok,
                         int attempts, const std::string& error) {
  json::array ids;
  for (const auto& id : alert_ids) ids.push_back(json::value(id));
  c.exec(
      "INSERT INTO t_sys_alert_notifications (alert_ids, channel, event, status, attempts, "
      "error) SELECT array(SELECT jsonb_array_elements_text($1::jsonb)), $2, $3, $4, $5, $6",
      {json::serialize(ids), channel, event, std::string(ok ? "sent" : "failed"),
       pg::param(static_cast<int64_t>(attempts)), error});
}

}  // namespace pgphase::alerting::store
