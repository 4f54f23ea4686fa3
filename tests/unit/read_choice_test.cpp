// intercept/read_choice: the side a routed read goes to under each read-switch strategy.
#include "intercept/read_choice.h"

#include <catch2/catch.hpp>

#include "users_migration.h"

using namespace pgphase;
using intercept::ReadChooser;
using intercept::SessionIdentity;
using migration::SwitchStrategy;

namespace {

std::shared_ptr<const router::RoutingTable> table(
    migration::Phase phase, SwitchStrategy strategy = SwitchStrategy::kGradual,
    double percentage = 0, std::string conditions = "{}") {
  migration::Snapshot s = test::with_users_switch(test::users_snapshot(phase, 1), percentage);
  s.switches.back().strategy = strategy;
  s.switches.back().conditions_json = std::move(conditions);
  return router::RoutingTable::build(s, "app");
}

// A plan whose reads follow migration users_mig.
router::QueryPlan read_plan() {
  router::QueryPlan p;
  p.route_ids = {"users_mig"};
  p.read_route = 0;
  return p;
}

SessionIdentity user(std::string name, std::string app = {}) {
  return {std::move(name), std::move(app), "10.0.0.1"};
}

}  // namespace

TEST_CASE("routes by migration id") {
  const auto t = table(migration::Phase::kReadSwitch);
  REQUIRE(intercept::route_by_id(t.get(), "users_mig") != nullptr);
  const router::SharedId& id = intercept::route_by_id(t.get(), "users_mig")->read_switch.config_id;
  REQUIRE(id != nullptr);
  CHECK(*id == "users_sw");
  CHECK(intercept::route_by_id(t.get(), "other") == nullptr);
  CHECK(intercept::route_by_id(nullptr, "users_mig") == nullptr);
}

TEST_CASE("a plan without routed reads, or an unknown route: not a read") {
  ReadChooser c(user("app"), 1);
  const auto t = table(migration::Phase::kReadSwitch, SwitchStrategy::kImmediate, 100);
  CHECK_FALSE(c.choose(router::QueryPlan{}, t.get()).read);
  CHECK_FALSE(c.choose(read_plan(), nullptr).read);
}

TEST_CASE("cleanup reads the target always, uncounted; before read_switch the source") {
  ReadChooser c(user("app"), 1);
  const auto cleanup = c.choose(read_plan(), table(migration::Phase::kCleanup).get());
  CHECK(cleanup.read);
  CHECK(cleanup.target);
  CHECK(cleanup.config_id == nullptr);
  const auto dual = c.choose(read_plan(), table(migration::Phase::kDualWrite).get());
  CHECK(dual.read);
  CHECK_FALSE(dual.target);
}

TEST_CASE("immediate and gradual switches: the percentage decides") {
  ReadChooser c(user("app"), 12345);
  for (double pct : {0.0, 100.0}) {
    for (auto strategy : {SwitchStrategy::kImmediate, SwitchStrategy::kGradual}) {
      const auto t = table(migration::Phase::kReadSwitch, strategy, pct);
      for (int i = 0; i < 50; ++i) {
        const auto r = c.choose(read_plan(), t.get());
        CHECK(r.read);
        CHECK((r.config_id && *r.config_id == "users_sw"));
        CHECK(r.target == (pct == 100.0));
      }
    }
  }
  // Gradual at 50%: both sides over many draws.
  const auto half = table(migration::Phase::kReadSwitch, SwitchStrategy::kGradual, 50);
  int target = 0;
  for (int i = 0; i < 1000; ++i) target += c.choose(read_plan(), half.get()).target ? 1 : 0;
  CHECK(target > 300);
  CHECK(target < 700);
}

TEST_CASE("sticky: the same session always on the same side; 100% moves every session") {
  const auto half = table(migration::Phase::kReadSwitch, SwitchStrategy::kSticky, 50);
  int target = 0;
  for (int u = 0; u < 200; ++u) {
    ReadChooser a(user("user" + std::to_string(u)), 1);
    ReadChooser b(user("user" + std::to_string(u)), 999);  // another draw state: same answer
    const bool side = a.choose(read_plan(), half.get()).target;
    for (int i = 0; i < 5; ++i) CHECK(a.choose(read_plan(), half.get()).target == side);
    CHECK(b.choose(read_plan(), half.get()).target == side);
    target += side ? 1 : 0;
  }
  CHECK(target > 0);
  CHECK(target < 200);
  const auto all = table(migration::Phase::kReadSwitch, SwitchStrategy::kSticky, 100);
  CHECK(ReadChooser(user("anyone"), 1).choose(read_plan(), all.get()).target);

  // By application_name when the switch says so.
  const auto by_app = table(migration::Phase::kReadSwitch, SwitchStrategy::kSticky, 50,
                            R"({"sticky_key": "application_name"})");
  const auto& sw = intercept::route_by_id(by_app.get(), "users_mig")->read_switch;
  CHECK(ReadChooser(user("u1", "app"), 1).sticky_target(sw) ==
        ReadChooser(user("u2", "app"), 1).sticky_target(sw));
}

TEST_CASE("canary: only the listed users and applications read the target") {
  const auto t = table(migration::Phase::kReadSwitch, SwitchStrategy::kCanary, 10,
                       R"({"canary_users": ["alice"], "canary_application_names": ["beta"]})");
  CHECK(ReadChooser(user("alice"), 1).choose(read_plan(), t.get()).target);
  CHECK(ReadChooser(user("bob", "beta"), 1).choose(read_plan(), t.get()).target);
  CHECK_FALSE(ReadChooser(user("bob", "prod"), 1).choose(read_plan(), t.get()).target);
  const auto off = table(migration::Phase::kReadSwitch, SwitchStrategy::kCanary, 0,
                         R"({"canary_users": ["alice"]})");
  CHECK_FALSE(ReadChooser(user("alice"), 1).choose(read_plan(), off.get()).target);
}

TEST_CASE("shadow: answered from the source, compared at the percentage") {
  ReadChooser c(user("app"), 7);
  const auto all = table(migration::Phase::kReadSwitch, SwitchStrategy::kShadow, 100);
  const auto none = table(migration::Phase::kReadSwitch, SwitchStrategy::kShadow, 0);
  for (int i = 0; i < 20; ++i) {
    const auto r = c.choose(read_plan(), all.get());
    CHECK_FALSE(r.target);
    CHECK(r.shadow);
    CHECK_FALSE(c.choose(read_plan(), none.get()).shadow);
  }
}
