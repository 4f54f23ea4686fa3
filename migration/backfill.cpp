#include "migration/backfill.h"

#include <optional>

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <boost/json.hpp>
#include <stdexcept>

#include "common/log.h"
#include "migration/control_plane.h"
#include "migration/pg_client.h"
#include "migration/sql_text.h"

namespace pgphase::migration {

namespace json = boost::json;

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(5);

std::string mapped(const Migration& m, const std::string& c) {
  const auto it = m.column_map.find(c);
  return it == m.column_map.end() ? c : it->second;
}

const char* kProgressSql =
    "SELECT migration_id, status, batch_size, max_rows_per_second, throttle_query, "
    "throttle_limit, coalesce(last_key::text, ''), rows_copied, rows_inserted, total_estimate, "
    "error, actor, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "coalesce(to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), ''), "
    "extract(epoch FROM coalesce(finished_at, now()) - started_at)::float8 "
    "FROM t_sys_backfills WHERE migration_id = $1";

json::object progress_of(const pg::Result& r) {
  const int64_t copied = std::stoll(r.str(0, 7));
  const int64_t total = std::stoll(r.str(0, 9));
  const double elapsed = std::stod(r.str(0, 14));
  const double rate = elapsed > 0 ? static_cast<double>(copied) / elapsed : 0;
  json::object o{{"migration_id", r.str(0, 0)},
                 {"status", r.str(0, 1)},
                 {"batch_size", std::stoll(r.str(0, 2))},
                 {"max_rows_per_second", std::stod(r.str(0, 3))},
                 {"throttle_query", r.str(0, 4)},
                 {"throttle_limit", std::stod(r.str(0, 5))},
                 {"rows_copied", copied},
                 {"rows_inserted", std::stoll(r.str(0, 8))},
                 {"total_estimate", total},
                 {"percent", total > 0 ? std::min(100.0, 100.0 * static_cast<double>(copied) /
                                                             static_cast<double>(total))
                                       : 0.0},
                 {"rate_rows_per_second", rate},
                 {"error", r.str(0, 10)},
                 {"actor", r.str(0, 11)},
                 {"started_at", r.str(0, 12)},
                 {"elapsed_seconds", elapsed}};
  if (!r.str(0, 13).empty()) o["finished_at"] = r.str(0, 13);
  if (r.str(0, 1) == "running" && rate > 0 && total > copied)
    o["eta_seconds"] = static_cast<double>(total - copied) / rate;
  if (!r.str(0, 6).empty()) o["last_key"] = json::parse(r.str(0, 6));
  return o;
}

void validate(const BackfillSettings& s) {
  if (s.batch_size && (*s.batch_size < 1 || *s.batch_size > 1000000))
    throw std::invalid_argument("batch_size must be 1..1000000");
  if (s.max_rows_per_second && !(*s.max_rows_per_second >= 0))
    throw std::invalid_argument("max_rows_per_second must be >= 0 (0: unthrottled)");
}

}  // namespace

