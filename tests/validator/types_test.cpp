// Exact, type-aware comparison and the shapes of pairs the validator must handle: numeric scale,
// timestamptz instants, json/jsonb semantic equality, arrays, bytea, NULL versus '', floats, and
// text keys whose collation orders differently on the two sides; composite keys; a target in
// another database (two connections, no shared snapshot); a migration's column_map through
// --migration-id; and no false differences while dual writes run through pgphase (one snapshot
// shared by both sides).
#include <catch2/catch.hpp>
#include <regex>
#include <thread>

#include "val_env.h"

using namespace pgphase;
using namespace pgphase::val;

namespace {

const std::set<DiffKey> kTypeDiffs = {{"FIELD_MISMATCH", "a", "n"},
                                      {"FIELD_MISMATCH", "b", "arr"},
                                      {"FIELD_MISMATCH", "_x", "b"},
                                      {"FIELD_MISMATCH", "\xc3\x84", "t"},
                                      {"FIELD_MISMATCH", "9", "f"}};

}  // namespace

TEST_CASE("comparison is exact and type-aware; key order does not depend on collations") {
  Env& e = env();
  const bool icu =
      e.direct.scalar("SELECT count(*) FROM pg_collation WHERE collname = 'und-x-icu'") == "1";
  const std::string coll = icu ? "\"und-x-icu\"" : "\"POSIX\"";
  e.direct.exec_ok(
      "DROP TABLE IF EXISTS ty_src, ty_dst;"
      "CREATE TABLE ty_src (k text COLLATE " +
      coll +
      " PRIMARY KEY, n numeric, ts timestamptz, j jsonb, js json, arr int[], b bytea, t text, "
      "  f float8, d date, u uuid, flag boolean);"
      "CREATE TABLE ty_dst (k text COLLATE \"C\" PRIMARY KEY, n numeric, ts timestamptz, j jsonb, "
      "  js json, arr int[], b bytea, t text, f float8, d date, u uuid, flag boolean);"
      "INSERT INTO ty_src SELECT k, 1.0, '2024-01-01 00:00:00+00', '{\"a\": 1.0}', "
      "  '{\"a\":1,\"b\":2}', '{1,2}', '\\x00', NULL, 0.3, '2024-02-29', "
      "  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true "
      "FROM unnest(ARRAY['a', 'B', 'b', '_x', '\xc3\x84', '10', '9', 'Z']) k;"
      "INSERT INTO ty_dst SELECT * FROM ty_src;"
      // Differences: numeric scale, array order, bytea length, NULL vs '', float bits.
      "UPDATE ty_dst SET n = 1.00 WHERE k = 'a';"
      "UPDATE ty_dst SET arr = '{2,1}' WHERE k = 'b';"
      "UPDATE ty_dst SET b = '\\x0000' WHERE k = '_x';"
      "UPDATE ty_dst SET t = '' WHERE k = '\xc3\x84';"
      "UPDATE ty_dst SET f = 0.1::float8 + 0.2::float8 WHERE k = '9';"
      // Equal values written differently: the same instant in another zone, json with other key
      // order and spacing, jsonb numbers 1.0 and 1.00.
      "UPDATE ty_dst SET ts = '2024-01-01 02:00:00+02' WHERE k = 'B';"
      "UPDATE ty_dst SET js = '{\"b\": 2,  \"a\": 1}' WHERE k = 'b';"
      "UPDATE ty_dst SET j = '{\"a\": 1.00}' WHERE k = '10';");
  const std::vector<std::string> args{"--source-table", "ty_src",  "--target-table",
                                      "ty_dst",         "--level", "comprehensive"};
  // One bucket: every key goes through the byte-order merge.
  auto one = args;
  one.insert(one.end(), {"--buckets", "1"});
  for (const auto& a : {args, one}) {
    const json::object r = validate_json(a);
    CHECK(diff_keys(r) == kTypeDiffs);
    CHECK(num(r, "keys_compared") == 8);
  }
  const json::object detailed = validate_json(
      {"--source-table", "ty_src", "--target-table", "ty_dst", "--level", "detailed"});
  CHECK(diff_keys(detailed) == kTypeDiffs);
  // The session time zone of the client does not matter.
  const it::RunResult tz =
      ctl::cli({"validate", "--db-url", db_url(), "--source-table", "ty_src", "--target-table",
                "ty_dst", "--level", "comprehensive", "--json"},
               {"PGTZ=America/New_York"});
  CHECK(diff_keys(json::parse(tz.out).as_object()) == kTypeDiffs);

  int rc = -1;
  const json::object fixed = validate_json({"--source-table", "ty_src", "--target-table", "ty_dst",
                                            "--level", "comprehensive", "--repair"},
                                           &rc);
  CHECK(rc == 0);
  CHECK(fixed.at("repair").as_object().at("remaining").to_number<int>() == 0);
  CHECK(e.direct.scalar("SELECT n::text FROM ty_dst WHERE k = 'a'") == "1.0");
  CHECK(e.direct.scalar("SELECT (f = 0.3::float8)::text FROM ty_dst WHERE k = '9'") == "true");
  CHECK(e.direct.scalar("SELECT arr::text FROM ty_dst WHERE k = 'b'") == "{1,2}");
  CHECK(e.direct.scalar("SELECT b::text FROM ty_dst WHERE k = '_x'") == "\\x00");
  CHECK(e.direct.scalar("SELECT (t IS NULL)::text FROM ty_dst WHERE k = '\xc3\x84'") == "true");
  CHECK(num(validate_json(args), "differences_count") == 0);
}

