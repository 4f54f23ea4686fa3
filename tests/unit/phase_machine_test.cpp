#include "migration/phase_machine.h"

#include <catch2/catch.hpp>
#include <string>

namespace pgphase::migration {
namespace {

Migration in(Phase p) {
  Migration m;
  m.migration_id = "users_table_migration";
  m.source_table = "users";
  m.target_table = "t_sys_users";
  m.phase = p;
  const PhaseFlags f = flags_for(p);
  m.dual_write_enabled = f.dual_write_enabled;
  m.read_from_target = f.read_from_target;
  return m;
}

// Facts under which every guard is satisfied: a fresh, perfect check and a switch at 100%.
TransitionFacts good_facts() {
  TransitionFacts f;
  f.latest_consistency_score = 1.0;
  f.latest_check_age_seconds = 10;
  f.max_check_age_seconds = 1800;
  f.switch_percentage = 100.0;
  f.switch_status = SwitchStatus::kActive;
  f.switch_config_id = "users_gradual_switch";
  return f;
}

int index_of(Phase p) {
  return static_cast<int>(p);
}

}  // namespace

TEST_CASE("set-phase: only the next phase is legal, from every phase to every phase", "[phase]") {
  for (Phase from : kAllPhases) {
    for (Phase to : kAllPhases) {
      INFO(to_string(from) << " -> " << to_string(to));
      const Verdict v = check_phase_change(in(from), to, good_facts());
      const bool next = index_of(to) == index_of(from) + 1;
      CHECK(v.allowed == next);
      CHECK(static_cast<bool>(v) == next);
      if (next) {
        CHECK(v.reason.empty());
        continue;
      }
      const std::string prefix = "cannot move users_table_migration from " +
                                 std::string(to_string(from)) + " to " +
                                 std::string(to_string(to)) + ": ";
      CHECK_THAT(v.reason, Catch::StartsWith(prefix));
      CHECK_FALSE(v.remedy.empty());
      if (from == to) {
        CHECK_THAT(v.reason, Catch::Contains("already in"));
      } else if (from == Phase::kCompleted) {
        CHECK_THAT(v.reason, Catch::Contains("completed"));
      } else {
        const std::string next_name(to_string(kAllPhases[index_of(from) + 1]));
        CHECK_THAT(v.reason,
                   Catch::EndsWith("phases advance one step at a time (next: " + next_name + ")"));
        if (index_of(to) < index_of(from)) CHECK_THAT(v.remedy, Catch::Contains("rollback"));
      }
      // force never allows skipping or going backwards
      TransitionFacts forced = good_facts();
      forced.force = true;
      CHECK_FALSE(check_phase_change(in(from), to, forced).allowed);
    }
  }
}

TEST_CASE("the manual's exact refusal message", "[phase]") {
  const Verdict v = check_phase_change(in(Phase::kDualWrite), Phase::kReadSwitch, good_facts());
  CHECK_FALSE(v);
  CHECK(v.reason ==
        "cannot move users_table_migration from dual_write to read_switch: phases advance one "
        "step at a time (next: validation)");
  CHECK(v.remedy == "move to validation first");
}

TEST_CASE("entering read_switch needs a good, fresh consistency check", "[phase]") {
  const Migration m = in(Phase::kValidation);  // auto_switch_threshold 0.99
  TransitionFacts f = good_facts();

  SECTION("no check at all: refused with the validate remedy, unless forced") {
    f.latest_consistency_score.reset();
    f.latest_check_age_seconds.reset();
    const Verdict v = check_phase_change(m, Phase::kReadSwitch, f);
    CHECK_FALSE(v);
    CHECK_THAT(v.reason, Catch::Contains("no consistency check"));
    CHECK_THAT(v.remedy, Catch::StartsWith("run pgphase validate --migration-id "
                                           "users_table_migration"));
    CHECK_THAT(v.remedy, Catch::Contains("--force"));
    f.force = true;
    CHECK(check_phase_change(m, Phase::kReadSwitch, f));
  }
  SECTION("a score below the threshold is refused, naming both") {
    f.latest_consistency_score = 0.95;
    const Verdict v = check_phase_change(m, Phase::kReadSwitch, f);
    CHECK_FALSE(v);
    CHECK_THAT(v.reason, Catch::Contains("0.95") && Catch::Contains("0.99") &&
                             Catch::Contains("auto_switch_threshold"));
    CHECK_THAT(v.remedy, Catch::Contains("pgphase validate"));
    f.force = true;
    CHECK(check_phase_change(m, Phase::kReadSwitch, f));
  }
  SECTION("a score equal to the threshold is enough") {
    f.latest_consistency_score = 0.99;
    CHECK(check_phase_change(m, Phase::kReadSwitch, f));
  }
  SECTION("a custom threshold applies") {
    Migration low = m;
    low.auto_switch_threshold = 0.9;
    f.latest_consistency_score = 0.95;
    CHECK(check_phase_change(low, Phase::kReadSwitch, f));
  }
  SECTION("a check older than the maximum age is refused") {
    f.latest_check_age_seconds = 1801;
    const Verdict v = check_phase_change(m, Phase::kReadSwitch, f);
    CHECK_FALSE(v);
    CHECK_THAT(v.reason, Catch::Contains("1801 s old") && Catch::Contains("1800"));
    f.latest_check_age_seconds = 1800;
    CHECK(check_phase_change(m, Phase::kReadSwitch, f));
    f.latest_check_age_seconds = 5000;
    f.max_check_age_seconds = 6000;
    CHECK(check_phase_change(m, Phase::kReadSwitch, f));
    f.max_check_age_seconds = 60;
    f.force = true;
    CHECK(check_phase_change(m, Phase::kReadSwitch, f));
  }
  SECTION("the switch percentage does not matter for read_switch") {
    f.switch_percentage.reset();
    f.switch_status.reset();
    CHECK(check_phase_change(m, Phase::kReadSwitch, f));
  }
}

TEST_CASE("entering cleanup needs the switch active at 100%; force does not bypass it", "[phase]") {
  const Migration m = in(Phase::kReadSwitch);
  TransitionFacts f = good_facts();
  CHECK(check_phase_change(m, Phase::kCleanup, f));

  for (bool force : {false, true}) {
    INFO("force " << force);
    f = good_facts();
    f.force = force;

    f.switch_percentage.reset();
    f.switch_status.reset();
    f.switch_config_id.clear();
    Verdict v = check_phase_change(m, Phase::kCleanup, f);
    CHECK_FALSE(v);
    CHECK_THAT(v.reason, Catch::Contains("no read switch config exists for table users"));
    CHECK_THAT(v.remedy, Catch::Contains("pgphase switch register") &&
                             Catch::Contains("--force does not bypass this"));

    f = good_facts();
    f.force = force;
    f.switch_percentage = 50.0;
    v = check_phase_change(m, Phase::kCleanup, f);
    CHECK_FALSE(v);
    CHECK_THAT(v.reason, Catch::Contains("users_gradual_switch") && Catch::Contains("50%"));
    CHECK_THAT(v.remedy, Catch::Contains("--config-id users_gradual_switch --percentage 100"));

    f.switch_percentage = 99.9;
    CHECK_FALSE(check_phase_change(m, Phase::kCleanup, f));

    for (SwitchStatus st : {SwitchStatus::kInactive, SwitchStatus::kPaused,
                            SwitchStatus::kRolledBack, SwitchStatus::kCompleted}) {
      f.switch_percentage = 100.0;
      f.switch_status = st;
      v = check_phase_change(m, Phase::kCleanup, f);
      CHECK_FALSE(v);
      CHECK_THAT(v.reason, Catch::Contains(std::string(to_string(st)) + ", not active"));
    }
  }
  // A percentage without a status counts as active.
  f = good_facts();
  f.switch_status.reset();
  CHECK(check_phase_change(m, Phase::kCleanup, f));
  // The consistency check does not matter for cleanup.
  f.latest_consistency_score.reset();
  CHECK(check_phase_change(m, Phase::kCleanup, f));
}

TEST_CASE("the unguarded forward moves need no facts", "[phase]") {
  const TransitionFacts none;
  CHECK(check_phase_change(in(Phase::kPreparation), Phase::kDualWrite, none));
  CHECK(check_phase_change(in(Phase::kDualWrite), Phase::kValidation, none));
  CHECK(check_phase_change(in(Phase::kCleanup), Phase::kCompleted, none));
  CHECK_FALSE(check_phase_change(in(Phase::kValidation), Phase::kReadSwitch, none));
  CHECK_FALSE(check_phase_change(in(Phase::kReadSwitch), Phase::kCleanup, none));
}

TEST_CASE("rollback: from dual_write, validation, read_switch and cleanup only", "[phase]") {
  for (Phase p : kAllPhases) {
    INFO(to_string(p));
    const bool legal = p != Phase::kPreparation && p != Phase::kCompleted;
    Migration m = in(p);
    const Verdict v = check_rollback(m);
    CHECK(v.allowed == legal);
    if (!legal) {
      CHECK_THAT(v.reason, Catch::StartsWith("cannot roll back users_table_migration: "));
      CHECK_FALSE(v.remedy.empty());
    }
    m.rollback_enabled = false;
    const Verdict disabled = check_rollback(m);
    CHECK_FALSE(disabled);
    if (legal) CHECK_THAT(disabled.reason, Catch::Contains("rollback_enabled is false"));
  }
  CHECK_THAT(check_rollback(in(Phase::kPreparation)).reason,
             Catch::Contains("already in preparation"));
  CHECK_THAT(check_rollback(in(Phase::kCompleted)).reason, Catch::Contains("completed"));
}

TEST_CASE("enable-dual-write", "[phase][dual_write]") {
  CHECK(check_dual_write_change(in(Phase::kPreparation), true, false));
  for (Phase p : {Phase::kDualWrite, Phase::kValidation, Phase::kReadSwitch, Phase::kCleanup}) {
    INFO(to_string(p));
    Migration m = in(p);
    const Verdict already = check_dual_write_change(m, true, false);
    CHECK_FALSE(already);
    CHECK_THAT(already.reason, Catch::Contains("already enabled"));
    m.dual_write_enabled = false;  // after a forced disable
    CHECK(check_dual_write_change(m, true, false));
  }
  const Verdict done = check_dual_write_change(in(Phase::kCompleted), true, true);
  CHECK_FALSE(done);
  CHECK_THAT(done.reason, Catch::StartsWith("cannot enable dual write for users_table_migration "
                                            "in completed: "));
}

TEST_CASE("disable-dual-write", "[phase][dual_write]") {
  CHECK(check_dual_write_change(in(Phase::kCleanup), false, false));
  for (Phase p : {Phase::kDualWrite, Phase::kValidation, Phase::kReadSwitch}) {
    INFO(to_string(p));
    const Verdict v = check_dual_write_change(in(p), false, false);
    CHECK_FALSE(v);
    CHECK_THAT(v.reason, Catch::Contains("fall behind"));
    CHECK_THAT(v.remedy, Catch::Contains("--force"));
    CHECK(check_dual_write_change(in(p), false, true));
  }
  for (Phase p : {Phase::kPreparation, Phase::kCompleted}) {
    INFO(to_string(p));
    CHECK_FALSE(check_dual_write_change(in(p), false, false));
    CHECK_FALSE(check_dual_write_change(in(p), false, true));
  }
  Migration off = in(Phase::kCleanup);
  off.dual_write_enabled = false;
  const Verdict again = check_dual_write_change(off, false, false);
  CHECK_FALSE(again);
  CHECK_THAT(again.reason, Catch::Contains("already disabled"));
}

TEST_CASE("flags_for: dual writes dual_write..cleanup, target reads cleanup..completed",
          "[phase]") {
  const std::tuple<Phase, bool, bool> expected[] = {
      {Phase::kPreparation, false, false}, {Phase::kDualWrite, true, false},
      {Phase::kValidation, true, false},   {Phase::kReadSwitch, true, false},
      {Phase::kCleanup, true, true},       {Phase::kCompleted, false, true}};
  for (const auto& [p, dual, target] : expected) {
    INFO(to_string(p));
    CHECK(flags_for(p).dual_write_enabled == dual);
    CHECK(flags_for(p).read_from_target == target);
  }
}

namespace {

TableKey table_key(const std::string& table, std::vector<UniqueIndex> indexes) {
  TableKey t;
  t.visible = true;
  t.table = "public." + table;
  t.sql = "\"public\".\"" + table + "\"";
  t.key = {"id"};
  t.unique_indexes = std::move(indexes);
  return t;
}

KeyFacts keys(std::vector<UniqueIndex> source, std::vector<UniqueIndex> target) {
  return KeyFacts{table_key("users", std::move(source)),
                  table_key("t_sys_users", std::move(target))};
}

const UniqueIndex kImmediate{"users_pkey", {"id"}, true};
const UniqueIndex kDeferrable{"users_pkey", {"id"}, false};
const UniqueIndex kTargetImmediate{"t_sys_users_pkey", {"id"}, true};
const UniqueIndex kTargetDeferrable{"t_sys_users_pkey", {"id"}, false};

}  // namespace

TEST_CASE("keys: dual_write and cleanup need a key unique per statement and a usable arbiter",
          "[phase][keys]") {
  TransitionFacts f = good_facts();
  // Good keys: allowed into dual_write and cleanup, force or not.
  f.keys = keys({kImmediate}, {kTargetImmediate});
  CHECK(check_phase_change(in(Phase::kPreparation), Phase::kDualWrite, f));
  CHECK(check_phase_change(in(Phase::kReadSwitch), Phase::kCleanup, f));

  // A deferrable source key: dual_write refused (forced too), naming the index and the fix.
  f.keys = keys({kDeferrable}, {kTargetImmediate});
  for (const bool force : {false, true}) {
    f.force = force;
    const Verdict v = check_phase_change(in(Phase::kPreparation), Phase::kDualWrite, f);
    CHECK_FALSE(v);
    CHECK_THAT(v.reason, Catch::Contains("unique only through DEFERRABLE users_pkey"));
    CHECK_THAT(v.remedy, Catch::Contains(
                             "CREATE UNIQUE INDEX CONCURRENTLY ON \"public\".\"users\" (\"id\")"));
    CHECK_THAT(v.remedy, Catch::Contains("--force does not bypass this"));
  }
  f.force = false;
  // enable-dual-write from preparation is the same move; registration checks the source.
  CHECK_FALSE(check_dual_write_change(in(Phase::kPreparation), true, false, {}, f.keys));
  CHECK_FALSE(check_register(in(Phase::kPreparation), f.keys));
  CHECK(check_register(in(Phase::kPreparation), keys({kImmediate}, {})));
  CHECK(check_register(in(Phase::kPreparation), std::nullopt));
  // No unique index at all on the source key.
  const Verdict none = check_register(in(Phase::kPreparation), keys({}, {}));
  CHECK_FALSE(none);
  CHECK_THAT(none.reason, Catch::Contains("public.users has no unique index on its key (id)"));

  // Deferrable plus immediate on the source: dual_write is fine (the source is written), cleanup
  // is not (the source is the mirror there and ON CONFLICT refuses the deferrable arbiter).
  f.keys = keys({kDeferrable, UniqueIndex{"users_id_now", {"id"}, true}}, {kTargetImmediate});
  CHECK(check_phase_change(in(Phase::kPreparation), Phase::kDualWrite, f));
  Verdict v = check_phase_change(in(Phase::kReadSwitch), Phase::kCleanup, f);
  CHECK_FALSE(v);
  CHECK_THAT(v.reason, Catch::Contains("public.users's unique index on exactly its key (id), "
                                       "users_pkey, is DEFERRABLE"));
  CHECK_THAT(v.remedy,
             Catch::Contains("ALTER TABLE \"public\".\"users\" DROP CONSTRAINT \"users_pkey\""));
  CHECK_THAT(v.remedy, !Catch::Contains("CREATE UNIQUE INDEX"));

  // A deferrable target key: dual_write refused (the target is the mirror).
  f.keys = keys({kImmediate}, {kTargetDeferrable});
  v = check_phase_change(in(Phase::kPreparation), Phase::kDualWrite, f);
  CHECK_FALSE(v);
  CHECK_THAT(v.reason, Catch::Contains("t_sys_users_pkey, is DEFERRABLE"));
  // A unique index on a subset of the key keeps it unique, but is no arbiter.
  TableKey wide = table_key("users", {UniqueIndex{"users_id_key", {"id"}, true}});
  wide.key = {"id", "region"};
  CHECK(key_unique_per_statement(wide));
  CHECK_FALSE(key_has_arbiter(wide));
  // Invisible tables are not checked; other phases do not look.
  f.keys = keys({kDeferrable}, {kTargetDeferrable});
  f.keys->source.visible = false;
  f.keys->target.visible = false;
  CHECK(check_phase_change(in(Phase::kPreparation), Phase::kDualWrite, f));
  f.keys = keys({kDeferrable}, {kTargetDeferrable});
  CHECK(check_phase_change(in(Phase::kDualWrite), Phase::kValidation, f));
}

TEST_CASE("completed: foreign keys referencing the source are refused unless moved",
          "[phase][fk]") {
  ForeignKeyRef fk;
  fk.name = "orders_user_id_fkey";
  fk.child = "public.orders";
  fk.child_sql = "\"public\".\"orders\"";
  fk.oid = 4242;
  fk.child_columns = {"user_id"};
  fk.source_columns = {"id"};
  fk.target_columns = {"uid"};
  fk.on_delete = 'c';
  TransitionFacts f = good_facts();
  CHECK(check_phase_change(in(Phase::kCleanup), Phase::kCompleted, f));
  f.referencing_foreign_keys = {fk};
  Verdict v = check_phase_change(in(Phase::kCleanup), Phase::kCompleted, f);
  CHECK_FALSE(v);
  CHECK_THAT(v.reason, Catch::Contains("orders_user_id_fkey on public.orders (\"user_id\") "
                                       "REFERENCES public.users (\"id\") ON UPDATE NO ACTION ON "
                                       "DELETE CASCADE NOT DEFERRABLE"));
  CHECK_THAT(v.reason, Catch::Contains("23503"));
  CHECK_THAT(v.remedy, Catch::Contains("--move-foreign-keys"));
  CHECK_THAT(v.remedy,
             Catch::Contains("ALTER TABLE \"public\".\"orders\" ADD CONSTRAINT \"pgphase_fk_4242\" "
                             "FOREIGN KEY (\"user_id\") REFERENCES \"public\".\"t_sys_users\" "
                             "(\"uid\") ON UPDATE NO ACTION ON DELETE CASCADE NOT DEFERRABLE "
                             "NOT VALID"));
  f.force = true;
  CHECK_FALSE(check_phase_change(in(Phase::kCleanup), Phase::kCompleted, f));
  f.force = false;
  f.move_foreign_keys = true;
  CHECK(check_phase_change(in(Phase::kCleanup), Phase::kCompleted, f));
  // A referenced column column_map drops cannot move, consent or not.
  f.referencing_foreign_keys[0].target_columns = {""};
  v = check_phase_change(in(Phase::kCleanup), Phase::kCompleted, f);
  CHECK_FALSE(v);
  CHECK_THAT(v.reason, Catch::Contains("references id of public.users, which column_map drops"));
}

TEST_CASE("foreign_key_move_sql keeps actions, match type and deferrability", "[fk]") {
  ForeignKeyRef fk;
  fk.name = "Notes FK";
  fk.child = "app.notes";
  fk.child_sql = "\"app\".\"notes\"";
  fk.oid = 7;
  fk.child_columns = {"a", "b"};
  fk.source_columns = {"x", "y"};
  fk.target_columns = {"x2", "y"};
  fk.on_update = 'r';
  fk.on_delete = 'n';
  fk.delete_set_columns = {"b"};
  fk.match = 'f';
  fk.deferrable = true;
  fk.deferred = true;
  const std::vector<std::string> sql = foreign_key_move_sql(fk, "\"public\".\"t\"");
  REQUIRE(sql.size() == 4);
  CHECK(sql[0] ==
        "ALTER TABLE \"app\".\"notes\" ADD CONSTRAINT \"pgphase_fk_7\" FOREIGN KEY (\"a\", \"b\") "
        "REFERENCES \"public\".\"t\" (\"x2\", \"y\") MATCH FULL ON UPDATE RESTRICT ON DELETE SET "
        "NULL (\"b\") DEFERRABLE INITIALLY DEFERRED NOT VALID");
  CHECK(sql[1] == "ALTER TABLE \"app\".\"notes\" DROP CONSTRAINT \"Notes FK\"");
  CHECK(sql[2] == "ALTER TABLE \"app\".\"notes\" VALIDATE CONSTRAINT \"pgphase_fk_7\"");
  CHECK(sql[3] ==
        "ALTER TABLE \"app\".\"notes\" RENAME CONSTRAINT \"pgphase_fk_7\" TO \"Notes FK\"");
  // Not validated before: not validated after. A partitioned child takes it validated at once.
  fk.validated = false;
  CHECK(foreign_key_move_sql(fk, "t").size() == 3);
  fk.child_partitioned = true;
  const auto part = foreign_key_move_sql(fk, "t");
  REQUIRE(part.size() == 3);
  CHECK_THAT(part[0], !Catch::Contains("NOT VALID"));
}

}  // namespace pgphase::migration
