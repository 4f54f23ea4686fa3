// Table shapes in the published snapshot: resolved from the control database's catalog once a
// migration leaves preparation, with the problems that make dual writes impossible.
#include "store_env.h"

TEST_CASE("table shapes are resolved from the catalog once a migration leaves preparation",
          "[shapes]") {
  PgCluster& pg = cluster();
  const std::string db = "ctl_shapes";
  // A short reload interval: a shape with a problem is resolved again on every reload.
  auto cp = started(config(fresh_db(pg, db), 0.2));
  pg.psql(
      "CREATE TABLE accounts (id serial PRIMARY KEY, gone int, email text NOT NULL, legacy text, "
      "  shout text GENERATED ALWAYS AS (upper(email)) STORED, note text); "
      "ALTER TABLE accounts DROP COLUMN gone; "
      "CREATE TABLE t_accounts (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
      "  email_address text NOT NULL, shout text GENERATED ALWAYS AS (upper(email_address)) "
      "  STORED, note text, migrated_at timestamptz DEFAULT now()); "
      "CREATE SCHEMA app; "
      "CREATE TABLE app.\"Orders\" (\"Region\" text, \"Id\" bigint, total numeric, "
      "  UNIQUE (\"Id\", \"Region\") INCLUDE (total)); "
      "CREATE TABLE app.t_orders (\"Id\" bigint, \"Region\" text, total numeric); "
      "CREATE UNIQUE INDEX ON app.t_orders (\"Region\", \"Id\"); "
      "CREATE TABLE events (id bigserial PRIMARY KEY, payload text); "
      "CREATE TABLE t_events (id bigint, payload text); "
      "CREATE UNIQUE INDEX ON t_events (id) WHERE id > 0; "
      "CREATE UNIQUE INDEX ON t_events ((id + 0)); "
      "CREATE UNIQUE INDEX ON t_events (id, payload); "
      "CREATE TABLE lonely (id int PRIMARY KEY, v text); "
      "CREATE TABLE items (id int PRIMARY KEY, a text, b text); "
      "CREATE TABLE t_items (id int PRIMARY KEY, a text); "
      "CREATE TABLE nokey (a int, b text); CREATE TABLE t_nokey (a int, b text)",
      db);

  const auto migration = [](const std::string& id, const std::string& source,
                            const std::string& target) {
    mig::Migration m;
    m.migration_id = id;
    m.source_table = source;
    m.target_table = target;
    return m;
  };
  mig::Migration accounts = migration("accounts_mig", "accounts", "public.t_accounts");
  accounts.column_map = {{"email", "email_address"}, {"legacy", ""}};
  ok(cp->register_migration(accounts, "ops"));
  // Still in preparation: no shape.
  CHECK(cp->snapshot()->shape_for("accounts_mig") == nullptr);
  const uint64_t before = cp->snapshot()->generation;
  ok(cp->set_dual_write("accounts_mig", true, false, "ops"));  // the move to dual_write

  mig::SnapshotPtr snap = cp->snapshot();
  CHECK(snap->generation > before);
  const mig::TableShape* shape = snap->shape_for("accounts_mig");
  REQUIRE(shape != nullptr);
  INFO("problem: " << shape->problem);
  CHECK(shape->problem.empty());
  using Col = mig::ColumnShape;
  // Types as a cast spells them, with their OIDs.
  CHECK(shape->source_columns == std::vector<Col>{{"id", false, false, "integer", 23},
                                                  {"email", false, false, "text", 25},
                                                  {"legacy", false, false, "text", 25},
                                                  {"shout", true, false, "text", 25},
                                                  {"note", false, false, "text", 25}});
  CHECK(shape->target_columns ==
        std::vector<Col>{{"id", false, true, "integer", 23},
                         {"email_address", false, false, "text", 25},
                         {"shout", true, false, "text", 25},
                         {"note", false, false, "text", 25},
                         {"migrated_at", false, false, "timestamp with time zone", 1184}});
  CHECK(shape->key_columns == std::vector<std::string>{"id"});
  CHECK(shape->target_has_unique_key);
  CHECK(shape->source_has_unique_key);

  // Quoted names in a schema; the key named by the migration (in another order than the
  // indexes'); a unique constraint with INCLUDE columns counts.
  mig::Migration orders = migration("orders_mig", "app.\"Orders\"", "app.t_orders");
  orders.key_columns = {"\"Id\"", "\"Region\""};
  ok(cp->register_migration(orders, "ops"));
  ok(cp->set_phase("orders_mig", mig::Phase::kDualWrite, false, "ops"));
  shape = cp->snapshot()->shape_for("orders_mig");
  REQUIRE(shape != nullptr);
  CHECK(shape->problem.empty());
  CHECK(shape->key_columns == std::vector<std::string>{"Id", "Region"});
  CHECK(shape->source_columns.size() == 3);
  CHECK(shape->source_columns[0].name == "Region");
  CHECK(shape->target_has_unique_key);
  CHECK(shape->source_has_unique_key);

  // The target exists but has no usable unique key on id (partial, expression and wider ones do
  // not count): entering dual_write needs one (and refuses a deferrable one, see
  // tests/control/constraints_test.cpp), so it is dropped once the migration is there; the
  // shape says so (writes are then refused naming the reason).
  ok(cp->register_migration(migration("events_mig", "events", "t_events"), "ops"));
  pg.psql("CREATE UNIQUE INDEX t_events_id ON t_events (id)", db);
  ok(cp->set_phase("events_mig", mig::Phase::kDualWrite, false, "ops"));
  pg.psql("DROP INDEX t_events_id", db);
  REQUIRE(wait_until(
      [&] {
        const mig::SnapshotPtr s = cp->snapshot();
        const mig::TableShape* t = s->shape_for("events_mig");
        return t != nullptr && !t->target_has_unique_key;
      },
      5000ms, 20ms));
  shape = cp->snapshot()->shape_for("events_mig");
  REQUIRE(shape != nullptr);
  CHECK(shape->key_columns == std::vector<std::string>{"id"});
  CHECK_FALSE(shape->target_has_unique_key);
  CHECK(shape->source_has_unique_key);
  CHECK(shape->target_columns.size() == 2);
  CHECK(shape->problem.empty());

  // The target does not exist (yet).
  ok(cp->register_migration(migration("lonely_mig", "lonely", "t_lonely"), "ops"));
  ok(cp->set_phase("lonely_mig", mig::Phase::kDualWrite, false, "ops"));
  shape = cp->snapshot()->shape_for("lonely_mig");
  REQUIRE(shape != nullptr);
  CHECK(shape->problem == "target table public.t_lonely does not exist");
  CHECK(shape->key_columns == std::vector<std::string>{"id"});
  CHECK(shape->source_columns.size() == 2);
  CHECK(shape->target_columns.empty());
  CHECK_FALSE(shape->target_has_unique_key);
  CHECK(shape->source_has_unique_key);

  // column_map naming unknown columns, dropping the key, and an unmapped column the target lacks.
  mig::Migration items = migration("items_mig", "items", "t_items");
  items.column_map = {{"id", ""}, {"nope", "x"}};
  ok(cp->register_migration(items, "ops"));
  ok(cp->set_phase("items_mig", mig::Phase::kDualWrite, false, "ops"));
  shape = cp->snapshot()->shape_for("items_mig");
  REQUIRE(shape != nullptr);
  CHECK_THAT(
      shape->problem,
      Catch::Contains("column_map names nope, which is not a column of source table "
                      "public.items") &&
          Catch::Contains("column_map maps nope to x, which is not a column of target "
                          "table public.t_items") &&
          Catch::Contains("source column b has no column b in target table public.t_items") &&
          Catch::Contains("key column id is dropped by column_map"));

  // No primary key and no key_columns; a migration of another database.
  ok(cp->register_migration(migration("nokey_mig", "nokey", "t_nokey"), "ops"));
  ok(cp->set_phase("nokey_mig", mig::Phase::kDualWrite, false, "ops"));
  mig::Migration elsewhere = migration("elsewhere_mig", "accounts", "t_accounts");
  elsewhere.database = "other_db";
  ok(cp->register_migration(elsewhere, "ops"));
  ok(cp->set_phase("elsewhere_mig", mig::Phase::kDualWrite, false, "ops"));
  snap = cp->snapshot();
  REQUIRE(snap->shape_for("nokey_mig") != nullptr);
  CHECK(snap->shape_for("nokey_mig")->problem ==
        "no key: source table public.nokey has no primary key and the migration names no "
        "key_columns");
  REQUIRE(snap->shape_for("elsewhere_mig") != nullptr);
  // Its shapes are read from other_db's catalog, and other_db does not exist.
  CHECK_THAT(
      snap->shape_for("elsewhere_mig")->problem,
      Catch::StartsWith("cannot read database other_db: ") && Catch::Contains("does not exist"));
  CHECK(snap->shapes.size() == 7);

  // Creating the missing table is seen by the periodic reload (a shape with a problem is
  // resolved again), with a new generation; nothing else changed.
  const uint64_t generation = cp->snapshot()->generation;
  pg.psql("CREATE TABLE t_lonely (id int PRIMARY KEY, v text)", db);
  REQUIRE(wait_until(
      [&] {
        const mig::SnapshotPtr s = cp->snapshot();
        const mig::TableShape* t = s->shape_for("lonely_mig");
        return t != nullptr && t->problem.empty();
      },
      5000ms, 20ms));
  CHECK(cp->snapshot()->generation > generation);
  CHECK(cp->snapshot()->shape_for("lonely_mig")->target_has_unique_key);
  CHECK(cp->snapshot()->shape_for("lonely_mig")->target_columns.size() == 2);
  // So is a unique index created later.
  CHECK_FALSE(cp->snapshot()->shape_for("events_mig")->target_has_unique_key);
  pg.psql("CREATE UNIQUE INDEX t_events_id ON t_events (id)", db);
  REQUIRE(wait_until(
      [&] {
        const mig::SnapshotPtr s = cp->snapshot();
        const mig::TableShape* t = s->shape_for("events_mig");
        return t != nullptr && t->target_has_unique_key;
      },
      5000ms, 20ms));

  // Back in preparation: no shape.
  ok(cp->rollback("accounts_mig", "ops", ""));
  CHECK(cp->snapshot()->shape_for("accounts_mig") == nullptr);
  CHECK(cp->snapshot()->shape_for("orders_mig") != nullptr);
}
