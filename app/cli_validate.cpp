// pgphase validate: the manual's data_consistency_validator.py. Connects to the database itself
// (--db-url, default $DATABASE_URL; --target-db-url when the target lives elsewhere), compares
// the tables at --level, prints the report (text, or JSON with --json), writes every difference
// to --export, stores the check in t_sys_consistency_checks when the database has it, and with
// --repair applies the fixes (--dry-run: prints their SQL). Exit 0: no differences (or all
// repaired); 1: differences remain, or the validation failed; 2: usage.
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "app/cli_common.h"
#include "migration/pg_client.h"
#include "migration/store.h"
#include "validator/validator.h"

namespace pgphase::app::cli {

namespace json = boost::json;
namespace pg = migration::pg;

namespace {

constexpr const char* kHelp =
    "usage: pgphase validate --db-url URL (--source-table T --target-table T | --migration-id ID)\n"
    "                        [--level basic|detailed|comprehensive] [--sample-size N]\n"
    "                        [--export report.json] [--repair [--dry-run]] [--json]\n"
    "  --db-url URL          the database (default $DATABASE_URL); the source side\n"
    "  --target-db-url URL   the target's database when it is another one (default: --db-url)\n"
    "  --migration-id ID     take tables, key and column_map from a registered migration\n"
    "  --key-columns a,b     the key (default: the source's primary key)\n"
    "  --no-store            do not record the check in t_sys_consistency_checks\n";

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace

int validate_command(int argc, char** argv) {
  po::options_description opts("pgphase validate");
  opts.add_options()("help,h", "show this help")(
      "db-url", po::value<std::string>(), "database URL or conninfo (default $DATABASE_URL)")(
      "target-db-url", po::value<std::string>(), "the target's database, when different")(
      "source-table", po::value<std::string>(), "source table")(
      "target-table", po::value<std::string>(), "target table")(
      "migration-id", po::value<std::string>(), "a registered migration")(
      "key-columns", po::value<std::string>(), "comma-separated key columns")(
      "level", po::value<std::string>()->default_value("basic"), "basic|detailed|comprehensive")(
      "sample-size", po::value<int>()->default_value(1000), "detailed: keys sampled per side")(
      "buckets", po::value<int>()->default_value(0), "comprehensive: checksum buckets (0: auto)")(
      "export", po::value<std::string>(), "write the whole report as JSON to this file")(
      "repair", "apply the suggested fixes, then re-check the repaired keys")(
      "dry-run", "with --repair: print the SQL instead of running it")(
      "no-store", "do not record the check in t_sys_consistency_checks")(
      "json", "print the report as JSON");
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(opts).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << kHelp << "\n" << opts;
    return kOk;
  }
  std::string url;
  if (vm.count("db-url")) {
    url = vm["db-url"].as<std::string>();
  } else if (const char* env = std::getenv("DATABASE_URL")) {
    url = env;
  }
  if (url.empty()) throw UsageError("--db-url (or $DATABASE_URL) is required");
  const std::string target_url =
      vm.count("target-db-url") ? vm["target-db-url"].as<std::string>() : url;
  const auto level = validator::parse_level(vm["level"].as<std::string>());
  if (!level) throw UsageError("--level must be basic, detailed or comprehensive");
  const int sample = vm["sample-size"].as<int>();
  if (sample < 1) throw UsageError("--sample-size must be at least 1");
  const bool repair = vm.count("repair") > 0;
  const bool dry_run = vm.count("dry-run") > 0;
  if (dry_run && !repair) throw UsageError("--dry-run goes with --repair");

  validator::PairSpec spec;
  validator::Options o;
  o.level = *level;
  o.sample_size = sample;
  o.buckets = vm["buckets"].as<int>();
  o.same_database = target_url == url;
  pg::Connection source = pg::Connection::open(url, std::chrono::seconds(10));
  pg::Connection target = pg::Connection::open(target_url, std::chrono::seconds(10));
  if (vm.count("migration-id")) {
    if (vm.count("source-table") || vm.count("target-table"))
      throw UsageError("give --migration-id or --source-table/--target-table, not both");
    o.migration_id = vm["migration-id"].as<std::string>();
    if (!source.exec("SELECT to_regclass('t_sys_migrations') IS NOT NULL").boolean(0, 0))
      throw std::runtime_error(source.describe() +
                               " has no t_sys_migrations: --migration-id needs the control "
                               "database as --db-url");
    const auto m = migration::store::find_migration(source, o.migration_id, false);
    if (!m) throw std::runtime_error("no migration " + o.migration_id);
    spec.source_table = m->source_table;
    spec.target_table = m->target_table;
    spec.key_columns = m->key_columns;
    spec.column_map = m->column_map;
  } else {
    if (!vm.count("source-table") || !vm.count("target-table"))
      throw UsageError("--source-table and --target-table (or --migration-id) are required");
    spec.source_table = vm["source-table"].as<std::string>();
    spec.target_table = vm["target-table"].as<std::string>();
  }
  if (vm.count("key-columns")) spec.key_columns = split(vm["key-columns"].as<std::string>());

  validator::Report report;
  ProgressPrinter progress(vm.count("json") > 0);
  const auto started = std::chrono::steady_clock::now();
  o.on_progress = [&](const validator::Progress& p) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const validator::ProgressFigures f = validator::figures(p, elapsed);
    char line[256];
    std::snprintf(
        line, sizeof line, "validation %s: %lld of %s rows (%.1f%%), %.0f rows/s, ETA %s",
        p.stage.c_str(), static_cast<long long>(p.rows_done),
        p.rows_total > 0 ? std::to_string(p.rows_total).c_str() : "?", f.percent, f.rows_per_second,
        f.eta_seconds < 0 ? "?" : (std::to_string(std::lround(f.eta_seconds)) + " s").c_str());
    progress.update(p.stage, f.percent, line,
                    json::object{{"stage", p.stage},
                                 {"rows_done", p.rows_done},
                                 {"rows_total", p.rows_total},
                                 {"percent", f.percent},
                                 {"rows_per_second", f.rows_per_second},
                                 {"eta_seconds", f.eta_seconds}});
  };
  validator::validate(source, target, spec, o, report);
  progress.finish();
  if (repair)
    report.repair = validator::repair(source, target, spec, report, dry_run, o.same_database);
  bool stored = false;
  if (!vm.count("no-store")) stored = validator::store_report(source, report);
  if (vm.count("export")) validator::export_json(report, vm["export"].as<std::string>());

  if (repair && dry_run && !vm.count("json")) {
    // Every statement, ready for psql.
    report.differences.for_each(
        [](const validator::Difference& d) { std::cout << d.suggested_fix << ";\n"; });
  }
  if (vm.count("json")) {
    std::cout << json::serialize(validator::summary_json(report)) << "\n";
  } else if (!(repair && dry_run)) {
    std::cout << validator::to_text(report);
    std::cout << (stored ? "  stored in t_sys_consistency_checks as " + report.check_id
                         : std::string("  not stored (no t_sys_consistency_checks, or --no-store)"))
              << "\n";
    if (vm.count("export")) std::cout << "  exported to " << vm["export"].as<std::string>() << "\n";
  }
  const bool clean = report.differences_count() == 0 && report.findings.empty();
  const bool repaired = report.repair && !report.repair->dry_run && report.repair->remaining == 0;
  return clean || repaired ? kOk : kFailed;
}

}  // namespace pgphase::app::cli
