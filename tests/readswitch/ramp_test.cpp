// Progressive ramp: steps are taken only after a full healthy, conclusive window; a step whose
// checks fail rolls back instead of advancing; pause holds the ramp, resume continues it, promote
// takes the next step now (and is refused when not active).
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "rs_setup.h"

using namespace pgphase;
using namespace pgphase::rs;

namespace {

double percentage(const Env& e, const std::string& sw) {
  return num(get_switch(e.stack.api, sw), "switch_percentage");
}

// Reads `table` continuously through pgphase until stopped.
class Reader {
 public:
  Reader(const Env& e, std::string table)
      : thread_([&e, this, table] {
          const it::PgConn c = e.proxied();
          while (!stop_) (void)c.exec("SELECT side FROM " + table + " WHERE id = 7");
        }) {}
  ~Reader() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("ramp: healthy windows advance step by step; pause, resume and promote") {
  Env& e = env();
  setup_switch(e, "rs_ramp", "gradual", 0,
               {{"steps", json::array{20, 50, 100}},
                {"step_interval", 1},
                {"window_seconds", 2},
                {"min_samples", 5}});
  Reader reader(e, "rs_ramp");
  const auto at20 = time_until([&] { return percentage(e, "rs_ramp_sw") == 20; },
                               std::chrono::seconds(10), std::chrono::milliseconds(50));
  REQUIRE(at20.has_value());
  const auto at50 = time_until([&] { return percentage(e, "rs_ramp_sw") == 50; },
                               std::chrono::seconds(10), std::chrono::milliseconds(50));
  REQUIRE(at50.has_value());
  WARN("0 -> 20% after " << *at20 << " ms; 20 -> 50% after " << *at50
                         << " ms more (a full healthy 2 s window at 20%)");
  CHECK(*at50 >= 1500);

  const it::HttpResponse p = e.stack.api.post("/api/v1/switches/rs_ramp_sw/pause", "{}");
  REQUIRE(p.status == 200);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  CHECK(percentage(e, "rs_ramp_sw") == 50);  // held
  CHECK(e.stack.api.post("/api/v1/switches/rs_ramp_sw/promote", "{}").status == 409);
  REQUIRE(e.stack.api.post("/api/v1/switches/rs_ramp_sw/resume", "{}").status == 200);
  const it::HttpResponse pr = e.stack.api.post("/api/v1/switches/rs_ramp_sw/promote", "{}");
  INFO(describe(pr));
  REQUIRE(pr.status == 200);
  CHECK(percentage(e, "rs_ramp_sw") == 100);
  CHECK(e.stack.api.post("/api/v1/switches/rs_ramp_sw/promote", "{}").status == 409);  // last
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_read_switch_history WHERE config_id = "
                        "'rs_ramp_sw' AND actor = 'auto-ramp'") == "2");
}

TEST_CASE("ramp: a step whose checks fail is rolled back, never passed") {
  Env& e = env();
  setup_switch(e, "rs_rampfail", "gradual", 0,
               {{"steps", json::array{30, 60}},
                {"step_interval", 1},
                {"window_seconds", 3},
                {"min_samples", 5}});
  e.direct.exec_ok("ALTER TABLE t_sys_rs_rampfail RENAME COLUMN side TO gone");
  Reader reader(e, "rs_rampfail");
  const auto rolled = time_until(
      [&] { return str(get_switch(e.stack.api, "rs_rampfail_sw"), "status") == "rolled_back"; },
      std::chrono::seconds(10), std::chrono::milliseconds(50));
  REQUIRE(rolled.has_value());
  CHECK(percentage(e, "rs_rampfail_sw") == 0);
  CHECK(e.direct.scalar("SELECT coalesce(max(to_percentage), 0) FROM t_sys_read_switch_history "
                        "WHERE config_id = 'rs_rampfail_sw'") == "30");
  e.direct.exec_ok("ALTER TABLE t_sys_rs_rampfail RENAME COLUMN gone TO side");
}
