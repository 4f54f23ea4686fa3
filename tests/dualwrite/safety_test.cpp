// Data safety (issue 16): session settings, key types, triggers, schemas and row-level security
// must never make the target differ from the source, nor what the client receives differ from
// what PostgreSQL alone answers. Every case runs the same statements through pgphase (database
// kControlDb, migration in dual_write or later) and directly on a twin database without pgphase
// (the oracle), in both protocols, and asserts: the client's answers are the oracle's, the
// source equals the twin's table, and source EXCEPT target is empty both ways. Where pgphase
// cannot be exact it must refuse with 0A000 and the reason, leaving both tables untouched.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "oracle.h"

using namespace pgphase;
using namespace pgphase::dw;

TEST_CASE("search_path: a same-named table of another schema is not mirrored") {
  Env& e = env();
  // other.sp_users has other columns: the statement must work on it exactly as without pgphase.
  Twin t = twin(e, "oracle_sp1",
                "CREATE TABLE sp_users (id serial PRIMARY KEY, name text, score float8);"
                "CREATE TABLE t_sys_sp_users (id int PRIMARY KEY, name text, score float8);"
                "CREATE SCHEMA other; CREATE TABLE other.sp_users (x int, note text)");
  register_migration(e.stack.api, "sp1_mig", "sp_users", "t_sys_sp_users");
  set_phase(e.stack.api, "sp1_mig", "dual_write");
  for (Protocol p : kBoth) {
    t.set("SET search_path = other, public");
    t.both(p, "INSERT INTO sp_users VALUES (1, 'a'), (2, 'b') RETURNING *");
    t.both(p, "UPDATE sp_users SET note = 'c' WHERE x = 1");
    t.both(p, "DELETE FROM sp_users WHERE x = 2 RETURNING note");
    t.both(p, "SELECT * FROM sp_users ORDER BY x");
    t.set("SET search_path = public");
    t.both(p, "INSERT INTO sp_users (name, score) VALUES ('p', 0.1 + 0.2) RETURNING id, name");
    t.both(p, "UPDATE sp_users SET score = score * 3 WHERE name = 'p'");
    t.both(p, "DELETE FROM sp_users WHERE id = (SELECT min(id) FROM sp_users)");
    t.both(p, "INSERT INTO sp_users (name) VALUES ('q')");
  }
  CHECK(rows_of(e.direct, "other.sp_users", "x, note") ==
        rows_of(t.oracle, "other.sp_users", "x, note"));
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_sp_users") == "2");
  check_tables(e, t, "public.sp_users", "t_sys_sp_users", "id, name, score");

  // read_switch at 100%: unqualified reads under either path give what PostgreSQL gives.
  advance_to(e.stack.api, "sp1_mig", "read_switch");
  switch_reads(e, "sp1_sw", "sp_users", "sp1_mig", 100);
  e.direct.exec_ok("UPDATE t_sys_sp_users SET name = 'target says so'");  // tells the sides apart
  for (Protocol p : kBoth) {
    t.set("SET search_path = other, public");
    t.both(p, "SELECT count(*), min(x) FROM sp_users");
    t.set("SET search_path = public");
    t.both(p, "SELECT name FROM sp_users ORDER BY id");
  }
  // A qualified read is certain and goes to the target.
  CHECK(t.real.scalar("SELECT min(name) FROM public.sp_users") == "target says so");
}

