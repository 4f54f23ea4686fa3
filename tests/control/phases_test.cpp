// The phase machine through the admin API: the full happy path with its guards (consistency
// check score and age for read_switch, the switch at 100% for cleanup, force), illegal moves
// with a 409 that says why, and every accepted and refused action in t_sys_migration_logs.
#include <catch2/catch.hpp>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

// Checks after each action that exactly one new log entry for the migration appeared, with the
// expected from/to/status/actor, both in the API's logs and in t_sys_migration_logs.
class Journal {
 public:
  Journal(const Api& api, const it::PgConn& control, std::string id)
      : api_(api), control_(control), id_(std::move(id)) {
    catch_up();
  }

  // Moves past whatever is logged so far: after an action on something else (a switch) that may
  // or may not log under this migration.
  void catch_up() {
    const auto logs = api_logs(api_, id_);
    if (!logs.empty()) seen_ = num(logs.back(), "id");
  }

  void expect(const std::string& from, const std::string& to, const std::string& status,
              const std::string& actor) {
    const auto logs = api_logs(api_, id_);
    std::vector<json::object> fresh;
    for (const auto& e : logs) {
      // Only entries about the migration's phase: a rollback may also roll back its switch
      // config, which logs an entry of its own ("to" is then the switch's state).
      const std::string to = str(e, "to");
      if (num(e, "id") > seen_ && std::find(kPhases.begin(), kPhases.end(), to) != kPhases.end()) {
        fresh.push_back(e);
      }
    }
    INFO("expected " << from << " -> " << to << " " << status << " by " << actor);
    INFO("new log entries: " << dump(fresh));
    REQUIRE(fresh.size() == 1);
    const json::object& e = fresh.front();
    CHECK(str(e, "migration_id") == id_);
    CHECK(str(e, "from") == from);
    CHECK(str(e, "to") == to);
    CHECK(str(e, "status") == status);
    CHECK(str(e, "actor") == actor);
    CHECK_FALSE(str(e, "action").empty());
    CHECK_FALSE(str(e, "created_at").empty());
    seen_ = num(e, "id");
    const it::PgResult row =
        control_.exec_params("SELECT actor, status FROM t_sys_migration_logs WHERE id = $1",
                             {std::to_string(static_cast<int64_t>(seen_))});
    INFO(row.describe());
    REQUIRE(row.ok());
    REQUIRE(row.rows() == 1);
    CHECK(row.value(0, 0) == actor);
    CHECK(row.value(0, 1) == status);
    ++(status == "refused" ? refused_ : accepted_);
  }

  [[nodiscard]] int refused() const { return refused_; }

 private:
  static std::string dump(const std::vector<json::object>& v) {
    std::string out;
    for (const auto& o : v) out += json::serialize(o) + "\n";
    return out;
  }
  const Api& api_;
  const it::PgConn& control_;
  std::string id_;
  double seen_ = 0;
  int refused_ = 0;
  int accepted_ = 0;
};

std::string phase_body(const std::string& phase, bool force = false) {
  return json::serialize(json::object{{"phase", phase}, {"force", force}});
}

// POST .../phase expecting 409; returns the error text.
std::string refused_phase(const Api& api, const std::string& id, const std::string& to) {
  INFO(id << " -> " << to << " as " << api.actor);
  return expect_error(api.post("/api/v1/migrations/" + id + "/phase", phase_body(to)), 409);
}

