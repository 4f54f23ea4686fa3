#include "validator/validator.h"

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "migration/sql_text.h"
#include "validator/fix_sql.h"
#include "validator/row_compare.h"

namespace pgphase::validator {

namespace json = boost::json;
using migration::quote_ident;
using namespace detail;

namespace {

constexpr const char* kIsoNow =
    "to_char(transaction_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

// Both sides in one REPEATABLE READ READ ONLY transaction each; the target imports the source's
// snapshot when they share a database. Returns the snapshot's time.
std::string begin_snapshots(pg::Connection& source, pg::Connection& target, bool same,
                            bool& shared) {
  const char* begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
  source.exec(begin);
  std::string snapshot;
  std::string when;
  if (same) {
    try {
      const pg::Result r = source.exec(std::string("SELECT pg_export_snapshot(), ") + kIsoNow);
      snapshot = r.str(0, 0);
      when = r.str(0, 1);
    } catch (const pg::PgError& e) {
      if (e.connection_lost()) throw;
      source.exec("ROLLBACK");
      source.exec(begin);
    }
  }
  if (when.empty()) when = source.exec(std::string("SELECT ") + kIsoNow).str(0, 0);
  target.exec(begin);
  shared = false;
  if (!snapshot.empty()) {
    try {
      target.exec("SET TRANSACTION SNAPSHOT " + literal(snapshot));
      shared = true;
    } catch (const pg::PgError& e) {
      if (e.connection_lost()) throw;
      target.exec("ROLLBACK");
      target.exec(begin);
    }
  }
  target.exec("SELECT 1");  // takes the target's snapshot now
  return when;
}

// PostgreSQL's estimate of a table's rows (pg_class.reltuples; 0 when unknown).
int64_t estimate_rows(pg::Connection& c, const std::string& table) {
  const pg::Result r = c.exec(
      "SELECT greatest(coalesce((SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)), "
      "0), 0)::bigint",
      {table});
  return r.rows() == 1 ? r.int64(0, 0) : 0;
}

bool text_like(const std::string& type) {
  return type == "text" || type.find("char") != std::string::npos || type == "name";
}

void run_basic(pg::Connection& source, pg::Connection& target, const TablePair& p, Report& r,
               ProgressReporter& progress) {
  progress.stage("counting");
  auto sql = [&](bool s) {
    std::string q = "SELECT count(*)";
    for (std::size_t n = 0; n < p.key.size(); ++n) {
      const auto& c = p.columns[p.key[n]];
      const std::string col = "a." + quote_ident(s ? c.source : c.target);
      const std::string coll =
          text_like(s ? p.source_key_types[n] : p.target_key_types[n]) ? " COLLATE \"C\"" : "";
      q += ", min(" + col + coll + ")::text, max(" + col + coll + ")::text";
    }
    for (const auto& c : p.columns)
      q += ", count(*) - count(a." + quote_ident(s ? c.source : c.target) + ")";
    return q + " FROM " + (s ? p.source_sql : p.target_sql) + " a";
  };
  source.send(sql(true));
  target.send(sql(false));
  const pg::Result sr = source.receive();
  const pg::Result tr = target.receive();
  r.source_rows = sr.int64(0, 0);
  r.target_rows = tr.int64(0, 0);
  r.rows_examined = r.source_rows + r.target_rows;
  int64_t implied = 0;
  if (r.source_rows != r.target_rows) {
    const int64_t d = r.source_rows - r.target_rows;
    implied = std::max(implied, d < 0 ? -d : d);
    r.findings.push_back(
        {{"check", "row_count"},
         {"source", r.source_rows},
         {"target", r.target_rows},
         {"implies",
          d > 0 ? "at least " + std::to_string(d) + " rows are missing in the target"
                : "at least " + std::to_string(-d) + " target rows are missing in the source"}});
  }
  int col = 1;
  for (std::size_t n = 0; n < p.key.size(); ++n, col += 2) {
    const std::string name = p.columns[p.key[n]].source;
    for (int end = 0; end < 2; ++end) {
      const std::string sv = sr.str(0, col + end);
      const std::string tv = tr.str(0, col + end);
      if (sv == tv) continue;
      r.findings.push_back(
          {{"check", end == 0 ? "key_min" : "key_max"},
           {"column", name},
           {"source", sr.is_null(0, col + end) ? json::value() : json::value(sv)},
           {"target", tr.is_null(0, col + end) ? json::value() : json::value(tv)},
           {"implies", std::string("rows differ at the ") + (end == 0 ? "low" : "high") +
                           " end of the key range of " + name}});
      implied = std::max<int64_t>(implied, 1);
    }
  }
  for (std::size_t i = 0; i < p.columns.size(); ++i, ++col) {
    const int64_t sn = sr.int64(0, col);
    const int64_t tn = tr.int64(0, col);
    if (sn == tn) continue;
    const int64_t d = sn > tn ? sn - tn : tn - sn;
    implied = std::max(implied, d);
    r.findings.push_back(
        {{"check", "null_count"},
         {"column", p.columns[i].source},
         {"source", sn},
         {"target", tn},
         {"implies", "at least " + std::to_string(d) + " rows differ (FIELD_MISMATCH) in column " +
                         p.columns[i].source}});
  }
  const int64_t all = std::max<int64_t>({r.source_rows, r.target_rows, 1});
  r.keys_compared = std::max(r.source_rows, r.target_rows);
  r.keys_matching = std::max<int64_t>(0, r.keys_compared - implied);
  r.consistency_score =
      r.keys_compared == 0 ? 1.0 : 1.0 - static_cast<double>(implied) / static_cast<double>(all);
  r.method = {{"score",
               "upper bound: 1 - (smallest number of differing rows the checks imply) / "
               "rows"},
              {"implied_minimum_differing_rows", implied}};
}

void run_detailed(pg::Connection& source, pg::Connection& target, const TablePair& p,
                  const Options& o, Report& r, ProgressReporter& progress) {
  progress.stage("sampling");
  const std::string limit = std::to_string(std::max(1, o.sample_size));
  source.send("SELECT count(*) FROM " + p.source_sql);
  target.send("SELECT count(*) FROM " + p.target_sql);
  r.source_rows = source.receive().int64(0, 0);
  r.target_rows = target.receive().int64(0, 0);
  source.send("SELECT " + p.key_text(true) + " FROM " + p.source_sql +
              " a ORDER BY random() LIMIT " + limit);
  target.send("SELECT " + p.key_text(false) + " FROM " + p.target_sql +
              " a ORDER BY random() LIMIT " + limit);
  const pg::Result sr = source.receive();
  const pg::Result tr = target.receive();
  std::set<std::string> keys;
  for (int i = 0; i < sr.rows(); ++i) keys.insert(sr.str(i, 0));
  for (int i = 0; i < tr.rows(); ++i) keys.insert(tr.str(i, 0));
  std::vector<std::string> batch;
  int64_t differing = 0;
  int64_t compared = 0;
  progress.rows("comparing rows", 0, static_cast<int64_t>(keys.size()));
  auto flush = [&] {
    const Tally t = resolve(source, target, p, batch, [&](const Difference& d) { r.add(d); });
    differing += t.differing_keys;
    r.keys_with_field_mismatch += t.keys_with_field_mismatch;
    compared += static_cast<int64_t>(batch.size());
    progress.rows("comparing rows", compared, static_cast<int64_t>(keys.size()));
    batch.clear();
  };
  for (const auto& k : keys) {
    batch.push_back(k);
    if (batch.size() >= kResolveBatch) flush();
  }
  flush();
  r.rows_examined = static_cast<int64_t>(keys.size());
  r.keys_compared = static_cast<int64_t>(keys.size());
  r.keys_matching = r.keys_compared - differing;
  r.consistency_score = r.keys_compared == 0 ? 1.0
                                             : static_cast<double>(r.keys_matching) /
                                                   static_cast<double>(r.keys_compared);
  r.method = {{"sample_size", o.sample_size},
              {"sampled_from_source", sr.rows()},
              {"sampled_from_target", tr.rows()}};
}

std::string iso_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string new_check_id() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "chk_%Y%m%d%H%M%S_", &tm);
  std::random_device rd;
  char rnd[16];
  std::snprintf(rnd, sizeof rnd, "%06x", rd() & 0xffffffu);
  return std::string(buf) + rnd;
}

