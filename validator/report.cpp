#include "validator/report.h"

#include <boost/json.hpp>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace pgphase::validator {

namespace json = boost::json;

std::optional<Level> parse_level(std::string_view s) noexcept {
  if (s == "basic") return Level::kBasic;
  if (s == "detailed") return Level::kDetailed;
  if (s == "comprehensive") return Level::kComprehensive;
  return std::nullopt;
}

const char* to_string(Level l) noexcept {
  switch (l) {
    case Level::kBasic:
      return "basic";
    case Level::kDetailed:
      return "detailed";
    case Level::kComprehensive:
      return "comprehensive";
  }
  return "basic";
}

const char* to_string(DiffType t) noexcept {
  switch (t) {
    case DiffType::kMissingInTarget:
      return "MISSING_IN_TARGET";
    case DiffType::kMissingInSource:
      return "MISSING_IN_SOURCE";
    case DiffType::kFieldMismatch:
      return "FIELD_MISMATCH";
  }
  return "FIELD_MISMATCH";
}

json::object to_json(const Difference& d) {
  json::object o{{"difference_type", to_string(d.type)},
                 {"record_id", d.record_id},
                 {"field_name", d.field_name.empty() ? json::value() : json::value(d.field_name)},
                 {"source_value", d.source_value},
                 {"target_value", d.target_value},
                 {"suggested_fix", d.suggested_fix}};
  if (!d.target_field.empty() && d.target_field != d.field_name)
    o["target_field_name"] = d.target_field;
  return o;
}

Difference difference_of(const json::object& o) {
  Difference d;
  const std::string_view t = o.at("difference_type").as_string();
  d.type = t == "MISSING_IN_TARGET"   ? DiffType::kMissingInTarget
           : t == "MISSING_IN_SOURCE" ? DiffType::kMissingInSource
                                      : DiffType::kFieldMismatch;
  d.record_id = o.at("record_id").as_string();
  if (const auto* f = o.if_contains("field_name"); f && f->is_string())
    d.field_name = f->as_string();
  if (const auto* f = o.if_contains("target_field_name"); f && f->is_string())
    d.target_field = f->as_string();
  else
    d.target_field = d.field_name;
  d.source_value = o.at("source_value");
  d.target_value = o.at("target_value");
  d.suggested_fix = o.at("suggested_fix").as_string();
  return d;
}

DifferenceSpool::DifferenceSpool() : file_(std::tmpfile(), &std::fclose) {
  if (!file_)
    throw std::runtime_error(std::string("cannot create a temporary file: ") +
                             std::strerror(errno));
}

void DifferenceSpool::add(const Difference& d) {
  const std::string line = json::serialize(to_json(d)) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_.get()) != line.size())
    throw std::runtime_error(std::string("cannot write the differences' spool file: ") +
                             std::strerror(errno));
  ++count_;
  if (shown_.size() < kShownDifferences) shown_.push_back(d);
}

void DifferenceSpool::for_each(const std::function<void(const Difference&)>& f) const {
  std::FILE* in = file_.get();
  std::fflush(in);
  std::rewind(in);
  std::string line;
  char buf[65536];
  while (std::fgets(buf, sizeof buf, in) != nullptr) {
    line += buf;
    if (line.empty() || line.back() != '\n') continue;
    f(difference_of(json::parse(line).as_object()));
    line.clear();
  }
  std::fseek(in, 0, SEEK_END);
}

void DifferenceSpool::write_json_elements(std::FILE* out) const {
  std::FILE* in = file_.get();
  std::fflush(in);
  std::rewind(in);
  bool first = true;
  bool line_start = true;
  char buf[65536];
  while (std::fgets(buf, sizeof buf, in) != nullptr) {
    std::size_t n = std::strlen(buf);
    const bool ends = n > 0 && buf[n - 1] == '\n';
    if (ends) --n;
    if (line_start && !first) std::fputc(',', out);
    if (line_start) std::fputs("\n    ", out);
    std::fwrite(buf, 1, n, out);
    first = false;
    line_start = ends;
  }
  std::fseek(in, 0, SEEK_END);
}

void Report::add(const Difference& d) {
  switch (d.type) {
    case DiffType::kMissingInTarget:
      ++missing_in_target;
      break;
    case DiffType::kMissingInSource:
      ++missing_in_source;
      break;
    case DiffType::kFieldMismatch:
      ++field_mismatches;
      break;
  }
  differences.add(d);
}

void recommend(Report& r) {
  r.recommendations.clear();
  if (r.missing_in_target > 0)
    r.recommendations.push_back(std::to_string(r.missing_in_target) +
                                " rows are missing in the target: run the backfill (pgphase "
                                "backfill) or apply the fixes (pgphase validate ... --repair)");
  if (r.missing_in_source > 0)
    r.recommendations.push_back(std::to_string(r.missing_in_source) +
                                " target rows have no source row: they were deleted from the "
                                "source without a dual write; --repair deletes them");
  if (r.field_mismatches > 0)
    r.recommendations.push_back(std::to_string(r.field_mismatches) + " fields differ in " +
                                std::to_string(r.keys_with_field_mismatch) +
                                " rows: check writes that bypass pgphase, then --repair");
  for (const auto& f : r.findings)
    if (const auto* imp = f.if_contains("implies"); imp && imp->is_string())
      r.recommendations.push_back(std::string(imp->as_string()) +
                                  ": run a comprehensive validation to list the rows");
  if (r.consistency_score >= 1.0 && r.findings.empty() && r.differences_count() == 0)
    r.recommendations.push_back(r.level == Level::kComprehensive
                                    ? "source and target are identical"
                                    : std::string("no differences at level ") + to_string(r.level) +
                                          "; run --level comprehensive before the read switch");
}

