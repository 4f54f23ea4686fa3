// The control database going away and coming back: client traffic through pgphase to its
// backend keeps working, GETs answer from the last known state, POSTs get 503, and
// pgphase_control_db_connected says 0; once the control database is back, POSTs work again and
// the metric is 1. Also: without a control database configured at all, the migration endpoints
// answer 503 and the proxy is a plain pass-through; pgphase started while the control database is
// down loads the manual's files once it is back.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>
#include <thread>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

double connected(const it::ProxyProcess& p) {
  const auto v = it::scrape_metrics(p.admin_port()).value("pgphase_control_db_connected");
  return v.value_or(-1);
}

void expect_backend_traffic(const it::ProxyProcess& p) {
  const it::PgConn c = p.connect();
  INFO("through pgphase: " << c.error_message());
  REQUIRE(c.ok());
  CHECK(c.scalar("SELECT count(*) FROM outage_rows") == "3");
  // Writes go to another table: outage_rows migrates in dual_write, and its tables live in the
  // backend cluster, not in the control database where pgphase reads table shapes, so pgphase
  // refuses writes to it (tested in tests/dualwrite).
  CHECK(c.exec("INSERT INTO outage_other VALUES (100)").ok());
  CHECK(c.exec("DELETE FROM outage_other WHERE id = 100").ok());
}

}  // namespace

