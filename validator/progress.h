// A validation's progress, as the validator reports it while it runs (validator.h's
// Options::on_progress): the stage, the rows done and the rows it expects in all. The API
// (GET /api/v1/validations/{id}), /metrics (pgphase_validation_*), the CLI's progress line and
// the console show the same figures, with the rate and ETA computed here.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace pgphase::validator {

struct Progress {
  std::string stage;       // "estimating", "counting", "sampling", "checksums", "bisection",
                           // "comparing rows", "done"
  int64_t rows_done = 0;   // rows (both sides) read or compared so far
  int64_t rows_total = 0;  // rows it expects to read in all; 0 = not known yet
};

using ProgressFn = std::function<void(const Progress&)>;

struct ProgressFigures {
  double percent = 0;  // 0-100 (0 while the total is unknown)
  double rows_per_second = 0;
  double eta_seconds = -1;  // -1 = unknown
};

// Rows done over the elapsed time, and the time left at that rate.
[[nodiscard]] inline ProgressFigures figures(const Progress& p, double elapsed_seconds) {
  ProgressFigures f;
  if (p.rows_total > 0)
    f.percent = 100.0 * static_cast<double>(std::min(p.rows_done, p.rows_total)) /
                static_cast<double>(p.rows_total);
  if (elapsed_seconds > 0) f.rows_per_second = static_cast<double>(p.rows_done) / elapsed_seconds;
  if (p.stage == "done")
    f.eta_seconds = 0;
  else if (f.rows_per_second > 0 && p.rows_total >= p.rows_done)
    f.eta_seconds = static_cast<double>(p.rows_total - p.rows_done) / f.rows_per_second;
  return f;
}

// What the validator's stages use to report: keeps the current figures and calls the callback (if
// any) at each change.
class ProgressReporter {
 public:
  explicit ProgressReporter(ProgressFn fn) : fn_(std::move(fn)) {}
  void set_estimate(int64_t rows) { p_.rows_total = std::max<int64_t>(rows, 0); }
  // A new stage; the row figures stay.
  void stage(std::string name) {
    p_.stage = std::move(name);
    emit();
  }
  // Rows done and expected in all.
  void rows(std::string name, int64_t done, int64_t total) {
    p_ = {std::move(name), done, total};
    emit();
  }
  void finish(int64_t rows) { this->rows("done", rows, rows); }

 private:
  void emit() const {
    if (fn_) fn_(p_);
  }
  ProgressFn fn_;
  Progress p_;
};

}  // namespace pgphase::validator
