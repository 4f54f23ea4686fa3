// Keys and constraints around phase changes (docs/control-plane.md, "Keys, sequences and foreign
// keys"), through the admin API, the CLI and a real pgphase in front of PostgreSQL:
// - a DEFERRABLE key (source or target) refuses registration, dual_write and enable-dual-write
//   until a non-deferrable unique index covers it;
// - entering cleanup advances the target's serial/identity sequences past the keys it holds, so a
//   plain INSERT through pgphase in cleanup gets a fresh key; a rollback from cleanup advances the
//   source's; a collision is a 23505, never a lost row;
// - entering completed with foreign keys referencing the source is refused naming them, and with
//   move_foreign_keys they are recreated on the target (actions and deferrability kept), after
//   which a child INSERT and an ON DELETE CASCADE through pgphase work.
#include <catch2/catch.hpp>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

std::string phase_body(const std::string& phase, bool force = false, bool move_fks = false) {
  json::object b{{"phase", phase}, {"force", force}};
  if (move_fks) b["move_foreign_keys"] = true;
  return json::serialize(b);
}

// POST .../phase expecting 409; returns the error text.
std::string refused_phase(const Api& api, const std::string& id, const std::string& to,
                          bool force = false) {
  INFO(id << " -> " << to << (force ? " (forced)" : ""));
  return expect_error(api.post("/api/v1/migrations/" + id + "/phase", phase_body(to, force)), 409);
}

// POST .../phase expecting 200; returns the answer.
json::object moved(const Api& api, const std::string& id, const std::string& to,
                   bool move_fks = false) {
  const it::HttpResponse r =
      api.post("/api/v1/migrations/" + id + "/phase", phase_body(to, false, move_fks));
  INFO(id << " -> " << to << ": " << describe(r));
  REQUIRE(r.status == 200);
  json::object m = body_object(r);
  CHECK(str(m, "phase") == to);
  return m;
}

std::string latest_log(const it::PgConn& control, const std::string& id) {
  const it::PgResult r = control.exec_params(
      "SELECT status || ' ' || message || ' ' || coalesce(details::text, '') "
      "FROM t_sys_migration_logs WHERE migration_id = $1 ORDER BY id DESC LIMIT 1",
      {id});
  INFO(r.describe());
  REQUIRE(r.ok());
  REQUIRE(r.rows() == 1);
  return r.value(0, 0);
}

it::PgConn proxied(const Stack& s) {
  it::PgConn c = it::PgConn::connect(s.proxy->conninfo(kControlDb, "postgres"));
  INFO(c.error_message());
  REQUIRE(c.ok());
  return c;
}

// Rows in one table and not the other, both ways (0: same rows).
std::string differences(const it::PgConn& c, const std::string& a, const std::string& b,
                        const std::string& cols_a, const std::string& cols_b) {
  return c.scalar("SELECT (SELECT count(*) FROM (SELECT " + cols_a + " FROM " + a +
                  " EXCEPT SELECT " + cols_b + " FROM " + b +
                  ") x) + (SELECT count(*) FROM (SELECT " + cols_b + " FROM " + b +
                  " EXCEPT SELECT " + cols_a + " FROM " + a + ") y)");
}

// read_switch -> cleanup the explicit way: a switch config for `table`, active at 100%.
json::object to_cleanup(const Api& api, const std::string& id, const std::string& table) {
  advance_to(api, id, "read_switch");
  (void)register_switch(api, id + "_switch", table, id);
  REQUIRE(api.post("/api/v1/switches/" + id + "_switch/activate").status == 200);
  (void)set_percentage(api, id + "_switch", 100);
  return moved(api, id, "cleanup");
}

}  // namespace