TEST_CASE("control database stops and restarts: proxying goes on, changes wait for it") {
  const auto backend = start_cluster({"CREATE TABLE outage_rows (id int PRIMARY KEY)",
                                      "INSERT INTO outage_rows VALUES (1), (2), (3)",
                                      "CREATE TABLE outage_other (id int PRIMARY KEY)"});
  const auto control_pg = start_cluster();
  ClusterRestarter control_ctl(*control_pg);
  ServeOptions o;
  o.backend = backend->tcp_endpoint();
  o.control_dsn = control_dsn(*control_pg);
  o.config_json = R"({"state_reload_interval_ms": 60000})";  // only NOTIFY makes changes visible
  const auto proxy = start_pgphase(o);
  const auto other = start_pgphase(o);  // a second instance, to see LISTEN come back
  const Api api = api_for(*proxy);

  (void)register_migration(api, "outage_mig", "outage_rows", "t_sys_outage_rows");
  (void)set_phase(api, "outage_mig", "dual_write");
  (void)register_switch(api, "outage_sw", "outage_rows", "outage_mig");
  CHECK(connected(*proxy) == 1);
  const json::value list_before = parse_json(api.get("/api/v1/migrations").body);
  const json::value switches_before = parse_json(api.get("/api/v1/switches").body);
  const it::PgConn held = proxy->connect();  // a session open across the outage
  REQUIRE(held.ok());

  control_ctl.stop();
  INFO("pgphase stderr:\n" << proxy->stderr_tail());
  const auto noticed = time_until([&] { return connected(*proxy) == 0; }, 10s, 50ms);
  REQUIRE(noticed.has_value());
  WARN("pgphase_control_db_connected went to 0 after " << *noticed << " ms");

  expect_backend_traffic(*proxy);
  CHECK(held.scalar("SELECT count(*) FROM outage_rows") == "3");
  const it::HttpResponse list = api.get("/api/v1/migrations");
  INFO(describe(list));
  REQUIRE(list.status == 200);
  CHECK(parse_json(list.body) == list_before);
  CHECK(parse_json(api.get("/api/v1/switches").body) == switches_before);
  const json::object now = body_object(list);
  REQUIRE(arr(now, "migrations").size() == 1);
  CHECK(str(arr(now, "migrations").at(0).as_object(), "phase") == "dual_write");

  const auto expect_503 = [&](const std::string& path, const std::string& body) {
    INFO("POST " << path << " " << body);
    const std::string why = expect_error(api.post(path, body), 503);
    CHECK((it::icontains(why, "control database") || it::icontains(why, "control db")));
  };
  expect_503("/api/v1/migrations/outage_mig/phase", R"({"phase": "validation"})");
  expect_503("/api/v1/migrations",
             R"({"migration_id": "outage_new", "source_table": "o", "target_table": "t_o"})");
  expect_503("/api/v1/migrations/outage_mig/rollback", R"({"reason": "x"})");
  expect_503("/api/v1/switches/outage_sw/percentage", R"({"percentage": 10})");
  CHECK(connected(*proxy) == 0);
  CHECK(proxy->running());
  // The CLI says why: exit 1, one line naming the control database.
  const it::RunResult r =
      cli({"migration", "set-phase", "--migration-id", "outage_mig", "--phase", "validation",
           "--admin-url", "http://127.0.0.1:" + std::to_string(proxy->admin_port())});
  INFO(r.describe());
  CHECK(r.exit_code == 1);
  CHECK(it::icontains(r.err, "control database"));

  control_ctl.start();
  const auto back = time_until(
      [&] {
        return api.post("/api/v1/migrations/outage_mig/phase", R"({"phase": "validation"})")
                   .status == 200;
      },
      10s, 200ms);
  INFO("restarted control cluster log:\n" << control_ctl.log());
  REQUIRE(back.has_value());
  WARN("POSTs worked again " << *back << " ms after the control database came back");
  CHECK(time_until([&] { return connected(*proxy) == 1; }, 5s, 50ms).has_value());
  CHECK(str(get_migration(api, "outage_mig"), "phase") == "validation");
  CHECK(control_conn(*control_pg)
            .scalar("SELECT phase FROM t_sys_migrations WHERE migration_id = 'outage_mig'") ==
        "validation");
  expect_backend_traffic(*proxy);
  CHECK(held.scalar("SELECT 1") == "1");

  // Both instances LISTEN again: a change through one reaches the other within a second.
  // The other instance made no request during the outage; once it reports the control database
  // as connected, its very first change must go through (not fail on a stale connection).
  REQUIRE(time_until([&] { return connected(*other) == 1; }, 10s, 50ms).has_value());
  std::this_thread::sleep_for(1s);
  REQUIRE(connected(*other) == 1);
  const Api b = api_for(*other);
  (void)set_phase(b, "outage_mig", "read_switch", true);
  auto ms = time_until(
      [&] { return str(get_migration(api, "outage_mig"), "phase") == "read_switch"; }, 3s);
  REQUIRE(ms.has_value());
  CHECK(*ms < 1000);
  REQUIRE(api.post("/api/v1/switches/outage_sw/activate").status == 200);
  ms = time_until([&] { return str(get_switch(b, "outage_sw"), "status") == "active"; }, 3s);
  REQUIRE(ms.has_value());
  CHECK(*ms < 1000);
}

TEST_CASE("pgphase starts while the control database is down and catches up when it is back") {
  const auto backend = start_cluster({"CREATE TABLE outage_rows (id int PRIMARY KEY)",
                                      "INSERT INTO outage_rows VALUES (1), (2), (3)",
                                      "CREATE TABLE outage_other (id int PRIMARY KEY)"});
  const auto control_pg = start_cluster();
  ClusterRestarter control_ctl(*control_pg);
  control_ctl.stop();

  ServeOptions o;
  o.backend = backend->tcp_endpoint();
  o.control_dsn = control_dsn(*control_pg);
  const std::string conf = std::string(PGPHASE_SOURCE_DIR) + "/conf/";
  o.config_files = {conf + "migration_configs.json", conf + "read_switch_configs.json",
                    conf + "alerting_config.json"};
  const auto proxy = start_pgphase(o);
  const Api api = api_for(*proxy);
  INFO("pgphase stderr:\n" << proxy->stderr_tail());
  expect_backend_traffic(*proxy);
  CHECK(connected(*proxy) == 0);
  CHECK(it::icontains(expect_error(api.post("/api/v1/migrations/users_table_migration/phase",
                                            R"({"phase": "dual_write"})"),
                                   503),
                      "control database"));

  // A second one, stopped while the control database is still down: a clean, prompt exit.
  o.config_files.clear();
  const auto short_lived = start_pgphase(o);
  const auto t = it::Clock::now();
  short_lived->terminate();
  const auto code = short_lived->wait_exit(15s);
  INFO("second pgphase stderr:\n" << short_lived->stderr_tail());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(it::elapsed_ms(t) < 10000);

  control_ctl.start();
  const auto ms =
      time_until([&] { return api.get("/api/v1/migrations/users_table_migration").status == 200; },
                 15s, 100ms);
  REQUIRE(ms.has_value());
  CHECK(connected(*proxy) == 1);
  CHECK(str(get_switch(api, "users_gradual_switch"), "status") == "inactive");
  (void)set_phase(api, "users_table_migration", "dual_write");
}