namespace {

json::object head_json(const Report& r) {
  json::object counts{{"MISSING_IN_TARGET", r.missing_in_target},
                      {"MISSING_IN_SOURCE", r.missing_in_source},
                      {"FIELD_MISMATCH", r.field_mismatches}};
  json::object o{
      {"check_id", r.check_id},
      {"migration_id", r.migration_id.empty() ? json::value() : json::value(r.migration_id)},
      {"source_table", r.source_table},
      {"target_table", r.target_table},
      {"level", to_string(r.level)},
      {"consistency_score", r.consistency_score},
      {"snapshot_time", r.snapshot_time},
      {"shared_snapshot", r.shared_snapshot},
      {"started_at", r.started_at},
      {"duration_seconds", r.duration_seconds},
      {"rows_examined", r.rows_examined},
      {"keys_compared", r.keys_compared},
      {"keys_matching", r.keys_matching},
      {"differences_count", r.differences_count()},
      {"counts_by_type", counts},
      {"keys_with_field_mismatch", r.keys_with_field_mismatch}};
  if (r.source_rows >= 0) o["source_rows"] = r.source_rows;
  if (r.target_rows >= 0) o["target_rows"] = r.target_rows;
  json::array findings;
  for (const auto& f : r.findings) findings.push_back(f);
  o["findings"] = std::move(findings);
  o["method"] = r.method;
  json::array notes;
  for (const auto& n : r.notes) notes.push_back(json::value(n));
  o["notes"] = std::move(notes);
  json::array recs;
  for (const auto& n : r.recommendations) recs.push_back(json::value(n));
  o["recommendations"] = std::move(recs);
  if (r.repair) {
    json::object rep{{"dry_run", r.repair->dry_run},
                     {"keys", r.repair->keys},
                     {"upserted", r.repair->upserted},
                     {"deleted", r.repair->deleted},
                     {"remaining", r.repair->remaining}};
    if (r.repair->dry_run) {
      json::array st;
      for (const auto& s : r.repair->statements) st.push_back(json::value(s));
      rep["statements"] = std::move(st);
    }
    o["repair"] = std::move(rep);
  }
  return o;
}

}  // namespace

json::object summary_json(const Report& r) {
  json::object o = head_json(r);
  json::array diffs;
  for (const auto& d : r.differences.shown()) diffs.push_back(to_json(d));
  o["differences"] = std::move(diffs);
  o["differences_truncated"] =
      r.differences_count() > static_cast<int64_t>(r.differences.shown().size());
  return o;
}

void export_json(const Report& r, const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!out) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  json::object o = head_json(r);
  o["differences_truncated"] = false;
  std::string head = json::serialize(o);
  head.pop_back();  // the closing brace: the differences follow
  std::fputs(head.c_str(), out.get());
  std::fputs(",\"differences\":[", out.get());
  r.differences.write_json_elements(out.get());
  std::fputs("\n]}\n", out.get());
  if (std::fflush(out.get()) != 0 || std::ferror(out.get()))
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
}

std::string to_text(const Report& r) {
  std::ostringstream s;
  char score[32];
  std::snprintf(score, sizeof score, "%.6f", r.consistency_score);
  s << "validation " << r.check_id << " (" << to_string(r.level) << "): " << r.source_table
    << " -> " << r.target_table << "\n"
    << "  consistency score  " << score << "  (" << r.keys_matching << " of " << r.keys_compared
    << " keys match)\n";
  if (r.source_rows >= 0)
    s << "  rows               source " << r.source_rows << ", target " << r.target_rows << "\n";
  s << "  rows examined      " << r.rows_examined << "\n"
    << "  snapshot           " << r.snapshot_time
    << (r.shared_snapshot ? " (one snapshot for both sides)" : " (one snapshot per side)") << "\n"
    << "  duration           " << r.duration_seconds << " s\n"
    << "  differences        " << r.differences_count() << ": MISSING_IN_TARGET "
    << r.missing_in_target << ", MISSING_IN_SOURCE " << r.missing_in_source << ", FIELD_MISMATCH "
    << r.field_mismatches << "\n";
  for (const auto& f : r.findings) s << "  finding: " << json::serialize(f) << "\n";
  const auto& shown = r.differences.shown();
  const std::size_t limit = std::min<std::size_t>(shown.size(), 20);
  for (std::size_t i = 0; i < limit; ++i) {
    const auto& d = shown[i];
    s << "  " << to_string(d.type) << " " << d.record_id;
    if (!d.field_name.empty())
      s << " " << d.field_name << ": " << json::serialize(d.source_value) << " <> "
        << json::serialize(d.target_value);
    s << "\n    fix: " << d.suggested_fix << "\n";
  }
  if (r.differences_count() > static_cast<int64_t>(limit))
    s << "  ... " << r.differences_count() - static_cast<int64_t>(limit)
      << " more (all of them in the --export file)\n";
  for (const auto& n : r.notes) s << "  note: " << n << "\n";
  for (const auto& n : r.recommendations) s << "  recommendation: " << n << "\n";
  if (r.repair) {
    if (r.repair->dry_run) {
      s << "  repair (dry run): " << r.repair->keys << " keys; the SQL:\n";
      for (const auto& st : r.repair->statements) s << "    " << st << "\n";
    } else {
      s << "  repair: " << r.repair->keys << " keys, " << r.repair->upserted << " rows written, "
        << r.repair->deleted << " deleted; re-check: " << r.repair->remaining
        << " differences remain\n";
    }
  }
  return s.str();
}

}  // namespace pgphase::validator
