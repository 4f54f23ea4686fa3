// router/: which statements are rewritten, refused or passed, and the text they become.
#include <catch2/catch.hpp>

#include "router/dual_write_sql.h"
#include "router/plan_cache.h"
#include "router/planner.h"
#include "users_migration.h"

using namespace pgphase;
using router::ResultTransform;

namespace {

migration::Snapshot snapshot(
    migration::Phase phase,
    migration::ConsistencyLevel level = migration::ConsistencyLevel::kStrict,
    std::map<std::string, std::string> column_map = {}) {
  migration::Snapshot s;
  s.generation = 7;
  migration::Migration m;
  m.migration_id = "users_mig";
  m.source_table = "users";
  m.target_table = "t_sys_users";
  m.phase = phase;
  m.consistency_level = level;
  m.column_map = column_map;
  s.migrations.push_back(m);
  migration::TableShape shape;
  shape.source_columns = {{"id"}, {"name"}, {"email"}, {"created_at"}};
  for (const auto& c : shape.source_columns) {
    auto it = column_map.find(c.name);
    const std::string t = it == column_map.end() ? c.name : it->second;
    if (!t.empty()) shape.target_columns.push_back({t});
  }
  shape.key_columns = {"id"};
  shape.target_has_unique_key = true;
  shape.source_has_unique_key = true;
  s.shapes["users_mig"] = shape;
  return s;
}

router::QueryPlan plan(const migration::Snapshot& s, std::string_view sql) {
  const auto table = router::RoutingTable::build(s, "app");
  return router::plan_query(*table, sql);
}

migration::Snapshot switching(migration::Snapshot s) {
  return test::with_users_switch(std::move(s));
}

router::QueryPlan plan_in(const migration::Snapshot& s, std::string_view sql,
                          const router::PlanContext& ctx) {
  const auto table = router::RoutingTable::build(s, "app");
  return router::plan_query(*table, sql, ctx);
}

bool refused(const router::QueryPlan& p, std::string_view why) {
  return p.rewritten && p.sql.starts_with("DO $pgphase$") && p.sql.find(why) != std::string::npos;
}

}  // namespace

TEST_CASE("pre-filter: statements not naming a migrating table are not parsed") {
  const auto s = snapshot(migration::Phase::kDualWrite);
  const auto table = router::RoutingTable::build(s, "app");
  CHECK_FALSE(table->may_touch("SELECT 1"));
  CHECK_FALSE(table->may_touch("UPDATE accounts SET x = 1"));
  CHECK(table->may_touch("update USERS set x = 1"));
  CHECK(table->may_touch("SELECT * FROM U&\"\\0075sers\""));
  CHECK_FALSE(plan(s, "UPDATE accounts SET x = 1").rewritten);
}

TEST_CASE("preparation: nothing is routed") {
  const auto s = snapshot(migration::Phase::kPreparation);
  CHECK(router::RoutingTable::build(s, "app")->empty());
  CHECK_FALSE(plan(s, "INSERT INTO users (name) VALUES ('a')").rewritten);
}

TEST_CASE("reads and writes to other tables pass through") {
  const auto s = snapshot(migration::Phase::kDualWrite);
  CHECK_FALSE(plan(s, "SELECT * FROM users WHERE id = 1").rewritten);
  CHECK_FALSE(plan(s, "INSERT INTO audit SELECT * FROM users").rewritten);
  CHECK_FALSE(plan(s, "SELECT 'users'").rewritten);
  CHECK_FALSE(plan(s, "UPDATE other.users SET name = 'x'").rewritten);  // another schema
  CHECK_FALSE(plan(s, "INSERT INTO users (").rewritten);  // syntax error: the server says so
}