void validate(pg::Connection& source, pg::Connection& target, const PairSpec& spec,
              const Options& options, Report& report) {
  const auto t0 = std::chrono::steady_clock::now();
  if (report.check_id.empty()) report.check_id = new_check_id();
  report.migration_id = options.migration_id;
  report.source_table = spec.source_table;
  report.target_table = spec.target_table;
  report.level = options.level;
  report.started_at = iso_now();
  prepare_session(source);
  prepare_session(target);
  const TablePair p = describe_pair(source, target, spec);
  report.notes = p.notes;
  ProgressReporter progress(options.on_progress);
  if (options.on_progress) {
    // PostgreSQL's estimate of both tables' rows, so a first pass over every row has an ETA.
    progress.stage("estimating");
    progress.set_estimate(estimate_rows(source, spec.source_table) +
                          estimate_rows(target, spec.target_table));
  }
  report.snapshot_time =
      begin_snapshots(source, target, options.same_database, report.shared_snapshot);
  try {
    switch (options.level) {
      case Level::kBasic:
        run_basic(source, target, p, report, progress);
        break;
      case Level::kDetailed:
        run_detailed(source, target, p, options, report, progress);
        break;
      case Level::kComprehensive:
        run_comprehensive(source, target, p, options.buckets, report, progress);
        break;
    }
  } catch (...) {
    if (source.ok()) source.exec("ROLLBACK");
    if (target.ok()) target.exec("ROLLBACK");
    throw;
  }
  source.exec("COMMIT");
  target.exec("COMMIT");
  recommend(report);
  progress.finish(report.rows_examined);
  report.duration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool store_report(pg::Connection& c, const Report& report) {
  if (!c.exec("SELECT to_regclass('t_sys_consistency_checks') IS NOT NULL").boolean(0, 0))
    return false;
  c.exec(
      "INSERT INTO t_sys_consistency_checks (check_id, migration_id, source_table, target_table, "
      "level, consistency_score, total_records, differences_count, report) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)",
      {report.check_id, report.migration_id.empty() ? pg::Param() : pg::Param(report.migration_id),
       report.source_table, report.target_table, std::string(to_string(report.level)),
       pg::param(report.consistency_score), pg::param(report.keys_compared),
       pg::param(report.differences_count()), json::serialize(summary_json(report))});
  return true;
}

}  // namespace pgphase::validator
