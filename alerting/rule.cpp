#include "alerting/rule.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cmath>

namespace pgphase::alerting {

namespace json = boost::json;

std::optional<Comparison> parse_comparison(std::string_view s) noexcept {
  if (s == ">") return Comparison::kGt;
  if (s == ">=") return Comparison::kGe;
  if (s == "<") return Comparison::kLt;
  if (s == "<=") return Comparison::kLe;
  if (s == "==" || s == "=") return Comparison::kEq;
  if (s == "!=" || s == "<>") return Comparison::kNe;
  return std::nullopt;
}

const char* to_string(Comparison c) noexcept {
  switch (c) {
    case Comparison::kGt:
      return ">";
    case Comparison::kGe:
      return ">=";
    case Comparison::kLt:
      return "<";
    case Comparison::kLe:
      return "<=";
    case Comparison::kEq:
      return "==";
    case Comparison::kNe:
      return "!=";
  }
  return ">=";
}

bool holds(double v, Comparison c, double t) noexcept {
  switch (c) {
    case Comparison::kGt:
      return v > t;
    case Comparison::kGe:
      return v >= t;
    case Comparison::kLt:
      return v < t;
    case Comparison::kLe:
      return v <= t;
    case Comparison::kEq:
      return v == t;
    case Comparison::kNe:
      return v != t;
  }
  return false;
}

bool signal_per_switch(std::string_view s) noexcept {
  return s == "switch_error_rate" || s == "target_p95_latency_ms";
}

namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

bool starts_sql(std::string_view c) {
  std::string head;
  for (char ch : c) {
    if (std::isalpha(static_cast<unsigned char>(ch)))
      head.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
    else if (!head.empty())
      break;
    else if (!std::isspace(static_cast<unsigned char>(ch)) && ch != '(')
      break;
  }
  // Statements that are not queries are SQL too: the read-only transaction refuses them with
  // PostgreSQL's own reason.
  static const std::vector<std::string> kSql = {
      "select", "with",   "values",   "table", "insert", "update", "delete",  "merge", "create",
      "drop",   "alter",  "truncate", "copy",  "call",   "do",     "explain", "show",  "set",
      "begin",  "commit", "rollback", "grant", "revoke", "lock",   "vacuum"};
  return std::find(kSql.begin(), kSql.end(), head) != kSql.end();
}

struct SignalExpr {
  std::string name;
  std::optional<Comparison> op;
  std::optional<double> threshold;
};

// "name", or "name OP number".
SignalExpr parse_signal(const std::string& c) {
  SignalExpr e;
  std::size_t i = 0;
  while (i < c.size() && (std::isalnum(static_cast<unsigned char>(c[i])) || c[i] == '_')) ++i;
  e.name = c.substr(0, i);
  const std::string rest = trim(std::string_view(c).substr(i));
  if (rest.empty()) return e;
  std::size_t j = 0;
  while (j < rest.size() && std::string_view("<>=!").find(rest[j]) != std::string_view::npos) ++j;
  e.op = parse_comparison(rest.substr(0, j));
  if (!e.op)
    throw RuleError("condition: expected a signal, or a signal, a comparison and a number");
  const std::string num = trim(std::string_view(rest).substr(j));
  std::size_t used = 0;
  try {
    e.threshold = std::stod(num, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != num.size())
    throw RuleError("condition: \"" + num + "\" is not a number");
  return e;
}

const json::value* field(const json::object& o, std::string_view k) {
  return o.if_contains(k);
}

std::string str(const json::object& o, std::string_view k, bool required) {
  const auto* v = field(o, k);
  if (v == nullptr || v->is_null()) {
    if (required) throw RuleError(std::string(k) + ": required");
    return {};
  }
  if (!v->is_string()) throw RuleError(std::string(k) + ": expected a string");
  return std::string(v->as_string());
}

std::optional<double> number(const json::object& o, std::string_view k) {
  const auto* v = field(o, k);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_number()) throw RuleError(std::string(k) + ": expected a number");
  const double d = v->to_number<double>();
  if (!std::isfinite(d)) throw RuleError(std::string(k) + ": expected a finite number");
  return d;
}

int seconds(const json::object& o, std::string_view k, int def) {
  const auto d = number(o, k);
  if (!d) return def;
  if (*d < 0 || *d > 30 * 86400 || std::floor(*d) != *d)
    throw RuleError(std::string(k) + ": expected whole seconds, 0..2592000");
  return static_cast<int>(*d);
}

bool boolean(const json::object& o, std::string_view k, bool def) {
  const auto* v = field(o, k);
  if (v == nullptr || v->is_null()) return def;
  if (!v->is_bool()) throw RuleError(std::string(k) + ": expected true or false");
  return v->as_bool();
}

bool valid_id(const std::string& s) {
  if (s.empty() || s.size() > 200) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
           c == ':';
  });
}

}  // namespace

bool AlertRule::is_sql() const {
  return starts_sql(condition);
}

std::string AlertRule::signal() const {
  return is_sql() ? std::string() : parse_signal(trim(condition)).name;
}

