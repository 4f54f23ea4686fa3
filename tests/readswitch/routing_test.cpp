// Read routing by strategy: gradual accuracy against pg_stat_user_tables over 10,000 reads;
// 0% and 100%; rewriting of joins, subqueries, CTEs, aliases and prepared statements; reads that
// cannot be redirected stay on the source and are counted; read-your-writes in a transaction;
// sticky and canary sessions; analytics.
#include <catch2/catch.hpp>
#include <thread>

#include "rs_setup.h"

using namespace pgphase;
using namespace pgphase::rs;

namespace {

// Runs `n` prepared point reads of `table` on a fresh proxied session (closed afterwards, so
// that its statistics are flushed) and returns how many answered from the target.
int prepared_reads(const Env& e, const std::string& table, int n, const std::string& extra = "") {
  int target = 0;
  {
    const it::PgConn c = it::PgConn::connect(e.proxied_conninfo(extra));
    REQUIRE(c.ok());
    const it::PgResult p(PQprepare(
        c.get(), "r", ("SELECT side FROM " + table + " WHERE id = $1").c_str(), 0, nullptr));
    REQUIRE(p.ok());
    for (int i = 0; i < n; ++i) {
      const std::string id = std::to_string(1 + i % 100);
      const char* v[1] = {id.c_str()};
      const it::PgResult r(PQexecPrepared(c.get(), "r", 1, v, nullptr, nullptr, 0));
      REQUIRE(r.rows() == 1);
      if (r.value(0, 0) == "T") ++target;
    }
  }
  return target;
}

// Waits until PostgreSQL's counters for `table` stop moving (flushed after the session closed).
long settled_scans(const Env& e, const std::string& table) {
  long last = -1;
  for (int i = 0; i < 50; ++i) {
    const long now = scans(e.direct, table);
    if (now == last) return now;
    last = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return last;
}

}  // namespace

TEST_CASE("gradual: 10,000 reads at 25% reach the target 25% +- 2 points, by PostgreSQL's count") {
  Env& e = env();
  setup_switch(e, "rs_grad", "gradual", 25);
  const long src0 = settled_scans(e, "rs_grad");
  const long tgt0 = settled_scans(e, "t_sys_rs_grad");
  const int answered_by_target = prepared_reads(e, "rs_grad", 10000);
  const long src = settled_scans(e, "rs_grad") - src0;
  const long tgt = settled_scans(e, "t_sys_rs_grad") - tgt0;
  const double share = 100.0 * static_cast<double>(tgt) / static_cast<double>(src + tgt);
  WARN("pg_stat_user_tables: source " << src << ", target " << tgt << " (" << share
                                      << "% on the target); markers: " << answered_by_target);
  // PostgreSQL's counters may include a scan or two of its own around the run.
  CHECK(src + tgt >= 10000);
  CHECK(src + tgt <= 10004);
  CHECK(std::abs(tgt - answered_by_target) <= 2);
  CHECK(share >= 23.0);
  CHECK(share <= 27.0);

  set_percentage(e.stack.api, "rs_grad_sw", 0);
  const long s1 = settled_scans(e, "rs_grad");
  const long t1 = settled_scans(e, "t_sys_rs_grad");
  CHECK(prepared_reads(e, "rs_grad", 500) == 0);
  CHECK(settled_scans(e, "t_sys_rs_grad") - t1 <= 2);
  CHECK(settled_scans(e, "rs_grad") - s1 >= 500);

  set_percentage(e.stack.api, "rs_grad_sw", 100);
  const long s2 = settled_scans(e, "rs_grad");
  const long t2 = settled_scans(e, "t_sys_rs_grad");
  CHECK(prepared_reads(e, "rs_grad", 500) == 500);
  CHECK(settled_scans(e, "rs_grad") - s2 <= 2);
  CHECK(settled_scans(e, "t_sys_rs_grad") - t2 >= 500);

  // Analytics: this pgphase's own counts by side.
  const it::HttpResponse a = e.stack.api.get("/api/v1/switches/rs_grad_sw/analytics");
  REQUIRE(a.status == 200);
  const json::object live = body_object(a).at("live").as_object();
  const json::object total = live.at("since_activation").as_object();
  CHECK(total.at("target").as_object().at("statements").to_number<double>() >= 500);
  CHECK(total.at("target").as_object().at("p95_ms").to_number<double>() > 0);
  const it::RunResult cli_out =
      cli({"switch", "analytics", "--config-id", "rs_grad_sw", "--admin-url",
           "http://127.0.0.1:" + std::to_string(e.stack.proxy->admin_port())});
  INFO(cli_out.describe());
  CHECK(cli_out.ok());
  CHECK(cli_out.out.find("P95 MS") != std::string::npos);
  const auto m = it::scrape_metrics(e.stack.proxy->admin_port());
  CHECK(m.value("pgphase_read_switch_statements_total",
                {{"config_id", "rs_grad_sw"}, {"side", "target"}, {"result", "ok"}})
            .value_or(0) >= 500);
}

TEST_CASE(
    "immediate at 100%: joins, subqueries, CTEs, aliases and both protocols read the target") {
  Env& e = env();
  setup_switch(e, "rs_imm", "immediate", 100);
  e.direct.exec_ok(
      "CREATE TABLE rs_imm_orders (user_id int, total int);"
      "INSERT INTO rs_imm_orders VALUES (1, 10), (2, 20)");
  const it::PgConn c = e.proxied();
  for (const bool extended : {false, true}) {
    INFO((extended ? "extended" : "simple"));
    auto q = [&](const std::string& sql) {
      const it::PgResult r = extended ? c.exec_params(sql, {}) : c.exec(sql);
      INFO(sql << ": " << r.describe());
      REQUIRE(r.ok());
      return r;
    };
    CHECK(q("SELECT side FROM rs_imm WHERE id = 1").value(0, 0) == "T");
    CHECK(q("SELECT u.side, o.total FROM rs_imm u JOIN rs_imm_orders o ON o.user_id = u.id "
            "WHERE u.id = 2")
              .value(0, 0) == "T");
    CHECK(q("SELECT rs_imm.side FROM public.rs_imm WHERE rs_imm.id IN (SELECT id FROM rs_imm "
            "WHERE id < 2)")
              .value(0, 0) == "T");
    CHECK(q("WITH x AS (SELECT * FROM rs_imm) SELECT string_agg(DISTINCT side, '') FROM x")
              .value(0, 0) == "T");
    CHECK(
        q("SELECT (SELECT side FROM rs_imm WHERE id = 3), count(*) FROM \"rs_imm\"").value(0, 0) ==
        "T");
  }
  // Not redirected with certainty: stays on the source, counted as unroutable.
  const auto before = it::scrape_metrics(e.stack.proxy->admin_port())
                          .value("pgphase_read_unroutable_total",
                                 {{"migration_id", "rs_imm_mig"}, {"config_id", "rs_imm_sw"}})
                          .value_or(0);
  CHECK(c.scalar("SELECT side FROM rs_imm WHERE id = 1 FOR UPDATE") == "S");
  CHECK(c.scalar("WITH rs_imm AS (SELECT 'cte' AS side) SELECT side FROM rs_imm") == "cte");
  CHECK(c.scalar("SELECT public.rs_imm.side FROM public.rs_imm WHERE id = 1") == "S");
  const auto after = it::scrape_metrics(e.stack.proxy->admin_port())
                         .value("pgphase_read_unroutable_total",
                                {{"migration_id", "rs_imm_mig"}, {"config_id", "rs_imm_sw"}})
                         .value_or(0);
  CHECK(after == before + 3);
}

TEST_CASE("read-your-writes: inside a transaction the read sees the transaction's write") {
  Env& e = env();
  setup_switch(e, "rs_ryw", "immediate", 100);
  const it::PgConn c = e.proxied();
  c.exec_ok("BEGIN");
  c.exec_ok("INSERT INTO rs_ryw VALUES (1000, 'new', 1)");
  // The dual write put the row in both tables in this transaction; the read goes to the target
  // and sees it, as the source would.
  CHECK(c.scalar("SELECT side FROM rs_ryw WHERE id = 1000") == "new");
  c.exec_ok("UPDATE rs_ryw SET v = 42 WHERE id = 1000");
  CHECK(c.scalar("SELECT v FROM rs_ryw WHERE id = 1000") == "42");
  c.exec_ok("ROLLBACK");
  CHECK(c.scalar("SELECT count(*) FROM rs_ryw WHERE id = 1000") == "0");
}

TEST_CASE("sticky: a session stays on one side; raising the percentage only moves sessions on") {
  Env& e = env();
  setup_switch(e, "rs_sticky", "sticky", 50, {{"sticky_key", "application_name"}});
  std::map<std::string, std::string> side_at_50;
  int on_target = 0;
  for (int i = 0; i < 20; ++i) {
    const std::string app = "app" + std::to_string(i);
    const int t = prepared_reads(e, "rs_sticky", 10, "application_name=" + app);
    CHECK((t == 0 || t == 10));  // all reads of a session on one side
    side_at_50[app] = t == 10 ? "T" : "S";
    on_target += t == 10 ? 1 : 0;
  }
  CHECK(on_target > 0);
  CHECK(on_target < 20);
  set_percentage(e.stack.api, "rs_sticky_sw", 80);
  for (const auto& [app, side] : side_at_50) {
    const int t = prepared_reads(e, "rs_sticky", 5, "application_name=" + app);
    if (side == "T") CHECK(t == 5);  // never back to the source
  }
}

TEST_CASE("canary: only listed applications read the target") {
  Env& e = env();
  setup_switch(e, "rs_canary", "canary", 100,
               {{"canary_application_names", json::array{"canary-app"}}});
  CHECK(prepared_reads(e, "rs_canary", 20, "application_name=canary-app") == 20);
  CHECK(prepared_reads(e, "rs_canary", 20, "application_name=other-app") == 0);
}

TEST_CASE("column_map: reads of renamed columns are redirected with the source's column names") {
  Env& e = env();
  e.direct.exec_ok(
      "CREATE TABLE rs_map (id int PRIMARY KEY, side text, v int);"
      "CREATE TABLE t_sys_rs_map (id int PRIMARY KEY, label text, v int);"
      "INSERT INTO rs_map SELECT g, 'S', g FROM generate_series(1, 10) g;"
      "INSERT INTO t_sys_rs_map SELECT g, 'T', g FROM generate_series(1, 10) g");
  register_migration(e.stack.api, "rs_map_mig", "rs_map", "t_sys_rs_map",
                     {{"column_map", json::object{{"side", "label"}}}});
  advance_to(e.stack.api, "rs_map_mig", "read_switch");
  register_switch(e.stack.api, "rs_map_sw", "rs_map", "rs_map_mig", {{"strategy", "immediate"}});
  REQUIRE(e.stack.api.post("/api/v1/switches/rs_map_sw/activate", "{}").status == 200);
  set_percentage(e.stack.api, "rs_map_sw", 100);
  const it::PgConn c = e.proxied();
  for (const bool extended : {false, true}) {
    const std::string sql = "SELECT * FROM rs_map m WHERE m.side = 'T' AND id = 3";
    const it::PgResult r = extended ? c.exec_params(sql, {}) : c.exec(sql);
    INFO(r.describe());
    REQUIRE(r.rows() == 1);
    REQUIRE(r.cols() == 3);
    CHECK(std::string(PQfname(r.get(), 1)) == "side");
    CHECK(r.value(0, 1) == "T");
  }
  CHECK(c.scalar("SELECT rs_map.side FROM rs_map WHERE id = 4") == "T");
  CHECK(c.scalar("SELECT count(*) FROM rs_map JOIN rs_map b USING (id) WHERE b.side = 'T'") ==
        "10");
}