TEST_CASE("composite keys: differences, record ids and repair") {
  Env& e = env();
  e.direct.exec_ok(
      "DROP TABLE IF EXISTS ck_src, ck_dst;"
      "CREATE TABLE ck_src (region text, id int, v text, PRIMARY KEY (region, id));"
      "INSERT INTO ck_src SELECT r, g, r || g FROM unnest(ARRAY['eu', 'us']) r, "
      "  generate_series(1, 500) g;"
      "CREATE TABLE ck_dst (LIKE ck_src INCLUDING ALL);"
      "INSERT INTO ck_dst SELECT * FROM ck_src;"
      "DELETE FROM ck_dst WHERE region = 'eu' AND id = 7;"
      "INSERT INTO ck_dst VALUES ('us', 999, 'x');"
      "UPDATE ck_dst SET v = 'changed' WHERE region = 'us' AND id = 42;");
  const std::vector<std::string> args{"--source-table", "ck_src",  "--target-table",
                                      "ck_dst",         "--level", "comprehensive"};
  const json::object r = validate_json(args);
  CHECK(diff_keys(r) == std::set<DiffKey>{{"MISSING_IN_TARGET", "[\"eu\", \"7\"]", ""},
                                          {"MISSING_IN_SOURCE", "[\"us\", \"999\"]", ""},
                                          {"FIELD_MISMATCH", "[\"us\", \"42\"]", "v"}});
  CHECK(r.at("method").as_object().at("bucketing") == json::value("key hash"));
  auto repair = args;
  repair.emplace_back("--repair");
  int rc = -1;
  validate_json(repair, &rc);
  CHECK(rc == 0);
  CHECK(differences(e.direct, "ck_src", "ck_dst", "region, id, v") == 0);
}

TEST_CASE("a target in another database: each side through its own connection") {
  Env& e = env();
  e.direct.exec_ok("DROP DATABASE IF EXISTS val_other");
  e.direct.exec_ok("CREATE DATABASE val_other");
  const std::string fill =
      "INSERT INTO %T SELECT g, 'v' || g, g / 3.0 FROM generate_series(1, 5000) g;";
  e.direct.exec_ok(
      "DROP TABLE IF EXISTS od_src; CREATE TABLE od_src (id int PRIMARY KEY, v text, amount "
      "numeric);" +
      std::regex_replace(fill, std::regex("%T"), "od_src"));
  it::PgConn other = e.stack.pg->connect("val_other");
  REQUIRE(other.ok());
  other.exec_ok("CREATE TABLE od_dst (id int PRIMARY KEY, v text, amount numeric);" +
                std::regex_replace(fill, std::regex("%T"), "od_dst") +
                "DELETE FROM od_dst WHERE id = 17; UPDATE od_dst SET v = 'x' WHERE id = 4000;");
  const std::vector<std::string> args{"--target-db-url", db_url("val_other"), "--source-table",
                                      "od_src",          "--target-table",    "od_dst",
                                      "--level",         "comprehensive"};
  const json::object r = validate_json(args);
  CHECK(diff_keys(r) ==
        std::set<DiffKey>{{"MISSING_IN_TARGET", "17", ""}, {"FIELD_MISMATCH", "4000", "v"}});
  CHECK_FALSE(r.at("shared_snapshot").as_bool());
  auto repair = args;
  repair.emplace_back("--repair");
  int rc = -1;
  validate_json(repair, &rc);
  CHECK(rc == 0);
  CHECK(other.scalar("SELECT v || ' ' || amount FROM od_dst WHERE id = 17") ==
        "v17 5.6666666666666667");
  CHECK(num(validate_json(args), "differences_count") == 0);
}