AlertRule parse_rule(const json::value& v) {
  if (!v.is_object()) throw RuleError("an alert rule must be a JSON object");
  const auto& o = v.as_object();
  static const std::vector<std::string_view> kKeys = {"rule_id",
                                                      "rule_name",
                                                      "alert_type",
                                                      "severity",
                                                      "condition",
                                                      "threshold",
                                                      "comparison",
                                                      "duration",
                                                      "enabled",
                                                      "notification_channels",
                                                      "suppression_duration",
                                                      "auto_recovery",
                                                      "recovery_action",
                                                      "migration_id",
                                                      "config_id",
                                                      "created_at",
                                                      "updated_at",
                                                      "kind"};
  for (const auto& [k, _] : o)
    if (std::find(kKeys.begin(), kKeys.end(), std::string_view(k)) == kKeys.end())
      throw RuleError("unknown key \"" + std::string(k) + "\"");
  AlertRule r;
  r.rule_id = str(o, "rule_id", true);
  if (!valid_id(r.rule_id))
    throw RuleError("rule_id: letters, digits, _ - . : only (1 to 200 characters)");
  r.rule_name = str(o, "rule_name", false);
  if (r.rule_name.empty()) r.rule_name = r.rule_id;
  r.alert_type = str(o, "alert_type", true);
  if (!valid_id(r.alert_type)) throw RuleError("alert_type: expected a name like \"consistency\"");
  r.severity = str(o, "severity", true);
  if (r.severity != "info" && r.severity != "warning" && r.severity != "critical")
    throw RuleError("severity: expected info, warning or critical");
  r.condition = trim(str(o, "condition", true));
  if (r.condition.empty()) throw RuleError("condition: required");
  if (r.condition.size() > 10000) throw RuleError("condition: longer than 10000 characters");
  const std::string cmp = str(o, "comparison", false);
  if (!cmp.empty()) {
    const auto c = parse_comparison(cmp);
    if (!c) throw RuleError("comparison: expected one of > >= < <= == !=");
    r.comparison = *c;
  }
  const auto threshold = number(o, "threshold");
  if (!r.is_sql()) {
    const SignalExpr e = parse_signal(r.condition);
    if (std::find(kSignals.begin(), kSignals.end(), e.name) == kSignals.end()) {
      std::string known;
      for (const auto& s : kSignals) known += (known.empty() ? "" : ", ") + s;
      throw RuleError("condition: \"" + e.name +
                      "\" is neither SQL (SELECT/WITH) nor a known signal (" + known + ")");
    }
    if (e.op) r.comparison = *e.op;
    if (e.threshold && threshold && *threshold != *e.threshold)
      throw RuleError("threshold: " + std::to_string(*threshold) +
                      " differs from the condition's " + std::to_string(*e.threshold));
    if (!e.threshold && !threshold) throw RuleError("threshold: required");
    r.threshold = e.threshold ? *e.threshold : *threshold;
  } else {
    if (!threshold) throw RuleError("threshold: required");
    r.threshold = *threshold;
  }
  r.duration = seconds(o, "duration", 0);
  r.enabled = boolean(o, "enabled", true);
  if (const auto* ch = field(o, "notification_channels"); ch && !ch->is_null()) {
    if (!ch->is_array()) throw RuleError("notification_channels: expected an array of names");
    for (const auto& c : ch->as_array()) {
      if (!c.is_string()) throw RuleError("notification_channels: expected an array of names");
      r.notification_channels.emplace_back(c.as_string());
    }
  }
  r.suppression_duration = seconds(o, "suppression_duration", 300);
  r.auto_recovery = boolean(o, "auto_recovery", false);
  r.recovery_action = str(o, "recovery_action", false);
  if (!r.recovery_action.empty() && std::find(kRecoveryActions.begin(), kRecoveryActions.end(),
                                              r.recovery_action) == kRecoveryActions.end()) {
    std::string known;
    for (const auto& s : kRecoveryActions) known += (known.empty() ? "" : ", ") + s;
    throw RuleError("recovery_action: expected one of " + known);
  }
  if (r.auto_recovery && r.recovery_action.empty())
    throw RuleError("recovery_action: required when auto_recovery is true");
  r.migration_id = str(o, "migration_id", false);
  r.config_id = str(o, "config_id", false);
  return r;
}

json::object to_json(const AlertRule& r) {
  json::array channels;
  for (const auto& c : r.notification_channels) channels.push_back(json::value(c));
  return {{"rule_id", r.rule_id},
          {"rule_name", r.rule_name},
          {"alert_type", r.alert_type},
          {"severity", r.severity},
          {"condition", r.condition},
          {"comparison", to_string(r.comparison)},
          {"threshold", r.threshold},
          {"duration", r.duration},
          {"enabled", r.enabled},
          {"notification_channels", std::move(channels)},
          {"suppression_duration", r.suppression_duration},
          {"auto_recovery", r.auto_recovery},
          {"recovery_action",
           r.recovery_action.empty() ? json::value() : json::value(r.recovery_action)},
          {"migration_id", r.migration_id.empty() ? json::value() : json::value(r.migration_id)},
          {"config_id", r.config_id.empty() ? json::value() : json::value(r.config_id)},
          {"kind", r.is_sql() ? "sql" : "signal"}};
}

}  // namespace pgphase::alerting
