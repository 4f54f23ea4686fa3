// Writes across the later phases: cleanup (the statement writes the target, mirrored to the
// source) and completed (statements naming the source write the target only); rollback to
// preparation stops mirroring.
#include <catch2/catch.hpp>

#include "dw_env.h"

using namespace pgphase;
using namespace pgphase::dw;

TEST_CASE("cleanup mirrors target writes to the source; completed writes the target only") {
  Env& e = env();
  e.direct.exec_ok(
      "CREATE TABLE items (id serial PRIMARY KEY, label text, qty int DEFAULT 1);"
      "CREATE TABLE t_sys_items (id int PRIMARY KEY, label text, qty int)");
  register_migration(e.stack.api, "items_mig", "items", "t_sys_items");
  const it::PgConn c = e.proxied();
  set_phase(e.stack.api, "items_mig", "dual_write");
  c.exec_ok("INSERT INTO items (label) VALUES ('a'), ('b'), ('c')");
  CHECK(differences(e.direct, "items", "t_sys_items", "id, label, qty") == 0);

  advance_to(e.stack.api, "items_mig", "read_switch");
  register_switch(e.stack.api, "items_sw", "items", "items_mig");
  REQUIRE(e.stack.api.post("/api/v1/switches/items_sw/activate", "{}").status == 200);
  set_percentage(e.stack.api, "items_sw", 100);
  set_phase(e.stack.api, "items_mig", "cleanup");
  auto r = c.exec("INSERT INTO items (id, label) VALUES (10, 'd') RETURNING items.label");
  INFO(r.describe());
  CHECK(r.cmd_status() == "INSERT 0 1");
  CHECK(r.value(0, 0) == "d");
  INFO("after insert: items " << e.direct.scalar("SELECT string_agg(id::text, ',') FROM items")
                              << " target "
                              << e.direct.scalar(
                                     "SELECT string_agg(id::text, ',') FROM t_sys_items"));
  r = c.exec_params("UPDATE items SET qty = qty + $1 WHERE id <= 2", {"5"});
  CHECK(r.cmd_status() == "UPDATE 2");
  r = c.exec("DELETE FROM items WHERE label = 'c'");
  CHECK(r.cmd_status() == "DELETE 1");
  CHECK(differences(e.direct, "items", "t_sys_items", "id, label, qty") == 0);
  CHECK(
      e.direct.scalar(
          "SELECT string_agg(id || ':' || coalesce(qty, -1), ',' ORDER BY id) FROM t_sys_items") ==
      "1:6,2:6,10:-1");  // the target's qty has no default

  set_phase(e.stack.api, "items_mig", "completed");
  r = c.exec_params("INSERT INTO items (id, label) VALUES ($1, 'new') RETURNING id", {"20"});
  CHECK(r.cmd_status() == "INSERT 0 1");
  r = c.exec("UPDATE items SET label = 'only target' WHERE id = 1");
  CHECK(r.cmd_status() == "UPDATE 1");
  CHECK(e.direct.scalar("SELECT count(*) FROM items WHERE id = 20") == "0");
  CHECK(e.direct.scalar("SELECT label FROM t_sys_items WHERE id = 1") == "only target");
  CHECK(e.direct.scalar("SELECT label FROM items WHERE id = 1") == "a");
}

TEST_CASE("column_map: renamed and dropped columns, target-only columns take their defaults") {
  Env& e = env();
  e.direct.exec_ok(
      "CREATE TABLE people (id bigserial PRIMARY KEY, name text, secret text, born date);"
      "CREATE TABLE t_sys_people (id bigint PRIMARY KEY, full_name text, born date, "
      "source text DEFAULT 'pgphase', migrated_at timestamptz DEFAULT now())");
  register_migration(e.stack.api, "people_mig", "people", "t_sys_people",
                     {{"column_map", json::object{{"name", "full_name"}, {"secret", ""}}}});
  set_phase(e.stack.api, "people_mig", "dual_write");
  const it::PgConn c = e.proxied();
  for (const bool extended : {false, true}) {
    const std::string sql =
        "INSERT INTO people (name, secret, born) VALUES ('ann', 's3', '2000-01-02') RETURNING *";
    const auto r = extended ? c.exec_params(sql, {}) : c.exec(sql);
    INFO(r.describe());
    CHECK(r.cmd_status() == "INSERT 0 1");
    CHECK(r.cols() == 4);  // the client's RETURNING *, nothing of the mirror
  }
  auto r = c.exec("UPDATE people SET name = 'bob', secret = 'x' WHERE id = 2");
  CHECK(r.cmd_status() == "UPDATE 1");
  CHECK(differences(e.direct, "(SELECT id, name AS full_name, born FROM people) s",
                    "(SELECT id, full_name, born FROM t_sys_people) t", "*") == 0);
  CHECK(e.direct.scalar("SELECT string_agg(full_name || '/' || source, ',' ORDER BY id) FROM "
                        "t_sys_people WHERE migrated_at IS NOT NULL") == "ann/pgphase,bob/pgphase");
  r = c.exec("DELETE FROM people WHERE name = 'ann'");
  CHECK(r.cmd_status() == "DELETE 1");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_people") == "1");
}