std::string backfill_batch_sql(const Migration& m, const TableShape& shape, bool first) {
  if (!shape.problem.empty()) throw std::invalid_argument(shape.problem);
  if (shape.key_columns.empty()) throw std::invalid_argument(m.source_table + " has no key");
  const std::string src = quote_table(m.source_table);
  const std::string dst = quote_table(m.target_table);
  std::string batch_cols;
  std::string tcols;
  std::string bcols;
  for (const auto& c : shape.source_columns) {
    const std::string t = mapped(m, c.name);
    bool generated = false;
    for (const auto& tc : shape.target_columns)
      generated = generated || (tc.name == t && tc.generated);
    bool key = false;
    for (const auto& k : shape.key_columns) key = key || k == c.name;
    if ((t.empty() || generated) && !key) continue;
    if (!batch_cols.empty()) batch_cols += ", ";
    batch_cols += "s." + quote_ident(c.name);
    if (t.empty() || generated) continue;
    if (!tcols.empty()) {
      tcols += ", ";
      bcols += ", ";
    }
    tcols += quote_ident(t);
    bcols += "b." + quote_ident(c.name);
  }
  std::string skeys;
  std::string rkeys;
  std::string bkeys_desc;
  std::string tkeys;
  std::string json_keys;
  for (const auto& k : shape.key_columns) {
    const std::string t = mapped(m, k);
    if (t.empty()) throw std::invalid_argument("key column " + k + " is dropped by column_map");
    const bool first_key = skeys.empty();
    skeys += (first_key ? "" : ", ") + std::string("s.") + quote_ident(k);
    // One scalar subquery per key column: a row comparison with parameters, which a btree
    // index on the key serves as a range (a sublink returning a row would not be).
    rkeys += (first_key ? "" : ", ") + std::string("(SELECT r.") + quote_ident(k) +
             " FROM jsonb_populate_record(NULL::" + quote_table(m.source_table) + ", $1::jsonb) r)";
    bkeys_desc += (first_key ? "" : ", ") + std::string("b.") + quote_ident(k) + " DESC";
    tkeys += (first_key ? "" : ", ") + quote_ident(t);
    json_keys += (first_key ? "" : ", ") + quote_literal_key(k) + ", b." + quote_ident(k);
  }
  return "WITH batch AS (SELECT " + batch_cols + " FROM " + src +
         // The first batch has no lower bound ($1 is NULL; referenced so that its type is known).
         " s WHERE " +
         (first ? std::string("$1::jsonb IS NULL") : "(" + skeys + ") > (" + rkeys + ")") +
         " ORDER BY " + skeys +
         " LIMIT $2 FOR SHARE OF s), "
         "ins AS (INSERT INTO " +
         dst + " (" + tcols + ") OVERRIDING SYSTEM VALUE SELECT " + bcols +
         " FROM batch b ON CONFLICT (" + tkeys +
         ") DO NOTHING RETURNING 1) "
         "SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM ins), (SELECT "
         "jsonb_build_object(" +
         json_keys + ")::text FROM batch b ORDER BY " + bkeys_desc + " LIMIT 1)";
}

BackfillManager::BackfillManager(std::string dsn, ControlPlane& control,
                                 prometheus::Registry* registry)
    : dsn_(std::move(dsn)), control_(control) {
  if (registry == nullptr) return;
  const auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry);
  };
  copied_ = gauge("pgphase_backfill_rows_copied",
                  "Rows the backfill has copied (read from the source), by migration");
  estimated_ = gauge("pgphase_backfill_rows_estimated",
                     "Rows in the source when the backfill started (PostgreSQL's estimate)");
  running_gauge_ =
      gauge("pgphase_backfill_running", "1 while this pgphase runs the migration's backfill");
  rate_ = gauge("pgphase_backfill_rows_per_second",
                "Rows copied per second since the backfill started (0 when not running)");
  eta_ = gauge("pgphase_backfill_eta_seconds",
               "Seconds left at the current rate to reach the estimate (0 when unknown)");
}

void BackfillManager::publish(const std::string& id, int64_t copied, int64_t estimate, bool running,
                              double elapsed_seconds) {
  if (copied_ == nullptr) return;
  const std::map<std::string, std::string> labels{{"migration_id", id}};
  if (copied >= 0) copied_->Add(labels).Set(static_cast<double>(copied));
  if (estimate >= 0) estimated_->Add(labels).Set(static_cast<double>(estimate));
  running_gauge_->Add(labels).Set(running ? 1 : 0);
  // The same rate and ETA as the API's progress (rows copied over the run's elapsed time).
  const double rate = running && copied > 0 && elapsed_seconds > 0
                          ? static_cast<double>(copied) / elapsed_seconds
                          : 0;
  rate_->Add(labels).Set(rate);
  eta_->Add(labels).Set(
      rate > 0 && estimate > copied ? static_cast<double>(estimate - copied) / rate : 0);
}

BackfillManager::~BackfillManager() {
  stop();
}

void BackfillManager::start() {
  std::lock_guard lock(mu_);
  if (scanner_.joinable()) return;
  stop_ = false;
  scanner_ = std::thread([this] { scan_loop(); });
}

void BackfillManager::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (scanner_.joinable()) scanner_.join();
  std::map<std::string, std::thread> runners;
  {
    std::lock_guard lock(mu_);
    runners.swap(runners_);
  }
  for (auto& [id, t] : runners) {
    if (t.joinable()) t.join();
  }
}