TEST_CASE("INSERT without RETURNING becomes a counting CTE that mirrors the stored row") {
  const auto s = snapshot(migration::Phase::kDualWrite);
  const auto p = plan(s, "INSERT INTO users (name) VALUES ('a'), ('b')");
  REQUIRE(p.rewritten);
  REQUIRE(p.statements.size() == 1);
  CHECK(p.statements[0].kind == ResultTransform::Kind::kCountToTag);
  CHECK(p.statements[0].tag == router::TagKind::kInsert);
  CHECK(p.sql ==
        "WITH \"__pgphase_w\" AS (INSERT INTO users (name) VALUES ('a'), ('b') RETURNING "
        "\"users\".\"id\" AS \"__pgphase_1\", \"users\".\"name\" AS \"__pgphase_2\", "
        "\"users\".\"email\" AS \"__pgphase_3\", \"users\".\"created_at\" AS \"__pgphase_4\"), "
        "\"__pgphase_m\" AS (INSERT INTO \"public\".\"t_sys_users\" (\"id\", \"name\", \"email\", "
        "\"created_at\") OVERRIDING SYSTEM VALUE SELECT \"__pgphase_1\", \"__pgphase_2\", "
        "\"__pgphase_3\", \"__pgphase_4\" FROM \"__pgphase_w\" WHERE (SELECT "
        "pg_catalog.to_regclass('\"users\"') = pg_catalog.to_regclass('\"public\".\"users\"')) "
        "ON CONFLICT (\"id\") DO UPDATE "
        "SET \"name\" = EXCLUDED.\"name\", \"email\" = EXCLUDED.\"email\", \"created_at\" = "
        "EXCLUDED.\"created_at\") SELECT count(*) FROM \"__pgphase_w\"");
}

TEST_CASE("RETURNING, aliases, WITH, comments and quoting") {
  const auto s = snapshot(migration::Phase::kValidation);
  auto p = plan(s, "UPDATE public.\"users\" AS u SET name = $1 WHERE u.id = $2 RETURNING id, name");
  REQUIRE(p.rewritten);
  CHECK(p.statements[0].kind == ResultTransform::Kind::kStripColumns);
  CHECK(p.statements[0].strip == 4);
  CHECK(p.sql.find("RETURNING id, name, \"u\".\"id\" AS \"__pgphase_1\"") != std::string::npos);
  CHECK(p.sql.ends_with("SELECT * FROM \"__pgphase_w\""));

  p = plan(s, "WITH v AS (SELECT 1 AS x) DELETE FROM users USING v WHERE users.id = v.x -- bye\n");
  REQUIRE(p.rewritten);
  CHECK(p.statements[0].tag == router::TagKind::kDelete);
  INFO(p.sql);
  CHECK(
      p.sql.starts_with("WITH v AS (SELECT 1 AS x), \"__pgphase_w\" AS (DELETE FROM users USING v "
                        "WHERE users.id = v.x RETURNING public.t_sys_row(\"users\".*) AS "
                        "\"__pgphase_r\")"));
  // The mirror delete runs through t_sys_mirror_rows (typed images, its own snapshot, only when
  // the name resolved to the source), referenced so that it runs.
  CHECK(p.sql.find("\"__pgphase_m\" AS MATERIALIZED (SELECT public.t_sys_mirror_rows(NULL, "
                   "'delete', pg_catalog.to_regclass('\"public\".\"users\"'), "
                   "pg_catalog.to_regclass('\"users\"'), '\"public\".\"t_sys_users\"', ") !=
        std::string::npos);
  CHECK(p.sql.find("SELECT count(*) FROM \"__pgphase_w\", \"__pgphase_m\"") != std::string::npos);
  CHECK(p.sql.ends_with("-- bye\n"));  // the comment stays after the statement
}

TEST_CASE("multi-statement strings: only the writes to the source change") {
  const auto s = snapshot(migration::Phase::kReadSwitch);
  const auto p = plan(s, "SELECT 1; UPDATE users SET name = 'x' WHERE id = 1; SELECT * FROM users");
  REQUIRE(p.rewritten);
  REQUIRE(p.statements.size() == 3);
  CHECK(p.statements[0].kind == ResultTransform::Kind::kNone);
  CHECK(p.statements[1].kind == ResultTransform::Kind::kCountToTag);
  CHECK(p.statements[2].kind == ResultTransform::Kind::kNone);
  CHECK(p.sql.starts_with("SELECT 1; WITH \"__pgphase_w\" AS (UPDATE users SET"));
  CHECK(p.sql.ends_with("; SELECT * FROM users"));
  // An error at "SELECT * FROM users" maps back to the client's offset.
  const auto pos = p.sql.rfind("SELECT * FROM users");
  CHECK(p.original_position(static_cast<uint32_t>(pos + 1)) == std::optional<uint32_t>(53));
}