TEST_CASE("--migration-id takes tables, key and column_map from the registered migration") {
  Env& e = env();
  e.direct.exec_ok(
      "CREATE TABLE cm_src (id int PRIMARY KEY, name text, legacy text, email text);"
      "CREATE TABLE cm_dst (id int PRIMARY KEY, full_name text, email text, "
      "  extra text DEFAULT 'd');"
      "INSERT INTO cm_src SELECT g, 'n' || g, 'old', g || '@x' FROM generate_series(1, 300) g;"
      "INSERT INTO cm_dst (id, full_name, email) SELECT id, name, email FROM cm_src;"
      "UPDATE cm_dst SET full_name = 'other' WHERE id = 5;"
      "DELETE FROM cm_dst WHERE id = 6;");
  register_migration(e.stack.api, "cm_mig", "cm_src", "cm_dst",
                     {{"column_map", json::object{{"name", "full_name"}, {"legacy", ""}}}});
  const json::object r = validate_json({"--migration-id", "cm_mig", "--level", "comprehensive"});
  CHECK(diff_keys(r) ==
        std::set<DiffKey>{{"MISSING_IN_TARGET", "6", ""}, {"FIELD_MISMATCH", "5", "name"}});
  CHECK(str(r, "migration_id") == "cm_mig");
  for (const auto& d : r.at("differences").as_array()) {
    const auto& o = d.as_object();
    if (o.at("record_id") != json::value("5")) continue;
    CHECK(o.at("target_field_name") == json::value("full_name"));
    CHECK(o.at("suggested_fix") ==
          json::value("UPDATE \"public\".\"cm_dst\" SET \"full_name\" = 'n5' WHERE \"id\" = '5'"));
  }
  std::string notes;
  for (const auto& n : r.at("notes").as_array()) notes += std::string(n.as_string()) + "\n";
  CHECK(notes.find("column legacy is not compared") != std::string::npos);
  CHECK(notes.find("column extra of cm_dst is not compared") != std::string::npos);
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_consistency_checks WHERE migration_id = "
                        "'cm_mig' AND check_id = '" +
                        str(r, "check_id") + "'") == "1");
  int rc = -1;
  validate_json({"--migration-id", "cm_mig", "--level", "comprehensive", "--repair"}, &rc);
  CHECK(rc == 0);
  CHECK(e.direct.scalar("SELECT full_name || ' ' || extra FROM cm_dst WHERE id = 6") == "n6 d");
  const it::RunResult unknown =
      ctl::cli({"validate", "--db-url", db_url(), "--migration-id", "nope"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.err.find("no migration nope") != std::string::npos);
}

TEST_CASE("no false differences while dual writes run through pgphase (one shared snapshot)") {
  Env& e = env();
  reset_tables(e.direct);
  it::PgConn p = e.proxied();
  p.exec_ok(
      "INSERT INTO users (name, email, amount) SELECT 'u' || g, 'u' || g || '@x', g "
      "FROM generate_series(1, 20000) g");
  it::TempDir dir("valconc");
  const std::string script = dir.str() + "/w.sql";
  it::write_file(script,
                 "\\set id random(1, 20000)\n"
                 "BEGIN;\n"
                 "UPDATE users SET amount = amount + 1, name = 'w' || :id WHERE id = :id;\n"
                 "INSERT INTO users (name, amount) VALUES ('new', :id);\n"
                 "END;\n");
  it::RunResult bench;
  std::thread writers([&] {
    bench = it::run(
        {it::pg_tool("pgbench"), "-n", "-T", "12", "-c", "6", "-j", "2", "-f", script, "-h",
         "127.0.0.1", "-p", std::to_string(e.stack.proxy->port()), "-U", "postgres", kControlDb},
        {.timeout = std::chrono::seconds(60)});
  });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  int runs = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(9);
  while (std::chrono::steady_clock::now() < until) {
    const json::object r =
        validate_json({"--migration-id", "users_mig", "--level", "comprehensive", "--no-store"});
    INFO(json::serialize(r));
    CHECK(num(r, "differences_count") == 0);
    CHECK(r.at("shared_snapshot").as_bool());
    ++runs;
  }
  writers.join();
  INFO(bench.describe());
  CHECK(bench.ok());
  CHECK(runs >= 2);
  CHECK(std::stol(e.direct.scalar("SELECT count(*) FROM users")) > 20000);
}
