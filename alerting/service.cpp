#include "alerting/service.h"

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "alerting/channels.h"
#include "alerting/recovery.h"
#include "alerting/store.h"
#include "common/log.h"
#include "migration/control_plane.h"

namespace pgphase::alerting {

namespace json = boost::json;
namespace pg = migration::pg;

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(5);

pg::Connection open(const std::string& dsn) {
  pg::Connection c = pg::Connection::open(dsn, kConnectTimeout);
  c.set_answer_timeout(pg::Connection::kControlAnswerTimeout);
  return c;
}

std::string new_silence_id() {
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof buf, "silence_%08x", rd());
  return buf;
}

}  // namespace

Alerting::Alerting(std::string dsn, migration::ControlPlane* control, migration::ReadStats* reads,
                   const stats::RoutingStats* routing, prometheus::Registry* registry,
                   AlertingOptions options)
    : dsn_(std::move(dsn)) {
  const std::string record_dsn = dsn_;
  ChannelConfig log_channel;  // always there: pgphase's own log
  log_channel.name = "log";
  log_channel.type = "log";
  notifier_ = std::make_unique<Notifier>(
      std::vector<ChannelConfig>{log_channel}, registry,
      [record_dsn](const std::vector<std::string>& ids, const std::string& channel,
                   const std::string& event, bool ok, int attempts, const std::string& error) {
        pg::Connection c = open(record_dsn);
        store::record_notification(c, ids, channel, event, ok, attempts, error);
      },
      options.retry_base);
  if (control != nullptr) recovery_ = std::make_unique<Recovery>(dsn_, *control);
  std::function<migration::SnapshotPtr()> snap;
  if (control != nullptr) snap = [control] { return control->snapshot(); };
  engine_ = std::make_unique<AlertEngine>(dsn_, options.engine,
                                          std::make_unique<Signals>(snap, reads, routing),
                                          *notifier_, recovery_.get(), registry);
}

Alerting::~Alerting() {
  stop();
}

void Alerting::start() {
  engine_->start();
}

void Alerting::stop() {
  if (engine_) engine_->stop();
}

std::vector<std::string> Alerting::load_files(const std::vector<std::string>& files) {
  std::vector<std::string> refused;
  std::vector<ChannelConfig> channels = notifier_->channels();
  pg::Connection c = open(dsn_);
  for (const auto& path : files) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot read");
    std::stringstream text;
    text << in.rdbuf();
    json::error_code ec;
    const json::value root = json::parse(text.str(), ec);
    if (ec || !root.is_object()) throw std::runtime_error(path + ": not a JSON object");
    const auto& o = root.as_object();
    if (const auto* list = o.if_contains("notification_configs"); list && list->is_array()) {
      int i = 0;
      for (const auto& entry : list->as_array()) {
        try {
          ChannelConfig ch = parse_channel(entry);
          for (const auto& w : ch.warnings) log::warn(path, ": ", w);
          std::erase_if(channels, [&](const ChannelConfig& x) { return x.name == ch.name; });
          channels.push_back(std::move(ch));
        } catch (const RuleError& e) {
          refused.push_back(path + ": notification_configs[" + std::to_string(i) +
                            "]: " + e.what());
        }
        ++i;
      }
    }
    if (const auto* list = o.if_contains("alert_rules"); list && list->is_array()) {
      int i = 0;
      for (const auto& entry : list->as_array()) {
        std::string where = path + ": alert_rules[" + std::to_string(i++) + "]";
        try {
          const AlertRule r = parse_rule(entry);
          where += " (" + r.rule_id + ")";
          if (const std::string why = engine_->check_rule(r); !why.empty()) throw RuleError(why);
          if (store::save_rule(c, r, false)) log::info("alerting: rule ", r.rule_id, " registered");
        } catch (const RuleError& e) {
          refused.push_back(where + ": " + e.what());
        }
      }
    }
  }
  notifier_->set_channels(std::move(channels));
  for (const auto& r : refused) log::warn("alerting: refused ", r);
  engine_->kick();
  return refused;
}