TEST_CASE("key-changing UPDATE mirrors typed old and new images (old keys deleted first)") {
  const auto s = snapshot(migration::Phase::kDualWrite);
  const auto p = plan(s, "UPDATE users SET id = id + 100 WHERE id < 5");
  REQUIRE(p.rewritten);
  CHECK(p.sql.find("\"__pgphase_o\" AS (SELECT public.t_sys_row(\"users\".*) AS "
                   "\"__pgphase_r\" FROM users WHERE id < 5)") != std::string::npos);
  CHECK(p.sql.find("public.t_sys_mirror_rows(NULL, 'update'") != std::string::npos);
  CHECK(p.sql.find("array_agg(\"__pgphase_r\") FROM \"__pgphase_o\")") != std::string::npos);
}

TEST_CASE("column_map: renamed and dropped columns") {
  const auto s = snapshot(migration::Phase::kDualWrite, migration::ConsistencyLevel::kStrict,
                          {{"name", "full_name"}, {"email", ""}});
  const auto p = plan(s, "INSERT INTO users (name) VALUES ('a')");
  REQUIRE(p.rewritten);
  CHECK(p.sql.find("(\"id\", \"full_name\", \"created_at\")") != std::string::npos);
  CHECK(p.sql.find("\"email\"") == std::string::npos);
}

TEST_CASE("TRUNCATE empties both tables in one statement") {
  const auto s = snapshot(migration::Phase::kDualWrite);
  const auto p = plan(s, "TRUNCATE TABLE users RESTART IDENTITY CASCADE");
  REQUIRE(p.rewritten);
  CHECK(p.sql == "TRUNCATE TABLE users, \"public\".\"t_sys_users\" RESTART IDENTITY CASCADE");
  CHECK(p.statements[0].kind == ResultTransform::Kind::kNone);
}

TEST_CASE("unsupported writes: refused under reject, flagged under allow_and_flag") {
  auto s = snapshot(migration::Phase::kDualWrite);
  for (const char* sql :
       {"COPY users FROM STDIN",
        "MERGE INTO users u USING x ON u.id = x.id WHEN "
        "MATCHED THEN DELETE",
        "ALTER TABLE users ADD COLUMN z int", "DROP TABLE users",
        "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
        "EXPLAIN ANALYZE DELETE FROM users", "PREPARE p AS DELETE FROM users WHERE id = $1"}) {
    INFO(sql);
    const auto p = plan(s, sql);
    REQUIRE(p.rewritten);
    CHECK(p.sql.starts_with("DO $pgphase$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000'"));
    CHECK(p.sql.find("migration users_mig") != std::string::npos);
  }
  CHECK_FALSE(plan(s, "COPY users TO STDOUT").rewritten);
  CHECK_FALSE(plan(s, "EXPLAIN DELETE FROM users").rewritten);
  s.migrations[0].unsupported_write_policy = migration::UnsupportedWritePolicy::kAllowAndFlag;
  const auto p = plan(s, "COPY users FROM STDIN");
  CHECK_FALSE(p.rewritten);
  REQUIRE(p.flagged.size() == 1);
  CHECK(p.flagged[0].find("COPY FROM") != std::string::npos);
}

TEST_CASE("a migration whose shape has a problem refuses writes with the reason") {
  auto s = snapshot(migration::Phase::kDualWrite);
  s.shapes["users_mig"].target_has_unique_key = false;
  const auto p = plan(s, "DELETE FROM users WHERE id = 1");
  REQUIRE(p.rewritten);
  CHECK(p.sql.find("no unique index") != std::string::npos);
}

TEST_CASE("plan cache: bounded in bytes, cleared by a new generation") {
  router::PlanCache cache(4096);
  auto plan_ptr = std::make_shared<const router::QueryPlan>();
  for (int i = 0; i < 200; ++i) cache.insert(1, "SELECT " + std::to_string(i), {plan_ptr, nullptr});
  CHECK(cache.bytes() <= 4096);
  CHECK(cache.entries() < 200);
  CHECK(cache.find(1, "SELECT 199") != nullptr);
  CHECK(cache.find(1, "SELECT 0") == nullptr);
  CHECK(cache.find(2, "SELECT 199") == nullptr);
  CHECK(cache.entries() == 0);
}

