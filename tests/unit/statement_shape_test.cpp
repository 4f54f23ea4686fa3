// router/statement_shape.h, text_template.h, plan_lookup.h: the literals of a text found as
// PostgreSQL's lexer finds them, and a plan rendered from a shape's template equal in every field
// to the plan of the text planned on its own.
#include <pg_query/pg_query.pb-c.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "router/plan_lookup.h"
#include "router/sql_tree.h"
#include "users_migration.h"

using namespace pgphase;
using router::Literal;

namespace {

std::vector<std::string> literals_of(std::string_view sql) {
  std::vector<Literal> lits;
  REQUIRE(router::scan_literals(sql, lits));
  std::vector<std::string> out;
  for (const Literal& l : lits) {
    out.push_back(std::string(1, static_cast<char>(l.kind)) + ":" +
                  std::string(sql.substr(l.start, l.length())));
  }
  return out;
}

bool shapeless(std::string_view sql) {
  std::vector<Literal> lits;
  return !router::scan_literals(sql, lits);
}

std::string key_of(std::string_view sql) {
  std::vector<Literal> lits;
  REQUIRE(router::scan_literals(sql, lits));
  std::string key;
  router::shape_key(sql, lits, key);
  return key;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("literals: strings, escapes, dollar quotes and numbers as the lexer reads them") {
  CHECK(literals_of("SELECT 'it''s', 'a\\' FROM t") == V{"S:'it''s'", "S:'a\\'"});
  CHECK(literals_of("SELECT E'it\\'s', e'\\\\', E'x''y'") ==
        V{"E:E'it\\'s'", "E:e'\\\\'", "E:E'x''y'"});
  CHECK(literals_of("SELECT $$a'b$$, $tag$ $$ 'x' $tag$, $1") ==
        V{"D:$$a'b$$", "D:$tag$ $$ 'x' $tag$"});
  CHECK(literals_of("SELECT -5, 1.5, .5, 1e10, 1.5E-3, 2147483647, 2147483648, 007") ==
        V{"I:5", "F:1.5", "F:.5", "F:1e10", "F:1.5E-3", "I:2147483647", "F:2147483648", "I:007"});
  CHECK(literals_of("SELECT '5'::int, N'nat', x1, t2.c3, a$1, \"q''\"\"x\"") ==
        V{"S:'5'", "S:'nat'"});
  CHECK(literals_of("SELECT 1 -- 'not a literal\n, /* nested /* 'x' */ 2 */ 3") == V{"I:1", "I:3"});
  CHECK(literals_of("SELECT 'héllo', 'x' || 'y'") == V{"S:'héllo'", "S:'x'", "S:'y'"});
}

TEST_CASE("literals: what the scanner does not read exactly makes the text shapeless") {
  CHECK(shapeless("SELECT U&'\\0041'"));
  CHECK(shapeless("SELECT * FROM U&\"\\0075sers\""));
  CHECK(shapeless("SELECT B'0101', 1"));
  CHECK(shapeless("SELECT X'ff'"));
  CHECK(shapeless("SELECT 'con'\n'tinued'"));
  CHECK(shapeless("SELECT 'con' -- c\n 'tinued'"));
  CHECK(shapeless("SELECT 123abc"));
  CHECK(shapeless("SELECT 1e"));
  CHECK(shapeless("SELECT 'open"));
  CHECK(shapeless("SELECT $q$ open"));
  CHECK(shapeless("SELECT /* open"));
  CHECK(shapeless("SELECT \"open"));
  CHECK_FALSE(shapeless("SELECT bu&'x'"));  // a name, an operator and a string
}

TEST_CASE("shape keys: equal only when the texts differ in their literals alone") {
  CHECK(key_of("UPDATE t SET a = 'x' WHERE id = 1") ==
        key_of("UPDATE t SET a = 'it''s' WHERE id = 42"));
  CHECK(key_of("SELECT 1") != key_of("SELECT '1'"));  // kinds differ
  CHECK(key_of("SELECT 1") != key_of("SELECT 1.0"));
  CHECK(key_of("SELECT 'a'") != key_of("SELECT E'a'"));
  CHECK(key_of("SELECT x::varchar(10)") != key_of("SELECT x::varchar(99999999999)"));
  CHECK(key_of("SELECT 1 /* a */") != key_of("SELECT 1 /* b */"));  // comments are kept
  CHECK(key_of("SELECT * FROM t WHERE id IN (1, 2)") !=
        key_of("SELECT * FROM t WHERE id IN (1, 2, 3)"));
  CHECK(key_of("SELECT 1") != key_of("SELECT  1"));
}

TEST_CASE("literals: the scanner agrees with libpg_query on every constant") {
  const char* texts[] = {
      "INSERT INTO users (name, email) VALUES ('it''s', E'a\\'b\\\\'), ($$d'q$$, $x$y$x$)",
      "UPDATE users SET name = 'x' || -5 || 1.5e3 WHERE id IN (1, 2, 3) AND email <> N'z'",
      "SELECT * FROM users WHERE created_at > '2024-01-01'::timestamptz ORDER BY 2 LIMIT 10",
      "DELETE FROM users WHERE id = 2147483648 -- 'c'\n RETURNING /* '1' */ id",
      "SELECT 'héllo', .5, 007, 1.",
  };
  for (const char* sql : texts) {
    std::vector<Literal> mine;
    REQUIRE(router::scan_literals(sql, mine));
    std::vector<std::pair<int32_t, int32_t>> theirs;
    for (const router::Token& t : router::scan_tokens(sql)) {
      if (t.kind == PG_QUERY__TOKEN__FCONST || t.kind == PG_QUERY__TOKEN__SCONST ||
          t.kind == PG_QUERY__TOKEN__ICONST)
        theirs.emplace_back(t.start, t.end);
    }
    std::vector<std::pair<int32_t, int32_t>> ours;
    for (const Literal& l : mine) ours.emplace_back(l.start, l.end);
    INFO(sql);
    CHECK(ours == theirs);
  }
}

namespace {

// `pattern` with each "{}" replaced by the next of `values`.
std::string fill(std::string_view pattern, const std::vector<std::string>& values) {
  std::string out;
  size_t v = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern.substr(i, 2) == "{}") {
      out += values.at(v++);
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

void check_same(const router::QueryPlan& a, const router::QueryPlan& b) {
  CHECK(a.rewritten == b.rewritten);
  CHECK(a.sql == b.sql);
  CHECK(a.sql_target == b.sql_target);
  CHECK(a.read_route == b.read_route);
  REQUIRE(a.statements.size() == b.statements.size());
  for (size_t i = 0; i < a.statements.size(); ++i) {
    const auto& x = a.statements[i];
    const auto& y = b.statements[i];
    CHECK((x.kind == y.kind && x.refused == y.refused && x.tag == y.tag && x.strip == y.strip &&
           x.read == y.read && x.ordered == y.ordered && x.route == y.route));
  }
  auto same_segments = [](const std::vector<router::TextSegment>& x,
                          const std::vector<router::TextSegment>& y) {
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i].rewritten_start != y[i].rewritten_start ||
          x[i].original_start != y[i].original_start || x[i].length != y[i].length)
        return false;
    }
    return true;
  };
  CHECK(same_segments(a.segments, b.segments));
  CHECK(same_segments(a.segments_target, b.segments_target));
  CHECK(a.flagged == b.flagged);
  CHECK(a.flagged_routes == b.flagged_routes);
  CHECK(a.route_ids == b.route_ids);
  CHECK(a.unroutable_routes == b.unroutable_routes);
  CHECK(a.unroutable_reasons == b.unroutable_reasons);
  CHECK(a.shadows_source == b.shadows_source);
}

migration::Snapshot in_phase(migration::Phase phase, bool eventual = false) {
  migration::Snapshot s = test::users_snapshot(phase);
  if (eventual) s.migrations[0].consistency_level = migration::ConsistencyLevel::kEventual;
  return phase == migration::Phase::kReadSwitch ? test::with_users_switch(std::move(s)) : s;
}

struct Case {
  const char* pattern;
  std::vector<std::vector<std::string>> values;  // the first planned, the others rendered
};

}  // namespace

