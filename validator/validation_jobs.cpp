#include "validator/validation_jobs.h"

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <boost/json.hpp>
#include <chrono>

#include "common/log.h"
#include "migration/pg_client.h"
#include "migration/store.h"
#include "validator/validator.h"

namespace pgphase::validator {

namespace json = boost::json;

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(5);
constexpr std::size_t kKeptJobs = 200;

// To the control database, or to `database` of the same server.
pg::Connection open(const std::string& dsn, const std::string& database = "") {
  return pg::Connection::open(dsn, kConnectTimeout, -1, database);
}

// Fills the request's tables, key and column_map from its migration.
void resolve_migration(pg::Connection& c, ValidationRequest& r) {
  if (r.migration_id.empty()) return;
  const auto m = migration::store::find_migration(c, r.migration_id, false);
  if (!m) throw ValidationNotFound("no migration " + r.migration_id);
  r.spec.source_table = m->source_table;
  r.spec.target_table = m->target_table;
  r.spec.key_columns = m->key_columns;
  r.spec.column_map = m->column_map;
  r.database = m->database;
}

}  // namespace

ValidationJobs::ValidationJobs(std::string dsn, prometheus::Registry* registry)
    : dsn_(std::move(dsn)) {
  if (registry == nullptr) return;
  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry);
  };
  rows_done_ = gauge("pgphase_validation_rows_done",
                     "Rows (both sides) a validation run by this pgphase has read or compared");
  rows_total_ = gauge("pgphase_validation_rows_total",
                      "Rows (both sides) the validation expects to read in all (0: not known yet)");
  rate_ = gauge("pgphase_validation_rows_per_second",
                "Rows read or compared per second since the validation started");
  eta_ = gauge("pgphase_validation_eta_seconds",
               "Seconds left at the current rate (0 when done, -1 when unknown)");
  running_ = gauge("pgphase_validation_running", "1 while this pgphase runs the validation");
}

double ValidationJobs::elapsed_of(const Job& job) {
  return job.status == "running"
             ? std::chrono::duration<double>(std::chrono::steady_clock::now() - job.started).count()
             : job.elapsed_seconds;
}

json::object ValidationJobs::progress_json(const Job& job) {
  const double elapsed = elapsed_of(job);
  const ProgressFigures f = figures(job.progress, elapsed);
  return {{"stage", job.progress.stage},
          {"rows_done", job.progress.rows_done},
          {"rows_total", job.progress.rows_total},
          {"percent", f.percent},
          {"rows_per_second", f.rows_per_second},
          {"eta_seconds", f.eta_seconds},
          {"elapsed_seconds", elapsed}};
}

void ValidationJobs::publish(const std::string& id, const Job& job) {
  if (rows_done_ == nullptr) return;
  const ProgressFigures f = figures(job.progress, elapsed_of(job));
  const std::map<std::string, std::string> labels{{"validation_id", id}};
  rows_done_->Add(labels).Set(static_cast<double>(job.progress.rows_done));
  rows_total_->Add(labels).Set(static_cast<double>(job.progress.rows_total));
  rate_->Add(labels).Set(f.rows_per_second);
  eta_->Add(labels).Set(f.eta_seconds);
  running_->Add(labels).Set(job.status == "running" ? 1 : 0);
}

void ValidationJobs::forget_gauges(const std::string& id) {
  if (rows_done_ == nullptr) return;
  const std::map<std::string, std::string> labels{{"validation_id", id}};
  for (auto* f : {rows_done_, rows_total_, rate_, eta_, running_}) {
    if (f->Has(labels)) f->Remove(&f->Add(labels));
  }
}

ValidationJobs::~ValidationJobs() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads)
    if (t.joinable()) t.join();
}

json::object ValidationJobs::start(ValidationRequest request) {
  {
    pg::Connection control = open(dsn_);
    resolve_migration(control, request);
    if (request.spec.source_table.empty() || request.spec.target_table.empty())
      throw ValidationInvalid("give migration_id, or source_table and target_table");
    pg::Connection a = open(dsn_, request.database);
    pg::Connection b = open(dsn_, request.database);
    try {
      (void)describe_pair(a, b, request.spec);
    } catch (const std::invalid_argument& e) {
      throw ValidationInvalid(e.what());
    }
  }
  const std::string id = new_check_id();
  auto job = std::make_shared<Job>();
  std::lock_guard lock(mu_);
  // Forget the oldest finished jobs beyond kKeptJobs (their reports stay in the table).
  for (auto it = jobs_.begin(); jobs_.size() >= kKeptJobs && it != jobs_.end();) {
    if (it->second->status == "running") {
      ++it;
      continue;
    }
    forget_gauges(it->first);
    it = jobs_.erase(it);
  }
  job->request = request;
  jobs_[id] = job;
  publish(id, *job);
  json::object out{{"validation_id", id},
                   {"status", "running"},
                   {"level", to_string(request.level)},
                   {"source_table", request.spec.source_table},
                   {"target_table", request.spec.target_table}};
  threads_.emplace_back([this, id, request = std::move(request)]() mutable { run(id, request); });
  return out;
}