bool mentions_age(const std::string& why) {
  for (const char* w : {"old", "age", "stale", "expired", "younger", "1800"}) {
    if (it::icontains(why, w)) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("happy path preparation -> completed with every guard, logged with actors") {
  Stack& s = shared_stack();
  const it::PgConn control = control_conn(*s.pg);
  const Api alice = s.api.as("alice"), bob = s.api.as("bob"), carol = s.api.as("carol");
  const Api dave = s.api.as("dave"), erin = s.api.as("erin"), nobody = s.api.as("");
  (void)register_migration(alice, "orders_mig", "orders", "t_sys_orders");
  Journal j(s.api, control, "orders_mig");

  // Illegal from preparation: skips, staying put, rollback.
  std::string why = refused_phase(alice, "orders_mig", "validation");
  CHECK(it::contains(why, "dual_write"));
  j.expect("preparation", "validation", "refused", "alice");
  why = refused_phase(alice, "orders_mig", "completed");
  j.expect("preparation", "completed", "refused", "alice");
  why = refused_phase(alice, "orders_mig", "preparation");
  CHECK(it::contains(why, "preparation"));
  j.expect("preparation", "preparation", "refused", "alice");
  why = expect_error(bob.post("/api/v1/migrations/orders_mig/rollback"), 409);
  CHECK(it::contains(why, "preparation"));
  j.expect("preparation", "preparation", "refused", "bob");

  // preparation -> dual_write without an actor header: actor "api".
  json::object m = set_phase(nobody, "orders_mig", "dual_write");
  CHECK(flag(m, "dual_write_enabled"));
  CHECK_FALSE(flag(m, "read_from_target"));
  j.expect("preparation", "dual_write", "success", "api");
  CHECK(it::contains(refused_phase(bob, "orders_mig", "preparation"), "rollback"));
  j.expect("dual_write", "preparation", "refused", "bob");
  (void)refused_phase(bob, "orders_mig", "read_switch");
  j.expect("dual_write", "read_switch", "refused", "bob");

  (void)set_phase(carol, "orders_mig", "validation");
  j.expect("dual_write", "validation", "success", "carol");
  CHECK(it::contains(refused_phase(carol, "orders_mig", "dual_write"), "rollback"));
  j.expect("validation", "dual_write", "refused", "carol");

  // read_switch needs a recent consistency check scoring >= auto_switch_threshold (0.99).
  why = refused_phase(carol, "orders_mig", "read_switch");
  CHECK((it::icontains(why, "consistency") || it::icontains(why, "check")));
  CHECK(it::icontains(why, "force"));
  j.expect("validation", "read_switch", "refused", "carol");
  insert_check(control, "orders_mig", 0.995, 2 * 3600);
  why = refused_phase(carol, "orders_mig", "read_switch");
  CHECK(mentions_age(why));
  j.expect("validation", "read_switch", "refused", "carol");
  insert_check(control, "orders_mig", 0.5);
  why = refused_phase(carol, "orders_mig", "read_switch");
  CHECK(it::contains(why, "0.5"));
  CHECK(it::contains(why, "0.99"));
  j.expect("validation", "read_switch", "refused", "carol");
  insert_check(control, "orders_mig", 0.995);
  m = set_phase(dave, "orders_mig", "read_switch");
  CHECK(flag(m, "dual_write_enabled"));
  j.expect("validation", "read_switch", "success", "dave");

  // cleanup needs the table's switch config active at 100%.
  why = refused_phase(dave, "orders_mig", "cleanup");
  CHECK(it::icontains(why, "switch"));
  j.expect("read_switch", "cleanup", "refused", "dave");
  const Api ops = s.api.as("switch_ops");
  (void)register_switch(ops, "orders_switch", "orders", "orders_mig");
  j.catch_up();
  (void)refused_phase(dave, "orders_mig", "cleanup");
  j.expect("read_switch", "cleanup", "refused", "dave");
  REQUIRE(ops.post("/api/v1/switches/orders_switch/activate").status == 200);
  j.catch_up();
  (void)refused_phase(dave, "orders_mig", "cleanup");
  j.expect("read_switch", "cleanup", "refused", "dave");
  (void)set_percentage(ops, "orders_switch", 50);
  j.catch_up();
  CHECK(it::contains(refused_phase(dave, "orders_mig", "cleanup"), "100"));
  j.expect("read_switch", "cleanup", "refused", "dave");
  (void)set_percentage(ops, "orders_switch", 100);
  j.catch_up();
  m = set_phase(erin, "orders_mig", "cleanup");
  CHECK(flag(m, "read_from_target"));
  j.expect("read_switch", "cleanup", "success", "erin");
  CHECK(it::contains(refused_phase(erin, "orders_mig", "read_switch"), "rollback"));
  j.expect("cleanup", "read_switch", "refused", "erin");

  // The manual's cleanup step: disable-dual-write, allowed in cleanup without force.
  const it::HttpResponse off =
      erin.post("/api/v1/migrations/orders_mig/dual-write", R"({"enabled": false})");
  INFO(describe(off));
  REQUIRE(off.status == 200);
  CHECK_FALSE(flag(body_object(off), "dual_write_enabled"));
  j.catch_up();

  m = set_phase(erin, "orders_mig", "completed");
  CHECK_FALSE(flag(m, "dual_write_enabled"));
  CHECK(flag(m, "read_from_target"));
  j.expect("cleanup", "completed", "success", "erin");
  CHECK(it::contains(
      expect_error(s.api.as("frank").post("/api/v1/migrations/orders_mig/rollback"), 409),
      "completed"));
  j.expect("completed", "preparation", "refused", "frank");
  (void)refused_phase(s.api.as("frank"), "orders_mig", "cleanup");
  j.expect("completed", "cleanup", "refused", "frank");

  // The log table itself: every refusal, every actor, and the switch changes (actor switch_ops).
  CHECK(control.scalar("SELECT count(*) FROM t_sys_migration_logs WHERE migration_id = "
                       "'orders_mig' AND status = 'refused'") == std::to_string(j.refused()));
  CHECK(control.scalar("SELECT string_agg(DISTINCT actor, ',' ORDER BY actor) FROM "
                       "t_sys_migration_logs WHERE migration_id = 'orders_mig' AND actor <> "
                       "'switch_ops'") == "alice,api,bob,carol,dave,erin,frank");
  CHECK(control.scalar("SELECT count(*) FROM t_sys_migration_logs WHERE actor = 'switch_ops'") ==
        "4");
}

TEST_CASE("force overrides the consistency guard; rollback from every allowed phase") {
  Stack& s = shared_stack();
  const it::PgConn control = control_conn(*s.pg);
  const Api gina = s.api.as("gina");
  (void)register_migration(gina, "force_mig", "items", "t_sys_items");
  Journal j(s.api, control, "force_mig");

  (void)set_phase(gina, "force_mig", "dual_write");
  j.expect("preparation", "dual_write", "success", "gina");
  const std::string rollback = "/api/v1/migrations/force_mig/rollback";
  const auto roll = [&](const std::string& from) {
    const it::HttpResponse r = gina.post(rollback, R"({"reason": "drill"})");
    INFO("rollback from " << from << ": " << describe(r));
    REQUIRE(r.status == 200);
    const json::object m = body_object(r);
    CHECK(str(m, "phase") == "preparation");
    CHECK_FALSE(flag(m, "dual_write_enabled"));
    CHECK_FALSE(flag(m, "read_from_target"));
    j.expect(from, "preparation", "success", "gina");
  };
  roll("dual_write");

  (void)set_phase(gina, "force_mig", "dual_write");
  j.expect("preparation", "dual_write", "success", "gina");
  (void)set_phase(gina, "force_mig", "validation");
  j.expect("dual_write", "validation", "success", "gina");
  roll("validation");

  (void)set_phase(gina, "force_mig", "dual_write");
  j.expect("preparation", "dual_write", "success", "gina");
  (void)set_phase(gina, "force_mig", "validation");
  j.expect("dual_write", "validation", "success", "gina");
  insert_check(control, "force_mig", 0.5);
  (void)refused_phase(gina, "force_mig", "read_switch");
  j.expect("validation", "read_switch", "refused", "gina");
  (void)set_phase(gina, "force_mig", "read_switch", true);
  j.expect("validation", "read_switch", "success", "gina");
  roll("read_switch");

  advance_to(gina, "force_mig", "read_switch");
  j.catch_up();
  (void)register_switch(gina, "items_switch", "items", "force_mig");
  REQUIRE(gina.post("/api/v1/switches/items_switch/activate").status == 200);
  (void)set_percentage(gina, "items_switch", 100);
  j.catch_up();
  (void)set_phase(gina, "force_mig", "cleanup");
  j.expect("read_switch", "cleanup", "success", "gina");
  roll("cleanup");
}

TEST_CASE("rollback with rollback_enabled=false is refused, saying so") {
  Stack& s = shared_stack();
  const it::PgConn control = control_conn(*s.pg);
  (void)register_migration(s.api, "norb_mig", "norb", "t_sys_norb", {{"rollback_enabled", false}});
  Journal j(s.api, control, "norb_mig");
  (void)set_phase(s.api, "norb_mig", "dual_write");
  j.expect("preparation", "dual_write", "success", "tester");
  const std::string why = expect_error(s.api.post("/api/v1/migrations/norb_mig/rollback"), 409);
  CHECK(it::contains(why, "rollback_enabled"));
  j.expect("dual_write", "preparation", "refused", "tester");
  CHECK(str(get_migration(s.api, "norb_mig"), "phase") == "dual_write");
}

TEST_CASE("enable-dual-write moves to dual_write; disable needs force before cleanup") {
  Stack& s = shared_stack();
  const std::string dual = "/api/v1/migrations/dw_mig/dual-write";
  (void)register_migration(s.api, "dw_mig", "dw", "t_sys_dw");
  const it::HttpResponse on = s.api.post(dual, R"({"enabled": true})");
  INFO(describe(on));
  REQUIRE(on.status == 200);
  CHECK(str(body_object(on), "phase") == "dual_write");
  CHECK(flag(body_object(on), "dual_write_enabled"));
  const std::string why = expect_error(s.api.post(dual, R"({"enabled": false})"), 409);
  CHECK(it::icontains(why, "force"));
  CHECK(flag(get_migration(s.api, "dw_mig"), "dual_write_enabled"));
  const it::HttpResponse off = s.api.post(dual, R"({"enabled": false, "force": true})");
  INFO(describe(off));
  REQUIRE(off.status == 200);
  CHECK_FALSE(flag(body_object(off), "dual_write_enabled"));
  // Every accepted change bumps the version by one; the refusal did not.
  CHECK(num(body_object(off), "version") == num(body_object(on), "version") + 1);
}

TEST_CASE("read_switch uses the migration's own threshold and max_check_age_seconds") {
  Stack& s = shared_stack();
  const it::PgConn control = control_conn(*s.pg);
  (void)register_migration(s.api, "thr_mig", "thr", "t_sys_thr", {{"auto_switch_threshold", 0.9}});
  advance_to(s.api, "thr_mig", "validation");
  insert_check(control, "thr_mig", 0.89);
  CHECK(it::contains(refused_phase(s.api, "thr_mig", "read_switch"), "0.9"));
  insert_check(control, "thr_mig", 0.9);  // "at least": the threshold itself is enough
  (void)set_phase(s.api, "thr_mig", "read_switch");

  // A pgphase with max_check_age_seconds = 60 on the same control database.
  ServeOptions o = serve_on(*s.pg);
  o.config_json = R"({"max_check_age_seconds": 60})";
  const auto strict = start_pgphase(o);
  const Api api = api_for(*strict);
  (void)register_migration(api, "age_mig", "age", "t_sys_age");
  advance_to(api, "age_mig", "validation");
  insert_check(control, "age_mig", 1.0, 120);
  CHECK(mentions_age(refused_phase(api, "age_mig", "read_switch")));
  insert_check(control, "age_mig", 1.0, 30);
  (void)set_phase(api, "age_mig", "read_switch");
}

TEST_CASE("a switch config without migration_id belongs to the migration of its table") {
  Stack& s = shared_stack();
  const it::PgConn control = control_conn(*s.pg);
  (void)register_migration(s.api, "bytable_mig", "public.bytable", "t_sys_bytable");
  advance_to(s.api, "bytable_mig", "read_switch");
  const it::HttpResponse r =
      s.api.post("/api/v1/switches",
                 R"({"config_id": "bytable_sw", "table_name": "bytable", "strategy": "gradual"})");
  INFO(describe(r));
  REQUIRE(r.status == 201);
  (void)refused_phase(s.api, "bytable_mig", "cleanup");
  REQUIRE(s.api.post("/api/v1/switches/bytable_sw/activate").status == 200);
  (void)set_percentage(s.api, "bytable_sw", 100);
  (void)set_phase(s.api, "bytable_mig", "cleanup");
}

TEST_CASE("force overrides only the consistency guard: no skipping, no going back") {
  Stack& s = shared_stack();
  const auto forced = [&](const std::string& id, const std::string& to) {
    INFO(id << " -> " << to << " with force");
    return expect_error(s.api.post("/api/v1/migrations/" + id + "/phase", phase_body(to, true)),
                        409);
  };
  (void)register_migration(s.api, "forcelim_mig", "forcelim", "t_sys_forcelim");
  (void)forced("forcelim_mig", "validation");
  (void)forced("forcelim_mig", "completed");
  advance_to(s.api, "forcelim_mig", "validation");
  (void)forced("forcelim_mig", "dual_write");
  (void)forced("forcelim_mig", "cleanup");
  advance_to(s.api, "forcelim_mig", "read_switch");
  CHECK(it::icontains(forced("forcelim_mig", "cleanup"), "switch"));
  CHECK(str(get_migration(s.api, "forcelim_mig"), "phase") == "read_switch");
}