void BackfillManager::scan_loop() {
  pg::Connection conn;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_ || kick_; });
      if (stop_) return;
      kick_ = false;
      // Reap finished runners.
      for (auto it = runners_.begin(); it != runners_.end();) {
        if (!running_[it->first] && it->second.joinable()) {
          it->second.join();
          it = runners_.erase(it);
        } else {
          ++it;
        }
      }
    }
    try {
      if (!conn.alive()) conn = pg::Connection::open(dsn_, kConnectTimeout);
      const pg::Result r = conn.exec(
          "SELECT migration_id FROM t_sys_backfills WHERE status IN ('running', "
          "'paused') ORDER BY migration_id");
      for (int i = 0; i < r.rows(); ++i) {
        const std::string id = r.str(i, 0);
        std::lock_guard lock(mu_);
        if (stop_ || runners_.count(id) > 0) continue;
        running_[id] = true;
        runners_.emplace(id, std::thread([this, id] { run(id); }));
      }
    } catch (const std::exception& e) {
      log::debug("backfill scan: ", e.what());
      conn.close();
    }
  }
}

namespace {
// The migration's tables are in another database than the one `control` is connected to.
bool in_other_database(const Migration& m, pg::Connection& control) {
  const char* here = PQdb(control.raw());
  return !m.database.empty() && (here == nullptr || m.database != here);
}
}  // namespace

void BackfillManager::run(const std::string& id) {
  auto finish = [&] {
    publish(id, -1, -1, false);
    std::lock_guard lock(mu_);
    running_[id] = false;
  };
  try {
    pg::Connection c = pg::Connection::open(dsn_, kConnectTimeout);
    // One pgphase runs each backfill: the others see the lock taken and leave it.
    if (c.exec("SELECT pg_try_advisory_lock(hashtext('pgphase_backfill:' || $1))", {id})
            .str(0, 0) != "t") {
      finish();
      return;
    }
    log::info("backfill ", id, ": running here");
    pg::Connection data;  // to the migration's database, when it is not the control database
    auto last_batch = std::chrono::steady_clock::now();
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (stop_) break;
      }
      const pg::Result row = c.exec(
          "SELECT status, batch_size, max_rows_per_second, throttle_query, throttle_limit, "
          "last_key::text FROM t_sys_backfills WHERE migration_id = $1",
          {id});
      if (row.rows() == 0) break;
      const std::string status = row.str(0, 0);
      if (status != "running" && status != "paused") break;
      if (status == "paused") {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stop_; });
        continue;
      }
      const int batch = std::stoi(row.str(0, 1));
      const double max_rate = std::stod(row.str(0, 2));
      const std::string throttle = row.str(0, 3);
      const double limit = std::stod(row.str(0, 4));
      if (!throttle.empty()) {
        double value = 0;
        try {
          value = std::stod(c.exec("SELECT (" + throttle + ")::float8").str(0, 0));
        } catch (const std::exception& e) {
          c.exec(
              "UPDATE t_sys_backfills SET status = 'failed', error = $2, finished_at = now(), "
              "updated_at = now() WHERE migration_id = $1",
              {id, std::string("throttle query failed: ") + e.what()});
          break;
        }
        if (value > limit) {
          std::unique_lock lock(mu_);
          cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stop_; });
          continue;
        }
      }
      const SnapshotPtr snap = control_.snapshot();
      const Migration* m = snap->find_migration(id);
      const TableShape* shape = snap->shape_for(id);
      if (m == nullptr || shape == nullptr) {
        c.exec(
            "UPDATE t_sys_backfills SET status = 'failed', error = $2, finished_at = now(), "
            "updated_at = now() WHERE migration_id = $1",
            {id,
             "the migration is gone or its tables are not resolved (it must be past "
             "preparation)"});
        break;
      }
      // The rows are copied in the migration's database (the control database or another one
      // of the same server); the progress is kept in the control database.
      if (in_other_database(*m, c) && !data.alive()) {
        data = pg::Connection::open(dsn_, kConnectTimeout, -1, m->database);
      }
      pg::Connection& rows = in_other_database(*m, c) ? data : c;
      std::string sql;
      try {
        sql = backfill_batch_sql(*m, *shape, row.is_null(0, 5));
      } catch (const std::exception& e) {
        c.exec(
            "UPDATE t_sys_backfills SET status = 'failed', error = $2, finished_at = now(), "
            "updated_at = now() WHERE migration_id = $1",
            {id, e.what()});
        break;
      }
      pg::Param last;
      if (!row.is_null(0, 5)) last = row.str(0, 5);
      int64_t read = 0;
      {
        // One transaction when both are in one database; else the batch commits first (copying
        // a range again after a failure in between is harmless: a key already there is skipped).
        std::optional<pg::Transaction> copy;
        if (&rows != &c) copy.emplace(rows);
        pg::Transaction tx(c);
        const pg::Result b = rows.exec(sql, {last, std::to_string(batch)});
        if (copy) copy->commit();
        read = std::stoll(b.str(0, 0));
        const int64_t inserted = std::stoll(b.str(0, 1));
        if (read == 0) {
          c.exec(
              "UPDATE t_sys_backfills SET status = 'completed', finished_at = now(), "
              "updated_at = now() WHERE migration_id = $1 AND status = 'running'",
              {id});
        } else {
          const pg::Result p = c.exec(
              "UPDATE t_sys_backfills SET last_key = $2::jsonb, rows_copied = rows_copied + "
              "$3, rows_inserted = rows_inserted + $4, updated_at = now() WHERE "
              "migration_id = $1 RETURNING rows_copied, total_estimate, "
              "extract(epoch FROM now() - started_at)::float8",
              {id, b.str(0, 2), std::to_string(read), std::to_string(inserted)});
          if (p.rows() == 1) {
            publish(id, std::stoll(p.str(0, 0)), std::stoll(p.str(0, 1)), true,
                    std::stod(p.str(0, 2)));
          }
        }
        tx.commit();
      }
      if (read == 0) {
        log::info("backfill ", id, ": completed");
        break;
      }
      if (max_rate > 0) {
        // Rows per second: each batch takes at least batch / rate seconds.
        const auto due = last_batch + std::chrono::microseconds(static_cast<int64_t>(
                                          1e6 * static_cast<double>(read) / max_rate));
        std::unique_lock lock(mu_);
        cv_.wait_until(lock, due, [&] { return stop_; });
      }
      last_batch = std::chrono::steady_clock::now();
    }
  } catch (const std::exception& e) {
    log::warn("backfill ", id, ": ", e.what(), " (retried by the next scan)");
  }
  finish();
}

