// /api/v1/validations: a validation run inside pgphase (POST answers 202 with its id, GET follows
// it to its report), stored in t_sys_consistency_checks and used by the phase gate (read_switch
// refused on a low score, allowed after repair and a clean check); repair through the API; bad
// requests answered with clear 400/401/404/422s.
#include <catch2/catch.hpp>
#include <sstream>
#include <thread>

#include "harness/proxy_process.h"
#include "val_env.h"

using namespace pgphase;
using namespace pgphase::val;

namespace {

// POSTs a validation and polls it until it is no longer running; returns the final answer.
json::object run_validation(const Api& api, const std::string& body) {
  const it::HttpResponse started = api.post("/api/v1/validations", body);
  INFO(describe(started));
  REQUIRE(started.status == 202);
  const json::object s = body_object(started);
  CHECK(str(s, "status") == "running");
  const std::string id = str(s, "validation_id");
  json::object last;
  const auto waited = ctl::time_until(
      [&] {
        const it::HttpResponse r = api.get("/api/v1/validations/" + id);
        if (r.status != 200) return false;
        last = body_object(r);
        return str(last, "status") != "running";
      },
      std::chrono::seconds(60), std::chrono::milliseconds(50));
  REQUIRE(waited.has_value());
  return last;
}

}  // namespace

TEST_CASE("validations through the API feed the phase gate") {
  Env& e = env();
  const Api& api = e.stack.api;
  e.direct.exec_ok(
      "CREATE TABLE g_src (id int PRIMARY KEY, v text);"
      "INSERT INTO g_src SELECT g, 'v' || g FROM generate_series(1, 1000) g;"
      "CREATE TABLE g_dst (LIKE g_src INCLUDING ALL);"
      "INSERT INTO g_dst SELECT * FROM g_src WHERE id % 20 <> 0;");  // 50 missing
  register_migration(api, "gate_mig", "g_src", "g_dst");
  set_phase(api, "gate_mig", "dual_write");
  set_phase(api, "gate_mig", "validation");

  const json::object done =
      run_validation(api, R"({"migration_id": "gate_mig", "level": "comprehensive"})");
  INFO(json::serialize(done));
  REQUIRE(str(done, "status") == "completed");
  const json::object& report = done.at("report").as_object();
  CHECK(num(report, "consistency_score") == Approx(0.95));
  CHECK(report.at("counts_by_type").as_object().at("MISSING_IN_TARGET").to_number<int>() == 50);
  CHECK(str(report, "migration_id") == "gate_mig");
  // Stored: any pgphase can answer for it, and the list shows it.
  CHECK(
      e.direct.scalar("SELECT consistency_score FROM t_sys_consistency_checks WHERE check_id = '" +
                      str(done, "validation_id") + "'") == "0.95");
  const it::HttpResponse list = api.get("/api/v1/validations");
  REQUIRE(list.status == 200);
  CHECK(it::contains(list.body, str(done, "validation_id")));

  // The gate refuses read_switch on the latest check's score.
  const it::HttpResponse refused =
      api.post("/api/v1/migrations/gate_mig/phase", R"({"phase": "read_switch"})");
  CHECK(refused.status == 409);
  CHECK(it::contains(refused.body, "0.95"));

  // Repair through the API, then a clean check opens the gate.
  const json::object repaired = run_validation(
      api, R"({"migration_id": "gate_mig", "level": "comprehensive", "repair": true})");
  REQUIRE(str(repaired, "status") == "completed");
  const json::object& rep = repaired.at("report").as_object().at("repair").as_object();
  CHECK(rep.at("upserted").to_number<int>() == 50);
  CHECK(rep.at("remaining").to_number<int>() == 0);
  const json::object clean =
      run_validation(api, R"({"migration_id": "gate_mig", "level": "comprehensive"})");
  CHECK(num(clean.at("report").as_object(), "consistency_score") == 1.0);
  const it::HttpResponse allowed =
      api.post("/api/v1/migrations/gate_mig/phase", R"({"phase": "read_switch"})");
  INFO(describe(allowed));
  CHECK(allowed.status == 200);

  // Tables named directly, with a dry run.
  const json::object dry =
      run_validation(api,
                     R"({"source_table": "g_src", "target_table": "g_dst", "level": "detailed",
          "sample_size": 5000, "dry_run": true})");
  REQUIRE(str(dry, "status") == "completed");
  CHECK(num(dry.at("report").as_object(), "differences_count") == 0);
}