json::array Alerting::rules() {
  pg::Connection c = open(dsn_);
  json::array out;
  for (const auto& r : store::load_rules(c)) out.push_back(to_json(r));
  return out;
}

json::object Alerting::save_rule(const json::value& body, bool& created) {
  const AlertRule r = parse_rule(body);
  if (const std::string why = engine_->check_rule(r); !why.empty()) throw RuleError(why);
  pg::Connection c = open(dsn_);
  created = store::save_rule(c, r, true);
  engine_->kick();
  json::object o = to_json(r);
  json::array unknown;
  const auto known = notifier_->channels();
  for (const auto& ch : r.notification_channels)
    if (std::none_of(known.begin(), known.end(),
                     [&](const ChannelConfig& k) { return k.name == ch; }))
      unknown.push_back(json::value(ch));
  if (!unknown.empty()) o["unknown_channels"] = std::move(unknown);
  return o;
}

json::array Alerting::alerts(const std::string& status, int limit) {
  if (status != "active" && status != "all" && status != "firing" && status != "acknowledged" &&
      status != "resolved")
    throw RuleError("status: expected active, all, firing, acknowledged or resolved");
  pg::Connection c = open(dsn_);
  return store::list_alerts(c, status, limit);
}

json::object Alerting::alert(const std::string& id) {
  pg::Connection c = open(dsn_);
  auto a = store::get_alert(c, id);
  if (!a) throw std::out_of_range("no alert " + id);
  return *a;
}

json::object Alerting::acknowledge(const std::string& id, const std::string& user) {
  pg::Connection c = open(dsn_);
  auto a = store::acknowledge(c, id, user);
  if (!a) throw std::out_of_range("no alert " + id);
  engine_->kick();
  return *a;
}

json::object Alerting::resolve(const std::string& id, const std::string& user) {
  pg::Connection c = open(dsn_);
  auto a = store::resolve(c, id, user);
  if (!a) throw std::out_of_range("no alert " + id);
  engine_->kick();
  return *a;
}

json::object Alerting::statistics(int days) {
  if (days < 1 || days > 3650) throw RuleError("days: expected 1..3650");
  pg::Connection c = open(dsn_);
  return store::statistics(c, days);
}

json::array Alerting::silences(bool all) {
  pg::Connection c = open(dsn_);
  return store::list_silences(c, all);
}

json::object Alerting::add_silence(const json::value& body, const std::string& actor) {
  if (!body.is_object()) throw RuleError("a silence must be a JSON object");
  const auto& o = body.as_object();
  store::Silence s;
  s.silence_id = new_silence_id();
  s.created_by = actor;
  for (const auto& [k, v] : o) {
    if (k == "rule_id" || k == "migration_id" || k == "severity" || k == "comment") {
      if (!v.is_string()) throw RuleError(std::string(k) + ": expected a string");
      const std::string val(v.as_string());
      if (k == "rule_id") s.rule_id = val;
      if (k == "migration_id") s.migration_id = val;
      if (k == "severity") s.severity = val;
      if (k == "comment") s.comment = val;
    } else if (k == "duration_seconds") {
      if (!v.is_number()) throw RuleError("duration_seconds: expected a number");
      s.duration_seconds = v.to_number<double>();
      if (!(s.duration_seconds > 0 && s.duration_seconds <= 365.0 * 86400))
        throw RuleError("duration_seconds: expected 1..31536000");
    } else {
      throw RuleError("unknown key \"" + std::string(k) + "\"");
    }
  }
  if (!s.severity.empty() && s.severity != "info" && s.severity != "warning" &&
      s.severity != "critical")
    throw RuleError("severity: expected info, warning or critical");
  if (s.rule_id.empty() && s.migration_id.empty() && s.severity.empty())
    throw RuleError("a silence needs at least one matcher: rule_id, migration_id or severity");
  pg::Connection c = open(dsn_);
  return store::insert_silence(c, s);
}

json::array Alerting::channels() {
  json::array out;
  for (const auto& c : notifier_->channels()) out.push_back(describe(c));
  return out;
}

}  // namespace pgphase::alerting