TEST_CASE("a plan rendered from its shape equals the text planned on its own, in every field") {
  // Literals of other lengths, quotes, escapes, dollar quotes, multibyte characters (error
  // positions count characters), and literals in positions that decide what the statement
  // means (ORDER BY ordinals, LIMIT, OFFSET, FETCH): the planner never reads a literal's value,
  // so the template holds; this proves it against the planner itself.
  const std::vector<Case> cases = {
      {"INSERT INTO users (id, name) VALUES ({}, {})",
       {{"1", "'a'"},
        {"22", "'it''s'"},
        {"333", "E'x\\'y\\\\'"},
        {"4", "$$dol'lar$$"},
        {"5", "'héllo wörld'"},
        {"6", "''"}}},
      {"UPDATE users SET name = {} WHERE id = {}",
       {{"'a'", "1"}, {"'a much longer value'", "123456"}, {"E'\\n'", "7"}, {"'ü'", "8"}}},
      {"DELETE FROM users WHERE id = {} OR name = {} RETURNING name, {}",
       {{"1", "'x'", "0.5"}, {"99", "'yy''z'", "1e10"}}},
      {"INSERT INTO users (id, name) VALUES ({}, {}) ON CONFLICT (id) DO UPDATE SET name = "
       "EXCLUDED.name || {}",
       {{"1", "'a'", "'!'"}, {"2", "'bb'", "'?!'"}}},
      {"SELECT name, id FROM users WHERE id > {} ORDER BY {} LIMIT {}",
       {{"1", "1", "10"}, {"2", "2", "1"}, {"100", "1", "1000"}}},
      {"SELECT * FROM users WHERE name IN ({}, {}) ORDER BY 1 OFFSET {} FETCH FIRST {} ROWS ONLY",
       {{"'a'", "'b'", "0", "5"}, {"'ccc'", "'é'", "10", "50"}}},
      {"UPDATE users SET name = {} WHERE id = 1; SELECT {}; DELETE FROM users WHERE id = {}",
       {{"'a'", "'b'", "3"}, {"'long long'", "'x'", "33333"}}},
      {"INSERT INTO users SELECT {} + g, {} FROM generate_series(1, {}) g",
       {{"10", "'n'", "3"}, {"1000", "'nnnn'", "30"}}},
      {"WITH x AS (SELECT {} AS v) UPDATE users SET name = (SELECT v FROM x) WHERE id = {}",
       {{"'a'", "1"}, {"'bbbb'", "22"}}},
      {"SELECT count(*) FROM users u JOIN users v ON u.id = v.id + {} WHERE u.name <> {}",
       {{"1", "'x'"}, {"12", "'yyy'"}}},
      {"TRUNCATE users", {{}}},
  };
  size_t rendered = 0;
  for (const auto phase : {migration::Phase::kDualWrite, migration::Phase::kReadSwitch,
                           migration::Phase::kCleanup, migration::Phase::kCompleted}) {
    for (bool eventual : {false, true}) {
      const auto snapshot = in_phase(phase, eventual);
      const auto table = router::RoutingTable::build(snapshot, "app");
      router::PlanCache cache(1 << 20);
      router::LookupScratch scratch;
      for (const Case& c : cases) {
        const std::string first = fill(c.pattern, c.values[0]);
        for (size_t v = 0; v < c.values.size(); ++v) {
          const std::string sql = fill(c.pattern, c.values[v]);
          INFO("phase " << static_cast<int>(phase) << " eventual " << eventual << ": " << sql);
          const router::Lookup found = router::find_or_plan(cache, *table, sql, {}, scratch);
          if (v > 0 && key_of(sql) == key_of(first)) {
            CHECK(found.cached);
            ++rendered;
          }
          check_same(*found.plan, router::plan_query(*table, sql));
        }
      }
    }
  }
  CHECK(rendered == 8 * 14);  // per phase and level, the 14 variants that share the first's shape
}