TEST_CASE("bad validation requests get clear answers") {
  Env& e = env();
  const Api& api = e.stack.api;
  e.direct.exec_ok("CREATE TABLE IF NOT EXISTS b_src (id int PRIMARY KEY, v text)");
  auto post = [&](const std::string& body) { return api.post("/api/v1/validations", body); };
  CHECK(post("{not json").status == 400);
  CHECK(post(R"({"source_table": "b_src", "target_table": "b_src", "speed": 1})").status == 400);
  CHECK(post(R"({"source_table": 5, "target_table": "b_src"})").status == 400);
  const it::HttpResponse level =
      post(R"({"source_table": "b_src", "target_table": "b_src", "level": "deep"})");
  CHECK(level.status == 422);
  CHECK(it::contains(level.body, "level must be"));
  const it::HttpResponse missing = post(R"({"source_table": "b_src", "target_table": "nope"})");
  CHECK(missing.status == 422);
  CHECK(it::contains(missing.body, "nope does not exist"));
  CHECK(post(R"({"level": "basic"})").status == 422);
  CHECK(post(R"({"migration_id": "nope"})").status == 404);
  CHECK(post(R"({"migration_id": "users_mig", "source_table": "x"})").status == 422);
  CHECK(post(R"({"source_table": "b_src", "target_table": "b_src", "sample_size": 0})").status ==
        422);
  CHECK(api.get("/api/v1/validations/chk_nope").status == 404);
  const Api anonymous = api.with_token("");
  CHECK(anonymous.post("/api/v1/validations", R"({"migration_id": "users_mig"})").status == 401);
  CHECK(anonymous.get("/api/v1/validations/chk_nope").status == 401);
  CHECK(anonymous.get("/api/v1/validations").status == 401);
  CHECK(api.post("/api/v1/validations/x/y", "{}").status == 404);
}

