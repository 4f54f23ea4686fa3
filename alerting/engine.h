// The alert evaluator: every `interval` it evaluates each enabled rule (SQL read-only under a
// statement timeout, or a signal per scope) and moves its alerts through their lifecycle:
//   pending (condition holds, for less than `duration`; in memory only)
//   -> firing (t_sys_alerts row; notification; the recovery action, once)
//   -> acknowledged (by a person: no more repeats)
//   -> resolved (the condition stayed clear for `resolve_after`, or a person resolved it).
// A condition that clears and returns within resolve_after stays the same alert (no flapping
// storm); notifications of one rule and migration are grouped into one message and sent at most
// once per suppression_duration (a firing alert is re-notified after it, until acknowledged);
// active silences mute notifications but keep the alerts. Among several pgphase on one control
// database, the one holding an advisory lock evaluates; the others stand by.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "alerting/notifier.h"
#include "alerting/rule.h"
#include "alerting/signals.h"
#include "migration/pg_client.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace pgphase::alerting {

class Recovery;
namespace store {
struct OpenAlert;
}

struct EngineOptions {
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds resolve_after{30000};
  std::chrono::milliseconds sql_timeout{5000};
};

inline constexpr int64_t kAlertLockKey = 0x70677068'61736503;  // "pgphase" 03

class AlertEngine {
 public:
  AlertEngine(std::string dsn, EngineOptions options, std::unique_ptr<Signals> signals,
              Notifier& notifier, Recovery* recovery, prometheus::Registry* registry);
  ~AlertEngine();
  AlertEngine(const AlertEngine&) = delete;
  AlertEngine& operator=(const AlertEngine&) = delete;

  void start();
  void stop();
  void kick();  // evaluate now (after a change of rules or alerts)

  // "" when `r` can be evaluated: an SQL condition is run once, read-only, and must return one
  // numeric column; else the reason. Uses its own connection.
  std::string check_rule(const AlertRule& r);
  // The value of an SQL condition on `c` (read-only transaction, statement timeout); nullopt when
  // it returns no row or NULL. Throws pg::PgError or std::runtime_error (not a number).
  std::optional<double> run_sql(migration::pg::Connection& c, const std::string& sql);

  [[nodiscard]] uint64_t rounds() const noexcept { return rounds_.load(); }
  [[nodiscard]] uint64_t evaluations() const noexcept { return evaluations_.load(); }
  [[nodiscard]] bool leading() const noexcept { return leading_.load(); }

 private:
  // A connection to the control database with the answer timeout the rules need.
  [[nodiscard]] migration::pg::Connection open_connection() const;
  struct Track {
    std::optional<std::chrono::steady_clock::time_point> pending_since;
    std::optional<std::chrono::steady_clock::time_point> clear_since;
  };
  struct Pending;  // a notification being grouped
  void loop();
  void round(migration::pg::Connection& c);
  void process(migration::pg::Connection& c, const AlertRule& rule, const std::string& scope,
               const std::string& migration_id, std::optional<double> value,
               const store::OpenAlert* open, std::map<std::string, Pending>& out);
  void send(migration::pg::Connection& c, std::map<std::string, Pending>& out);
  bool group_recently_notified(migration::pg::Connection& c, const AlertRule& rule,
                               const std::string& migration_id);

  std::string dsn_;
  EngineOptions options_;
  std::unique_ptr<Signals> signals_;
  Notifier& notifier_;
  Recovery* recovery_;
  std::map<std::string, Track> tracks_;  // rule_id \x1f scope
  std::map<std::string, std::chrono::steady_clock::time_point> group_notified_;
  prometheus::Family<prometheus::Counter>* evaluations_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* active_family_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool kicked_ = false;
  std::thread thread_;
  std::atomic<uint64_t> rounds_{0};
  std::atomic<uint64_t> evaluations_{0};
  std::atomic<bool> leading_{false};
};

}  // namespace pgphase::alerting