TEST_CASE("cleanup: the statement writes the target and the source is the mirror") {
  const auto s = snapshot(migration::Phase::kCleanup);
  const auto p = plan(s, "UPDATE users SET name = 'x' WHERE users.id = 1");
  REQUIRE(p.rewritten);
  CHECK(
      p.sql.starts_with("WITH \"__pgphase_w\" AS (UPDATE \"public\".\"t_sys_users\" AS "
                        "\"users\" SET name = 'x' WHERE users.id = 1 RETURNING"));
  CHECK(p.sql.find("INSERT INTO \"public\".\"users\"") != std::string::npos);
  CHECK(p.statements[0].kind == ResultTransform::Kind::kCountToTag);
  const auto t = plan(s, "TRUNCATE users");
  CHECK(t.sql == "TRUNCATE users, \"public\".\"t_sys_users\"");
}

TEST_CASE("completed: statements writing the source are redirected to the target only") {
  const auto s = snapshot(migration::Phase::kCompleted);
  auto p = plan(s, "INSERT INTO public.users (name) VALUES ('x') RETURNING id");
  REQUIRE(p.rewritten);
  CHECK(p.sql ==
        "INSERT INTO \"public\".\"t_sys_users\" AS \"users\" (name) VALUES ('x') RETURNING id");
  CHECK(p.statements[0].kind == ResultTransform::Kind::kNone);
  p = plan(s, "DELETE FROM users u WHERE u.id = 3");
  CHECK(p.sql == "DELETE FROM \"public\".\"t_sys_users\" u WHERE u.id = 3");
  p = plan(s, "TRUNCATE users, orders");
  CHECK(p.sql == "TRUNCATE \"public\".\"t_sys_users\" , orders");
  // A renaming column_map cannot be applied to the client's column references.
  const auto renamed = snapshot(migration::Phase::kCompleted, migration::ConsistencyLevel::kStrict,
                                {{"name", "full_name"}});
  p = plan(renamed, "UPDATE users SET name = 'x'");
  CHECK(p.sql.find("column_map renames or drops columns") != std::string::npos);
}

TEST_CASE("reads in read_switch: renamed to the target, or kept on the source with a reason") {
  auto s = switching(snapshot(migration::Phase::kReadSwitch));
  auto p = plan(s, "SELECT u.name FROM users u JOIN orders o ON o.uid = u.id");
  REQUIRE(p.routes_reads());
  CHECK_FALSE(p.rewritten);
  CHECK(p.sql_target ==
        "SELECT u.name FROM \"public\".\"t_sys_users\" u JOIN orders o ON o.uid = u.id");
  p = plan(s, "SELECT * FROM users ORDER BY id");
  CHECK(p.sql_target == "SELECT * FROM \"public\".\"t_sys_users\" AS \"users\" ORDER BY id");
  CHECK(p.statements[0].ordered);
  for (const char* sql :
       {"SELECT * FROM users FOR UPDATE", "WITH users AS (SELECT 1) SELECT * FROM users",
        "SELECT public.users.id FROM public.users",
        "SELECT * FROM users TABLESAMPLE SYSTEM (10)"}) {
    INFO(sql);
    p = plan(s, sql);
    CHECK_FALSE(p.routes_reads());
    CHECK(p.unroutable_routes.size() == 1);
  }
  // A renaming column_map reads the target through a derived table with the source's names.
  const auto renamed =
      switching(snapshot(migration::Phase::kReadSwitch, migration::ConsistencyLevel::kStrict,
                         {{"name", "full_name"}}));
  p = plan(renamed, "SELECT name FROM users WHERE id = $1");
  CHECK(p.sql_target ==
        "SELECT name FROM (SELECT \"id\", \"full_name\" AS \"name\", \"email\", \"created_at\" "
        "FROM \"public\".\"t_sys_users\") AS \"users\" WHERE id = $1");
}

TEST_CASE("search_path: a source in another schema is found by its unqualified name") {
  auto s = snapshot(migration::Phase::kDualWrite);
  s.migrations[0].source_table = "app.users";
  s.migrations[0].target_table = "app.t_sys_users";
  auto p = plan(s, "INSERT INTO users (name) VALUES ('a')");
  REQUIRE(p.rewritten);
  CHECK(p.sql.find("INSERT INTO \"app\".\"t_sys_users\"") != std::string::npos);
  // Mirrored only when "users" resolves to app.users when the statement runs.
  CHECK(p.sql.find("to_regclass('\"users\"') = pg_catalog.to_regclass('\"app\".\"users\"')") !=
        std::string::npos);
  CHECK_FALSE(plan(s, "INSERT INTO public.users (name) VALUES ('a')").rewritten);
  CHECK(plan(s, "INSERT INTO app.users (name) VALUES ('a')").rewritten);
}

