// pgphase switch list|register|activate|update-percentage|analytics|rollback, also in the manual's
// form: pgphase switch --action activate --config-id ID.
#include <boost/json.hpp>
#include <iostream>

#include "app/cli_common.h"

namespace pgphase::app::cli {

namespace json = boost::json;

namespace {

constexpr const char* kHelp =
    "usage: pgphase switch <subcommand> [options]   (or --action <subcommand>)\n"
    "  list                                       all read switch configs\n"
    "  register --config-file FILE                every entry of the manual's "
    "read_switch_configs.json\n"
    "  register --config-id ID --table-name T [--strategy S] [--percentage N] [--migration-id ID]\n"
    "  activate --config-id ID\n"
    "  update-percentage --config-id ID --percentage N [--reason TEXT]\n"
    "  analytics --config-id ID\n"
    "  rollback --config-id ID [--reason TEXT]\n"
    "  check-rollback --config-id ID              run the auto-rollback check now (rolls back on "
    "a breach)\n"
    "  pause|resume|promote --config-id ID        hold, continue, or take the next ramp step now\n";

std::string str(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v ? text_of(*v) : "";
}

void print_list(const json::value& v) {
  const auto* items = v.is_object() ? v.get_object().if_contains("switch_configs") : nullptr;
  if (!items || !items->is_array() || items->get_array().empty()) {
    std::cout << "no read switch configs registered\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : items->get_array()) {
    if (!s.is_object()) continue;
    const auto& o = s.get_object();
    rows.push_back({str(o, "config_id"), str(o, "table_name"), str(o, "status"),
                    str(o, "switch_percentage") + "%", str(o, "strategy"), str(o, "migration_id"),
                    str(o, "version")});
  }
  print_table({"CONFIG_ID", "TABLE", "STATUS", "TO_TARGET", "STRATEGY", "MIGRATION_ID", "VERSION"},
              rows);
}

void print_summary(const json::value& v) {
  if (!v.is_object()) return;
  const auto& o = v.get_object();
  std::cout << "switch " << str(o, "config_id") << ": status " << str(o, "status") << ", "
            << str(o, "switch_percentage") << "% of reads of " << str(o, "table_name")
            << " to the target (" << str(o, "strategy") << ", version " << str(o, "version")
            << ")\n";
}

void print_analytics(const json::value& v) {
  if (!v.is_object()) return;
  const auto& o = v.get_object();
  if (const auto* c = o.if_contains("config"); c && c->is_object()) print_fields(c->get_object());
  const auto* h = o.if_contains("percentage_history");
  if (!h || !h->is_array() || h->get_array().empty()) {
    std::cout << "\nno percentage changes yet\n";
    return;
  }
  std::cout << "\npercentage history:\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : h->get_array()) {
    if (!e.is_object()) continue;
    const auto& c = e.get_object();
    rows.push_back({str(c, "created_at"), str(c, "from") + "% -> " + str(c, "to") + "%",
                    str(c, "actor"), str(c, "reason")});
  }
  print_table({"AT", "CHANGE", "ACTOR", "REASON"}, rows);
  const auto* live = o.if_contains("live");
  if (live == nullptr || !live->is_object()) return;
  const auto* w = live->get_object().if_contains("window");
  if (w == nullptr || !w->is_object()) return;
  std::cout << "\nreads routed by this pgphase in the last " << str(w->get_object(), "seconds")
            << " s:\n";
  std::vector<std::vector<std::string>> sides;
  for (const char* side : {"source", "target"}) {
    const auto* sv = w->get_object().if_contains(side);
    if (sv == nullptr || !sv->is_object()) continue;
    const auto& x = sv->get_object();
    sides.push_back({side, str(x, "statements"), str(x, "errors"), str(x, "error_rate"),
                     str(x, "p50_ms"), str(x, "p95_ms"), str(x, "p99_ms"), str(x, "mean_ms")});
  }
  print_table({"SIDE", "READS", "ERRORS", "ERROR RATE", "P50 MS", "P95 MS", "P99 MS", "MEAN MS"},
              sides);
  std::cout << "unroutable (kept on the source): " << str(w->get_object(), "unroutable") << "\n";
}

void print_check(const json::value& v) {
  const auto& o = v.as_object();
  const bool breach = o.at("breach").as_bool();
  const bool rolled = o.at("rolled_back").as_bool();
  std::cout << str(o, "config_id") << ": "
            << (breach                           ? (rolled ? "breach, rolled back" : "breach")
                : o.at("inconclusive").as_bool() ? "inconclusive (too few target reads)"
                                                 : "healthy")
            << "\n";
  if (const auto* r = o.if_contains("reasons"); r && r->is_array()) {
    for (const auto& e : r->as_array())
      if (e.is_string()) std::cout << "  " << e.as_string() << "\n";
  }
}

json::object register_body(const po::variables_map& vm) {
  json::object body{{"config_id", need(vm, "config-id", "register")},
                    {"table_name", need(vm, "table-name", "register")}};
  if (vm.count("strategy")) body["strategy"] = vm["strategy"].as<std::string>();
  if (vm.count("percentage")) body["switch_percentage"] = vm["percentage"].as<double>();
  if (vm.count("migration-id")) body["migration_id"] = vm["migration-id"].as<std::string>();
  return body;
}

}  // namespace

