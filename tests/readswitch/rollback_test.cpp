// Automatic and manual rollback of read switches: real target errors (a column renamed away on
// the target) and real latency (a lock held on the target) roll the switch back within about a
// second, logged with the reasons; a window with too few reads is inconclusive; check-rollback
// on demand; a manual rollback reaches a second pgphase within a second.
#include <catch2/catch.hpp>
#include <thread>

#include "rs_setup.h"

using namespace pgphase;
using namespace pgphase::rs;

namespace {

std::string status_of(const Env& e, const std::string& sw) {
  return str(get_switch(e.stack.api, sw), "status");
}

json::object check(const Env& e, const std::string& sw) {
  const it::HttpResponse r = e.stack.api.post("/api/v1/switches/" + sw + "/check-rollback", "{}");
  INFO(describe(r));
  REQUIRE(r.status == 200);
  return body_object(r);
}

}  // namespace

TEST_CASE("target errors roll the switch back within a second, with the reason logged") {
  Env& e = env();
  setup_switch(e, "rs_err", "gradual", 50, {{"min_samples", 10}, {"window_seconds", 10}});
  // Inconclusive first: one failing target read is not enough evidence.
  e.direct.exec_ok("ALTER TABLE t_sys_rs_err RENAME COLUMN side TO side_gone");
  const it::PgConn c = e.proxied();
  int errors = 0;
  // Reads are routed at random (50%): 40 tries all staying on the source has odds of 2^-40.
  for (int i = 0; i < 40 && errors == 0; ++i) {
    if (!c.exec("SELECT side FROM rs_err WHERE id = 1").ok()) ++errors;
  }
  REQUIRE(errors == 1);
  const json::object early = check(e, "rs_err_sw");
  CHECK(early.at("inconclusive").as_bool());
  CHECK_FALSE(early.at("rolled_back").as_bool());
  CHECK(status_of(e, "rs_err_sw") == "active");

  // Enough failing target reads: the checker rolls back on its own.
  for (int i = 0; i < 60; ++i)
    (void)c.exec("SELECT side FROM rs_err WHERE id = " + std::to_string(i % 50 + 1));
  const auto took = time_until([&] { return status_of(e, "rs_err_sw") == "rolled_back"; },
                               std::chrono::seconds(5), std::chrono::milliseconds(50));
  REQUIRE(took.has_value());
  WARN("rolled back " << *took << " ms after the last failing read");
  CHECK(*took < 1500);
  CHECK(num(get_switch(e.stack.api, "rs_err_sw"), "switch_percentage") == 0);
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_migration_logs WHERE migration_id = "
                        "'rs_err_mig' AND message LIKE '%auto-rollback: target error rate%'") ==
        "1");
  // Every read now stays on the source.
  for (int i = 0; i < 20; ++i) CHECK(c.scalar("SELECT side FROM rs_err WHERE id = 2") == "S");
  e.direct.exec_ok("ALTER TABLE t_sys_rs_err RENAME COLUMN side_gone TO side");
}

TEST_CASE("target latency above the threshold rolls the switch back") {
  Env& e = env();
  setup_switch(e, "rs_lat", "immediate", 100,
               {{"latency_threshold", 200}, {"min_samples", 4}, {"window_seconds", 20}});
  it::PgConn locker = e.direct.get() != nullptr ? control_conn(*e.stack.pg) : it::PgConn();
  locker.exec_ok("BEGIN");
  locker.exec_ok("LOCK TABLE t_sys_rs_lat IN ACCESS EXCLUSIVE MODE");
  std::vector<std::thread> readers;
  std::atomic<int> done{0};
  for (int i = 0; i < 5; ++i) {
    readers.emplace_back([&] {
      const it::PgConn c = e.proxied();
      if (c.scalar("SELECT side FROM rs_lat WHERE id = 1") == "T") ++done;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  locker.exec_ok("COMMIT");
  for (auto& t : readers) t.join();
  CHECK(done == 5);
  const auto took = time_until([&] { return status_of(e, "rs_lat_sw") == "rolled_back"; },
                               std::chrono::seconds(5), std::chrono::milliseconds(50));
  REQUIRE(took.has_value());
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_migration_logs WHERE migration_id = "
                        "'rs_lat_mig' AND message LIKE '%target p95 latency%'") == "1");
}

TEST_CASE("a healthy switch is not rolled back; a manual rollback reaches a second pgphase") {
  Env& e = env();
  setup_switch(e, "rs_two", "immediate", 100, {{"min_samples", 5}});
  ServeOptions o = serve_on(*e.stack.pg);
  const auto second = start_pgphase(o);
  const it::PgConn c2 = it::PgConn::connect(second->conninfo(kControlDb, "postgres", "", ""));
  REQUIRE(c2.ok());
  const auto on_target =
      time_until([&] { return c2.scalar("SELECT side FROM rs_two WHERE id = 1") == "T"; },
                 std::chrono::seconds(5), std::chrono::milliseconds(20));
  REQUIRE(on_target.has_value());
  const it::PgConn c = e.proxied();
  for (int i = 0; i < 20; ++i) CHECK(c.scalar("SELECT side FROM rs_two WHERE id = 3") == "T");
  const json::object healthy = check(e, "rs_two_sw");
  CHECK_FALSE(healthy.at("breach").as_bool());
  CHECK_FALSE(healthy.at("inconclusive").as_bool());
  CHECK(status_of(e, "rs_two_sw") == "active");

  const it::RunResult rb =
      cli({"switch", "rollback", "--config-id", "rs_two_sw", "--reason", "drill", "--admin-url",
           "http://127.0.0.1:" + std::to_string(e.stack.proxy->admin_port())});
  INFO(rb.describe());
  REQUIRE(rb.ok());
  const auto moved =
      time_until([&] { return c2.scalar("SELECT side FROM rs_two WHERE id = 1") == "S"; },
                 std::chrono::seconds(5), std::chrono::milliseconds(10));
  REQUIRE(moved.has_value());
  WARN("the second pgphase read the source " << *moved << " ms after the rollback");
  CHECK(*moved < 1000);
  // Safe to repeat.
  CHECK(cli({"switch", "rollback", "--config-id", "rs_two_sw", "--admin-url",
             "http://127.0.0.1:" + std::to_string(e.stack.proxy->admin_port())})
            .ok());
  const it::RunResult cr =
      cli({"switch", "check-rollback", "--config-id", "rs_two_sw", "--admin-url",
           "http://127.0.0.1:" + std::to_string(e.stack.proxy->admin_port())});
  INFO(cr.describe());
  CHECK(cr.ok());
  CHECK(e.stack.api.post("/api/v1/switches/nope/check-rollback", "{}").status == 404);
  stop_pgphase(*second);
}

TEST_CASE("a consistency score below the threshold rolls the switch back") {
  Env& e = env();
  setup_switch(e, "rs_cons", "immediate", 100, {{"consistency_threshold", 0.99}});
  insert_check(e.direct, "rs_cons_mig", 0.999);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CHECK(status_of(e, "rs_cons_sw") == "active");  // healthy score: nothing happens
  insert_check(e.direct, "rs_cons_mig", 0.95);
  const auto took = time_until([&] { return status_of(e, "rs_cons_sw") == "rolled_back"; },
                               std::chrono::seconds(5), std::chrono::milliseconds(50));
  REQUIRE(took.has_value());
  CHECK(*took < 1500);
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_migration_logs WHERE migration_id = "
                        "'rs_cons_mig' AND message LIKE '%consistency score 0.95 below 0.99%'") ==
        "1");
}