TEST_CASE("search_path: a migration of a non-public schema written through SET search_path") {
  Env& e = env();
  Twin t = twin(e, "oracle_sp2",
                "CREATE SCHEMA app; CREATE TABLE app.acct (id bigserial PRIMARY KEY, owner text, "
                "balance numeric(12,2) DEFAULT 0);"
                "CREATE TABLE app.t_sys_acct (id bigint PRIMARY KEY, owner text, balance "
                "numeric(12,2))");
  register_migration(e.stack.api, "sp2_mig", "app.acct", "app.t_sys_acct");
  set_phase(e.stack.api, "sp2_mig", "dual_write");
  t.set("SET search_path = app");
  for (Protocol p : kBoth) {
    t.both(p, "INSERT INTO acct (owner, balance) VALUES ('a', 1.5), ('b', 2) RETURNING id");
    t.both(p, "UPDATE acct SET balance = balance + 1 WHERE owner = 'a'");
    t.both(p, "DELETE FROM acct WHERE owner = 'b'");
    t.both(p, "INSERT INTO acct AS x (owner) VALUES ('c') ON CONFLICT (id) DO NOTHING");
  }
  check_tables(e, t, "app.acct", "app.t_sys_acct", "id, owner, balance");
  CHECK(e.direct.scalar("SELECT count(*) FROM app.t_sys_acct") == "4");

  // A session's temporary table of the same name comes first in its search_path.
  for (Protocol p : kBoth) {
    it::PgConn c = e.proxied();
    c.exec_ok("SET search_path = app");
    c.exec_ok("CREATE TEMP TABLE acct (id int, owner text)");
    const auto r = run(c, p, "INSERT INTO acct VALUES (99, 'temp')");
    CHECK(r.cmd_status() == "INSERT 0 1");
    CHECK(c.scalar("SELECT count(*) FROM pg_temp.acct") == "1");
  }
  CHECK(e.direct.scalar("SELECT count(*) FROM app.t_sys_acct WHERE id = 99") == "0");
  check_tables(e, t, "app.acct", "app.t_sys_acct", "id, owner, balance");
}

TEST_CASE("standard_conforming_strings and client_encoding never change how literals read") {
  Env& e = env();
  Twin t = twin(e, "oracle_lit",
                "CREATE TABLE lit (id int PRIMARY KEY, s text);"
                "CREATE TABLE t_sys_lit (id int PRIMARY KEY, s text)");
  register_migration(e.stack.api, "lit_mig", "lit", "t_sys_lit");
  set_phase(e.stack.api, "lit_mig", "dual_write");
  int id = 0;
  for (Protocol p : kBoth) {
    auto n = [&] { return std::to_string(++id); };
    // on (the default): a backslash is an ordinary character.
    t.set("SET standard_conforming_strings = on");
    t.both(p, "INSERT INTO lit VALUES (" + n() + ", 'back\\slash ''q''')");
    t.both(p, "INSERT INTO lit VALUES (" + n() + ", E'tab\\there \\'q\\'')");
    t.set("SET standard_conforming_strings = off");
    // Read the same under off and on: rewritten exactly.
    t.both(p, "INSERT INTO lit VALUES (" + n() + ", E'e\\'s')");
    t.both(p, "INSERT INTO lit VALUES (" + n() + ", 'it''s')");
    t.both(p, "INSERT INTO lit VALUES (" + n() + ", $$dollar\\$$)");
    t.both(p, "UPDATE lit SET s = s || '!' WHERE id = 1");
    // Read differently: refused, nothing written on either side (the oracle is not asked).
    const std::string k = n();
    check_refused(run(t.real, p, "INSERT INTO lit VALUES (" + k + ", 'a\\'b')"));
    CHECK(e.direct.scalar("SELECT count(*) FROM lit WHERE id = " + k) == "0");
    if (p == Protocol::kSimple) {
      // The injection libpg_query's reading would allow: under off it is one INSERT whose value
      // holds the rest of the text; pgphase must neither mirror a DELETE nor run one.
      check_refused(
          t.real.exec("INSERT INTO lit VALUES (" + n() + ", 'x\\'); DELETE FROM lit; --')"));
      CHECK(e.direct.scalar("SELECT count(*) FROM lit") != "0");
    }
    // backslash_quote off: the server refuses \' in E'' itself, through pgphase as without.
    t.set("SET backslash_quote = off");
    t.both(p, "INSERT INTO lit VALUES (" + n() + ", E'q\\'q')");
    t.set("SET backslash_quote = safe_encoding");
    // Reads with such literals stay on the source and answer as PostgreSQL does.
    t.both(p, "SELECT count(*) FROM lit WHERE s <> 'z\\'s'");
    t.set("SET standard_conforming_strings = on");
  }
  // A SET in the same Query string: the server reads the whole string under the old setting.
  t.both(Protocol::kSimple, "SET standard_conforming_strings = off; INSERT INTO lit VALUES (" +
                                std::to_string(++id) + ", 'a\\'b')");
  t.set("SET standard_conforming_strings = on");
  check_tables(e, t, "lit", "t_sys_lit", "id, s");

  // client_encoding SJIS: 0x95 0x5C is one character (U+8868); in E'' libpg_query would read a
  // backslash escape there.
  t.set("SET client_encoding = 'SJIS'");
  for (Protocol p : kBoth) {
    const std::string k = std::to_string(++id);
    t.both(p, "INSERT INTO lit VALUES (" + k + ", '\x95\x5c plain')");
    const std::string j = std::to_string(++id);
    check_refused(run(t.real, p, "INSERT INTO lit VALUES (" + j + ", E'\x95\x5c escaped')"));
    CHECK(e.direct.scalar("SELECT count(*) FROM lit WHERE id = " + j) == "0");
  }
  t.set("SET client_encoding = 'UTF8'");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_lit WHERE s LIKE '\xe8\xa1\xa8%'") == "2");
  check_tables(e, t, "lit", "t_sys_lit", "id, s");
}