TEST_CASE("a DEFERRABLE key is refused until a non-deferrable unique index covers it") {
  Stack& s = shared_stack();
  const it::PgConn control = control_conn(*s.pg);
  control.exec_ok(
      "CREATE TABLE dk_users (id int PRIMARY KEY DEFERRABLE, name text);"
      "CREATE TABLE t_sys_dk_users (id int PRIMARY KEY, name text);"
      "INSERT INTO dk_users VALUES (1, 'old'), (2, 'other')");

  // What the guard prevents, with PostgreSQL alone: a transient duplicate inside a transaction.
  control.exec_ok(
      "BEGIN; SET CONSTRAINTS ALL DEFERRED; INSERT INTO dk_users VALUES (1, 'new');"
      "DELETE FROM dk_users WHERE name = 'old'; COMMIT");
  CHECK(control.scalar("SELECT name FROM dk_users WHERE id = 1") == "new");
  control.exec_ok("INSERT INTO t_sys_dk_users SELECT * FROM dk_users");  // the backfill's copy

  // Registration sees the source and refuses.
  const std::string reg = json::serialize(json::object{{"migration_id", "dk_mig"},
                                                       {"source_table", "dk_users"},
                                                       {"target_table", "t_sys_dk_users"}});
  std::string why = expect_error(s.api.post("/api/v1/migrations", reg), 409);
  CHECK(it::contains(why,
                     "cannot register dk_mig: the key (id) of public.dk_users is unique only "
                     "through DEFERRABLE dk_users_pkey"));
  CHECK(it::contains(why, "CREATE UNIQUE INDEX CONCURRENTLY ON \"public\".\"dk_users\" (\"id\")"));
  CHECK(it::contains(why, "non-deferrable unique index"));

  control.exec_ok("CREATE UNIQUE INDEX dk_users_id_now ON dk_users (id)");
  (void)register_migration(s.api, "dk_mig", "dk_users", "t_sys_dk_users");

  // Dropped again before dual_write: set-phase (forced too) and enable-dual-write refuse.
  control.exec_ok("DROP INDEX dk_users_id_now");
  why = refused_phase(s.api, "dk_mig", "dual_write");
  CHECK(it::contains(why,
                     "cannot move dk_mig from preparation to dual_write: the key (id) of "
                     "public.dk_users is unique only through DEFERRABLE dk_users_pkey"));
  CHECK(it::contains(why, "mirroring by key to public.t_sys_dk_users then loses a row"));
  CHECK(it::contains(why, "--force does not bypass this"));
  CHECK(it::contains(refused_phase(s.api, "dk_mig", "dual_write", true), "DEFERRABLE"));
  why = expect_error(s.api.post("/api/v1/migrations/dk_mig/dual-write",
                                json::serialize(json::object{{"enabled", true}})),
                     409);
  CHECK(it::contains(why, "cannot enable dual write for dk_mig in preparation: the key (id)"));
  CHECK(it::contains(latest_log(control, "dk_mig"), "refused"));

  // The target's key must be immediate too: ON CONFLICT refuses a deferrable arbiter, even next
  // to a non-deferrable index on the same columns.
  control.exec_ok(
      "CREATE UNIQUE INDEX dk_users_id_now ON dk_users (id);"
      "ALTER TABLE t_sys_dk_users DROP CONSTRAINT t_sys_dk_users_pkey,"
      "  ADD CONSTRAINT t_sys_dk_users_pkey PRIMARY KEY (id) DEFERRABLE");
  why = refused_phase(s.api, "dk_mig", "dual_write");
  const std::string target_why =
      "public.t_sys_dk_users's unique index on exactly its key (id), t_sys_dk_users_pkey, is "
      "DEFERRABLE: the mirror's INSERT ... ON CONFLICT refuses it as arbiter";
  CHECK(it::contains(why, target_why));
  CHECK(it::contains(why,
                     "CREATE UNIQUE INDEX CONCURRENTLY ON \"public\".\"t_sys_dk_users\" (\"id\")"));
  CHECK(it::contains(
      why, "ALTER TABLE \"public\".\"t_sys_dk_users\" DROP CONSTRAINT \"t_sys_dk_users_pkey\""));
  CHECK_FALSE(it::contains(why, "of public.dk_users"));
  control.exec_ok("CREATE UNIQUE INDEX t_sys_dk_users_id_now ON t_sys_dk_users (id)");
  why = refused_phase(s.api, "dk_mig", "dual_write");
  CHECK(it::contains(why, target_why));
  CHECK_FALSE(it::contains(why, "CREATE UNIQUE INDEX"));

  control.exec_ok("ALTER TABLE t_sys_dk_users DROP CONSTRAINT t_sys_dk_users_pkey");
  CHECK(flag(moved(s.api, "dk_mig", "dual_write"), "dual_write_enabled"));

  // Through pgphase the transient duplicate is now a 23505, and writes reach both tables.
  const it::PgConn app = proxied(s);
  app.exec_ok("BEGIN");
  app.exec_ok("SET CONSTRAINTS ALL DEFERRED");
  const it::PgResult dup = app.exec("INSERT INTO dk_users VALUES (2, 'dup')");
  INFO(dup.describe());
  CHECK(dup.sqlstate() == "23505");
  app.exec_ok("ROLLBACK");
  app.exec_ok("INSERT INTO dk_users VALUES (3, 'c')");
  app.exec_ok("UPDATE dk_users SET name = 'C' WHERE id = 3");
  CHECK(differences(control, "dk_users", "t_sys_dk_users", "id, name", "id, name") == "0");

  // cleanup mirrors to the source, whose deferrable primary key ON CONFLICT refuses.
  advance_to(s.api, "dk_mig", "read_switch");
  (void)register_switch(s.api, "dk_switch", "dk_users", "dk_mig");
  REQUIRE(s.api.post("/api/v1/switches/dk_switch/activate").status == 200);
  (void)set_percentage(s.api, "dk_switch", 100);
  why = refused_phase(s.api, "dk_mig", "cleanup");
  CHECK(it::contains(why,
                     "cannot move dk_mig from read_switch to cleanup: public.dk_users's unique "
                     "index on exactly its key (id), dk_users_pkey, is DEFERRABLE"));
  CHECK(it::contains(why, "ALTER TABLE \"public\".\"dk_users\" DROP CONSTRAINT \"dk_users_pkey\""));
  control.exec_ok("ALTER TABLE dk_users DROP CONSTRAINT dk_users_pkey");
  (void)moved(s.api, "dk_mig", "cleanup");
  app.exec_ok("INSERT INTO dk_users VALUES (4, 'd')");
  CHECK(differences(control, "dk_users", "t_sys_dk_users", "id, name", "id, name") == "0");
}

