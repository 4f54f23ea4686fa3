// A validation's report: what was compared, the consistency score, and every difference with the
// SQL that fixes it. The differences go to a spool file as they are found (the export holds all of
// them); the report keeps the first kShownDifferences in memory, so memory stays flat however
// many there are.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgphase::validator {

enum class Level { kBasic, kDetailed, kComprehensive };
[[nodiscard]] std::optional<Level> parse_level(std::string_view s) noexcept;
[[nodiscard]] const char* to_string(Level l) noexcept;

enum class DiffType { kMissingInTarget, kMissingInSource, kFieldMismatch };
[[nodiscard]] const char* to_string(DiffType t) noexcept;

struct Difference {
  DiffType type = DiffType::kFieldMismatch;
  std::string record_id;            // the key as text (several columns: a JSON array of texts)
  std::string field_name;           // FIELD_MISMATCH: the source column
  std::string target_field;         // FIELD_MISMATCH: the target column
  boost::json::value source_value;  // the value (a row object for MISSING_IN_TARGET), or null
  boost::json::value target_value;
  std::string suggested_fix;  // SQL run on the target
};
[[nodiscard]] boost::json::object to_json(const Difference& d);
[[nodiscard]] Difference difference_of(const boost::json::object& o);

// The differences found, in order: all in a temporary file (one JSON object per line), the first
// kShownDifferences also in memory.
class DifferenceSpool {
 public:
  static constexpr std::size_t kShownDifferences = 100;
  DifferenceSpool();
  void add(const Difference& d);
  [[nodiscard]] int64_t size() const noexcept { return count_; }
  [[nodiscard]] const std::vector<Difference>& shown() const noexcept { return shown_; }
  // Calls `f` with every difference, in the order added.
  void for_each(const std::function<void(const Difference&)>& f) const;
  // Writes every difference as JSON array elements ("{...},{...}") to `out`.
  void write_json_elements(std::FILE* out) const;

 private:
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
  int64_t count_ = 0;
  std::vector<Difference> shown_;
};

struct RepairResult {
  bool dry_run = false;
  int64_t keys = 0;                     // distinct keys with differences
  int64_t upserted = 0;                 // target rows written from the source
  int64_t deleted = 0;                  // target rows the source does not have
  int64_t remaining = 0;                // differences the re-check of the repaired keys still finds
  std::vector<std::string> statements;  // dry run: the SQL (at most kShownDifferences)
};

struct Report {
  std::string check_id;
  std::string migration_id;
  std::string source_table;
  std::string target_table;
  Level level = Level::kBasic;
  std::string snapshot_time;  // ISO 8601 UTC, the source side's snapshot
  bool shared_snapshot = false;
  std::string started_at;
  double duration_seconds = 0;
  int64_t source_rows = -1;  // -1: not counted at this level
  int64_t target_rows = -1;
  int64_t rows_examined = 0;
  int64_t keys_compared = 0;  // distinct keys the score is over
  int64_t keys_matching = 0;
  double consistency_score = 1.0;
  int64_t missing_in_target = 0;
  int64_t missing_in_source = 0;
  int64_t field_mismatches = 0;
  int64_t keys_with_field_mismatch = 0;
  std::vector<boost::json::object> findings;  // basic checks, each with what it implies
  boost::json::object method;                 // how the level worked (buckets, rows fetched)
  std::vector<std::string> notes;
  std::vector<std::string> recommendations;
  std::optional<RepairResult> repair;
  DifferenceSpool differences;

  void add(const Difference& d);
  [[nodiscard]] int64_t differences_count() const noexcept { return differences.size(); }
};

// The report as JSON without differences beyond the shown ones (`differences_truncated` says
// when some were left out), for the API and t_sys_consistency_checks.
[[nodiscard]] boost::json::object summary_json(const Report& r);
// Writes the whole report, every difference included, to `path` (throws std::runtime_error).
void export_json(const Report& r, const std::string& path);
// A terminal rendering.
[[nodiscard]] std::string to_text(const Report& r);
// Fills recommendations from the counts.
void recommend(Report& r);

}  // namespace pgphase::validator
