// Backfill: copies existing rows in key order while 8 clients write through pgphase for 30 s
// (dual_write), ending with zero differences; a pgphase killed halfway through a throttled
// backfill resumes it from its checkpoint after a restart (no row copied twice); pause, resume,
// settings and cancel through the API and the CLI.
#include <catch2/catch.hpp>
#include <thread>

#include "dw_env.h"

using namespace pgphase;
using namespace pgphase::dw;

namespace {

constexpr const char* kWrites = R"(\set id random(1, 40000)
\set r random(1, 50)
UPDATE bf_users SET amount = amount + 1, updated = clock_timestamp() WHERE id = :id;
\if :r = 1
INSERT INTO bf_users (name, amount) VALUES ('new', :id) RETURNING id;
\endif
\if :r = 2
DELETE FROM bf_users WHERE id = :id + 3;
\endif
)";

json::object backfill_state(const Api& api, const std::string& id) {
  const it::HttpResponse r = api.get("/api/v1/migrations/" + id + "/backfill");
  INFO(describe(r));
  REQUIRE(r.status == 200);
  return body_object(r);
}

}  // namespace

TEST_CASE("backfill under 30 s of concurrent dual writes ends with zero differences") {
  Env& e = env();
  e.direct.exec_ok(
      "CREATE TABLE bf_users (id bigserial PRIMARY KEY, name text, amount int, "
      "updated timestamptz DEFAULT now());"
      "CREATE TABLE t_sys_bf_users (id bigint PRIMARY KEY, name text, amount int, "
      "updated timestamptz);"
      "INSERT INTO bf_users (name, amount) SELECT 'old' || g, g FROM generate_series(1, 30000) g");
  register_migration(e.stack.api, "bf_mig", "bf_users", "t_sys_bf_users");
  set_phase(e.stack.api, "bf_mig", "dual_write");
  CHECK(differences(e.direct, "bf_users", "t_sys_bf_users", "id, name, amount, updated") > 0);

  it::TempDir dir("bfconc");
  const std::string script = dir.str() + "/writes.sql";
  it::write_file(script, kWrites);
  it::RunResult bench;
  std::thread writers([&] {
    bench = it::run({it::pg_tool("pgbench"),
                     "-n",
                     "-T",
                     "30",
                     "-c",
                     "8",
                     "-j",
                     "2",
                     "-M",
                     "prepared",
                     "--max-tries=20",
                     "-f",
                     script,
                     "-h",
                     "127.0.0.1",
                     "-p",
                     std::to_string(e.stack.proxy->port()),
                     "-U",
                     "postgres",
                     kControlDb},
                    {.timeout = std::chrono::seconds(120)});
  });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  // Throttled so that the copy overlaps the writes for most of their 30 s.
  const it::HttpResponse start = e.stack.api.post(
      "/api/v1/migrations/bf_mig/backfill", R"({"batch_size": 300, "max_rows_per_second": 1500})");
  INFO(describe(start));
  REQUIRE(start.status == 200);
  CHECK(str(body_object(start), "status") == "running");
  std::this_thread::sleep_for(std::chrono::seconds(5));
  // While it runs: rows/s and ETA in the API and in /metrics (throttled to 1500 rows/s).
  const json::object running = backfill_state(e.stack.api, "bf_mig");
  CHECK(num(running, "rate_rows_per_second") > 100);
  CHECK(num(running, "rate_rows_per_second") < 2000);
  CHECK(num(running, "eta_seconds") > 0);
  const it::Metrics m = it::scrape_metrics(e.stack.proxy->admin_port());
  const double rate = m.get("pgphase_backfill_rows_per_second", {{"migration_id", "bf_mig"}});
  CHECK(rate > 100);
  CHECK(rate < 2000);
  CHECK(m.get("pgphase_backfill_eta_seconds", {{"migration_id", "bf_mig"}}) > 0);
  // Faster once the writes are under way (settings change while it runs).
  CHECK(e.stack.api
            .post("/api/v1/migrations/bf_mig/backfill/settings", R"({"max_rows_per_second": 2500})")
            .status == 200);
  writers.join();
  INFO(bench.describe());
  CHECK(bench.ok());

  const auto done = time_until(
      [&] { return str(backfill_state(e.stack.api, "bf_mig"), "status") == "completed"; },
      std::chrono::seconds(60), std::chrono::milliseconds(200));
  REQUIRE(done.has_value());
  const json::object st = backfill_state(e.stack.api, "bf_mig");
  WARN("backfill: " << json::serialize(st));
  CHECK(num(st, "rows_copied") >= 25000);
  CHECK(differences(e.direct, "bf_users", "t_sys_bf_users", "id, name, amount, updated") == 0);
  CHECK(e.direct.scalar("SELECT count(*) FROM bf_users") ==
        e.direct.scalar("SELECT count(*) FROM t_sys_bf_users"));
}

