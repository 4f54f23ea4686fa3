// Building blocks of the control-plane tests, on top of the integration-test harness: PostgreSQL
// clusters with a control database, `pgphase serve --control-dsn ...` processes with the admin
// token in their environment, stopping and restarting a cluster with pg_ctl, direct SQL on the
// t_sys_* tables, pgphase's metrics, and the `pgphase` CLI binary. Everything is real.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ctl_http.h"

namespace pgphase::ctl {

using namespace std::chrono_literals;

// The admin token every pgphase and CLI run of these tests gets in PGPHASE_ADMIN_TOKEN.
inline constexpr const char* kToken = "ctl-test-token-4d1c9e";
inline constexpr const char* kTokenEnv = "PGPHASE_ADMIN_TOKEN";
// The database holding pgphase's t_sys_* tables in a control cluster.
inline constexpr const char* kControlDb = "pgphase_control";

inline const std::vector<std::string> kPhases = {"preparation", "dual_write", "validation",
                                                 "read_switch", "cleanup",    "completed"};

// A PostgreSQL cluster with an empty database kControlDb (and `setup_sql` run in "postgres").
std::unique_ptr<it::PgCluster> start_cluster(std::vector<std::string> setup_sql = {});
// The conninfo pgphase gets as --control-dsn (role postgres, trust, no password).
[[nodiscard]] std::string control_dsn(const it::PgCluster& pg);
// A direct libpq connection to the control database (REQUIREs success).
[[nodiscard]] it::PgConn control_conn(const it::PgCluster& pg);

struct ServeOptions {
  std::string backend;                    // --backend (required)
  std::string control_dsn;                // --control-dsn; empty: flag omitted
  std::vector<std::string> config_files;  // --config-file, each
  std::string config_json;                // written to a file passed as --config; "" = none
  bool token = true;                      // PGPHASE_ADMIN_TOKEN=kToken in pgphase's environment
  std::vector<std::string> extra_args;
};
// Starts pgphase (the harness waits until its ports listen). Throws with its stderr on failure.
std::unique_ptr<it::ProxyProcess> start_pgphase(const ServeOptions& o);
// Options for pgphase in front of `pg` with its control database in `pg` too.
[[nodiscard]] ServeOptions serve_on(const it::PgCluster& pg);

// SIGTERM and wait (REQUIREs a clean exit within 20 s).
void stop_pgphase(it::ProxyProcess& p);

// An Api client for `p` with the token and actor "tester".
[[nodiscard]] Api api_for(const it::ProxyProcess& p);

// Stops and starts a PgCluster's server with pg_ctl as the postgres OS user, on the same data
// directory and port. A server this object started is stopped by its destructor (declare it
// after the PgCluster, so it goes first).
class ClusterRestarter {
 public:
  explicit ClusterRestarter(it::PgCluster& pg) : pg_(pg) {}
  ~ClusterRestarter();
  ClusterRestarter(const ClusterRestarter&) = delete;
  ClusterRestarter& operator=(const ClusterRestarter&) = delete;
  void stop();   // pg_ctl stop -m fast -w; the server is gone when it returns
  void start();  // pg_ctl start -w -o "-p <port>"; accepting connections when it returns
  [[nodiscard]] std::string log() const;  // the restarted server's log

 private:
  it::PgCluster& pg_;
  bool started_ = false;
};

// Inserts a consistency check for `migration_id` directly into t_sys_consistency_checks with
// `score`, created `age_seconds` ago (the validator that normally writes them comes later).
void insert_check(const it::PgConn& control, const std::string& migration_id, double score,
                  int age_seconds = 0);

// The phase pgphase_migration_phase reports for `migration_id` in `m`, nullopt when absent. The
// metric's encoding is not in docs/control-plane.md; both usual forms are read: a sample
// labelled with the migration and the phase name whose value is 1, or a sample labelled with the
// migration whose value is the phase's index in kPhases.
[[nodiscard]] std::optional<std::string> metric_phase(const it::Metrics& m,
                                                      const std::string& migration_id);

// Runs the pgphase CLI binary to completion (PGPHASE_ADMIN_TOKEN inherited from this process).
// `env` entries are added; `unset` names variables to remove (run through env -u).
[[nodiscard]] it::RunResult cli(const std::vector<std::string>& args,
                                const std::vector<std::string>& env = {},
                                const std::vector<std::string>& unset = {});

// Polls `pred` until true or `timeout`; returns the elapsed milliseconds, or nullopt on timeout.
std::optional<double> time_until(const std::function<bool()>& pred,
                                 std::chrono::milliseconds timeout,
                                 std::chrono::milliseconds interval = 5ms);

// The log entries of GET /api/v1/migrations/{id}, sorted by id.
[[nodiscard]] std::vector<json::object> api_logs(const Api& api, const std::string& id);
// GET a migration or switch and return it (REQUIREs 200).
[[nodiscard]] json::object get_migration(const Api& api, const std::string& id);
[[nodiscard]] json::object get_switch(const Api& api, const std::string& id);

// One cluster (backend database "postgres" plus the control database) and one pgphase in front of
// it, started on first use and shared by the test cases of an executable.
struct Stack {
  std::unique_ptr<it::PgCluster> pg;
  std::unique_ptr<it::ProxyProcess> proxy;
  Api api;
};
Stack& shared_stack();

// POST /api/v1/migrations with migration_id, source_table, target_table and `extra` fields;
// REQUIREs 201 and returns the answer.
json::object register_migration(const Api& api, const std::string& id, const std::string& source,
                                const std::string& target, const json::object& extra = {});
// POST /api/v1/switches for `table` linked to `migration_id` (percentage 0, inactive) plus
// `extra` fields; REQUIREs 201.
json::object register_switch(const Api& api, const std::string& id, const std::string& table,
                             const std::string& migration_id, const json::object& extra = {});
// POST .../phase; REQUIREs 200 and returns the migration.
json::object set_phase(const Api& api, const std::string& id, const std::string& phase,
                       bool force = false);
// Moves a migration forward one phase at a time (with force) until it is in `phase`.
void advance_to(const Api& api, const std::string& id, const std::string& phase);
// POST .../switches/{id}/percentage; REQUIREs 200.
json::object set_percentage(const Api& api, const std::string& id, double percentage,
                            const std::string& reason = "test");

}  // namespace pgphase::ctl
