// The validator's levels on a 200,000-row pair with injected differences: rows deleted from the
// target, rows only in the target, and changed fields (NULL <-> value, NULL <-> '', numeric,
// timestamptz, jsonb, two fields of one row). Comprehensive finds exactly the injected set,
// detailed finds it when it samples every key (and only injected ones when it samples few),
// basic reports the counts, key range and NULL counts that differ; the export holds every
// difference; --repair --dry-run prints the SQL and changes nothing; --repair makes a second
// comprehensive run clean; checks are stored in t_sys_consistency_checks; large difference sets
// are summarised with every difference in the export.
#include <catch2/catch.hpp>

#include "val_env.h"

using namespace pgphase;
using namespace pgphase::val;

namespace {

constexpr int64_t kRows = 200000;

const std::set<DiffKey> kInjected = {
    {"MISSING_IN_TARGET", "5", ""},        {"MISSING_IN_TARGET", "77777", ""},
    {"MISSING_IN_TARGET", "150001", ""},   {"MISSING_IN_TARGET", "199999", ""},
    {"MISSING_IN_SOURCE", "-3", ""},       {"MISSING_IN_SOURCE", "250000", ""},
    {"FIELD_MISMATCH", "11", "note"},      {"FIELD_MISMATCH", "20", "note"},
    {"FIELD_MISMATCH", "30", "note"},      {"FIELD_MISMATCH", "1234", "price"},
    {"FIELD_MISMATCH", "4321", "created"}, {"FIELD_MISMATCH", "9999", "doc"},
    {"FIELD_MISMATCH", "100000", "qty"},   {"FIELD_MISMATCH", "100000", "name"}};
constexpr int64_t kDifferingKeys = 13;  // 4 + 2 + 7 rows

void create_pair(const it::PgConn& c) {
  c.exec_ok(
      "DROP TABLE IF EXISTS v_src, v_dst;"
      "CREATE TABLE v_src (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), "
      "  created timestamptz, doc jsonb, note text);"
      "INSERT INTO v_src SELECT g, 'name ' || g, g % 1000, (g % 100000) / 7.0, "
      "  timestamptz '2026-01-01 00:00:00+00' - g * interval '1 s', "
      "  jsonb_build_object('g', g, 'tag', 't' || (g % 50)), "
      "  CASE WHEN g % 10 = 0 THEN NULL ELSE 'n' || g END "
      "FROM generate_series(1, 200000) g;"
      "CREATE TABLE v_dst (LIKE v_src INCLUDING ALL);"
      "INSERT INTO v_dst SELECT * FROM v_src;"
      "ANALYZE v_src; ANALYZE v_dst;");
}

void inject(const it::PgConn& c) {
  c.exec_ok(
      "DELETE FROM v_dst WHERE id IN (5, 77777, 150001, 199999);"
      "INSERT INTO v_dst VALUES (250000, 'extra', 1, 1.00, now(), '{}', 'x'), "
      "  (-3, 'neg', 2, 2.00, now(), '[]', 'y');"
      "UPDATE v_dst SET note = NULL WHERE id = 11;"   // value -> NULL
      "UPDATE v_dst SET note = 'n20' WHERE id = 20;"  // NULL -> value
      "UPDATE v_dst SET note = '' WHERE id = 30;"     // NULL -> ''
      "UPDATE v_dst SET price = price + 0.01 WHERE id = 1234;"
      "UPDATE v_dst SET created = created + interval '1 microsecond' WHERE id = 4321;"
      "UPDATE v_dst SET doc = doc || '{\"x\": 1}' WHERE id = 9999;"
      "UPDATE v_dst SET qty = qty + 1, name = 'changed' WHERE id = 100000;");
}

std::vector<std::string> tables() {
  return {"--source-table", "v_src", "--target-table", "v_dst"};
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("every level finds the injected differences of a 200,000-row pair; repair fixes them") {
  Env& e = env();
  create_pair(e.direct);
  {
    int rc = -1;
    const json::object clean = validate_json(with(tables(), {"--level", "comprehensive"}), &rc);
    CHECK(rc == 0);
    CHECK(num(clean, "consistency_score") == 1.0);
    CHECK(num(clean, "differences_count") == 0);
    CHECK(num(clean, "source_rows") == kRows);
  }
  inject(e.direct);

  SECTION("comprehensive: exactly the injected set, the score, the export and the stored check") {
    it::TempDir dir("valexp");
    const std::string path = dir.str() + "/report.json";
    int rc = -1;
    const json::object r =
        validate_json(with(tables(), {"--level", "comprehensive", "--export", path}), &rc);
    CHECK(rc == 1);
    CHECK(diff_keys(r) == kInjected);
    CHECK(str(r, "level") == "comprehensive");
    CHECK(num(r, "keys_compared") == kRows + 2);
    CHECK(num(r, "keys_matching") == kRows + 2 - kDifferingKeys);
    CHECK(num(r, "consistency_score") ==
          Approx(static_cast<double>(kRows + 2 - kDifferingKeys) / (kRows + 2)).epsilon(1e-12));
    const auto& counts = r.at("counts_by_type").as_object();
    CHECK(counts.at("MISSING_IN_TARGET").to_number<int>() == 4);
    CHECK(counts.at("MISSING_IN_SOURCE").to_number<int>() == 2);
    CHECK(counts.at("FIELD_MISMATCH").to_number<int>() == 8);
    CHECK(r.at("recommendations").as_array().size() >= 3);
    CHECK_FALSE(str(r, "snapshot_time").empty());
    CHECK(r.at("shared_snapshot").as_bool());
    // Values and fixes of a few differences.
    for (const auto& d : r.at("differences").as_array()) {
      const auto& o = d.as_object();
      const std::string id(o.at("record_id").as_string());
      const std::string fix(o.at("suggested_fix").as_string());
      if (id == "30") {  // NULL in the source, '' in the target
        CHECK(o.at("source_value").is_null());
        CHECK(o.at("target_value") == json::value(""));
        CHECK(fix == "UPDATE \"public\".\"v_dst\" SET \"note\" = NULL WHERE \"id\" = '30'");
      }
      if (id == "1234") CHECK(o.at("source_value") == json::value("176.29"));
      if (id == "-3") CHECK(fix == "DELETE FROM \"public\".\"v_dst\" WHERE (\"id\" = '-3')");
      if (id == "5") {
        CHECK(fix.rfind("INSERT INTO \"public\".\"v_dst\"", 0) == 0);
        CHECK(o.at("source_value").as_object().at("name") == json::value("name 5"));
      }
    }
    // The export: the same report with every difference.
    const json::value exported = json::parse(it::read_file(path));
    REQUIRE(exported.is_object());
    CHECK(diff_keys(exported.as_object()) == kInjected);
    CHECK(exported.as_object().at("consistency_score") == r.at("consistency_score"));
    CHECK(exported.as_object().at("check_id") == r.at("check_id"));
    // Stored.
    const it::PgResult stored = e.direct.exec(
        "SELECT level, consistency_score, differences_count, report->>'differences_count', "
        "total_records FROM t_sys_consistency_checks WHERE check_id = '" +
        str(r, "check_id") + "'");
    INFO(stored.describe());
    REQUIRE(stored.rows() == 1);
    CHECK(stored.value(0, 0) == "comprehensive");
    CHECK(std::stod(stored.value(0, 1)) == Approx(num(r, "consistency_score")).epsilon(1e-12));
    CHECK(stored.value(0, 2) == "14");
    CHECK(stored.value(0, 3) == "14");
    CHECK(stored.value(0, 4) == std::to_string(kRows + 2));
  }

  SECTION("detailed: every sampled key compared; all keys sampled finds the injected set") {
    const json::object all =
        validate_json(with(tables(), {"--level", "detailed", "--sample-size", "300000"}));
    CHECK(diff_keys(all) == kInjected);
    CHECK(num(all, "keys_compared") == kRows + 2);
    const json::object few =
        validate_json(with(tables(), {"--level", "detailed", "--sample-size", "1000"}));
    const auto found = diff_keys(few);
    for (const auto& d : found) CHECK(kInjected.count(d) == 1);
    CHECK(num(few, "keys_compared") >= 1000);
    CHECK(num(few, "keys_compared") <= 2000);
    CHECK(few.at("method").as_object().at("sampled_from_source").to_number<int>() == 1000);
  }

  SECTION("basic: counts, key range and NULL counts, with what they imply") {
    int rc = -1;
    const json::object r = validate_json(with(tables(), {"--level", "basic"}), &rc);
    CHECK(rc == 1);
    CHECK(num(r, "source_rows") == kRows);
    CHECK(num(r, "target_rows") == kRows - 4 + 2);
    std::set<std::string> checks;
    for (const auto& f : r.at("findings").as_array()) {
      const auto& o = f.as_object();
      std::string c(o.at("check").as_string());
      if (const auto* col = o.if_contains("column")) c += ":" + std::string(col->as_string());
      checks.insert(c);
      CHECK_FALSE(o.at("implies").as_string().empty());
    }
    CHECK(checks ==
          std::set<std::string>{"row_count", "key_min:id", "key_max:id", "null_count:note"});
    CHECK(num(r, "consistency_score") < 1.0);
    CHECK(r.at("differences").as_array().empty());
  }

  SECTION("--repair --dry-run prints the fixes and changes nothing; --repair fixes everything") {
    const it::RunResult dry = ctl::cli(with(
        {"validate", "--db-url", db_url(), "--level", "comprehensive", "--repair", "--dry-run"},
        tables()));
    INFO(dry.describe());
    CHECK(dry.exit_code == 1);
    int statements = 0;
    for (std::size_t at = 0; (at = dry.out.find(";\n", at)) != std::string::npos; at += 2)
      ++statements;
    CHECK(statements == 14);
    CHECK(dry.out.find("DELETE FROM \"public\".\"v_dst\" WHERE (\"id\" = '250000');") !=
          std::string::npos);
    CHECK(diff_keys(validate_json(with(tables(), {"--level", "comprehensive"}))) == kInjected);

    int rc = -1;
    const json::object fixed =
        validate_json(with(tables(), {"--level", "comprehensive", "--repair"}), &rc);
    CHECK(rc == 0);
    const auto& rep = fixed.at("repair").as_object();
    CHECK(rep.at("keys").to_number<int>() == kDifferingKeys);
    CHECK(rep.at("deleted").to_number<int>() == 2);
    CHECK(rep.at("upserted").to_number<int>() == kDifferingKeys - 2);
    CHECK(rep.at("remaining").to_number<int>() == 0);
    CHECK(differences(e.direct, "v_src", "v_dst", "id, name, qty, price, created, doc, note") == 0);
    const json::object again = validate_json(with(tables(), {"--level", "comprehensive"}), &rc);
    CHECK(rc == 0);
    CHECK(num(again, "differences_count") == 0);
    CHECK(num(again, "consistency_score") == 1.0);
    // Idempotent: a second repair of the same report's keys changes nothing.
    const json::object twice =
        validate_json(with(tables(), {"--level", "comprehensive", "--repair"}), &rc);
    CHECK(twice.at("repair").as_object().at("keys").to_number<int>() == 0);
  }
}

TEST_CASE("a large difference set is summarised; the export holds every difference") {
  Env& e = env();
  e.direct.exec_ok(
      "DROP TABLE IF EXISTS v_big_src, v_big_dst;"
      "CREATE TABLE v_big_src (id int PRIMARY KEY, v text);"
      "INSERT INTO v_big_src SELECT g, 'v' || g FROM generate_series(1, 20000) g;"
      "CREATE TABLE v_big_dst (LIKE v_big_src INCLUDING ALL);"
      "INSERT INTO v_big_dst SELECT * FROM v_big_src WHERE id % 40 <> 0;");  // 500 missing
  it::TempDir dir("valbig");
  const std::string path = dir.str() + "/all.json";
  const json::object r = validate_json({"--source-table", "v_big_src", "--target-table",
                                        "v_big_dst", "--level", "comprehensive", "--export", path});
  CHECK(num(r, "differences_count") == 500);
  CHECK(r.at("differences").as_array().size() == 100);
  CHECK(r.at("differences_truncated").as_bool());
  const json::value all = json::parse(it::read_file(path));
  CHECK(all.as_object().at("differences").as_array().size() == 500);
  CHECK_FALSE(all.as_object().at("differences_truncated").as_bool());
  // The terminal rendering says where the rest is.
  const it::RunResult text =
      ctl::cli({"validate", "--db-url", db_url(), "--source-table", "v_big_src", "--target-table",
                "v_big_dst", "--level", "comprehensive", "--no-store"});
  CHECK(text.exit_code == 1);
  CHECK(text.out.find("480 more (all of them in the --export file)") != std::string::npos);
  CHECK(text.out.find("consistency score  0.975000") != std::string::npos);
}

TEST_CASE("bad invocations get a clear error and exit 2 or 1, never a crash") {
  const it::RunResult no_table = ctl::cli(
      {"validate", "--db-url", db_url(), "--source-table", "nope", "--target-table", "v_src"});
  CHECK(no_table.exit_code == 1);
  CHECK(no_table.err.find("table nope does not exist") != std::string::npos);
  const it::RunResult level = ctl::cli({"validate", "--db-url", db_url(), "--source-table", "v_src",
                                        "--target-table", "v_dst", "--level", "deep"});
  CHECK(level.exit_code == 2);
  CHECK(level.err.find("--level must be") != std::string::npos);
  const it::RunResult dry = ctl::cli({"validate", "--db-url", db_url(), "--source-table", "v_src",
                                      "--target-table", "v_dst", "--dry-run"});
  CHECK(dry.exit_code == 2);
  const it::RunResult url =
      ctl::cli({"validate", "--source-table", "a", "--target-table", "b"}, {}, {"DATABASE_URL"});
  CHECK(url.exit_code == 2);
  CHECK(url.err.find("--db-url") != std::string::npos);
  const it::RunResult down =
      ctl::cli({"validate", "--db-url", "host=127.0.0.1 port=1 dbname=x connect_timeout=2",
                "--source-table", "a", "--target-table", "b"});
  CHECK(down.exit_code == 1);
  const it::RunResult nokey = ctl::cli({"validate", "--db-url", db_url(), "--source-table", "v_src",
                                        "--target-table", "v_dst", "--key-columns", "missing"});
  CHECK(nokey.exit_code == 1);
  CHECK(nokey.err.find("key column missing") != std::string::npos);
}