TEST_CASE("a running validation reports its progress in the API, /metrics and the CLI") {
  Env& e = env();
  const Api& api = e.stack.api;
  e.direct.exec_ok(
      "CREATE TABLE pr_src (id int PRIMARY KEY, v text);"
      "INSERT INTO pr_src SELECT g, 'v' || g FROM generate_series(1, 20000) g;"
      "CREATE TABLE pr_dst (LIKE pr_src INCLUDING ALL);"
      "INSERT INTO pr_dst SELECT * FROM pr_src WHERE id % 100 <> 0;"  // 200 missing
      "ANALYZE pr_src; ANALYZE pr_dst;");
  // The target locked: the validation waits in its checksum pass, where it can be watched.
  it::PgConn locker = it::PgConn::connect(e.stack.pg->conninfo(kControlDb));
  locker.exec_ok("BEGIN");
  locker.exec_ok("LOCK TABLE pr_dst IN ACCESS EXCLUSIVE MODE");
  const it::HttpResponse started =
      api.post("/api/v1/validations",
               R"({"source_table": "pr_src", "target_table": "pr_dst", "level": "comprehensive"})");
  INFO(describe(started));
  REQUIRE(started.status == 202);
  const std::string id = str(body_object(started), "validation_id");
  json::object running;
  REQUIRE(ctl::time_until(
              [&] {
                running = body_object(api.get("/api/v1/validations/" + id));
                return str(obj(running, "progress"), "stage") == "checksums";
              },
              std::chrono::seconds(20), std::chrono::milliseconds(50))
              .has_value());
  INFO(json::serialize(running));
  CHECK(str(running, "status") == "running");
  const json::object& p = obj(running, "progress");
  CHECK(num(p, "rows_total") == Approx(39800).margin(2000));  // PostgreSQL's estimate
  CHECK(num(p, "rows_done") == 0);
  CHECK(num(p, "eta_seconds") == -1);  // no rate yet
  // The list shows it running, with the same progress.
  bool listed = false;
  const json::value list = parse_json(api.get("/api/v1/validations").body);
  for (const auto& v : list.as_array()) {
    const auto& o = v.as_object();
    if (str(o, "validation_id") != id) continue;
    listed = true;
    CHECK(str(o, "status") == "running");
    CHECK(str(obj(o, "progress"), "stage") == "checksums");
  }
  CHECK(listed);
  const it::Metrics m = it::scrape_metrics(e.stack.proxy->admin_port());
  CHECK(m.get("pgphase_validation_running", {{"validation_id", id}}) == 1);
  CHECK(m.get("pgphase_validation_rows_total", {{"validation_id", id}}) > 30000);
  locker.exec_ok("COMMIT");

  json::object done;
  REQUIRE(ctl::time_until(
              [&] {
                done = body_object(api.get("/api/v1/validations/" + id));
                return str(done, "status") != "running";
              },
              std::chrono::seconds(60), std::chrono::milliseconds(50))
              .has_value());
  INFO(json::serialize(done));
  REQUIRE(str(done, "status") == "completed");
  const json::object& f = obj(done, "progress");
  CHECK(str(f, "stage") == "done");
  CHECK(num(f, "rows_done") == 20000 + 19800);
  CHECK(num(f, "rows_total") == num(f, "rows_done"));
  CHECK(num(f, "percent") == 100);
  CHECK(num(f, "eta_seconds") == 0);
  CHECK(num(f, "rows_per_second") > 0);
  const it::Metrics after = it::scrape_metrics(e.stack.proxy->admin_port());
  CHECK(after.get("pgphase_validation_running", {{"validation_id", id}}) == 0);
  CHECK(after.get("pgphase_validation_rows_done", {{"validation_id", id}}) == 39800);

  // The CLI: plain progress lines on stderr (not a terminal), JSON lines with --json; stdout
  // keeps the report.
  const it::RunResult plain =
      ctl::cli({"validate", "--db-url", db_url(), "--source-table", "pr_src", "--target-table",
                "pr_dst", "--level", "comprehensive", "--no-store"});
  INFO(plain.describe());
  CHECK(plain.exit_code == 1);  // differences remain
  CHECK(it::contains(plain.err, "validation checksums:"));
  CHECK(it::contains(plain.err, "validation done: 39800 of 39800 rows (100.0%)"));
  CHECK_FALSE(it::contains(plain.out, "validation checksums:"));
  const it::RunResult js =
      ctl::cli({"validate", "--db-url", db_url(), "--source-table", "pr_src", "--target-table",
                "pr_dst", "--level", "detailed", "--sample-size", "50", "--no-store", "--json"});
  INFO(js.describe());
  CHECK(json::parse(js.out).is_object());  // stdout is the report alone
  bool saw_done = false;
  std::istringstream lines(js.err);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("{")) continue;
    const json::value v = json::parse(line);
    if (str(v.as_object(), "stage") == "done") saw_done = true;
  }
  CHECK(saw_done);

  // On a terminal (a pty from script(1)): a bar redrawn in place.
  const std::string cmd = it::ProxyProcess::binary() + " validate --db-url '" + db_url() +
                          "' --source-table pr_src --target-table pr_dst --level basic --no-store";
  const it::RunResult tty = it::run({"script", "-q", "-e", "-c", cmd, "/dev/null"});
  INFO(tty.describe());
  CHECK(it::contains(tty.out, "\r["));
  CHECK(it::contains(tty.out, "##############################] validation done"));
}