TEST_CASE("a backfill interrupted by a killed pgphase resumes from its checkpoint") {
  const auto pg = start_cluster();
  const it::PgConn direct = control_conn(*pg);
  direct.exec_ok(
      "CREATE TABLE rz (a int, b text, v int, PRIMARY KEY (a, b));"
      "CREATE TABLE t_sys_rz (a int, b text, v int, PRIMARY KEY (a, b));"
      "INSERT INTO rz SELECT g / 10, 'k' || (g % 10), g FROM generate_series(0, 19999) g");
  auto first = start_pgphase(serve_on(*pg));
  const Api api = api_for(*first);
  register_migration(api, "rz_mig", "rz", "t_sys_rz");
  set_phase(api, "rz_mig", "dual_write");
  REQUIRE(api.post("/api/v1/migrations/rz_mig/backfill",
                   R"({"batch_size": 200, "max_rows_per_second": 5000})")
              .status == 200);
  const auto halfway = time_until(
      [&] { return std::stol(direct.scalar("SELECT rows_copied FROM t_sys_backfills")) >= 5000; },
      std::chrono::seconds(20), std::chrono::milliseconds(50));
  REQUIRE(halfway.has_value());
  first->kill();  // SIGKILL: no goodbye
  const std::string started = direct.scalar("SELECT started_at FROM t_sys_backfills");
  const long at_kill = std::stol(direct.scalar("SELECT rows_copied FROM t_sys_backfills"));
  CHECK(at_kill < 20000);
  CHECK(direct.scalar("SELECT status FROM t_sys_backfills") == "running");
  CHECK(direct.scalar("SELECT count(*) FROM t_sys_rz") == std::to_string(at_kill));

  auto second = start_pgphase(serve_on(*pg));
  const Api api2 = api_for(*second);
  const auto done =
      time_until([&] { return str(backfill_state(api2, "rz_mig"), "status") == "completed"; },
                 std::chrono::seconds(30), std::chrono::milliseconds(100));
  REQUIRE(done.has_value());
  const json::object st = backfill_state(api2, "rz_mig");
  CHECK(num(st, "rows_copied") == 20000);    // continued, not restarted
  CHECK(num(st, "rows_inserted") == 20000);  // nothing copied twice
  CHECK(direct.scalar("SELECT started_at FROM t_sys_backfills") == started);
  CHECK(differences(direct, "rz", "t_sys_rz", "a, b, v") == 0);
  const auto m = it::scrape_metrics(second->admin_port());
  CHECK(m.value("pgphase_backfill_rows_copied", {{"migration_id", "rz_mig"}}).value_or(0) == 20000);
  CHECK(m.value("pgphase_backfill_rows_estimated", {{"migration_id", "rz_mig"}}).value_or(0) > 0);
  CHECK(m.value("pgphase_backfill_running", {{"migration_id", "rz_mig"}}).value_or(-1) == 0);

  // The CLI: status, and a new run that is paused, resumed and cancelled.
  const std::string url = "http://127.0.0.1:" + std::to_string(second->admin_port());
  const it::RunResult status =
      cli({"backfill", "status", "--migration-id", "rz_mig", "--admin-url", url});
  INFO(status.describe());
  CHECK(status.ok());
  CHECK(status.out.find("completed: 20000") != std::string::npos);
  direct.exec_ok("TRUNCATE t_sys_rz");
  const it::RunResult restart = cli({"backfill", "--migration-id", "rz_mig", "--no-wait",
                                     "--max-rows-per-second", "500", "--admin-url", url});
  INFO(restart.describe());
  CHECK(restart.ok());
  CHECK(cli({"backfill", "pause", "--migration-id", "rz_mig", "--admin-url", url}).ok());
  CHECK(str(backfill_state(api2, "rz_mig"), "status") == "paused");
  CHECK(api2.post("/api/v1/migrations/rz_mig/backfill/pause", "{}").status == 200);  // idempotent
  CHECK(api2.post("/api/v1/migrations/rz_mig/backfill/resume", "{}").status == 200);
  CHECK(api2.post("/api/v1/migrations/rz_mig/backfill/cancel", "{}").status == 200);
  CHECK(str(backfill_state(api2, "rz_mig"), "status") == "cancelled");
  CHECK(api2.post("/api/v1/migrations/rz_mig/backfill/resume", "{}").status == 409);
  CHECK(api2.post("/api/v1/migrations/nope/backfill", "{}").status == 404);
  CHECK(api2.post("/api/v1/migrations/rz_mig/backfill", R"({"batch_size": 0})").status == 422);
  stop_pgphase(*second);
}
