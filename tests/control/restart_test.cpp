// Persistence: state and logs survive a restart of pgphase (SIGTERM, then a new process on the
// same control database), and the schema setup is idempotent.
#include <catch2/catch.hpp>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

TEST_CASE("state and logs survive SIGTERM and a new pgphase on the same control database") {
  const auto pg = start_cluster();
  auto first = start_pgphase(serve_on(*pg));
  const Api a = api_for(*first).as("persist_actor");
  (void)register_migration(a, "persist_mig", "persist", "t_sys_persist",
                           {{"consistency_level", "eventual"}, {"auto_switch_threshold", 0.9}});
  (void)set_phase(a, "persist_mig", "dual_write");
  (void)set_phase(a, "persist_mig", "validation");
  expect_error(a.post("/api/v1/migrations/persist_mig/phase", R"({"phase": "completed"})"), 409);
  (void)set_phase(a, "persist_mig", "read_switch", true);
  (void)register_switch(a, "persist_sw", "persist", "persist_mig");
  REQUIRE(a.post("/api/v1/switches/persist_sw/activate").status == 200);
  (void)set_percentage(a, "persist_sw", 35, "canary");

  const json::object mig_before = get_migration(a, "persist_mig");
  const json::object sw_before = get_switch(a, "persist_sw");
  const std::string analytics_before = a.get("/api/v1/switches/persist_sw/analytics").body;
  const std::string list_before = a.get("/api/v1/migrations").body;
  REQUIRE(arr(mig_before, "logs").size() >= 5);

  const std::string schema_rows =
      control_conn(*pg).scalar("SELECT count(*) FROM t_sys_schema_version");
  CHECK(schema_rows != "0");
  stop_pgphase(*first);
  first.reset();

  for (int round = 1; round <= 2; ++round) {
    INFO("restart " << round);
    auto next = start_pgphase(serve_on(*pg));
    const Api b = api_for(*next);
    const json::object mig = get_migration(b, "persist_mig");
    CHECK(json::serialize(mig) == json::serialize(mig_before));
    CHECK(str(mig, "phase") == "read_switch");
    CHECK(str(mig, "consistency_level") == "eventual");
    CHECK(num(mig, "auto_switch_threshold") == Approx(0.9));
    const json::object sw = get_switch(b, "persist_sw");
    CHECK(json::serialize(sw) == json::serialize(sw_before));
    CHECK(num(sw, "switch_percentage") == 35);
    CHECK(str(sw, "status") == "active");
    CHECK(parse_json(b.get("/api/v1/switches/persist_sw/analytics").body) ==
          parse_json(analytics_before));
    CHECK(parse_json(b.get("/api/v1/migrations").body) == parse_json(list_before));
    CHECK(metric_phase(it::scrape_metrics(next->admin_port()), "persist_mig") == "read_switch");
    // Still a working control plane after the restart.
    if (round == 2) {
      (void)set_percentage(b, "persist_sw", 100, "done");
      (void)set_phase(b, "persist_mig", "cleanup");
    }
    stop_pgphase(*next);
  }

  const it::PgConn control = control_conn(*pg);
  CHECK(control.scalar("SELECT phase FROM t_sys_migrations WHERE migration_id = 'persist_mig'") ==
        "cleanup");
  CHECK(control.scalar("SELECT count(*) FROM t_sys_schema_version") == schema_rows);
  CHECK(std::stoi(control.scalar("SELECT count(*) FROM t_sys_migration_logs WHERE migration_id = "
                                 "'persist_mig' AND status = 'refused'")) == 1);
}