TEST_CASE("values reach the target exactly whatever the session's output settings") {
  Env& e = env();
  const std::string cols = "id, f8, f4, n, iv, ts, tsz, d, b, arr";
  const std::string table =
      " (id int PRIMARY KEY, f8 float8, f4 real, n numeric, iv interval, ts timestamp, tsz "
      "timestamptz, d date, b bytea, arr float8[])";
  Twin t = twin(e, "oracle_vals",
                "CREATE TABLE vals_e" + table + "; CREATE TABLE t_sys_vals_e" + table +
                    "; CREATE TABLE vals_s" + table + "; CREATE TABLE t_sys_vals_s" + table);
  register_migration(e.stack.api, "vals_e_mig", "vals_e", "t_sys_vals_e",
                     {{"consistency_level", "eventual"}});
  register_migration(e.stack.api, "vals_s_mig", "vals_s", "t_sys_vals_s");
  set_phase(e.stack.api, "vals_e_mig", "dual_write");
  set_phase(e.stack.api, "vals_s_mig", "dual_write");
  t.set(
      "SET extra_float_digits = 0; SET DateStyle = 'SQL, DMY'; SET IntervalStyle = "
      "'sql_standard'; SET TimeZone = 'Asia/Kolkata'; SET bytea_output = 'escape'");
  int id = 0;
  for (const char* tbl : {"vals_e", "vals_s"}) {
    for (Protocol p : kBoth) {
      const std::string k = std::to_string(++id);
      t.both(p, std::string("INSERT INTO ") + tbl + " VALUES (" + k +
                    ", 0.1 + 0.2, 1/3.0, 1/3.0, interval '-1 day +2 hours', timestamp "
                    "'2024-02-29 23:59:59.123456', timestamptz '2024-03-01 00:00:00.5+00', date "
                    "'2024-02-03', '\\x00ff5c'::bytea, ARRAY[1/3.0, 2/3.0]) RETURNING *");
      t.both(p, std::string("UPDATE ") + tbl + " SET f8 = f8 * 7, iv = iv * 3 WHERE id = " + k +
                    " RETURNING f8, iv");
      t.both(p, std::string("INSERT INTO ") + tbl + " (id, f8) VALUES (" + std::to_string(++id) +
                    ", pi())");
    }
  }
  t.set("RESET ALL");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_dual_write_logs WHERE migration_id = "
                        "'vals_e_mig'") == "0");
  check_tables(e, t, "vals_e", "t_sys_vals_e", cols);
  check_tables(e, t, "vals_s", "t_sys_vals_s", cols);
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_vals_e") == "4");
}