json::object BackfillManager::start_backfill(const std::string& migration_id,
                                             const BackfillSettings& s, const std::string& actor) {
  validate(s);
  const SnapshotPtr snap = control_.snapshot();
  const Migration* m = snap->find_migration(migration_id);
  if (m == nullptr) throw std::out_of_range("no migration \"" + migration_id + "\"");
  if (m->phase == Phase::kPreparation || m->phase == Phase::kCompleted)
    throw std::logic_error("backfill runs while dual writes keep the target current: move " +
                           migration_id + " to dual_write first (it is in " +
                           std::string(to_string(m->phase)) + ")");
  const TableShape* shape = snap->shape_for(migration_id);
  if (shape == nullptr)
    throw std::logic_error("the tables of " + migration_id + " are not resolved");
  (void)backfill_batch_sql(*m, *shape, true);  // refuses what cannot be copied (invalid_argument)
  std::lock_guard lock(api_mu_);
  pg::Connection c = pg::Connection::open(dsn_, kConnectTimeout);
  const pg::Result existing =
      c.exec("SELECT status FROM t_sys_backfills WHERE migration_id = $1", {migration_id});
  const bool active =
      existing.rows() > 0 && (existing.str(0, 0) == "running" || existing.str(0, 0) == "paused");
  if (!active) {
    // A new run (the first, or after completion, cancellation or failure) starts from the first
    // key; the estimate is PostgreSQL's (reltuples), or a count when it has none.
    pg::Connection data;
    if (in_other_database(*m, c)) {
      data = pg::Connection::open(dsn_, kConnectTimeout, -1, m->database);
    }
    pg::Connection& rows = data.ok() ? data : c;
    int64_t estimate = std::stoll(rows.exec("SELECT reltuples::bigint FROM pg_class WHERE oid = "
                                            "to_regclass($1)",
                                            {quote_table(m->source_table)})
                                      .str(0, 0));
    if (estimate < 0)
      estimate =
          std::stoll(rows.exec("SELECT count(*) FROM " + quote_table(m->source_table)).str(0, 0));
    c.exec(
        "INSERT INTO t_sys_backfills (migration_id, status, total_estimate, actor) VALUES "
        "($1, 'running', $2, $3) ON CONFLICT (migration_id) DO UPDATE SET status = "
        "'running', last_key = NULL, rows_copied = 0, rows_inserted = 0, total_estimate = $2, "
        "error = '', actor = $3, started_at = now(), updated_at = now(), finished_at = NULL",
        {migration_id, std::to_string(estimate), actor});
  }
  if (s.batch_size || s.max_rows_per_second || s.throttle_query || s.throttle_limit) {
    c.exec(
        "UPDATE t_sys_backfills SET batch_size = coalesce($2::int, batch_size), "
        "max_rows_per_second = coalesce($3::float8, max_rows_per_second), throttle_query = "
        "coalesce($4, throttle_query), throttle_limit = coalesce($5::float8, throttle_limit), "
        "updated_at = now() WHERE migration_id = $1",
        {migration_id, s.batch_size ? pg::Param(std::to_string(*s.batch_size)) : pg::Param(),
         s.max_rows_per_second ? pg::Param(std::to_string(*s.max_rows_per_second)) : pg::Param(),
         s.throttle_query ? pg::Param(*s.throttle_query) : pg::Param(),
         s.throttle_limit ? pg::Param(std::to_string(*s.throttle_limit)) : pg::Param()});
  }
  {
    std::lock_guard kick(mu_);
    kick_ = true;
  }
  cv_.notify_all();
  return progress_of(c.exec(kProgressSql, {migration_id}));
}

