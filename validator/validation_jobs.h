// Validations run inside pgphase (POST /api/v1/validations): each on its own thread with its own
// two connections to the control database (where the migrating tables live), stored in
// t_sys_consistency_checks when done. Running and failed validations are kept in memory (this
// pgphase answers for them); finished ones are read back from the table by any pgphase.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "validator/progress.h"
#include "validator/report.h"
#include "validator/table_pair.h"

namespace prometheus {
class Registry;
template <class T>
class Family;
class Gauge;
}  // namespace prometheus

namespace pgphase::validator {

struct ValidationRequest {
  std::string migration_id;  // or the tables
  PairSpec spec;
  // The database holding both tables ("" = the control database): the migration's.
  std::string database;
  Level level = Level::kBasic;
  int sample_size = 1000;
  bool repair = false;
  bool dry_run = false;
};

// Thrown by start()/get(): bad request (422) and unknown migration or validation (404).
struct ValidationInvalid : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct ValidationNotFound : std::out_of_range {
  using std::out_of_range::out_of_range;
};

class ValidationJobs {
 public:
  // `registry` (optional) gets the pgphase_validation_* progress gauges, by validation_id.
  explicit ValidationJobs(std::string dsn, prometheus::Registry* registry = nullptr);
  ~ValidationJobs();  // waits for running validations
  ValidationJobs(const ValidationJobs&) = delete;
  ValidationJobs& operator=(const ValidationJobs&) = delete;

  // Checks the request against the catalog (tables, key, column_map), then starts it; answers
  // {validation_id, status: "running", ...}.
  boost::json::object start(ValidationRequest request);
  // {validation_id, status: running|completed|failed, error?, report?, progress?} (progress:
  // stage, rows_done, rows_total, percent, rows_per_second, eta_seconds, elapsed_seconds, while
  // this pgphase runs it or remembers it).
  boost::json::object get(const std::string& id);
  // The validations this pgphase is running (status "running", with progress), then the latest
  // stored checks (summary fields only), newest first.
  boost::json::array list(int limit);

 private:
  struct Job {
    std::string status = "running";
    std::string error;
    std::optional<boost::json::object> report;
    ValidationRequest request;
    Progress progress;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    double elapsed_seconds = 0;  // frozen when it ends
  };
  void run(std::string id, ValidationRequest request);
  // Under mu_: seconds the job has run (so far, or in all once ended), its progress as JSON, and
  // the gauges set from the same figures.
  [[nodiscard]] static double elapsed_of(const Job& job);
  [[nodiscard]] static boost::json::object progress_json(const Job& job);
  void publish(const std::string& id, const Job& job);
  void forget_gauges(const std::string& id);

  prometheus::Family<prometheus::Gauge>* rows_done_ = nullptr;
  prometheus::Family<prometheus::Gauge>* rows_total_ = nullptr;
  prometheus::Family<prometheus::Gauge>* rate_ = nullptr;
  prometheus::Family<prometheus::Gauge>* eta_ = nullptr;
  prometheus::Family<prometheus::Gauge>* running_ = nullptr;

  std::string dsn_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::vector<std::thread> threads_;
};

}  // namespace pgphase::validator
