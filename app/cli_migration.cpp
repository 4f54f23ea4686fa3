// pgphase migration
// list|status|register|set-phase|enable-dual-write|disable-dual-write|rollback|repair, also in the
// manual's form: pgphase migration --action status --migration-id ID.
#include <boost/json.hpp>
#include <iostream>

#include "app/cli_common.h"

namespace pgphase::app::cli {

namespace json = boost::json;

namespace {

constexpr const char* kHelp =
    "usage: pgphase migration <subcommand> [options]   (or --action <subcommand>)\n"
    "  list                                   all migrations\n"
    "  status --migration-id ID               one migration with its recent log\n"
    "  register --config-file FILE            every entry of the manual's migration_configs.json\n"
    "  register --migration-id ID --source-table T --target-table T [--consistency-level L]\n"
    "           [--auto-switch-threshold X] [--key-columns a,b] [--database DB]\n"
    "  set-phase --migration-id ID --phase P [--force] [--move-foreign-keys]\n"
    "           (alias: update-phase; --move-foreign-keys: entering completed, move the\n"
    "           foreign keys referencing the source to the target)\n"
    "  enable-dual-write --migration-id ID [--force]\n"
    "  disable-dual-write --migration-id ID [--force]\n"
    "  rollback --migration-id ID [--reason TEXT]\n"
    "  repair --migration-id ID       re-copy keys whose eventual dual write failed\n";

std::string str(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v ? text_of(*v) : "";
}

void print_list(const json::value& v) {
  const auto* items = v.is_object() ? v.get_object().if_contains("migrations") : nullptr;
  if (!items || !items->is_array() || items->get_array().empty()) {
    std::cout << "no migrations registered\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : items->get_array()) {
    if (!m.is_object()) continue;
    const auto& o = m.get_object();
    rows.push_back({str(o, "migration_id"), str(o, "phase"),
                    str(o, "dual_write_enabled") == "true" ? "on" : "off",
                    str(o, "read_from_target") == "true" ? "target" : "source",
                    str(o, "source_table") + " -> " + str(o, "target_table"), str(o, "version")});
  }
  print_table({"MIGRATION_ID", "PHASE", "DUAL_WRITE", "READS", "SOURCE -> TARGET", "VERSION"},
              rows);
}

void print_status(const json::value& v) {
  if (!v.is_object()) return;
  const auto& o = v.get_object();
  print_fields(o, {"logs"});
  const auto* logs = o.if_contains("logs");
  if (!logs || !logs->is_array() || logs->get_array().empty()) return;
  std::cout << "\nrecent log:\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : logs->get_array()) {
    if (!e.is_object()) continue;
    const auto& l = e.get_object();
    rows.push_back({str(l, "created_at"), str(l, "action"), str(l, "from") + " -> " + str(l, "to"),
                    str(l, "actor"), str(l, "status"), str(l, "message")});
  }
  print_table({"AT", "ACTION", "CHANGE", "ACTOR", "STATUS", "MESSAGE"}, rows);
}

void print_summary(const json::value& v) {
  if (!v.is_object()) return;
  const auto& o = v.get_object();
  std::cout << "migration " << str(o, "migration_id") << ": phase " << str(o, "phase")
            << ", dual write " << (str(o, "dual_write_enabled") == "true" ? "on" : "off")
            << ", reads from " << (str(o, "read_from_target") == "true" ? "target" : "source")
            << " (version " << str(o, "version") << ")\n";
  const auto* actions = o.if_contains("actions");
  if (actions == nullptr || !actions->is_object()) return;
  for (const auto& kv : actions->get_object()) {
    if (kv.key() == "sequences" && kv.value().is_array()) {
      for (const auto& s : kv.value().get_array()) {
        if (!s.is_object()) continue;
        const auto& q = s.get_object();
        std::cout << "  sequence " << str(q, "sequence") << " (" << str(q, "table") << "."
                  << str(q, "column") << "): "
                  << (str(q, "moved") == "true" ? "advanced to " + str(q, "set_to")
                                                : "not moved (" + str(q, "note") + ")")
                  << "\n";
      }
    } else if (kv.key() == "foreign_keys_moved" && kv.value().is_array()) {
      for (const auto& f : kv.value().get_array()) {
        std::cout << "  moved foreign key " << text_of(f) << "\n";
      }
    } else {
      std::cout << "  " << kv.key() << ": " << text_of(kv.value()) << "\n";
    }
  }
}

json::object register_body(const po::variables_map& vm) {
  json::object body{{"migration_id", need(vm, "migration-id", "register")},
                    {"source_table", need(vm, "source-table", "register")},
                    {"target_table", need(vm, "target-table", "register")}};
  if (vm.count("consistency-level"))
    body["consistency_level"] = vm["consistency-level"].as<std::string>();
  if (vm.count("auto-switch-threshold"))
    body["auto_switch_threshold"] = vm["auto-switch-threshold"].as<double>();
  if (vm.count("database")) body["database"] = vm["database"].as<std::string>();
  if (vm.count("key-columns")) {
    json::array cols;
    std::string list = vm["key-columns"].as<std::string>();
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      std::string col = list.substr(start, comma - start);
      if (col.empty()) throw UsageError("--key-columns: empty column name in \"" + list + "\"");
      cols.push_back(json::string(col));
      start = comma + 1;
    }
    body["key_columns"] = std::move(cols);
  }
  return body;
}

}  // namespace