json::object BackfillManager::progress(const std::string& migration_id) {
  std::lock_guard lock(api_mu_);
  pg::Connection c = pg::Connection::open(dsn_, kConnectTimeout);
  const pg::Result r = c.exec(kProgressSql, {migration_id});
  if (r.rows() == 0) throw std::out_of_range("no backfill for \"" + migration_id + "\"");
  return progress_of(r);
}

json::object BackfillManager::set_status(const std::string& migration_id,
                                         const std::string& action) {
  std::string from;
  std::string to;
  if (action == "pause") {
    from = "running";
    to = "paused";
  } else if (action == "resume") {
    from = "paused";
    to = "running";
  } else if (action == "cancel") {
    to = "cancelled";
  } else {
    throw std::invalid_argument("unknown backfill action \"" + action + "\"");
  }
  std::lock_guard lock(api_mu_);
  pg::Connection c = pg::Connection::open(dsn_, kConnectTimeout);
  const pg::Result r =
      c.exec("SELECT status FROM t_sys_backfills WHERE migration_id = $1", {migration_id});
  if (r.rows() == 0) throw std::out_of_range("no backfill for \"" + migration_id + "\"");
  const std::string status = r.str(0, 0);
  if (status != to) {
    const bool ok =
        action == "cancel" ? (status == "running" || status == "paused") : status == from;
    if (!ok)
      throw std::logic_error("cannot " + action + " the backfill of " + migration_id + ": it is " +
                             status);
    c.exec(
        "UPDATE t_sys_backfills SET status = $2, updated_at = now(), finished_at = CASE WHEN "
        "$2 = 'cancelled' THEN now() END WHERE migration_id = $1",
        {migration_id, to});
  }
  return progress_of(c.exec(kProgressSql, {migration_id}));
}

json::object BackfillManager::change(const std::string& migration_id, const BackfillSettings& s) {
  validate(s);
  {
    std::lock_guard lock(api_mu_);
    pg::Connection c = pg::Connection::open(dsn_, kConnectTimeout);
    const pg::Result r =
        c.exec("SELECT status FROM t_sys_backfills WHERE migration_id = $1", {migration_id});
    if (r.rows() == 0) throw std::out_of_range("no backfill for \"" + migration_id + "\"");
    if (r.str(0, 0) != "running" && r.str(0, 0) != "paused")
      throw std::logic_error("the backfill of " + migration_id + " is " + r.str(0, 0) +
                             "; settings change only while it runs or is paused");
  }
  BackfillSettings copy = s;
  return start_backfill(migration_id, copy, "");
}

}  // namespace pgphase::migration