TEST_CASE("without a control database the migration endpoints answer 503, proxying works") {
  const auto backend = start_cluster({"CREATE TABLE outage_rows (id int PRIMARY KEY)",
                                      "INSERT INTO outage_rows VALUES (1), (2), (3)",
                                      "CREATE TABLE outage_other (id int PRIMARY KEY)"});
  ServeOptions o;
  o.backend = backend->tcp_endpoint();
  const auto proxy = start_pgphase(o);
  const Api api = api_for(*proxy);
  expect_backend_traffic(*proxy);
  for (const char* path : {"/api/v1/migrations", "/api/v1/switches"}) {
    INFO("GET " << path);
    expect_error(api.get(path), 503);
  }
  expect_error(api.post("/api/v1/migrations",
                        R"({"migration_id": "m", "source_table": "o", "target_table": "t_o"})"),
               503);
  const it::HttpResponse health = api.get("/healthz");
  CHECK(health.status == 200);
}

TEST_CASE("control connections terminated by the server: pgphase reconnects by itself") {
  const auto pg = start_cluster();
  ServeOptions o = serve_on(*pg);
  o.config_json = R"({"state_reload_interval_ms": 60000})";
  const auto a_proc = start_pgphase(o);
  const auto b_proc = start_pgphase(o);
  const Api a = api_for(*a_proc);
  const Api b = api_for(*b_proc);
  (void)register_migration(a, "term_mig", "term", "t_sys_term");
  REQUIRE(time_until([&] { return b.get("/api/v1/migrations/term_mig").status == 200; }, 3s));

  // What a DBA's pg_terminate_backend (or a pooler restart) does to pgphase's sessions.
  const it::PgConn dba = control_conn(*pg);
  const std::string killed =
      dba.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '" +
                 std::string(kControlDb) +
                 "' AND pid <> pg_backend_pid() AND backend_type = 'client backend'");
  INFO("terminated " << killed << " control sessions");
  CHECK(std::stoi(killed) >= 2);  // at least each instance's LISTEN session

  REQUIRE(time_until([&] { return connected(*a_proc) == 1 && connected(*b_proc) == 1; }, 10s, 50ms)
              .has_value());
  std::this_thread::sleep_for(500ms);
  // The first change after that goes through, and reaches the other instance within a second.
  (void)set_phase(a, "term_mig", "dual_write");
  const auto ms =
      time_until([&] { return str(get_migration(b, "term_mig"), "phase") == "dual_write"; }, 3s);
  REQUIRE(ms.has_value());
  CHECK(*ms < 1000);
  (void)set_phase(b, "term_mig", "validation");
  const auto back =
      time_until([&] { return str(get_migration(a, "term_mig"), "phase") == "validation"; }, 3s);
  REQUIRE(back.has_value());
  CHECK(*back < 1000);
}

