// pgphase backfill --migration-id ID [start|status|pause|resume|cancel|settings]: copies the
// existing source rows into the target through the admin API (the copy runs inside pgphase
// serve, so it survives the CLI; a restarted CLI or pgphase resumes from the checkpoint). `start`
// (the default) waits and shows progress until the backfill ends or pauses, as a bar on a
// terminal; --no-wait returns at once.

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <thread>

#include "app/cli_common.h"

namespace pgphase::app::cli {

namespace json = boost::json;

namespace {

constexpr const char* kHelp =
    "usage: pgphase backfill --migration-id ID [ACTION] [options]\n"
    "  start (default)   start or continue the backfill and follow its progress\n"
    "  status            show progress\n"
    "  pause | resume | cancel\n"
    "  settings          change --batch-size, --max-rows-per-second, --throttle-query,\n"
    "                    --throttle-limit while it runs\n";

double num(const json::object& o, const char* k) {
  const auto* v = o.if_contains(k);
  return v != nullptr && v->is_number() ? v->to_number<double>() : 0.0;
}

std::string line_of(const json::object& o) {
  char buf[256];
  const double pct = num(o, "percent");
  const double rate = num(o, "rate_rows_per_second");
  const double eta = num(o, "eta_seconds");
  std::snprintf(buf, sizeof buf, "%s: %.0f of ~%.0f rows (%.1f%%), %.0f rows/s, ETA %.0f s",
                o.at("status").as_string().c_str(), num(o, "rows_copied"), num(o, "total_estimate"),
                pct, rate, eta);
  return buf;
}

void print_progress(const json::value& v) {
  const auto& o = v.as_object();
  std::cout << o.at("migration_id").as_string() << " " << line_of(o) << "\n";
  if (const auto* e = o.if_contains("error"); e && e->is_string() && !e->as_string().empty())
    std::cout << "error: " << e->as_string() << "\n";
}

json::object settings_body(const po::variables_map& vm) {
  json::object body;
  if (vm.count("batch-size")) body["batch_size"] = vm["batch-size"].as<int>();
  if (vm.count("max-rows-per-second"))
    body["max_rows_per_second"] = vm["max-rows-per-second"].as<double>();
  if (vm.count("throttle-query")) body["throttle_query"] = vm["throttle-query"].as<std::string>();
  if (vm.count("throttle-limit")) body["throttle_limit"] = vm["throttle-limit"].as<double>();
  return body;
}

// Follows progress until the backfill is no longer running (progress on stderr, the final
// answer on stdout).
int follow(const AdminClient& client, const std::string& id, bool as_json) {
  ProgressPrinter progress(as_json);
  for (;;) {
    const Answer a = client.get({"migrations", id, "backfill"});
    if (!a.ok() || !a.json.is_object()) {
      progress.finish();
      return report(a, as_json, client, print_progress);
    }
    const auto& o = a.json.as_object();
    const std::string status(o.at("status").as_string());
    progress.update(status, num(o, "percent"),
                    std::string(o.at("migration_id").as_string()) + " backfill " + line_of(o), o);
    if (status != "running") {
      progress.finish();
      const int rc = report(a, as_json, client, print_progress);
      return status == "completed" || status == "paused" ? rc : kFailed;
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(progress.style() == ProgressPrinter::Style::kBar ? 250 : 1000));
  }
}

}  // namespace

int backfill_command(int argc, char** argv) {
  po::options_description opts("pgphase backfill options");
  add_common_options(opts);
  opts.add_options()("migration-id", po::value<std::string>(), "the migration")(
      "batch-size", po::value<int>(), "rows per batch (default 1000)")(
      "max-rows-per-second", po::value<double>(), "throttle (0: unthrottled)")(
      "throttle-query", po::value<std::string>(),
      "SQL returning one number; the copy waits while it is above --throttle-limit")(
      "throttle-limit", po::value<double>(), "the limit for --throttle-query")(
      "no-wait", "start and return at once");
  const auto vm = parse(argc, argv, opts);
  if (vm.count("help")) {
    std::cout << kHelp << "\n" << opts << "\n";
    return kOk;
  }
  const bool has_action = vm.count("subcommand") || vm.count("action");
  const std::string action = has_action ? action_of(vm) : "start";
  const bool as_json = vm.count("json") > 0;
  const AdminClient client = make_client(vm);
  const std::string id = need(vm, "migration-id", action);
  if (action == "start") {
    const Answer a = client.post({"migrations", id, "backfill"}, settings_body(vm));
    if (!a.ok() || vm.count("no-wait")) return report(a, as_json, client, print_progress);
    return follow(client, id, as_json);
  }
  if (action == "status")
    return report(client.get({"migrations", id, "backfill"}), as_json, client, print_progress);
  if (action == "pause" || action == "resume" || action == "cancel" || action == "settings") {
    return report(client.post({"migrations", id, "backfill", action},
                              action == "settings" ? settings_body(vm) : json::object{}),
                  as_json, client, print_progress);
  }
  throw UsageError("unknown backfill action \"" + action + "\" (see pgphase backfill --help)");
}

}  // namespace pgphase::app::cli
