#include "migration/shadow.h"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "migration/pg_client.h"
#include "migration/read_stats.h"

namespace pgphase::migration {
namespace {

// Every row as one string (values separated by \x1f, NULL as \x1e).
std::vector<std::string> rows_of(PGresult* r) {
  std::vector<std::string> rows;
  const int n = PQntuples(r);
  const int cols = PQnfields(r);
  rows.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    std::string row;
    for (int c = 0; c < cols; ++c) {
      if (c > 0) row.push_back('\x1f');
      if (PQgetisnull(r, i, c) != 0) {
        row.push_back('\x1e');
      } else {
        row.append(PQgetvalue(r, i, c), static_cast<size_t>(PQgetlength(r, i, c)));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

ShadowRunner::ShadowRunner(std::string dsn, ReadStats& stats, size_t queue_limit)
    : dsn_(std::move(dsn)), stats_(stats), limit_(queue_limit) {}

ShadowRunner::~ShadowRunner() {
  stop();
}

void ShadowRunner::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void ShadowRunner::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ShadowRunner::submit(ShadowJob job) {
  {
    std::lock_guard lock(mu_);
    if (stop_ || queue_.size() >= limit_) {
      stats_.record_shadow_dropped(job.config_id);
      return false;
    }
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void ShadowRunner::loop() {
  pg::Connection conn;
  for (;;) {
    ShadowJob job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      if (!conn.alive()) conn = pg::Connection::open(dsn_, std::chrono::seconds(5));
      PGconn* c = conn.raw();
      auto exec = [&](const std::string& sql) {
        std::vector<const char*> values;
        std::vector<int> lengths;
        for (const auto& p : job.params) {
          values.push_back(p ? p->data() : nullptr);
          lengths.push_back(p ? static_cast<int>(p->size()) : 0);
        }
        std::vector<Oid> types(job.param_types.begin(), job.param_types.end());
        types.resize(job.params.size(), 0);
        PGresult* r = PQexecParams(
            c, sql.c_str(), static_cast<int>(values.size()), types.empty() ? nullptr : types.data(),
            values.empty() ? nullptr : values.data(), lengths.empty() ? nullptr : lengths.data(),
            job.param_formats.empty() ? nullptr : job.param_formats.data(), 0);
        return std::unique_ptr<PGresult, decltype(&PQclear)>(r, &PQclear);
      };
      conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      conn.exec("SET LOCAL statement_timeout = '10s'");
      auto a = exec(job.source_sql);
      auto b = exec(job.target_sql);
      (void)PQexec(c, "ROLLBACK");
      if (PQresultStatus(a.get()) != PGRES_TUPLES_OK ||
          PQresultStatus(b.get()) != PGRES_TUPLES_OK) {
        // An error on one side only is a mismatch; on both, the statement itself is at fault.
        const bool a_ok = PQresultStatus(a.get()) == PGRES_TUPLES_OK;
        const bool b_ok = PQresultStatus(b.get()) == PGRES_TUPLES_OK;
        if (a_ok != b_ok) {
          stats_.record_shadow(
              job.config_id, false,
              job.source_sql + " (target: " + std::string(PQresultErrorMessage(b.get())) + ")");
        }
        continue;
      }
      std::vector<std::string> ra = rows_of(a.get());
      std::vector<std::string> rb = rows_of(b.get());
      if (!job.ordered) {
        std::sort(ra.begin(), ra.end());
        std::sort(rb.begin(), rb.end());
      }
      const bool match = ra == rb && PQnfields(a.get()) == PQnfields(b.get());
      stats_.record_shadow(job.config_id, match, match ? std::string() : job.source_sql);
    } catch (const std::exception& e) {
      log::warn("shadow read failed: ", e.what());
      conn.close();
    }
  }
}

}  // namespace pgphase::migration