namespace {

// Every process of a cluster (the postmaster, from postmaster.pid, and its children), stopped
// with SIGSTOP until destruction (SIGCONT): a server that no longer answers while its kernel
// still accepts and acknowledges TCP, as a hung host or a silent network path looks.
class FrozenCluster {
 public:
  explicit FrozenCluster(const it::PgCluster& pg) {
    const std::string pid_file = it::read_file(pg.data_dir() + "/postmaster.pid");
    const int postmaster = std::stoi(pid_file.substr(0, pid_file.find('\n')));
    pids_.push_back(postmaster);
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::string stat = it::read_file(entry.path() / "stat");
      const auto close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 2));
      std::string state;
      int ppid = 0;
      rest >> state >> ppid;
      if (ppid == postmaster) pids_.push_back(std::stoi(name));
    }
    for (const int pid : pids_) ::kill(pid, SIGSTOP);
  }
  ~FrozenCluster() { thaw(); }
  FrozenCluster(const FrozenCluster&) = delete;
  FrozenCluster& operator=(const FrozenCluster&) = delete;
  void thaw() {
    for (const int pid : pids_) ::kill(pid, SIGCONT);
    pids_.clear();
  }
  [[nodiscard]] size_t size() const noexcept { return pids_.size(); }

 private:
  std::vector<int> pids_;
};

}  // namespace

TEST_CASE("a control database that stops answering: changes fail within the answer timeout") {
  const auto backend = start_cluster(
      {"CREATE TABLE hung_rows (id int PRIMARY KEY)", "INSERT INTO hung_rows VALUES (1), (2)"});
  const auto control_pg = start_cluster();
  ServeOptions o;
  o.backend = backend->tcp_endpoint();
  o.control_dsn = control_dsn(*control_pg);
  o.config_json = R"({"control_answer_timeout_ms": 2000})";
  const auto proxy = start_pgphase(o);
  const Api api = api_for(*proxy);
  (void)register_migration(api, "hung_mig", "hung_rows", "t_sys_hung_rows");
  (void)set_phase(api, "hung_mig", "dual_write");
  const it::PgConn held = proxy->connect();
  REQUIRE(held.ok());

  FrozenCluster frozen(*control_pg);
  REQUIRE(frozen.size() > 1);
  INFO("pgphase stderr:\n" << proxy->stderr_tail());
  // The phase change waits for the control database at most the answer timeout (2 s) plus the
  // reconnect's connect timeout (5 s), then answers 503; without the timeout it waited forever.
  const auto start = it::Clock::now();
  // (Another control operation, such as the alert engine's, may be waiting the same way first.)
  const it::HttpResponse r = it::http_request(
      proxy->admin_port(), "POST", "/api/v1/migrations/hung_mig/phase",
      {{"Authorization", std::string("Bearer ") + kToken}}, R"({"phase": "validation"})", 40s);
  const auto ms = it::elapsed_ms(start);
  INFO(describe(r));
  CHECK(r.status == 503);
  CHECK(ms < 25000);
  CHECK(time_until([&] { return connected(*proxy) == 0; }, 10s, 100ms).has_value());
  // Clients are not held up: the data path does not wait for the control database.
  CHECK(held.scalar("SELECT count(*) FROM hung_rows") == "2");
  const it::PgConn fresh = proxy->connect();
  REQUIRE(fresh.ok());
  CHECK(fresh.scalar("SELECT max(id) FROM hung_rows") == "2");
  // GETs answer from the last state pgphase has.
  const it::HttpResponse list = api.get("/api/v1/migrations");
  INFO(describe(list));
  REQUIRE(list.status == 200);
  const json::object now = body_object(list);
  REQUIRE(arr(now, "migrations").size() == 1);
  CHECK(str(arr(now, "migrations").at(0).as_object(), "phase") == "dual_write");

  frozen.thaw();
  const auto back = time_until(
      [&] {
        return api.post("/api/v1/migrations/hung_mig/phase", R"({"phase": "validation"})").status ==
               200;
      },
      30s, 250ms);
  REQUIRE(back.has_value());
  CHECK(str(get_migration(api, "hung_mig"), "phase") == "validation");
  CHECK(control_conn(*control_pg)
            .scalar("SELECT phase FROM t_sys_migrations WHERE migration_id = 'hung_mig'") ==
        "validation");
  CHECK(proxy->running());
}