TEST_CASE("cleanup and its rollback advance serial and identity sequences past the keys") {
  Stack& s = shared_stack();
  const it::PgConn control = control_conn(*s.pg);
  struct Case {
    std::string source;
    std::string column_type;
    std::string sequence;  // the target's
  };
  const Case cases[] = {
      {"sq_users", "serial", "public.t_sys_sq_users_id_seq"},
      {"ident_users", "int GENERATED BY DEFAULT AS IDENTITY", "public.t_sys_ident_users_id_seq"},
  };
  for (const Case& c : cases) {
    INFO(c.source << " (" << c.column_type << ")");
    const std::string target = "t_sys_" + c.source;
    const std::string id = c.source + "_mig";
    control.exec_ok("CREATE TABLE " + c.source + " (id " + c.column_type +
                    " PRIMARY KEY, name text NOT NULL); CREATE TABLE " + target + " (id " +
                    c.column_type + " PRIMARY KEY, name text NOT NULL); INSERT INTO " + c.source +
                    " (name) VALUES ('a'), ('b'), ('c')");
    (void)register_migration(s.api, id, c.source, target);
    (void)moved(s.api, id, "dual_write");
    // The backfill's way: explicit keys into the target.
    control.exec_ok("INSERT INTO " + target + " SELECT * FROM " + c.source);
    const it::PgConn app = proxied(s);
    app.exec_ok("INSERT INTO " + c.source + " (name) VALUES ('d')");  // key 4, mirrored
    CHECK(control.scalar("SELECT count(*) FROM " + target) == "4");

    const json::object m = to_cleanup(s.api, id, c.source);
    INFO(json::serialize(m));
    const json::array& seqs = arr(obj(m, "actions"), "sequences");
    REQUIRE(seqs.size() == 1);
    const json::object& moved_seq = seqs.front().as_object();
    CHECK(str(moved_seq, "sequence") == c.sequence);
    CHECK(flag(moved_seq, "moved"));
    CHECK(num(moved_seq, "max_key") == 4);
    CHECK(num(moved_seq, "paired_last_value") == 4);
    CHECK(num(moved_seq, "set_to") == 4 + 10000);
    const std::string logged = latest_log(control, id);
    CHECK(it::contains(logged, "success moved from read_switch to cleanup (advanced 1 sequence: " +
                                   c.sequence + " to 10004)"));
    CHECK(it::contains(logged, "\"sequences\""));

    // A plain INSERT through pgphase in cleanup (written to the target, mirrored back).
    app.exec_ok("INSERT INTO " + c.source + " (name) VALUES ('x')");
    CHECK(control.scalar("SELECT id FROM " + target + " WHERE name = 'x'") == "10005");
    CHECK(control.scalar("SELECT id FROM " + c.source + " WHERE name = 'x'") == "10005");
    CHECK(differences(control, c.source, target, "id, name", "id, name") == "0");

    // A collision (a sequence set back by hand) is a 23505, not a lost or overwritten row.
    control.exec_ok("SELECT setval('" + c.sequence + "', 1)");
    const it::PgResult clash = app.exec("INSERT INTO " + c.source + " (name) VALUES ('clash')");
    INFO(clash.describe());
    CHECK(clash.sqlstate() == "23505");
    CHECK(control.scalar("SELECT string_agg(name, ',' ORDER BY id) FROM " + target) == "a,b,c,d,x");
    CHECK(differences(control, c.source, target, "id, name", "id, name") == "0");

    // A key right after the source's sequence, inserted in cleanup; then the rollback.
    app.exec_ok("INSERT INTO " + c.source + " (id, name) VALUES (5, 'five')");
    const it::HttpResponse rb = s.api.post("/api/v1/migrations/" + id + "/rollback",
                                           json::serialize(json::object{{"reason", "test"}}));
    INFO(describe(rb));
    REQUIRE(rb.status == 200);
    const json::object back = body_object(rb);
    CHECK(str(back, "phase") == "preparation");
    const json::array& source_seqs = arr(obj(back, "actions"), "sequences");
    REQUIRE(source_seqs.size() == 1);
    CHECK(str(source_seqs.front().as_object(), "sequence") == "public." + c.source + "_id_seq");
    CHECK(num(source_seqs.front().as_object(), "set_to") == 10005 + 10000);
    CHECK(it::contains(latest_log(control, id), "\"sequences\""));

    // In preparation the source is written alone, with its sequence: a fresh key again.
    app.exec_ok("INSERT INTO " + c.source + " (name) VALUES ('y')");
    CHECK(control.scalar("SELECT id FROM " + c.source + " WHERE name = 'y'") == "20006");
    CHECK(control.scalar("SELECT count(*) FROM " + c.source) == "7");
  }
}

