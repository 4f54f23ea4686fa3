// Backfill: copies a migration's existing source rows into the target in key order, in batches
// (keyset pagination on the key columns, composite keys included), each batch one statement
//   WITH batch AS (SELECT ... FROM source WHERE key > last ORDER BY key LIMIT n FOR SHARE),
//        ins AS (INSERT INTO target ... SELECT ... FROM batch ON CONFLICT (key) DO NOTHING)
// with column_map applied, and the checkpoint (last key, rows) written in the same transaction.
//
// Why this is correct under concurrent dual writes: a row a dual write has put in the target is
// never overwritten (DO NOTHING), and it is at least as new as the source row the batch read.
// FOR SHARE makes a concurrent UPDATE or DELETE of a batch's rows wait until the batch commits,
// after which its dual write brings the target up to date; a row deleted (and committed) before
// the batch locks it is skipped, so a deleted row cannot be copied back after its delete.
//
// Settings (batch size, rows per second, throttle query and limit) live in t_sys_backfills and
// can be changed while it runs; pause, resume and cancel are status changes. Every pgphase
// scans for running backfills once a second; an advisory lock makes exactly one of them run
// each, and a restarted pgphase resumes from the checkpoint.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "migration/model.h"
#include "migration/snapshot.h"

namespace boost::json {
class object;
}
namespace prometheus {
class Registry;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace pgphase::migration {

class ControlPlane;

struct BackfillSettings {
  std::optional<int> batch_size;
  std::optional<double> max_rows_per_second;  // 0: unthrottled
  std::optional<std::string> throttle_query;  // returns one number; "" disables
  std::optional<double> throttle_limit;       // pause while the query's value is above it
};

// The statement copying one batch ($1: the last copied key as JSON, unused by the first batch;
// $2: batch size); returns rows read, rows inserted, and the batch's last key as JSON.
[[nodiscard]] std::string backfill_batch_sql(const Migration& m, const TableShape& shape,
                                             bool first);

class BackfillManager {
 public:
  // `registry` (optional) gets pgphase_backfill_rows_copied / _rows_estimated / _running gauges
  // per migration, updated by the runner on this pgphase after every batch.
  BackfillManager(std::string dsn, ControlPlane& control, prometheus::Registry* registry = nullptr);
  ~BackfillManager();
  BackfillManager(const BackfillManager&) = delete;
  BackfillManager& operator=(const BackfillManager&) = delete;

  void start();
  void stop();

  // API operations: each answers the backfill's progress (JSON object) or throws
  // std::invalid_argument (bad input: 422), std::out_of_range (unknown migration or no
  // backfill: 404) or std::logic_error (refused: 409).
  boost::json::object start_backfill(const std::string& migration_id, const BackfillSettings& s,
                                     const std::string& actor);
  boost::json::object progress(const std::string& migration_id);
  boost::json::object set_status(const std::string& migration_id, const std::string& action);
  boost::json::object change(const std::string& migration_id, const BackfillSettings& s);

 private:
  struct Runner;
  void scan_loop();
  void run(const std::string& migration_id);

  std::string dsn_;
  ControlPlane& control_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool kick_ = false;  // a backfill was started here: scan now
  std::map<std::string, std::thread> runners_;
  std::map<std::string, bool> running_;  // true while its thread works
  std::thread scanner_;
  std::mutex api_mu_;
  prometheus::Family<prometheus::Gauge>* copied_ = nullptr;
  prometheus::Family<prometheus::Gauge>* estimated_ = nullptr;
  prometheus::Family<prometheus::Gauge>* running_gauge_ = nullptr;
  prometheus::Family<prometheus::Gauge>* rate_ = nullptr;
  prometheus::Family<prometheus::Gauge>* eta_ = nullptr;
  void publish(const std::string& id, int64_t copied, int64_t estimate, bool running,
               double elapsed_seconds = 0);
};

}  // namespace pgphase::migration