int migration_command(int argc, char** argv) {
  po::options_description opts("pgphase migration options");
  add_common_options(opts);
  opts.add_options()("migration-id", po::value<std::string>(), "the migration")(
      "phase", po::value<std::string>(),
      "set-phase: preparation | dual_write | validation | read_switch | cleanup | completed")(
      "force", "override a guard (read_switch without a fresh check, disable-dual-write early)")(
      "move-foreign-keys",
      "set-phase completed: recreate the foreign keys referencing the source on the target")(
      "reason", po::value<std::string>(), "rollback: why (recorded in the log)")(
      "source-table", po::value<std::string>(), "register: the table migrated from")(
      "target-table", po::value<std::string>(), "register: the table migrated to")(
      "consistency-level", po::value<std::string>(), "register: strict | eventual")(
      "auto-switch-threshold", po::value<double>(),
      "register: consistency score read_switch needs")(
      "key-columns", po::value<std::string>(), "register: key columns a,b (default primary key)")(
      "database", po::value<std::string>(), "register: database of the tables (default: any)");
  const auto vm = parse(argc, argv, opts);
  if (vm.count("help")) {
    std::cout << kHelp << "\n" << opts << "\n";
    return kOk;
  }
  std::string action = action_of(vm);
  if (action == "update-phase") action = "set-phase";
  const bool as_json = vm.count("json") > 0;
  const bool force = vm.count("force") > 0;
  const AdminClient client = make_client(vm);
  const auto id = [&] { return need(vm, "migration-id", action); };

  if (action == "list") return report(client.get({"migrations"}), as_json, client, print_list);
  if (action == "status") {
    if (!vm.count("migration-id"))
      throw UsageError("status needs --migration-id (`pgphase migration list` shows all)");
    return report(client.get({"migrations", id()}), as_json, client, print_status);
  }
  if (action == "register") {
    if (vm.count("config-file")) {
      if (vm.count("migration-id") || vm.count("source-table") || vm.count("target-table"))
        throw UsageError("register: give --config-file or the flags, not both");
      return register_from_file(client, vm["config-file"].as<std::string>(), "migrations",
                                "migration_id", "migrations", as_json);
    }
    return report(client.post({"migrations"}, register_body(vm)), as_json, client, print_summary);
  }
  if (action == "set-phase") {
    json::object body{{"phase", need(vm, "phase", action)}, {"force", force}};
    if (vm.count("move-foreign-keys")) body["move_foreign_keys"] = true;
    return report(client.post({"migrations", id(), "phase"}, body), as_json, client, print_summary);
  }
  if (action == "enable-dual-write" || action == "disable-dual-write") {
    const json::object body{{"enabled", action == "enable-dual-write"}, {"force", force}};
    return report(client.post({"migrations", id(), "dual-write"}, body), as_json, client,
                  print_summary);
  }
  if (action == "repair") {
    return report(client.post({"migrations", id(), "repair"}, json::object{}), as_json, client,
                  [](const json::value& v) {
                    const auto& o = v.as_object();
                    std::cout << "repaired " << json::serialize(o.at("log_rows"))
                              << " failed dual writes of " << o.at("migration_id").as_string()
                              << ": " << json::serialize(o.at("rows_copied"))
                              << " rows copied from the source, "
                              << json::serialize(o.at("rows_deleted"))
                              << " deleted from the target\n";
                  });
  }
  if (action == "rollback") {
    json::object body;
    if (vm.count("reason")) body["reason"] = vm["reason"].as<std::string>();
    return report(client.post({"migrations", id(), "rollback"}, body), as_json, client,
                  print_summary);
  }
  throw UsageError("unknown migration subcommand \"" + action +
                   "\" (see pgphase migration --help)");
}

}  // namespace pgphase::app::cli
