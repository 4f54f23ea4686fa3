// The operator console (admin port, "/") in a real headless Chromium against a real pgphase and
// PostgreSQL: the page is served from the binary with a strict CSP and no external URL; what it
// shows (a migration's phase and dual-write counts, a switch's percentage, a validation) matches
// the API; an action performed through the page (a percentage change, confirmed in its dialog)
// is seen through the API and audited with the console as actor; without a token the actions are
// disabled. Screenshots of the main views are saved and their paths printed.
#include <catch2/catch.hpp>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cdp_browser.h"
#include "ctl_env.h"
#include "harness/pg_conn.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

std::filesystem::path screenshot_dir() {
  const char* env = std::getenv("PGPHASE_SCREENSHOT_DIR");
  std::filesystem::path dir =
      env != nullptr && *env != '\0'
          ? std::filesystem::path(env)
          : std::filesystem::path(PGPHASE_BINARY_DIR) / "console-screenshots";
  std::filesystem::create_directories(dir);
  return dir;
}

void shoot(CdpBrowser& b, const std::string& name) {
  const auto path = screenshot_dir() / (name + ".png");
  b.screenshot(path.string());
  REQUIRE(std::filesystem::file_size(path) > 1000);
  std::cout << "console screenshot: " << path.string() << std::endl;
}

std::string page_text(CdpBrowser& b, const std::string& selector) {
  const json::value v = b.eval("(document.querySelector(" + json::serialize(json::value(selector)) +
                               ") || {}).textContent || ''");
  return std::string(v.as_string());
}

// Migration con_mig in dual_write over real tables, rows written through pgphase (so the
// dual-write figures are not zero), a switch con_sw at 30% and one validation.
void setup_console_objects(const Stack& s) {
  static bool done = false;
  if (done) return;
  const it::PgConn direct = control_conn(*s.pg);
  direct.exec_ok("CREATE TABLE con_src (id int PRIMARY KEY, v text)");
  direct.exec_ok("CREATE TABLE t_sys_con_src (id int PRIMARY KEY, v text)");
  (void)register_migration(s.api, "con_mig", "con_src", "t_sys_con_src");
  advance_to(s.api, "con_mig", "dual_write");
  REQUIRE(it::wait_until(
      [&] {
        const it::PgConn c = it::PgConn::connect(s.proxy->conninfo(kControlDb, "postgres", "", ""));
        return c.ok() &&
               c.exec("INSERT INTO con_src VALUES (1, 'a'), (2, 'b') ON CONFLICT DO NOTHING")
                   .ok() &&
               c.scalar("SELECT count(*) FROM t_sys_con_src") == "2";
      },
      10s));
  const it::PgConn c = it::PgConn::connect(s.proxy->conninfo(kControlDb, "postgres", "", ""));
  c.exec_ok("UPDATE con_src SET v = 'c' WHERE id = 2");
  // A backfill that has run (its progress shows in the migrations view).
  direct.exec_ok("INSERT INTO con_src SELECT g, 'x' FROM generate_series(3, 500) g");
  const it::HttpResponse bf = s.api.post("/api/v1/migrations/con_mig/backfill", "{}");
  INFO(describe(bf));
  REQUIRE(bf.status < 300);
  REQUIRE(it::wait_until(
      [&] {
        return str(body_object(s.api.get("/api/v1/migrations/con_mig/backfill")), "status") ==
               "completed";
      },
      30s));
  advance_to(s.api, "con_mig", "read_switch");
  (void)register_switch(s.api, "con_sw", "con_src", "con_mig", {{"strategy", "gradual"}});
  REQUIRE(s.api.post("/api/v1/switches/con_sw/activate", "{}").status == 200);
  (void)set_percentage(s.api, "con_sw", 30, "console test");
  const it::HttpResponse v =
      s.api.post("/api/v1/validations", R"({"migration_id": "con_mig", "level": "basic"})");
  INFO(describe(v));
  REQUIRE(v.status == 202);
  const std::string id = str(body_object(v), "validation_id");
  REQUIRE(it::wait_until(
      [&] {
        return str(body_object(s.api.get("/api/v1/validations/" + id)), "status") != "running";
      },
      30s));
  done = true;
}

std::string console_url(const Stack& s, const std::string& query, const std::string& view) {
  return "http://127.0.0.1:" + std::to_string(s.proxy->admin_port()) + "/" + query + "#" + view;
}

}  // namespace