TEST_CASE("search_path: with a same-named table elsewhere, unqualified writes go typed") {
  auto s = switching(snapshot(migration::Phase::kReadSwitch));
  s.shapes["users_mig"].source_homonyms = "other";
  auto p = plan(s, "UPDATE users SET name = 'x' WHERE id = 1");
  REQUIRE(p.rewritten);
  INFO(p.sql);
  CHECK(p.sql.find("RETURNING public.t_sys_row(\"users\".*) AS \"__pgphase_r\"") !=
        std::string::npos);
  CHECK(p.sql.find("t_sys_mirror_rows(NULL, 'update'") != std::string::npos);
  // A qualified name is certain: the inline upsert, no guard.
  p = plan(s, "UPDATE public.users SET name = 'x' WHERE id = 1");
  CHECK(p.sql.find("t_sys_mirror_rows") == std::string::npos);
  CHECK(p.sql.find("to_regclass") == std::string::npos);
  // Reads of the unqualified name stay on the source; qualified ones switch.
  p = plan(s, "SELECT * FROM users");
  CHECK_FALSE(p.routes_reads());
  REQUIRE(p.unroutable_reasons.size() == 1);
  CHECK(p.unroutable_reasons[0].find("schemas with a relation of that name: other") !=
        std::string::npos);
  CHECK(plan(s, "SELECT * FROM public.users").routes_reads());
  // TRUNCATE of the unqualified name cannot be guarded: refused.
  CHECK(refused(plan(s, "TRUNCATE users"), "in a TRUNCATE"));
  // completed: the unqualified name cannot be redirected.
  auto c = snapshot(migration::Phase::kCompleted);
  c.shapes["users_mig"].source_homonyms = "other";
  CHECK(refused(plan(c, "DELETE FROM users WHERE id = 1"), "cannot be redirected"));
  CHECK(plan(c, "DELETE FROM public.users WHERE id = 1").sql.starts_with("DELETE FROM \"public\""));
}

TEST_CASE("search_path: a session that creates a same-named table is treated as shadowed") {
  const auto s = snapshot(migration::Phase::kDualWrite);
  CHECK(plan(s, "CREATE TEMP TABLE users (id int)").shadows_source);
  CHECK(plan(s, "CREATE TABLE other.users (id int)").shadows_source);
  CHECK(plan(s, "CREATE VIEW other.users AS SELECT 1").shadows_source);
  CHECK(plan(s, "SELECT 1 INTO TEMP users").shadows_source);
  CHECK_FALSE(plan(s, "CREATE TABLE IF NOT EXISTS users (id int)").shadows_source);
  CHECK_FALSE(plan(s, "CREATE TABLE public.users (id int)").shadows_source);
  router::PlanContext ctx;
  ctx.names_shadowed = true;
  const auto p = plan_in(s, "INSERT INTO users (name) VALUES ('a')", ctx);
  CHECK(p.sql.find("t_sys_mirror_rows(NULL, 'insert'") != std::string::npos);
}

TEST_CASE("two migrating sources with the same name: unqualified writes are refused") {
  auto s = snapshot(migration::Phase::kDualWrite);
  auto m2 = s.migrations[0];
  m2.migration_id = "app_users_mig";
  m2.source_table = "app.users";
  m2.target_table = "app.t_sys_users";
  s.migrations.push_back(m2);
  s.shapes["app_users_mig"] = s.shapes["users_mig"];
  CHECK(refused(plan(s, "DELETE FROM users WHERE id = 1"), "another migration"));
  const auto p = plan(s, "DELETE FROM app.users WHERE id = 1");
  CHECK(p.sql.find("\"app\".\"t_sys_users\"") != std::string::npos);
}

TEST_CASE("a BEFORE UPDATE trigger on the source makes every UPDATE a key change") {
  auto s = snapshot(migration::Phase::kDualWrite);
  s.shapes["users_mig"].source_update_trigger = true;
  const auto p = plan(s, "UPDATE users SET name = 'x' WHERE name = 'y'");
  REQUIRE(p.rewritten);
  CHECK(p.sql.find("\"__pgphase_o\" AS (SELECT public.t_sys_row(\"users\".*) AS "
                   "\"__pgphase_r\" FROM users WHERE name = 'y')") != std::string::npos);
  CHECK(p.sql.find("public.t_sys_mirror_rows(NULL, 'update'") != std::string::npos);
  // Without the trigger, an UPDATE that sets no key column reads no old keys.
  CHECK(plan(snapshot(migration::Phase::kDualWrite), "UPDATE users SET name = 'x'")
            .sql.find("__pgphase_o") == std::string::npos);
}

