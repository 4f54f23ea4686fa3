// Shadow: clients are answered from the source; pgphase compares the same read (with its
// parameters) on both tables in one REPEATABLE READ snapshot off the client's path, counts
// mismatches, keeps a sample, and a mismatch rolls the switch back.
#include <catch2/catch.hpp>
#include <thread>

#include "rs_setup.h"

using namespace pgphase;
using namespace pgphase::rs;

TEST_CASE("shadow: equal tables compare equal; a differing row is caught and rolls back") {
  Env& e = env();
  setup_switch(e, "rs_shadow", "shadow", 100, {{"min_samples", 5}});
  e.direct.exec_ok("UPDATE t_sys_rs_shadow SET side = 'S'");  // the copy equals the source
  const it::PgConn c = e.proxied();
  const it::PgResult p(
      PQprepare(c.get(), "q", "SELECT side, v FROM rs_shadow WHERE id = $1", 0, nullptr));
  REQUIRE(p.ok());
  for (int i = 1; i <= 20; ++i) {
    const std::string id = std::to_string(i);
    const char* v[1] = {id.c_str()};
    const it::PgResult r(PQexecPrepared(c.get(), "q", 1, v, nullptr, nullptr, 0));
    CHECK(r.value(0, 0) == "S");
  }
  CHECK(c.scalar("SELECT count(*) FROM rs_shadow WHERE v > 10") == "90");  // simple protocol
  auto live = [&] {
    const it::HttpResponse a = e.stack.api.get("/api/v1/switches/rs_shadow_sw/analytics");
    REQUIRE(a.status == 200);
    return body_object(a);
  };
  const auto compared = time_until(
      [&] {
        return live()
                   .at("live")
                   .as_object()
                   .at("since_activation")
                   .as_object()
                   .at("shadow")
                   .as_object()
                   .at("comparisons")
                   .to_number<double>() >= 21;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(50));
  REQUIRE(compared.has_value());
  json::object shadow =
      live().at("live").as_object().at("since_activation").as_object().at("shadow").as_object();
  CHECK(shadow.at("mismatches").to_number<double>() == 0);
  CHECK(str(get_switch(e.stack.api, "rs_shadow_sw"), "status") == "active");

  // One row differs on the target: the client still reads the source; the shadow sees it.
  e.direct.exec_ok("UPDATE t_sys_rs_shadow SET v = -1 WHERE id = 5");
  const char* five[1] = {"5"};
  const it::PgResult r(PQexecPrepared(c.get(), "q", 1, five, nullptr, nullptr, 0));
  CHECK(r.value(0, 1) == "5");
  const auto rolled = time_until(
      [&] { return str(get_switch(e.stack.api, "rs_shadow_sw"), "status") == "rolled_back"; },
      std::chrono::seconds(5), std::chrono::milliseconds(50));
  REQUIRE(rolled.has_value());
  const json::object after = live();
  shadow = after.at("live").as_object().at("since_activation").as_object().at("shadow").as_object();
  CHECK(shadow.at("mismatches").to_number<double>() == 1);
  const auto& samples = after.at("shadow_mismatch_samples").as_array();
  REQUIRE(samples.size() == 1);
  CHECK(std::string(samples[0].as_string()).find("FROM rs_shadow WHERE id = $1") !=
        std::string::npos);
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_migration_logs WHERE migration_id = "
                        "'rs_shadow_mig' AND message LIKE '%shadow comparisons differ%'") == "1");
}
