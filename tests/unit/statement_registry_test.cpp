// intercept/statement_registry: prepared statements and portals as the server keys them, the undo
// of a Parse or Close the server failed or skipped, and the names of target-reading twins.
#include "intercept/statement_registry.h"

#include <catch2/catch.hpp>
#include <string>

using namespace pgphase;
using intercept::Portal;
using intercept::server_key;
using intercept::Statement;
using intercept::StatementRegistry;

namespace {

Statement statement(std::string text) {
  Statement st;
  st.text = std::move(text);
  return st;
}

}  // namespace

TEST_CASE("server keys: names cut to 63 bytes, as NAMEDATALEN does") {
  CHECK(server_key("") == "");
  CHECK(server_key("s1") == "s1");
  const std::string n63(63, 'a');
  CHECK(server_key(n63) == n63);
  CHECK(server_key(n63 + "b") == n63);
  CHECK(server_key(n63 + "bcdefgh") == server_key(n63 + "zzz"));

  // Two client names sharing their first 63 bytes are one statement for PostgreSQL.
  StatementRegistry r;
  (void)r.parse(server_key(n63 + "_first"), statement("SELECT 1"), true);
  const Statement* st = r.find(server_key(n63 + "_second"));
  REQUIRE(st != nullptr);
  CHECK(st->text == "SELECT 1");
  CHECK(r.statements() == 1);
}

TEST_CASE("Parse of a new name: undone (failed or skipped), the name is unknown again") {
  StatementRegistry r;
  CHECK(r.parse("s", statement("SELECT 1"), true) == nullptr);
  REQUIRE(r.find("s") != nullptr);
  r.undo(true, "s", nullptr, r.version("s"));
  CHECK(r.find("s") == nullptr);
  CHECK(r.statements() == 0);
}

TEST_CASE("Parse over a named statement: the server refuses it (42P05), the old one stays") {
  StatementRegistry r;
  Statement first = statement("UPDATE users SET name = 'x'");
  first.alt_prepared = true;
  first.alt_name = "__pgphase_rt_7";
  (void)r.parse("s", std::move(first), true);
  auto previous = r.parse("s", statement("SELECT 2"), true);
  REQUIRE(previous != nullptr);
  CHECK(previous->text == "UPDATE users SET name = 'x'");
  CHECK(r.find("s")->text == "SELECT 2");  // until the server answers
  r.undo(true, "s", std::move(previous), r.version("s"));
  const Statement* st = r.find("s");
  REQUIRE(st != nullptr);
  CHECK(st->text == "UPDATE users SET name = 'x'");
  CHECK_FALSE(st->alt_prepared);            // its twin was closed when it was replaced
  CHECK(st->alt_name == "__pgphase_rt_7");  // ... and is prepared again under the same name
}

TEST_CASE("Parse of the unnamed statement replaces it always: nothing to restore") {
  StatementRegistry r;
  (void)r.parse("", statement("SELECT 1"), false);
  CHECK(r.parse("", statement("SELECT 2"), false) == nullptr);
  CHECK(r.find("")->text == "SELECT 2");
  // The failed Parse leaves no unnamed statement.
  r.undo(true, "", nullptr, r.version(""));
  CHECK(r.find("") == nullptr);
}

TEST_CASE("Close: removed at once; skipped by the server, put back") {
  StatementRegistry r;
  (void)r.parse("s", statement("SELECT 1"), true);
  auto removed = r.close("s");
  REQUIRE(removed != nullptr);
  CHECK(removed->text == "SELECT 1");
  CHECK(r.find("s") == nullptr);
  r.undo(false, "s", std::move(removed), 0);
  REQUIRE(r.find("s") != nullptr);
  CHECK(r.find("s")->text == "SELECT 1");

  // A Close of an unknown name removes nothing, and its undo creates nothing.
  auto none = r.close("unknown");
  CHECK(none == nullptr);
  r.undo(false, "unknown", nullptr, 0);
  CHECK(r.find("unknown") == nullptr);
  CHECK(r.statements() == 1);
}

TEST_CASE("twin names: a counter per statement, short whatever the client's name") {
  StatementRegistry r;
  const std::string long_name(63, 'x');
  (void)r.parse(long_name, statement("SELECT * FROM users"), true);
  (void)r.parse("b", statement("SELECT id FROM users"), true);
  Statement& a = *r.find(long_name);
  Statement& b = *r.find("b");
  CHECK(a.alt_name.empty());  // none until first needed
  const std::string twin_a = r.alt_name(a);
  CHECK(twin_a == "__pgphase_rt_1");
  CHECK(r.alt_name(a) == twin_a);  // stable
  CHECK(r.alt_name(b) == "__pgphase_rt_2");
  CHECK(twin_a.size() < 63);
  CHECK(twin_a.find('x') == std::string::npos);  // never derived from the client's name

  // A statement replaced by a new Parse gets a new twin: the old one's text may differ.
  (void)r.parse("b", statement("SELECT name FROM users"), true);
  CHECK(r.alt_name(*r.find("b")) == "__pgphase_rt_3");
}

TEST_CASE("portals: bound, found, closed, and all gone with the transaction") {
  StatementRegistry r;
  Portal p;
  p.count_binary = true;
  p.transform.kind = router::ResultTransform::Kind::kCountToTag;
  r.bind("", p);
  r.bind("named", Portal{});
  REQUIRE(r.find_portal("") != nullptr);
  CHECK(r.find_portal("")->count_binary);
  CHECK(r.find_portal("")->transform.kind == router::ResultTransform::Kind::kCountToTag);
  r.bind("", Portal{});  // a new Bind of the unnamed portal replaces it
  CHECK_FALSE(r.find_portal("")->count_binary);
  r.erase_portal("named");
  CHECK(r.find_portal("named") == nullptr);
  CHECK(r.portals() == 1);
  r.clear_portals();
  CHECK(r.portals() == 0);
  CHECK(r.find_portal("") == nullptr);
}

TEST_CASE("an undo puts nothing back once a later Parse of the name changed it (past a Sync)") {
  StatementRegistry r;
  (void)r.parse("s", statement("INSERT 1"), true);
  // Parse "s" (a) and, after a Sync, Parse "s" (b) go out before any answer.
  std::shared_ptr<Statement> before_a;
  (void)r.parse_in_place("s", true, before_a);
  const uint64_t made_a = r.version("s");
  r.find("s")->text = "SELECT a";
  std::shared_ptr<Statement> before_b;
  (void)r.parse_in_place("s", true, before_b);
  r.find("s")->text = "SELECT b";
  // (a) fails: (b), later, decides what "s" is.
  r.undo(true, "s", std::move(before_a), made_a);
  CHECK(r.find("s")->text == "SELECT b");
}
