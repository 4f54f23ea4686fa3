// The fault tests' environment and workload: one real PostgreSQL 15 cluster, one real pgphase
// process, and three FaultRelays in the paths: client -> [client relay] -> pgphase ->
// [data relay] -> PostgreSQL, and pgphase -> [control relay] -> PostgreSQL (--control-dsn).
// Four tables, one per phase: f_pt (no migration: pass-through), f_dw (dual_write), f_rs
// (read_switch, switch active at 50%), f_cl (cleanup), each with its t_sys_ target.
//
// run_case() runs a small write+read workload through the client relay, injects one fault on
// one link mid-workload, and checks: bounded answers (no hang), SQLSTATE errors or a broken
// connection (never a wrong answer), committed rows in both tables (in the source when the
// phase does not dual-write), failed ones in neither, ambiguous ones the same in both, pgphase
// still serving, and pgphase's fds, its backend connections and the relays' links back to the
// baseline.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ctl_env.h"
#include "fault_relay.h"

namespace pgphase::faults {

using namespace std::chrono_literals;

// Timeouts the tests configure on PostgreSQL for the application role (ALTER ROLE ... SET):
// a half-open client leaves a backend that PostgreSQL ends by itself.
inline constexpr const char* kAppRole = "faults_app";
inline constexpr const char* kAppPassword = "faults-pw-7";
inline constexpr Ms kStatementTimeout{4000};
inline constexpr Ms kIdleInTransactionTimeout{3000};
inline constexpr Ms kIdleSessionTimeout{5000};
// pgphase's timeouts for a silent peer, which neither PostgreSQL's statement_timeout nor TCP
// keepalives see when something in between still acknowledges: --query-timeout (whole seconds;
// checked once a second) for the data link, --control-answer-timeout-ms for control statements.
inline constexpr Ms kQueryTimeout{3000};
inline constexpr Ms kControlAnswerTimeout{2000};
// The bounds the tests hold pgphase to: the timeout, the once-a-second sweep and slack; for the
// control link, the answer timeout plus a reconnect through the relay.
inline constexpr Ms kBackendSilenceBound{kQueryTimeout + 2000ms};
inline constexpr Ms kControlSilenceBound{kControlAnswerTimeout + 3000ms};
// What a client waits for any one answer before it calls the call hung (and gives up).
inline constexpr Ms kCallBound{kBackendSilenceBound + 4000ms};
// How long fds/backends/links get to return to the baseline after a case.
inline constexpr Ms kSettleBound{kIdleSessionTimeout + 8000ms};

// pgphase's components that each keep one control-database connection open: the control
// plane's command and listener connections and its check poller, the backfill manager, the shadow
// runner, the alert engine, and a table-shape reader for another database. A leak (a connection
// left behind at each fault) passes this within a few cases.
inline constexpr size_t kMaxControlConnections = 7;

enum class Phase { kPassThrough, kDualWrite, kReadSwitch, kCleanup };
enum class LinkKind { kClient, kData, kControl };
inline const std::vector<Phase> kAllPhases = {Phase::kPassThrough, Phase::kDualWrite,
                                              Phase::kReadSwitch, Phase::kCleanup};
inline const std::vector<LinkKind> kAllLinks = {LinkKind::kClient, LinkKind::kData,
                                                LinkKind::kControl};
[[nodiscard]] std::string name(Phase p);
[[nodiscard]] std::string name(LinkKind l);
[[nodiscard]] std::string table(Phase p);  // the source table
[[nodiscard]] bool dual(Phase p);          // rows land in both tables

struct Env {
  std::unique_ptr<it::PgCluster> pg;
  std::unique_ptr<FaultRelay> data;     // pgphase -> PostgreSQL (--backend)
  std::unique_ptr<FaultRelay> control;  // pgphase -> PostgreSQL (--control-dsn)
  std::unique_ptr<it::ProxyProcess> proxy;
  std::unique_ptr<FaultRelay> client;  // clients -> pgphase
  ctl::Api api;
  it::PgConn direct;        // straight to PostgreSQL, database ctl::kControlDb
  size_t warm_control = 0;  // pgphase's control connections once warmed up
  [[nodiscard]] std::string client_conninfo() const;  // through the client relay, app role
  [[nodiscard]] FaultRelay& relay(LinkKind l) const;
};
// Started on first use, shared by the test cases of an executable.
Env& env();

// Open file descriptors of a process (/proc/PID/fd), -1 when it is gone.
[[nodiscard]] int fd_count(pid_t pid);
// Backends of the application role in pg_stat_activity (pgphase's data connections).
[[nodiscard]] int app_backends(const it::PgConn& direct);

// One answer of a client call, bounded in time.
struct Answer {
  enum Kind { kOk, kError, kBroken, kTimeout } kind = kOk;
  std::string sqlstate;
  std::string message;
  it::PgResult result;
  double ms = 0;
  [[nodiscard]] std::string describe() const;
};

// A libpq client whose every call returns within a bound (non-blocking libpq + poll).
class Client {
 public:
  static Client open(const std::string& conninfo, Ms bound = 10s);
  [[nodiscard]] bool ok() const { return conn_.ok(); }
  [[nodiscard]] std::string error() const { return conn_.error_message(); }
  Answer exec(const std::string& sql, Ms bound = kCallBound) const;
  void close() { conn_.close(); }

 private:
  it::PgConn conn_;
};

enum class Step { kBegin, kInsert, kUpdate, kCommit, kRead, kBulk };
[[nodiscard]] std::string name(Step s);

struct CaseSpec {
  Phase phase = Phase::kPassThrough;
  LinkKind link = LinkKind::kClient;
  int before = 2;     // transactions before the fault
  int during = 4;     // transactions after it is armed
  bool bulk = false;  // a large read (400 rows x 1 KB) after each transaction
  // Arms the fault: called once, before statement `step` of the first transaction after
  // `before`, with the Link(s) of the chosen link kind (the client's own relay links; for
  // kControl every open control link).
  Step arm_at = Step::kBegin;
  std::function<void(const std::vector<std::shared_ptr<Link>>&)> arm;
  // The fault may end the session: then a failure (SQLSTATE or broken connection) is expected
  // to end the workload; otherwise every transaction must commit.
  bool breaks = false;
  // A client-side timeout is the expected end (a silent client link: nothing can answer).
  bool client_timeout_ok = false;
  // The silence must be noticed by pgphase within this bound (it should answer with an error).
  Ms must_answer_within{0};
  // Bound of each client call (a client-side timeout beyond it counts as a hang).
  Ms call_bound = kCallBound;
  // Keep silent links silent until the case's checks are done, then close them.
  bool close_links_after = false;
};

// Runs one case and records failures with Catch2 CHECKs. `base` is the first id of the case's
// own key range (ids base .. base+999).
void run_case(const CaseSpec& spec, int base);

// A unique key range per run_case call of this process.
[[nodiscard]] int next_base();

}  // namespace pgphase::faults
