// The privileges preflight's rules (migration/privileges.h) and how the phase machine refuses on
// them; the catalog query is tested end to end in tests/control/privileges_test.cpp.
#include "migration/privileges.h"

#include <catch2/catch.hpp>
#include <string>

#include "migration/phase_machine.h"

namespace pgphase::migration {
namespace {

Migration users_migration(Phase p = Phase::kPreparation) {
  Migration m;
  m.migration_id = "users_table_migration";
  m.source_table = "users";
  m.target_table = "t_sys_users";
  m.phase = p;
  return m;
}

TableRights all_rights() {
  return {true, true, true, true, true, true, true};
}

TableRights select_only() {
  TableRights t;
  t.select = true;
  return t;
}

// INSERT, UPDATE, DELETE and SELECT, table-level.
TableRights writer() {
  TableRights t = select_only();
  t.insert = t.update = t.remove = true;
  t.insert_columns = t.update_columns = true;
  return t;
}

std::vector<PrivilegeGap> gaps_entering(Phase p, const RoleRights& r) {
  return privilege_gaps({r}, users_migration(), access_entering(p));
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("access_entering: which phases mirror and read where", "[privileges]") {
  CHECK_FALSE(access_entering(Phase::kPreparation).any());
  CHECK_FALSE(access_entering(Phase::kCompleted).any());
  for (Phase p : {Phase::kDualWrite, Phase::kValidation}) {
    const TableAccess a = access_entering(p);
    CHECK(a.mirror_to_target);
    CHECK_FALSE(a.mirror_to_source);
    CHECK_FALSE(a.read_target);
  }
  const TableAccess rs = access_entering(Phase::kReadSwitch);
  CHECK(rs.mirror_to_target);
  CHECK(rs.read_target);
  const TableAccess cl = access_entering(Phase::kCleanup);
  CHECK(cl.mirror_to_source);
  CHECK_FALSE(cl.mirror_to_target);
  CHECK(cl.read_target);
}

TEST_CASE("a writer of the source needs the mirror's privileges on the target", "[privileges]") {
  const auto gaps = gaps_entering(Phase::kDualWrite, {"app_writer", writer(), {}});
  REQUIRE(gaps.size() == 1);
  CHECK(gaps[0].role == "app_writer");
  CHECK(gaps[0].table == "public.t_sys_users");
  CHECK(gaps[0].missing == "INSERT, UPDATE, DELETE, SELECT");
  CHECK(gaps[0].reason ==
        "role app_writer can INSERT, UPDATE, DELETE public.users but lacks INSERT, UPDATE, "
        "DELETE, SELECT on public.t_sys_users (pgphase mirrors its writes there)");
  CHECK(gaps[0].grant ==
        "GRANT INSERT, UPDATE, DELETE, SELECT ON \"public\".\"t_sys_users\" TO \"app_writer\"");

  SECTION("only what is missing is named") {
    TableRights t = select_only();
    t.insert = true;
    const auto partial = gaps_entering(Phase::kDualWrite, {"app_writer", writer(), t});
    REQUIRE(partial.size() == 1);
    CHECK(partial[0].missing == "UPDATE, DELETE");
  }
  SECTION("each kind of write needs its own") {
    TableRights ins;
    ins.insert = ins.select = true;
    CHECK(gaps_entering(Phase::kDualWrite, {"r", ins, {}})[0].missing == "INSERT, UPDATE, SELECT");
    TableRights del;
    del.remove = del.select = true;
    CHECK(gaps_entering(Phase::kDualWrite, {"r", del, {}})[0].missing == "DELETE, SELECT");
    TableRights trunc;
    trunc.truncate = true;  // no RETURNING: no SELECT on the source needed
    const auto t = gaps_entering(Phase::kDualWrite, {"r", trunc, {}});
    REQUIRE(t.size() == 1);
    CHECK(t[0].missing == "TRUNCATE");
  }
  SECTION("column-level INSERT or UPDATE grants make a writer too") {
    TableRights cols = select_only();
    cols.update_columns = true;
    const auto g = gaps_entering(Phase::kDualWrite, {"r", cols, {}});
    REQUIRE(g.size() == 1);
    // (DELETE: an UPDATE that moves a key deletes the old one on the target.)
    CHECK(g[0].missing == "INSERT, UPDATE, DELETE, SELECT");
    CHECK(contains(g[0].reason, "can UPDATE public.users"));
  }
  SECTION("a role with everything on the target has no gap") {
    CHECK(gaps_entering(Phase::kDualWrite, {"app_writer", writer(), all_rights()}).empty());
  }
  SECTION("a reader only has no gap before read_switch") {
    CHECK(gaps_entering(Phase::kDualWrite, {"app_reader", select_only(), {}}).empty());
    CHECK(gaps_entering(Phase::kValidation, {"app_reader", select_only(), {}}).empty());
  }
}

TEST_CASE("a writer without SELECT on the source cannot have its rows read back", "[privileges]") {
  TableRights blind;
  blind.insert = blind.insert_columns = true;
  const auto gaps = gaps_entering(Phase::kDualWrite, {"blind", blind, all_rights()});
  REQUIRE(gaps.size() == 1);
  CHECK(gaps[0].table == "public.users");
  CHECK(gaps[0].missing == "SELECT");
  CHECK(gaps[0].reason ==
        "role blind can INSERT public.users but lacks SELECT on it (pgphase reads the written "
        "rows back with RETURNING)");
  CHECK(gaps[0].grant == "GRANT SELECT ON \"public\".\"users\" TO \"blind\"");
}

TEST_CASE("read_switch: readers of the source need SELECT on the target", "[privileges]") {
  const auto gaps = gaps_entering(Phase::kReadSwitch, {"app_reader", select_only(), {}});
  REQUIRE(gaps.size() == 1);
  CHECK(gaps[0].reason ==
        "role app_reader can SELECT public.users but lacks SELECT on public.t_sys_users (reads "
        "are switched to it)");
  SECTION("a writer missing SELECT on the target is named once for it") {
    const auto w = gaps_entering(Phase::kReadSwitch, {"app_writer", writer(), {}});
    REQUIRE(w.size() == 1);
    CHECK(w[0].missing == "INSERT, UPDATE, DELETE, SELECT");
  }
}

TEST_CASE("cleanup: writers of the target need the mirror's privileges on the source",
          "[privileges]") {
  const auto gaps = gaps_entering(Phase::kCleanup, {"app_writer", {}, writer()});
  REQUIRE(gaps.size() == 1);
  CHECK(gaps[0].table == "public.users");
  CHECK(gaps[0].reason ==
        "role app_writer can INSERT, UPDATE, DELETE public.t_sys_users but lacks INSERT, UPDATE, "
        "DELETE, SELECT on public.users (pgphase mirrors its writes there)");
  CHECK(gaps_entering(Phase::kCleanup, {"app_writer", writer(), writer()}).empty());
  CHECK(gaps_entering(Phase::kCleanup, {"source_only", writer(), {}}).size() == 1);  // reads
}

TEST_CASE("names are qualified in messages and quoted in GRANTs", "[privileges]") {
  Migration m = users_migration();
  m.source_table = "App.Users";
  m.target_table = "app.\"New Users\"";
  const auto gaps =
      privilege_gaps({{"Odd\"Role", writer(), {}}}, m, access_entering(Phase::kDualWrite));
  REQUIRE(gaps.size() == 1);
  CHECK(contains(gaps[0].reason, "role Odd\"Role can INSERT, UPDATE, DELETE app.users but lacks"));
  CHECK(contains(gaps[0].reason, " on app.New Users "));
  CHECK(gaps[0].grant ==
        "GRANT INSERT, UPDATE, DELETE, SELECT ON \"app\".\"New Users\" TO \"Odd\"\"Role\"");
}

TEST_CASE("the phase machine refuses on privilege gaps, even with force", "[privileges]") {
  TransitionFacts facts;
  facts.privilege_gaps = gaps_entering(Phase::kDualWrite, {"app_writer", writer(), {}});
  const Migration m = users_migration();
  for (bool force : {false, true}) {
    facts.force = force;
    const Verdict v = check_phase_change(m, Phase::kDualWrite, facts);
    CHECK_FALSE(v.allowed);
    CHECK(contains(v.reason,
                   "cannot move users_table_migration from preparation to dual_write: "
                   "role app_writer can INSERT, UPDATE, DELETE public.users but lacks "
                   "INSERT, UPDATE, DELETE, SELECT on public.t_sys_users"));
    CHECK(contains(v.reason, "42501"));
    CHECK(contains(v.remedy,
                   "GRANT INSERT, UPDATE, DELETE, SELECT ON \"public\".\"t_sys_users\" "
                   "TO \"app_writer\""));
    CHECK(contains(v.remedy, "--force does not bypass this"));
  }
  facts.privilege_gaps.clear();
  CHECK(check_phase_change(m, Phase::kDualWrite, facts));

  SECTION("an illegal move is refused for its own reason first") {
    facts.privilege_gaps = gaps_entering(Phase::kDualWrite, {"app_writer", writer(), {}});
    const Verdict v = check_phase_change(m, Phase::kValidation, facts);
    CHECK_FALSE(v.allowed);
    CHECK(contains(v.reason, "one step at a time"));
  }
  SECTION("many gaps: ten are spelled out") {
    std::vector<RoleRights> roles;
    for (int i = 0; i < 12; ++i) roles.push_back({"r" + std::to_string(i), writer(), {}});
    facts.privilege_gaps = privilege_gaps(roles, m, access_entering(Phase::kDualWrite));
    const Verdict v = check_phase_change(m, Phase::kDualWrite, facts);
    CHECK(contains(v.reason, "role r9 "));
    CHECK_FALSE(contains(v.reason, "role r10 "));
    CHECK(contains(v.reason, "(and 2 more)"));
  }
}

TEST_CASE("enable-dual-write refuses on privilege gaps", "[privileges]") {
  const auto gaps = gaps_entering(Phase::kDualWrite, {"app_writer", writer(), {}});
  const Verdict v = check_dual_write_change(users_migration(), true, true, gaps);
  CHECK_FALSE(v.allowed);
  CHECK(contains(v.reason,
                 "cannot enable dual write for users_table_migration in preparation: "
                 "role app_writer"));
  Migration off = users_migration(Phase::kValidation);
  off.dual_write_enabled = false;
  CHECK_FALSE(check_dual_write_change(off, true, false, gaps));
  CHECK(check_dual_write_change(off, true, false, {}));
  // Disabling needs no privileges.
  Migration on = users_migration(Phase::kCleanup);
  on.dual_write_enabled = true;
  CHECK(check_dual_write_change(on, false, false, gaps));
}

}  // namespace pgphase::migration