TEST_CASE("keys of every type: mirrored UPDATEs and DELETEs find the target row") {
  Env& e = env();
  const std::string setup =
      "CREATE EXTENSION IF NOT EXISTS citext;"
      "CREATE COLLATION IF NOT EXISTS ci (provider = icu, locale = 'und-u-ks-level2', "
      "deterministic = false);"
      "CREATE DOMAIN email AS citext;"
      "CREATE TABLE k_real (k real PRIMARY KEY, v text); CREATE TABLE t_sys_k_real (k real "
      "PRIMARY KEY, v text);"
      "CREATE TABLE k_dbl (k float8 PRIMARY KEY, v text); CREATE TABLE t_sys_k_dbl (k float8 "
      "PRIMARY KEY, v text);"
      "CREATE TABLE k_num (k numeric PRIMARY KEY, v text); CREATE TABLE t_sys_k_num (k numeric "
      "PRIMARY KEY, v text);"
      "CREATE TABLE k_coll (k text COLLATE ci PRIMARY KEY, v text); CREATE TABLE t_sys_k_coll (k "
      "text COLLATE ci PRIMARY KEY, v text);"
      "CREATE TABLE k_cit (k email PRIMARY KEY, v text); CREATE TABLE t_sys_k_cit (k email "
      "PRIMARY KEY, v text);"
      "CREATE TABLE k_tsz (k timestamptz PRIMARY KEY, v text); CREATE TABLE t_sys_k_tsz (k "
      "timestamptz PRIMARY KEY, v text);"
      "CREATE TABLE k_two (a float8, b timestamptz, v text, PRIMARY KEY (a, b)); CREATE TABLE "
      "t_sys_k_two (a float8, b timestamptz, v text, PRIMARY KEY (a, b))";
  Twin t = twin(e, "oracle_keys", setup);
  struct Case {
    const char* table;
    const char* values;  // three keys
  };
  const Case cases[] = {
      {"k_real", "(1/3.0), (0.1), ('NaN')"},
      {"k_dbl", "(0.1 + 0.2), (1e-300 / 3), ('-Infinity')"},
      {"k_num", "(1/3.0), (1.50), ('NaN')"},
      {"k_coll", "('Straße'), ('ABC'), ('x y')"},
      {"k_cit", "('Bob@Example.com'), ('ann@x'), ('Z')"},
      {"k_tsz", "('2024-01-01 00:00:00.000001+05:30'), ('infinity'), (now())"},
  };
  for (const Case& c : cases) {
    register_migration(e.stack.api, std::string(c.table) + "_mig", c.table,
                       std::string("t_sys_") + c.table);
    set_phase(e.stack.api, std::string(c.table) + "_mig", "dual_write");
  }
  register_migration(e.stack.api, "k_two_mig", "k_two", "t_sys_k_two",
                     {{"consistency_level", "eventual"}});
  set_phase(e.stack.api, "k_two_mig", "dual_write");
  t.set("SET extra_float_digits = 0; SET TimeZone = 'America/St_Johns'");
  for (Protocol p : kBoth) {
    for (const Case& c : cases) {
      const std::string tb = c.table;
      INFO(tb);
      // (k_tsz's now() differs between the twins; only the answers below are compared.)
      t.both(p, "INSERT INTO " + tb + " (k) VALUES " + c.values);
      CHECK(t.both(p, "UPDATE " + tb + " SET v = 'u' RETURNING v").starts_with("UPDATE 3"));
      CHECK(t.both(p, "DELETE FROM " + tb + " WHERE v = 'u' AND k = (SELECT min(k) FROM " + tb +
                          ")") == "DELETE 1");
      CHECK(t.both(p, "DELETE FROM " + tb) == "DELETE 2");
      CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_" + tb) == "0");
      t.both(p, "INSERT INTO " + tb + " (k) VALUES " + c.values);
      CHECK(t.both(p, "UPDATE " + tb + " SET v = 'kept' WHERE k = (SELECT max(k) FROM " + tb +
                          ")") == "UPDATE 1");
      CHECK(differences(e.direct, tb, "t_sys_" + tb, "k, v") == 0);
      t.both(p, "DELETE FROM " + tb);
    }
    t.both(p,
           "INSERT INTO k_two VALUES (1/3.0, '2024-05-05 05:05:05.5+03', 'a'), (0.1 + 0.2, "
           "'2024-05-05 05:05:05.5+03', 'b')");
    t.both(p, "UPDATE k_two SET v = 'c' WHERE v = 'a'");
    t.both(p, "DELETE FROM k_two WHERE v = 'b'");
  }
  t.set("RESET ALL");
  check_tables(e, t, "k_two", "t_sys_k_two", "a, b, v");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_k_two") == "1");  // 2nd INSERT: 23505 on both
}