TEST_CASE("the console is served from the binary with a strict policy and no external URL") {
  const Stack& s = shared_stack();
  const Api anonymous = s.api.with_token("");
  for (const std::string path : {"/", "/console/console.js", "/console/console.css"}) {
    INFO(path);
    const it::HttpResponse r = anonymous.get(path);
    REQUIRE(r.status == 200);
    CHECK_FALSE(it::icontains(r.body, "http://"));
    CHECK_FALSE(it::icontains(r.body, "https://"));
    CHECK(it::icontains(r.header("content-security-policy"), "default-src 'none'"));
    CHECK(it::icontains(r.header("content-security-policy"), "connect-src 'self'"));
  }
  CHECK(it::icontains(anonymous.get("/").header("content-type"), "text/html"));
  CHECK(it::icontains(anonymous.get("/console/console.js").header("content-type"), "javascript"));
  CHECK(anonymous.post("/", "").status == 405);
  CHECK(anonymous.get("/console/nope.js").status == 404);
}

TEST_CASE("the console in Chromium shows what the API says and performs an action through it") {
  if (!CdpBrowser::binary()) FAIL("chromium is not installed (scripts/deps.sh installs it)");
  const Stack& s = shared_stack();
  setup_console_objects(s);
  CdpBrowser b;

  // Migrations: the phase and the dual-write counts, as the API has them.
  b.navigate(console_url(s, std::string("?token=") + kToken, "migrations"));
  REQUIRE(b.wait_for("!!document.querySelector('#migrations-table tr[data-id=\"con_mig\"]')"));
  CHECK(b.eval("location.search").as_string() == "");  // the token left the address bar
  REQUIRE(b.wait_for("document.querySelector('#role').textContent.includes('operator')"));
  const json::object api_mig = body_object(s.api.get("/api/v1/migrations/con_mig"));
  const std::string phase = str(api_mig, "phase");
  CHECK(phase == "read_switch");
  REQUIRE(b.wait_for("!!document.querySelector('#migration-phase')"));
  b.eval("state.migration = 'con_mig'; refresh()");
  REQUIRE(b.wait_for(
      "(document.querySelector('#migration-panel h3')||{}).textContent?.startsWith('con_mig')"));
  CHECK(page_text(b, "#migration-phase") == phase);
  const json::object& dw = obj(api_mig, "dual_write_stats");
  CHECK(num(dw, "ok") >= 2);
  const std::string row = page_text(b, "#migrations-table tr[data-id=\"con_mig\"]");
  INFO("row: " << row);
  CHECK(it::icontains(row, "read_switch"));
  CHECK(it::icontains(row, std::to_string(static_cast<int>(num(dw, "ok"))) + " / 0"));
  // The backfill's progress as the API has it: completed, rows copied, rows/s.
  const json::object bf = body_object(s.api.get("/api/v1/migrations/con_mig/backfill"));
  CHECK(it::icontains(
      row, "completed · " + std::to_string(static_cast<int64_t>(num(bf, "rows_copied"))) + " / "));
  CHECK(it::icontains(row, "rows/s"));
  CHECK(it::icontains(page_text(b, "#migration-panel"), "Who changed what"));
  shoot(b, "migrations");

  // Read switches: the percentage shown is the API's; then 30% -> 60% through the page.
  b.navigate(console_url(s, "", "switches"));
  REQUIRE(b.wait_for("!!document.querySelector('#switches-table tr[data-id=\"con_sw\"]')"));
  CHECK(page_text(b, "#switches-table tr[data-id=\"con_sw\"] .percentage") ==
        std::to_string(static_cast<int>(
            num(body_object(s.api.get("/api/v1/switches/con_sw")), "switch_percentage"))) +
            "%");
  // Reads through pgphase, routed at 30%: the live figures and charts fill as the page polls.
  const it::PgConn reader = it::PgConn::connect(s.proxy->conninfo(kControlDb, "postgres", "", ""));
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 200; ++j) CHECK(reader.scalar("SELECT v FROM con_src WHERE id = 1") == "a");
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
  }
  REQUIRE(b.wait_for("(state.series['con_sw'] || []).length >= 3"));
  const std::string live = page_text(b, "#switch-panel table");
  INFO("live: " << live);
  const json::object analytics = body_object(s.api.get("/api/v1/switches/con_sw/analytics"));
  const double target_reads =
      num(obj(obj(obj(analytics, "live"), "last_minute"), "target"), "statements");
  CHECK(target_reads > 0);
  // The row's "target reads / errors" cell counts the routed reads.
  REQUIRE(
      b.wait_for("parseInt(document.querySelector('#switches-table tr[data-id=\"con_sw\"]')"
                 ".children[6].textContent) > 0"));
  shoot(b, "switches");
  b.eval(R"((() => {
    const row = document.querySelector('#switches-table tr[data-id="con_sw"]');
    row.querySelector('input[type=number]').value = '60';
    row.querySelector('button.set-percentage').click();
  })())");
  REQUIRE(b.wait_for("document.querySelector('#confirm').open"));
  const std::string question = page_text(b, "#confirm-text");
  INFO("dialog: " << question);
  CHECK(it::icontains(question, "con_sw"));
  CHECK(it::icontains(question, "30% to 60%"));
  shoot(b, "confirm");
  b.eval("document.querySelector('#confirm-ok').click()");
  REQUIRE(it::wait_until(
      [&] {
        return num(body_object(s.api.get("/api/v1/switches/con_sw")), "switch_percentage") == 60;
      },
      10s));
  CHECK(control_conn(*s.pg).scalar(
            "SELECT count(*) FROM t_sys_audit_log WHERE actor = 'console' AND role = 'operator' "
            "AND path = '/api/v1/switches/con_sw/percentage' AND status = 200") == "1");
  REQUIRE(b.wait_for(
      "(document.querySelector('#switches-table tr[data-id=\"con_sw\"] .percentage')||{})"
      ".textContent === '60%'"));

  // Validations: the report the API lists.
  b.navigate(console_url(s, "", "validations"));
  const json::value list = parse_json(s.api.get("/api/v1/validations").body);
  REQUIRE(!list.as_array().empty());
  const std::string vid = str(list.as_array().front().as_object(), "validation_id");
  REQUIRE(b.wait_for("document.querySelector('#validations-table').textContent.includes(" +
                     json::serialize(json::value(vid)) + ")"));
  REQUIRE(b.wait_for("!!document.querySelector('#validation-panel')"));
  shoot(b, "validations");
  // A running validation (held by a lock on the target) shows its stage and a bar.
  {
    it::PgConn locker = control_conn(*s.pg);
    locker.exec_ok("UPDATE t_sys_con_src SET v = 'drift' WHERE id = 3");  // not through pgphase
    locker.exec_ok("BEGIN");
    locker.exec_ok("LOCK TABLE t_sys_con_src IN ACCESS EXCLUSIVE MODE");
    const it::HttpResponse v = s.api.post(
        "/api/v1/validations", R"({"migration_id": "con_mig", "level": "comprehensive"})");
    REQUIRE(v.status == 202);
    const std::string running = str(body_object(v), "validation_id");
    REQUIRE(
        b.wait_for("(() => { const r = [...document.querySelectorAll('#validations-table "
                   "tr')].find((t) => t.textContent.includes(" +
                   json::serialize(json::value(running)) +
                   ")); return !!r && !!r.querySelector('.bar') && "
                   "r.textContent.includes('checksums'); })()"));
    shoot(b, "validation-running");
    locker.exec_ok("COMMIT");
    REQUIRE(it::wait_until(
        [&] {
          return str(body_object(s.api.get("/api/v1/validations/" + running)), "status") !=
                 "running";
        },
        30s));
    // Its report, with the difference and its fix, as the API has it.
    const json::object report =
        obj(body_object(s.api.get("/api/v1/validations/" + running)), "report");
    REQUIRE(num(report, "differences_count") == 1);
    b.eval("state.validation = " + json::serialize(json::value(running)) + "; refresh()");
    REQUIRE(
        b.wait_for("[...document.querySelectorAll('#validation-panel tr.difference')].some((r) => "
                   "r.textContent.includes('drift') && r.textContent.includes('UPDATE'))"));
    shoot(b, "validation-report");
  }
  b.navigate(console_url(s, "", "alerts"));
  REQUIRE(b.wait_for("document.body.dataset.loaded === 'alerts'"));
  shoot(b, "alerts");
}

TEST_CASE("without a token the console reads but its actions are disabled") {
  if (!CdpBrowser::binary()) FAIL("chromium is not installed (scripts/deps.sh installs it)");
  const Stack& s = shared_stack();
  setup_console_objects(s);
  CdpBrowser b;
  b.navigate(console_url(s, "", "migrations"));
  REQUIRE(b.wait_for("!!document.querySelector('#phase-button')"));
  CHECK(b.eval("document.querySelector('#phase-button').disabled").as_bool());
  CHECK(page_text(b, "#role") == "role: none (read only)");
  b.navigate(console_url(s, "", "validations"));
  REQUIRE(b.wait_for("document.querySelector('#validations-table').textContent.includes('token')"));
}