int switch_command(int argc, char** argv) {
  po::options_description opts("pgphase switch options");
  add_common_options(opts);
  opts.add_options()("config-id", po::value<std::string>(), "the read switch config")(
      "percentage", po::value<double>(), "share of reads to the target, 0-100")(
      "reason", po::value<std::string>(), "why (recorded in the history)")(
      "table-name", po::value<std::string>(), "register: the table whose reads switch")(
      "strategy", po::value<std::string>(),
      "register: immediate | gradual | sticky | canary | shadow (default gradual)")(
      "migration-id", po::value<std::string>(), "register: the migration it belongs to");
  const auto vm = parse(argc, argv, opts);
  if (vm.count("help")) {
    std::cout << kHelp << "\n" << opts << "\n";
    return kOk;
  }
  const std::string action = action_of(vm);
  const bool as_json = vm.count("json") > 0;
  const AdminClient client = make_client(vm);
  const auto id = [&] { return need(vm, "config-id", action); };

  if (action == "list") return report(client.get({"switches"}), as_json, client, print_list);
  if (action == "register") {
    if (vm.count("config-file")) {
      if (vm.count("config-id") || vm.count("table-name"))
        throw UsageError("register: give --config-file or the flags, not both");
      return register_from_file(client, vm["config-file"].as<std::string>(), "switch_configs",
                                "config_id", "switches", as_json);
    }
    return report(client.post({"switches"}, register_body(vm)), as_json, client, print_summary);
  }
  if (action == "activate")
    return report(client.post({"switches", id(), "activate"}, json::object{}), as_json, client,
                  print_summary);
  if (action == "update-percentage") {
    if (!vm.count("percentage")) throw UsageError("update-percentage needs --percentage");
    json::object body{{"percentage", vm["percentage"].as<double>()}};
    if (vm.count("reason")) body["reason"] = vm["reason"].as<std::string>();
    return report(client.post({"switches", id(), "percentage"}, body), as_json, client,
                  print_summary);
  }
  if (action == "analytics")
    return report(client.get({"switches", id(), "analytics"}), as_json, client, print_analytics);
  if (action == "rollback") {
    json::object body;
    if (vm.count("reason")) body["reason"] = vm["reason"].as<std::string>();
    return report(client.post({"switches", id(), "rollback"}, body), as_json, client,
                  print_summary);
  }
  if (action == "pause" || action == "resume" || action == "promote")
    return report(client.post({"switches", id(), action}, json::object{}), as_json, client,
                  print_summary);
  if (action == "check-rollback" || action == "check_auto_rollback")
    return report(client.post({"switches", id(), "check-rollback"}, json::object{}), as_json,
                  client, print_check);
  throw UsageError("unknown switch subcommand \"" + action + "\" (see pgphase switch --help)");
}

}  // namespace pgphase::app::cli