void ValidationJobs::run(std::string id, ValidationRequest request) {
  std::shared_ptr<Job> job;
  {
    std::lock_guard lock(mu_);
    job = jobs_[id];
  }
  try {
    pg::Connection source = open(dsn_, request.database);
    pg::Connection target = open(dsn_, request.database);
    Report report;
    report.check_id = id;
    Options o;
    o.level = request.level;
    o.sample_size = request.sample_size;
    o.same_database = true;
    o.migration_id = request.migration_id;
    o.on_progress = [this, &id, &job](const Progress& p) {
      std::lock_guard lock(mu_);
      job->progress = p;
      publish(id, *job);
    };
    validate(source, target, request.spec, o, report);
    if (request.repair || request.dry_run)
      report.repair =
          repair(source, target, request.spec, report, request.dry_run || !request.repair, true);
    if (request.database.empty()) {
      store_report(source, report);
    } else {
      pg::Connection control = open(dsn_);  // reports are kept with the migration's state
      store_report(control, report);
    }
    log::info("validation ", id, " of ", report.source_table, " -> ", report.target_table, " (",
              to_string(report.level), "): score ", report.consistency_score, ", ",
              report.differences_count(), " differences");
    std::lock_guard lock(mu_);
    job->report = summary_json(report);
    job->status = "completed";
    job->elapsed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - job->started).count();
    publish(id, *job);
  } catch (const std::exception& e) {
    log::warn("validation ", id, " failed: ", e.what());
    std::lock_guard lock(mu_);
    job->status = "failed";
    job->error = e.what();
    job->elapsed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - job->started).count();
    publish(id, *job);
  }
}

json::object ValidationJobs::get(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    const auto it = jobs_.find(id);
    if (it != jobs_.end()) {
      json::object o{{"validation_id", id}, {"status", it->second->status}};
      if (!it->second->error.empty()) o["error"] = it->second->error;
      if (it->second->report) o["report"] = *it->second->report;
      o["progress"] = progress_json(*it->second);
      return o;
    }
  }
  pg::Connection c = open(dsn_);
  const pg::Result r = c.exec(
      "SELECT coalesce(report::text, '{}') FROM t_sys_consistency_checks WHERE check_id = $1",
      {id});
  if (r.rows() == 0) throw ValidationNotFound("no validation " + id);
  return {{"validation_id", id}, {"status", "completed"}, {"report", json::parse(r.str(0, 0))}};
}

json::array ValidationJobs::list(int limit) {
  pg::Connection c = open(dsn_);
  const pg::Result r = c.exec(
      "SELECT check_id, coalesce(migration_id, ''), source_table, target_table, level, "
      "consistency_score, total_records, differences_count, "
      "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
      "FROM t_sys_consistency_checks ORDER BY created_at DESC, check_id DESC LIMIT $1",
      {pg::param(static_cast<int64_t>(std::clamp(limit, 1, 1000)))});
  json::array out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, job] : jobs_) {
      if (job->status != "running") continue;
      out.push_back(json::object{{"validation_id", id},
                                 {"status", "running"},
                                 {"migration_id", job->request.migration_id},
                                 {"source_table", job->request.spec.source_table},
                                 {"target_table", job->request.spec.target_table},
                                 {"level", to_string(job->request.level)},
                                 {"progress", progress_json(*job)}});
    }
  }
  for (int i = 0; i < r.rows(); ++i)
    out.push_back(json::object{{"validation_id", r.str(i, 0)},
                               {"migration_id", r.str(i, 1)},
                               {"source_table", r.str(i, 2)},
                               {"target_table", r.str(i, 3)},
                               {"level", r.str(i, 4)},
                               {"consistency_score", r.float64(i, 5)},
                               {"total_records", r.int64(i, 6)},
                               {"differences_count", r.int64(i, 7)},
                               {"created_at", r.str(i, 8)}});
  return out;
}

}  // namespace pgphase::validator
