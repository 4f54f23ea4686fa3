// pgphase alerts: the manual's migration_alerting_system.py actions. status, statistics,
// acknowledge, resolve, rules, silence and silences talk to the admin API; monitor runs the alert
// evaluator itself against --db-url (the control database) with the rules and channels of
// --config-file, until SIGINT/SIGTERM (for a control database without a pgphase serve).
#include <signal.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>

#include "alerting/service.h"
#include "app/cli_common.h"
#include "common/log.h"
#include "migration/control_plane.h"

namespace pgphase::app::cli {

namespace json = boost::json;

namespace {

constexpr const char* kHelp =
    "usage: pgphase alerts <subcommand> [options]   (or --action <subcommand>)\n"
    "  status [--all]                         active alerts (--all: every alert)\n"
    "  statistics [--days N]                  counts by severity, type and day; mean time to\n"
    "                                         acknowledge and to resolve (default 7 days)\n"
    "  acknowledge --alert-id ID [--user U]   stop repeat notifications\n"
    "  resolve --alert-id ID [--user U]\n"
    "  rules                                  the rules\n"
    "  rules --config-file FILE               register the alert_rules of alerting_config.json\n"
    "  silence [--rule-id R] [--migration-id M] [--severity S] --duration SECONDS [--comment C]\n"
    "  silences [--all]\n"
    "  monitor --db-url URL --config-file FILE   evaluate the rules here (no pgphase serve)\n";

std::string str(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v ? text_of(*v) : "";
}

void print_alerts(const json::value& v) {
  if (!v.is_array() || v.as_array().empty()) {
    std::cout << "no alerts\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : v.as_array()) {
    const auto& o = a.as_object();
    rows.push_back({str(o, "alert_id"), str(o, "severity"), str(o, "status"), str(o, "rule_id"),
                    str(o, "migration_id"), str(o, "value"), str(o, "fired_at"),
                    str(o, "notifications"), str(o, "recovery_status")});
  }
  print_table({"ALERT_ID", "SEVERITY", "STATUS", "RULE", "MIGRATION", "VALUE", "FIRED_AT",
               "NOTIFIED", "RECOVERY"},
              rows);
}

void print_alert(const json::value& v) {
  if (v.is_object()) print_fields(v.as_object());
}

void print_rules(const json::value& v) {
  if (!v.is_array() || v.as_array().empty()) {
    std::cout << "no alert rules\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : v.as_array()) {
    const auto& o = r.as_object();
    rows.push_back({str(o, "rule_id"), str(o, "severity"), str(o, "alert_type"),
                    str(o, "kind") == "sql"
                        ? "sql " + str(o, "comparison") + " " + str(o, "threshold")
                        : str(o, "condition"),
                    str(o, "duration") + " s", str(o, "enabled"), str(o, "notification_channels"),
                    str(o, "recovery_action")});
  }
  print_table(
      {"RULE_ID", "SEVERITY", "TYPE", "CONDITION", "FOR", "ENABLED", "CHANNELS", "RECOVERY"}, rows);
}

void print_statistics(const json::value& v) {
  if (!v.is_object()) return;
  const auto& o = v.as_object();
  std::cout << "alerts in the last " << str(o, "days") << " days: " << str(o, "total") << " ("
            << str(o, "active") << " active, " << str(o, "resolved_automatically")
            << " resolved automatically)\n"
            << "mean time to acknowledge: " << str(o, "mean_time_to_acknowledge_seconds")
            << " s, to resolve: " << str(o, "mean_time_to_resolve_seconds") << " s\n";
  for (const char* k : {"by_severity", "by_type", "by_status", "by_day", "notifications"}) {
    const auto* m = o.if_contains(k);
    if (m == nullptr || !m->is_object() || m->as_object().empty()) continue;
    std::cout << k << ":";
    for (const auto& [name, n] : m->as_object())
      std::cout << " " << std::string(name) << "=" << text_of(n);
    std::cout << "\n";
  }
}

volatile sig_atomic_t g_stop = 0;

int monitor(const po::variables_map& vm) {
  std::string url;
  if (vm.count("db-url"))
    url = vm["db-url"].as<std::string>();
  else if (const char* e = std::getenv("DATABASE_URL"))
    url = e;
  if (url.empty())
    throw UsageError("monitor needs --db-url (or $DATABASE_URL): the control database");
  if (!vm.count("config-file")) throw UsageError("monitor needs --config-file");
  migration::ControlConfig cc;
  cc.dsn = url;
  migration::ControlPlane control(cc);
  control.start();
  alerting::AlertingOptions ao;
  ao.engine.interval = std::chrono::milliseconds(vm["interval-ms"].as<int>());
  ao.engine.resolve_after = std::chrono::milliseconds(vm["resolve-after-ms"].as<int>());
  alerting::Alerting alerts(url, &control, nullptr, nullptr, nullptr, ao);
  const auto refused = alerts.load_files({vm["config-file"].as<std::string>()});
  for (const auto& r : refused) std::cerr << "pgphase: refused " << r << "\n";
  alerts.start();
  std::cout << "monitoring the alert rules of " << control.snapshot()->migrations.size()
            << " migrations (Ctrl-C stops)" << std::endl;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
  alerts.stop();
  alerts.notifier().drain(std::chrono::seconds(10));
  control.stop();
  return refused.empty() ? kOk : kFailed;
}

}  // namespace

int alerts_command(int argc, char** argv) {
  // Signals for monitor are taken with sigwait; block them before any thread starts.
  po::options_description opts("pgphase alerts options");
  add_common_options(opts);
  opts.add_options()("alert-id", po::value<std::string>(), "the alert")(
      "days", po::value<int>()->default_value(7), "statistics: the period")(
      "all", "status / silences: also resolved alerts / ended silences")(
      "rule-id", po::value<std::string>(), "silence: match this rule")(
      "migration-id", po::value<std::string>(), "silence: match this migration")(
      "severity", po::value<std::string>(), "silence: match this severity")(
      "duration", po::value<double>(), "silence: seconds")("comment", po::value<std::string>(),
                                                           "silence: why")(
      "interval-ms", po::value<int>()->default_value(1000), "monitor: evaluation interval")(
      "resolve-after-ms", po::value<int>()->default_value(30000),
      "monitor: a cleared condition resolves its alert after this");
  const std::string first = argc > 1 ? argv[1] : "";
  bool is_monitor = first == "monitor";
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--action" && std::string(argv[i + 1]) == "monitor")
      is_monitor = true;
  const auto vm = parse(argc, argv, opts, is_monitor);
  if (vm.count("help")) {
    std::cout << kHelp << "\n" << opts << "\n";
    return kOk;
  }
  const std::string action = action_of(vm);
  if (action == "monitor") return monitor(vm);
  const bool as_json = vm.count("json") > 0;
  const AdminClient client = make_client(vm);
  const auto alert_id = [&] { return need(vm, "alert-id", action); };
  const std::string user = vm.count("user") ? vm["user"].as<std::string>() : "";
  if (action == "status")
    return report(client.get({"alerts"}, vm.count("all") ? "status=all" : "status=active"), as_json,
                  client, print_alerts);
  if (action == "statistics")
    return report(
        client.get({"alerts", "statistics"}, "days=" + std::to_string(vm["days"].as<int>())),
        as_json, client, print_statistics);
  if (action == "acknowledge" || action == "resolve") {
    json::object body;
    if (!user.empty()) body["user"] = user;
    return report(client.post({"alerts", alert_id(), action}, body), as_json, client, print_alert);
  }
  if (action == "rules") {
    if (vm.count("config-file"))
      return register_from_file(client, vm["config-file"].as<std::string>(), "alert_rules",
                                "rule_id", "alert-rules", as_json);
    return report(client.get({"alert-rules"}), as_json, client, print_rules);
  }
  if (action == "silence") {
    if (!vm.count("duration")) throw UsageError("silence needs --duration SECONDS");
    json::object body{{"duration_seconds", vm["duration"].as<double>()}};
    for (const char* k : {"rule-id", "migration-id", "severity", "comment"}) {
      if (!vm.count(k)) continue;
      std::string key(k);
      std::replace(key.begin(), key.end(), '-', '_');
      body[key] = vm[k].as<std::string>();
    }
    return report(client.post({"silences"}, body), as_json, client, print_alert);
  }
  if (action == "silences")
    return report(client.get({"silences"}, vm.count("all") ? "all=true" : ""), as_json, client,
                  [](const json::value& v) {
                    if (!v.is_array() || v.as_array().empty()) {
                      std::cout << "no silences\n";
                      return;
                    }
                    for (const auto& s : v.as_array()) print_fields(s.as_object());
                  });
  throw UsageError("unknown alerts subcommand \"" + action + "\" (see pgphase alerts --help)");
}

}  // namespace pgphase::app::cli