TEST_CASE("eventual: typed row images, never JSON text") {
  const auto s = snapshot(migration::Phase::kDualWrite, migration::ConsistencyLevel::kEventual);
  const auto p = plan(s, "INSERT INTO users (name) VALUES ('a') RETURNING id");
  REQUIRE(p.rewritten);
  CHECK(p.sql.find("t_sys_mirror_rows('users_mig', 'insert'") != std::string::npos);
  CHECK(p.sql.find("jsonb") == std::string::npos);
  CHECK(p.statements[0].strip == 1);
}

TEST_CASE("standard_conforming_strings off: backslash literals are not rewritten") {
  const auto s = switching(snapshot(migration::Phase::kReadSwitch));
  router::PlanContext off;
  off.literals_uncertain = true;
  // Under off, 'a\'... does not end where libpg_query (on) says: a write is refused.
  auto p = plan_in(s, R"(INSERT INTO users (name) VALUES ('a\'); DELETE FROM users; --'))", off);
  CHECK(refused(p, "standard_conforming_strings is off"));
  CHECK(p.statements.size() == 1);
  // What precedes the first such literal is read alike and kept.
  p = plan_in(
      s, R"(UPDATE users SET name = 'b' WHERE id = 1; INSERT INTO users (name) VALUES ('a\n'))",
      off);
  CHECK(p.sql.starts_with("WITH \"__pgphase_w\" AS (UPDATE users SET name = 'b'"));
  CHECK(p.sql.find("standard_conforming_strings is off") != std::string::npos);
  CHECK(p.statements.size() == 2);
  // E'' strings, dollar quotes and texts without backslashes read the same under any setting.
  CHECK_FALSE(refused(plan_in(s, R"(INSERT INTO users (name) VALUES (E'a\'b'))", off), "standard"));
  CHECK_FALSE(refused(plan_in(s, R"(INSERT INTO users (name) VALUES ($$a\$$))", off), "standard"));
  CHECK_FALSE(refused(plan_in(s, "INSERT INTO users (name) VALUES ('a''b')", off), "standard"));
  // A read stays on the source, unchanged.
  p = plan_in(s, R"(SELECT * FROM users WHERE name = 'x\')", off);
  CHECK_FALSE(p.routes_reads());
  CHECK_FALSE(p.rewritten);
  CHECK(p.unroutable_routes.size() == 1);
  // The same text under the default context is rewritten (no backslash semantics there).
  CHECK(plan(s, R"(SELECT * FROM users WHERE name = 'x\')").routes_reads());
}

TEST_CASE("client_encoding with backslash trail bytes: texts with a backslash byte are refused") {
  const auto s = snapshot(migration::Phase::kDualWrite);
  router::PlanContext sjis;
  sjis.backslash_bytes_uncertain = true;
  CHECK(
      refused(plan_in(s, "INSERT INTO users (name) VALUES (E'\x95\\')", sjis), "client_encoding"));
  CHECK(refused(plan_in(s, "INSERT INTO users (name) VALUES (E'a\\n', '\x95\x5c')", sjis),
                "client_encoding"));
  // In a '...' literal (standard_conforming_strings on) a backslash byte is only a byte.
  CHECK(plan_in(s, "INSERT INTO users (name) VALUES ('\x95\x5c')", sjis)
            .sql.starts_with("WITH \"__pgphase_w\""));
}

TEST_CASE("row-level security that differs keeps reads on the source") {
  auto s = switching(snapshot(migration::Phase::kReadSwitch));
  s.shapes["users_mig"].rls_difference = "row-level security differs between x and y";
  const auto p = plan(s, "SELECT count(*) FROM users");
  CHECK_FALSE(p.routes_reads());
  REQUIRE(p.unroutable_reasons.size() == 1);
  CHECK(p.unroutable_reasons[0].find("row-level security") != std::string::npos);
}