TEST_CASE("a BEFORE UPDATE trigger on the source that changes the key") {
  Env& e = env();
  Twin t = twin(e, "oracle_trig",
                "CREATE TABLE trig (id int PRIMARY KEY, v text);"
                "CREATE TABLE t_sys_trig (id int PRIMARY KEY, v text);"
                "CREATE FUNCTION trig_move() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF "
                "NEW.v = 'move' THEN NEW.id := NEW.id + 1000; END IF; RETURN NEW; END $$;"
                "CREATE TRIGGER trig_move BEFORE UPDATE ON trig FOR EACH ROW EXECUTE FUNCTION "
                "trig_move()");
  register_migration(e.stack.api, "trig_mig", "trig", "t_sys_trig");
  set_phase(e.stack.api, "trig_mig", "dual_write");
  for (Protocol p : kBoth) {
    t.both(p, "INSERT INTO trig VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    t.both(p, "UPDATE trig SET v = 'move' WHERE id = 1 RETURNING id");
    t.both(p, "UPDATE trig SET v = 'move' WHERE v = 'b'");
    t.both(p, "UPDATE trig SET v = 'stays' WHERE id = 3");
    check_tables(e, t, "trig", "t_sys_trig", "id, v");
    t.both(p, "DELETE FROM trig");
  }
  check_tables(e, t, "trig", "t_sys_trig", "id, v");
}

TEST_CASE("row-level security: a routed read never sees other rows than on the source") {
  Env& e = env();
  const std::string policy =
      "ALTER TABLE docs ENABLE ROW LEVEL SECURITY;"
      "CREATE POLICY mine ON docs USING (owner = current_user);";
  const std::string setup =
      "DO $$ BEGIN CREATE ROLE rls_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
      "CREATE TABLE docs (id int PRIMARY KEY, owner text, body text);"
      "CREATE TABLE t_sys_docs (id int PRIMARY KEY, owner text, body text);"
      "GRANT SELECT ON docs, t_sys_docs TO rls_reader;"
      "INSERT INTO docs VALUES (1, 'rls_reader', 'x'), (2, 'someone', 'y'), (3, 'rls_reader', "
      "'z');" +
      policy;
  Twin t = twin(e, "oracle_rls", setup);
  e.direct.exec_ok("INSERT INTO t_sys_docs SELECT * FROM docs");
  register_migration(e.stack.api, "docs_mig", "docs", "t_sys_docs");
  advance_to(e.stack.api, "docs_mig", "read_switch");
  switch_reads(e, "docs_sw", "docs", "docs_mig", 100);
  t.set("SET ROLE rls_reader");
  for (Protocol p : kBoth) {
    t.both(p, "SELECT count(*) FROM docs");
    t.both(p, "SELECT id, body FROM docs ORDER BY id");
  }
  t.set("RESET ROLE");
  // With the same policy on the target, reads go there (within a reload interval).
  e.direct.exec_ok(
      "ALTER TABLE t_sys_docs ENABLE ROW LEVEL SECURITY;"
      "CREATE POLICY mine ON t_sys_docs USING (owner = current_user);"
      "UPDATE t_sys_docs SET body = body || ' (target)'");
  bool routed = false;
  for (int i = 0; i < 100 && !routed; ++i) {
    t.real.exec_ok("SET ROLE rls_reader");
    routed = t.real.scalar("SELECT string_agg(body, ',' ORDER BY id) FROM docs") ==
             "x (target),z (target)";
    t.real.exec_ok("RESET ROLE");
    if (!routed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(routed);
}