TEST_CASE("completed moves the foreign keys referencing the source, with consent") {
  Stack& s = shared_stack();
  const it::PgConn control = control_conn(*s.pg);
  control.exec_ok(
      "CREATE TABLE fk_users (id int PRIMARY KEY, name text NOT NULL);"
      "CREATE TABLE t_sys_fk_users (id int PRIMARY KEY, name text NOT NULL);"
      "CREATE TABLE fk_orders (order_id serial PRIMARY KEY, user_id int NOT NULL "
      "  REFERENCES fk_users (id) ON DELETE CASCADE, note text);"
      "CREATE TABLE fk_notes (user_id int, note text,"
      "  CONSTRAINT fk_notes_user FOREIGN KEY (user_id) REFERENCES fk_users (id)"
      "  ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED);"
      "INSERT INTO fk_users VALUES (1, 'a'), (2, 'b'), (3, 'c');"
      "INSERT INTO t_sys_fk_users SELECT * FROM fk_users;"
      "INSERT INTO fk_orders (user_id, note) VALUES (1, 'o1'), (1, 'o2'), (2, 'o3');"
      "INSERT INTO fk_notes VALUES (3, 'n3')");
  (void)register_migration(s.api, "fk_mig", "fk_users", "t_sys_fk_users");
  (void)moved(s.api, "fk_mig", "dual_write");
  (void)to_cleanup(s.api, "fk_mig", "fk_users");

  // In cleanup the children still work: writes go to the target and are mirrored to the source.
  const it::PgConn app = proxied(s);
  app.exec_ok("INSERT INTO fk_users (id, name) VALUES (4, 'd')");
  app.exec_ok("INSERT INTO fk_orders (user_id, note) VALUES (4, 'o4')");
  CHECK(control.scalar("SELECT count(*) FROM t_sys_fk_users WHERE id = 4") == "1");

  // completed: refused, naming each constraint, with the SQL that moves it; force does not help.
  std::string why = refused_phase(s.api, "fk_mig", "completed");
  CHECK(it::contains(why,
                     "cannot move fk_mig from cleanup to completed: foreign keys reference "
                     "public.fk_users, which completed stops writing"));
  CHECK(it::contains(why, "23503"));
  CHECK(it::contains(why,
                     "fk_orders_user_id_fkey on public.fk_orders (\"user_id\") REFERENCES "
                     "public.fk_users (\"id\") ON UPDATE NO ACTION ON DELETE CASCADE"));
  CHECK(it::contains(why, "fk_notes_user on public.fk_notes"));
  CHECK(it::contains(why,
                     "FOREIGN KEY (\"user_id\") REFERENCES \"public\".\"t_sys_fk_users\" "
                     "(\"id\") ON UPDATE NO ACTION ON DELETE CASCADE NOT DEFERRABLE NOT VALID"));
  CHECK(it::contains(why, "--move-foreign-keys"));
  CHECK(it::contains(refused_phase(s.api, "fk_mig", "completed", true), "fk_orders_user_id_fkey"));
  CHECK(it::contains(latest_log(control, "fk_mig"), "refused"));
  CHECK(control.scalar("SELECT confrelid::regclass::text FROM pg_constraint "
                       "WHERE conname = 'fk_orders_user_id_fkey'") == "fk_users");

  // A child row the target lacks makes the move fail as a whole, nothing moved.
  control.exec_ok(
      "INSERT INTO fk_users VALUES (9, 'source only'); "
      "INSERT INTO fk_notes VALUES (9, 'orphan on the target')");
  why = expect_error(
      s.api.post("/api/v1/migrations/fk_mig/phase", phase_body("completed", false, true)), 409);
  CHECK(it::contains(why, "nothing was moved"));
  CHECK(it::contains(why, "fk_notes"));
  CHECK(control.scalar("SELECT count(*) FROM pg_constraint WHERE confrelid = "
                       "'fk_users'::regclass AND contype = 'f'") == "2");
  CHECK(str(get_migration(s.api, "fk_mig"), "phase") == "cleanup");
  control.exec_ok("DELETE FROM fk_notes WHERE user_id = 9; DELETE FROM fk_users WHERE id = 9");

  // With consent, through the CLI.
  const it::RunResult r = cli({"migration", "set-phase", "--migration-id", "fk_mig", "--phase",
                               "completed", "--move-foreign-keys", "--admin-url",
                               "http://127.0.0.1:" + std::to_string(s.proxy->admin_port())});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  CHECK(it::contains(r.out, "phase completed"));
  CHECK(it::contains(r.out, "moved foreign key fk_orders_user_id_fkey on public.fk_orders"));
  CHECK(str(get_migration(s.api, "fk_mig"), "phase") == "completed");
  const std::string logged = latest_log(control, "fk_mig");
  CHECK(it::contains(logged, "moved 2 foreign keys to t_sys_fk_users"));
  CHECK(it::contains(logged, "foreign_keys_moved"));

  // Same names, now on the target's mapped column, same actions and deferrability, validated.
  CHECK(control.scalar(
            "SELECT string_agg(concat_ws(' ', conname, confrelid::regclass::text, "
            "confupdtype::text || confdeltype::text, condeferrable, condeferred, convalidated, "
            "pg_get_constraintdef(oid)), '; ' ORDER BY conname) "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid IN "
            "('fk_orders'::regclass, 'fk_notes'::regclass)") ==
        "fk_notes_user t_sys_fk_users ca t t t FOREIGN KEY (user_id) REFERENCES "
        "t_sys_fk_users(id) ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED; "
        "fk_orders_user_id_fkey t_sys_fk_users ac f f t FOREIGN KEY (user_id) "
        "REFERENCES t_sys_fk_users(id) ON DELETE CASCADE");

  // Through pgphase (completed writes the target only): a child of a new row, and a cascade.
  app.exec_ok("INSERT INTO fk_users (id, name) VALUES (5, 'e')");
  CHECK(control.scalar("SELECT count(*) FROM fk_users WHERE id = 5") == "0");
  app.exec_ok("INSERT INTO fk_orders (user_id, note) VALUES (5, 'o5')");
  app.exec_ok("DELETE FROM fk_users WHERE id = 1");
  CHECK(control.scalar("SELECT count(*) FROM t_sys_fk_users WHERE id = 1") == "0");
  CHECK(control.scalar("SELECT string_agg(note, ',' ORDER BY order_id) FROM fk_orders") ==
        "o3,o4,o5");
  const it::PgResult orphan = app.exec("INSERT INTO fk_orders (user_id, note) VALUES (77, 'x')");
  CHECK(orphan.sqlstate() == "23503");
}