TEST_CASE("pgphase's literals read the same under any standard_conforming_strings") {
  CHECK(router::quote_literal_exact("a'b") == "'a''b'");
  CHECK(router::quote_literal_exact(R"(a\b')") == R"(E'a\\b''')");
}

namespace {

// users (id integer, name text, email text, created_at timestamptz) and a target with the columns
// in another order, id widened to bigint and an extra migrated_at.
// `sql` with runs of spaces made one.
std::string squeezed(std::string sql) {
  std::string out;
  for (char c : sql) {
    if (c != ' ' || out.empty() || out.back() != ' ') out += c;
  }
  return out;
}

migration::Snapshot reshaped(migration::Phase phase) {
  auto s = snapshot(phase);
  auto& shape = s.shapes["users_mig"];
  shape.source_columns = {{"id", false, false, "integer", 23},
                          {"name", false, false, "text", 25},
                          {"email", false, false, "text", 25},
                          {"created_at", false, false, "timestamp with time zone", 1184}};
  shape.target_columns = {{"name", false, false, "text", 25},
                          {"id", false, false, "bigint", 20},
                          {"email", false, false, "text", 25},
                          {"created_at", false, false, "timestamp with time zone", 1184},
                          {"migrated_at", false, false, "timestamp with time zone", 1184}};
  return phase == migration::Phase::kReadSwitch ? switching(s) : s;
}

constexpr const char* kPresented =
    "(SELECT \"id\"::integer AS \"id\", \"name\", \"email\", \"created_at\" FROM "
    "\"public\".\"t_sys_users\")";

}  // namespace

TEST_CASE("reads of a target of another shape go through a derived table with the source's") {
  for (auto phase :
       {migration::Phase::kReadSwitch, migration::Phase::kCleanup, migration::Phase::kCompleted}) {
    const auto s = reshaped(phase);
    auto p = plan(s, "SELECT * FROM users WHERE id = $1");
    REQUIRE(p.routes_reads());
    CHECK(p.sql_target ==
          std::string("SELECT * FROM ") + kPresented + " AS \"users\" WHERE id = $1");
    p = plan(s, "SELECT count(*) FROM ONLY users u");
    CHECK(p.sql_target ==
          "SELECT count(*) FROM (SELECT \"id\"::integer AS \"id\", \"name\", "
          "\"email\", \"created_at\" FROM ONLY \"public\".\"t_sys_users\") u");
  }
  // The same shape: the bare target name (fast path), ONLY (users) kept valid.
  const auto same = switching(snapshot(migration::Phase::kReadSwitch));
  CHECK(plan(same, "SELECT 1 FROM ONLY (users)").sql_target ==
        "SELECT 1 FROM ONLY \"public\".\"t_sys_users\" AS \"users\"");
}

TEST_CASE("routed reads map error positions back to the client's text") {
  const auto s = reshaped(migration::Phase::kReadSwitch);
  const std::string sql = "SELECT id, nosuchcol FROM users WHERE 1/0 = id";
  const auto p = plan(s, sql);
  REQUIRE(p.routes_reads());
  const auto at = [&](std::string_view needle, std::string_view in) {
    return static_cast<uint32_t>(in.find(needle) + 1);
  };
  CHECK(p.original_position(at("nosuchcol", p.sql_target), true) == at("nosuchcol", sql));
  CHECK(p.original_position(at("1/0", p.sql_target), true) == at("1/0", sql));
  CHECK(p.original_position(at("SELECT id", p.sql_target), true) == 1);
}

TEST_CASE("row-type uses stay on the source, and are refused in completed") {
  for (const char* sql : {"SELECT full_name(u) FROM users u", "SELECT u.full_name FROM users u",
                          "SELECT users FROM users", "SELECT row_to_json(u) FROM users u",
                          "SELECT f(u.*) FROM users u", "SELECT (u).id FROM users u"}) {
    INFO(sql);
    for (auto phase : {migration::Phase::kReadSwitch, migration::Phase::kCleanup}) {
      const auto p = plan(reshaped(phase), sql);
      CHECK_FALSE(p.routes_reads());
      CHECK_FALSE(p.rewritten);
      REQUIRE(p.unroutable_reasons.size() == 1);
    }
    const auto p = plan(reshaped(migration::Phase::kCompleted), sql);
    CHECK_FALSE(p.routes_reads());
    CHECK(refused(p, "in the completed phase users is no longer written"));
  }
  // u.* as a target list entry expands to the columns: routed.
  CHECK(plan(reshaped(migration::Phase::kReadSwitch), "SELECT u.* FROM users u").routes_reads());
  // Other unroutable reads in completed are refused too.
  const auto done = reshaped(migration::Phase::kCompleted);
  CHECK(refused(plan(done, "SELECT * FROM users FOR UPDATE"), "locking read"));
  CHECK(refused(plan(done, "COPY users TO STDOUT"), "only SELECT and EXPLAIN"));
  CHECK_FALSE(plan(done, "VACUUM users").rewritten);
}