TEST_CASE("a shape is not cached from a text libpg_query cannot read") {
  const auto snapshot = in_phase(migration::Phase::kDualWrite);
  const auto table = router::RoutingTable::build(snapshot, "app");
  router::PlanCache cache(1 << 20);
  router::LookupScratch scratch;
  // An invalid Unicode escape: libpg_query (like the server) rejects the text, so nothing is
  // mirrored; a valid text of the same shape must still be rewritten.
  const auto bad = router::find_or_plan(cache, *table, "INSERT INTO users (name) VALUES (E'\\u12')",
                                        {}, scratch);
  CHECK_FALSE(bad.plan->rewritten);
  const auto good =
      router::find_or_plan(cache, *table, "INSERT INTO users (name) VALUES (E'ok')", {}, scratch);
  CHECK_FALSE(good.cached);
  CHECK(good.plan->rewritten);
  const auto again =
      router::find_or_plan(cache, *table, "INSERT INTO users (name) VALUES (E'fine')", {}, scratch);
  CHECK(again.cached);
  CHECK(again.plan->sql.find("VALUES (E'fine')") != std::string::npos);
}

TEST_CASE("texts of one shape share one entry; another context is planned afresh") {
  const auto snapshot = in_phase(migration::Phase::kDualWrite);
  const auto table = router::RoutingTable::build(snapshot, "app");
  router::PlanCache cache(1 << 20);
  router::LookupScratch scratch;
  const char* sql = "UPDATE users SET name = 'a' WHERE id = 1";
  CHECK_FALSE(router::find_or_plan(cache, *table, sql, {}, scratch).cached);
  const auto second = router::find_or_plan(cache, *table, sql, {}, scratch);
  CHECK(second.cached);
  for (int i = 0; i < 100; ++i) {
    const std::string other =
        "UPDATE users SET name = 'n" + std::to_string(i) + "' WHERE id = " + std::to_string(i);
    CHECK(router::find_or_plan(cache, *table, other, {}, scratch).cached);
  }
  CHECK(cache.entries() == 1);  // the shape, not one entry per text
  router::PlanContext off;
  off.literals_uncertain = true;
  CHECK_FALSE(router::find_or_plan(cache, *table, sql, off, scratch).cached);
  // Shapes are cached per generation of the routing table.
  const auto next =
      router::RoutingTable::build(test::users_snapshot(migration::Phase::kDualWrite, 4), "app");
  CHECK_FALSE(
      router::find_or_plan(cache, *next, "UPDATE users SET name = 'b' WHERE id = 2", {}, scratch)
          .cached);
}