TEST_CASE("cleanup and completed: positional INSERTs and RETURNING keep the source's shape") {
  for (auto phase : {migration::Phase::kCleanup, migration::Phase::kCompleted}) {
    const auto s = reshaped(phase);
    auto p = plan(s, "INSERT INTO users VALUES (1, 'a') RETURNING *");
    REQUIRE(p.rewritten);
    CHECK(squeezed(p.sql).find(
              "INSERT INTO \"public\".\"t_sys_users\" AS \"users\" (\"id\", \"name\") "
              "VALUES (1, 'a') RETURNING \"users\".\"id\"::integer AS \"id\", "
              "\"users\".\"name\", \"users\".\"email\", \"users\".\"created_at\"") !=
          std::string::npos);
    p = plan(s, "INSERT INTO users AS u SELECT 1, 'b' RETURNING u.*, id AS k, id");
    CHECK(squeezed(p.sql).find(
              "\"public\".\"t_sys_users\" AS u (\"id\", \"name\") SELECT 1, 'b' RETURNING "
              "\"u\".\"id\"::integer AS \"id\", \"u\".\"name\", \"u\".\"email\", "
              "\"u\".\"created_at\" , id::integer AS k, id::integer AS \"id\"") !=
          std::string::npos);
    CHECK(refused(plan(s, "INSERT INTO users SELECT * FROM orders"), "number of columns"));
    CHECK(refused(plan(s, "UPDATE users SET name = 'x' RETURNING id + 1"),
                  "computes with column id"));
    CHECK(refused(plan(s, "DELETE FROM users u RETURNING u"), "whole-row reference"));
    CHECK(refused(plan(s, "UPDATE users SET name = 'x' FROM orders RETURNING *"), "FROM/USING"));
    // Explicit columns need nothing.
    p = plan(s, "INSERT INTO users (name, id) VALUES ('c', 3)");
    CHECK(p.sql.find("AS \"users\" (name, id) VALUES") != std::string::npos);
  }
}

TEST_CASE("completed: reads inside writes name the target; earlier phases leave them alone") {
  const auto done = snapshot(migration::Phase::kCompleted);
  auto p = plan(done, "WITH o AS (INSERT INTO orders VALUES (1) RETURNING 1) SELECT * FROM users");
  REQUIRE(p.rewritten);
  CHECK(p.sql.find("SELECT * FROM \"public\".\"t_sys_users\" AS \"users\"") != std::string::npos);
  p = plan(done, "INSERT INTO orders SELECT id FROM users WHERE id > 3");
  REQUIRE(p.rewritten);
  CHECK(p.sql ==
        "INSERT INTO orders SELECT id FROM \"public\".\"t_sys_users\" AS \"users\" WHERE id > 3");
  // The written table and the one read are both the target.
  p = plan(done, "INSERT INTO users (id, name) SELECT id + 100, name FROM users");
  REQUIRE(p.rewritten);
  CHECK(p.sql.find("FROM users") == std::string::npos);
  CHECK(p.sql.find("FROM \"public\".\"t_sys_users\" AS \"users\"") != std::string::npos);
  p = plan(done, "UPDATE orders SET id = u.id FROM users u WHERE u.name = 'x'");
  REQUIRE(p.rewritten);
  CHECK(p.sql.find("FROM \"public\".\"t_sys_users\" u") != std::string::npos);
  // Row-type uses inside such writes are refused.
  CHECK(refused(plan(done, "INSERT INTO orders SELECT length(u::text) FROM users u"), "whole-row"));
  // While the source is written, reads inside writes stay on it.
  for (auto phase :
       {migration::Phase::kDualWrite, migration::Phase::kReadSwitch, migration::Phase::kCleanup}) {
    CHECK_FALSE(plan(snapshot(phase), "INSERT INTO orders SELECT id FROM users").rewritten);
  }
}
