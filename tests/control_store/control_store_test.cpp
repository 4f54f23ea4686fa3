// migration::ControlPlane against a real PostgreSQL 15: the t_sys_* schema, every operation's
// persistence and t_sys_migration_logs rows, NOTIFY between two instances, an outage of the
// control database, and the manual's config files.
#include <atomic>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <memory>
#include <thread>

#include "harness/harness.h"
#include "migration/schema.h"
#include "server_control.h"

#include "store_env.h"

TEST_CASE("the schema is created once, concurrently and idempotently", "[schema]") {
  PgCluster& pg = cluster();
  const std::string dsn = fresh_db(pg, "ctl_schema");

  std::unique_ptr<mig::ControlPlane> a;
  std::unique_ptr<mig::ControlPlane> b;
  std::atomic<int> failures{0};
  {
    std::thread ta([&] {
      try {
        a = started(config(dsn));
      } catch (...) {
        ++failures;
      }
    });
    std::thread tb([&] {
      try {
        b = started(config(dsn));
      } catch (...) {
        ++failures;
      }
    });
    ta.join();
    tb.join();
  }
  REQUIRE(failures == 0);
  CHECK(a->connected());
  CHECK(b->connected());
  CHECK(a->snapshot()->generation == 1);  // the first load is published even when empty
  CHECK(a->snapshot()->migrations.empty());

  CHECK(sql(pg, "ctl_schema",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM t_sys_schema_version") ==
        "1,2,3,4,5,6,7,8");
  CHECK(sql(pg, "ctl_schema",
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
            "WHERE tablename LIKE 't_sys_%'") ==
        "t_sys_alert_notifications,t_sys_alert_rules,t_sys_alert_silences,t_sys_alerts,"
        "t_sys_audit_log,t_sys_backfills,t_sys_consistency_checks,t_sys_dual_write_logs,t_sys_"
        "migration_logs,t_sys_"
        "migrations,"
        "t_sys_read_switch_configs,t_sys_read_switch_history,t_sys_schema_version");
  CHECK(sql(pg, "ctl_schema",
            "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes "
            "WHERE indexname LIKE 'idx_%'") ==
        "idx_alerts_fired,idx_alerts_open,idx_audit_log_created,"
        "idx_consistency_checks_migration_created,idx_dual_write_logs_migration_created,"
        "idx_dual_write_logs_unrepaired,idx_migration_logs_migration_created,idx_migration_logs_"
        "status_created,"
        "idx_read_switch_history_config_created");
  CHECK(sql(pg, "ctl_schema",
            "SELECT pg_get_indexdef('idx_migration_logs_status_created'::regclass)") ==
        "CREATE INDEX idx_migration_logs_status_created ON public.t_sys_migration_logs USING "
        "btree (status, created_at)");
  // The manual's diagnostic query runs as written (no rows yet).
  CHECK(sql(pg, "ctl_schema",
            "SELECT * FROM t_sys_dual_write_logs WHERE migration_id = 'users_table_migration' "
            "AND target_success = FALSE ORDER BY created_at DESC LIMIT 10") == "");

  a->stop();
  b->stop();
  // Once more on the existing schema: nothing changes.
  auto c = started(config(dsn));
  CHECK(c->connected());
  CHECK(sql(pg, "ctl_schema", "SELECT count(*) FROM t_sys_schema_version") == "8");
}

TEST_CASE("a version 1 schema is upgraded in place; a newer one is refused", "[schema]") {
  PgCluster& pg = cluster();
  const std::string db = "ctl_upgrade";
  const std::string dsn = fresh_db(pg, db);
  {
    auto a = started(config(dsn));
    ok(a->register_migration(manual_migration(), "v1"));
    a->stop();
  }
  // What pgphase with schema version 1 left behind.
  pg.psql(
      "ALTER TABLE t_sys_migrations DROP COLUMN unsupported_write_policy; "
      "ALTER TABLE t_sys_dual_write_logs DROP COLUMN repaired_at; "
      "DROP FUNCTION t_sys_mirror_apply; DROP FUNCTION t_sys_mirror_delete; "
      "DROP TABLE t_sys_backfills; "
      "DROP TABLE t_sys_alert_rules, t_sys_alerts, t_sys_alert_silences, "
      "t_sys_alert_notifications, t_sys_audit_log; "
      "DELETE FROM t_sys_schema_version WHERE version IN (2, 3, 4, 5, 6, 7, 8)",
      db);
  {
    auto b = started(config(dsn));
    CHECK(b->connected());
    const mig::Migration* m = find(*b, "users_table_migration");
    REQUIRE(m != nullptr);
    CHECK_FALSE(m->unsupported_write_policy.has_value());
    CHECK(sql(pg, db,
              "SELECT string_agg(version::text, ',' ORDER BY version) FROM "
              "t_sys_schema_version") == "1,2,3,4,5,6,7,8");
    CHECK(sql(pg, db, "SELECT count(*) FROM pg_proc WHERE proname = 't_sys_mirror_apply'") == "1");
    CHECK(sql(pg, db, "SELECT coalesce(unsupported_write_policy, 'NULL') FROM t_sys_migrations") ==
          "NULL");
    b->stop();
  }
  pg.psql("INSERT INTO t_sys_schema_version (version, description) VALUES (9, 'future')", db);
  mig::ControlPlane c(config(dsn));
  try {
    c.start();
    FAIL("start() accepted schema version 9");
  } catch (const mig::SchemaError& e) {
    CHECK_THAT(e.what(), Catch::Contains("schema version 9, newer than this pgphase understands"));
  }
}

TEST_CASE("t_sys_* tables of another tool are refused, naming the missing columns", "[schema]") {
  PgCluster& pg = cluster();
  const std::string other = fresh_db(pg, "ctl_foreign");
  pg.psql("CREATE TABLE t_sys_migrations (id serial PRIMARY KEY, name text)", "ctl_foreign");
  mig::ControlPlane cp(config(other));
  try {
    cp.start();
    FAIL("start() accepted a foreign t_sys_migrations");
  } catch (const mig::SchemaError& e) {
    CHECK_THAT(e.what(), Catch::Contains("t_sys_migrations lacks auto_switch_threshold, "
                                         "column_map, consistency_level"));
  }
  // Nothing was created: the transaction rolled back.
  CHECK(sql(pg, "ctl_foreign", "SELECT to_regclass('t_sys_schema_version') IS NULL") == "t");
}

TEST_CASE("migration operations are persisted and logged", "[ops]") {
  PgCluster& pg = cluster();
  const std::string db = "ctl_ops";
  auto cp = started(config(fresh_db(pg, db)));
  const std::string id = "users_table_migration";

  const mig::Migration reg = ok(cp->register_migration(manual_migration(), "alice"));
  CHECK(reg.version == 1);
  CHECK(reg.phase == mig::Phase::kPreparation);
  CHECK_THAT(reg.created_at, Catch::Matches(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"));
  REQUIRE(find(*cp, id) != nullptr);  // published before the call returned
  CHECK(sql(pg, db,
            "SELECT source_table || '|' || target_table || '|' || phase || '|' || "
            "auto_switch_threshold FROM t_sys_migrations") == "users|t_sys_users|preparation|0.99");

  CHECK_THAT(err(cp->register_migration(manual_migration(), "alice"), Kind::kConflict).message,
             Catch::Contains("already exists (phase preparation"));
  mig::Migration same_source = manual_migration();
  same_source.migration_id = "users_again";
  same_source.target_table = "t_sys_users_2";
  CHECK_THAT(err(cp->register_migration(same_source, "alice"), Kind::kConflict).message,
             Catch::Contains("already being migrated by users_table_migration"));
  mig::Migration invalid = manual_migration();
  invalid.migration_id = "bad";
  invalid.source_table = "accounts";
  invalid.auto_switch_threshold = 2;
  CHECK_THAT(err(cp->register_migration(invalid, "alice"), Kind::kUnprocessable).message,
             Catch::Contains("auto_switch_threshold"));
  CHECK(
      err(cp->set_phase("nope", mig::Phase::kDualWrite, false, "alice"), Kind::kNotFound).message ==
      "no migration nope");

  // Skipping a phase: refused, logged as refused.
  const mig::OpError skip =
      err(cp->set_phase(id, mig::Phase::kReadSwitch, false, "alice"), Kind::kConflict);
  CHECK(skip.message ==
        "cannot move users_table_migration from preparation to read_switch: phases advance one "
        "step at a time (next: dual_write)");

  const mig::Migration dw = ok(cp->set_phase(id, mig::Phase::kDualWrite, false, "alice"));
  CHECK(dw.version == 2);
  CHECK(dw.dual_write_enabled);
  CHECK(sees_phase(*cp, id, mig::Phase::kDualWrite));
  ok(cp->set_phase(id, mig::Phase::kValidation, false, "bob"));

  // read_switch: no check, a stale check, a low check, then a good one (validator style: no
  // migration_id, matched by source and target table).
  const mig::OpError nocheck =
      err(cp->set_phase(id, mig::Phase::kReadSwitch, false, "bob"), Kind::kConflict);
  CHECK_THAT(nocheck.message, Catch::Contains("no consistency check"));
  CHECK_THAT(nocheck.detail, Catch::StartsWith("run pgphase validate --migration-id "
                                               "users_table_migration"));
  pg.psql(
      "INSERT INTO t_sys_consistency_checks (check_id, migration_id, source_table, target_table, "
      "level, consistency_score, created_at) VALUES ('c-old', 'users_table_migration', 'users', "
      "'t_sys_users', 'basic', 0.999, now() - interval '2 hours')",
      db);
  CHECK_THAT(err(cp->set_phase(id, mig::Phase::kReadSwitch, false, "bob"), Kind::kConflict).message,
             Catch::Contains("s old, older than max_check_age_seconds 1800"));
  pg.psql(
      "INSERT INTO t_sys_consistency_checks (check_id, migration_id, source_table, target_table, "
      "level, consistency_score) VALUES ('c-low', 'users_table_migration', 'users', "
      "'t_sys_users', 'detailed', 0.95)",
      db);
  CHECK_THAT(err(cp->set_phase(id, mig::Phase::kReadSwitch, false, "bob"), Kind::kConflict).message,
             Catch::Contains("scored 0.95, below auto_switch_threshold 0.99"));
  pg.psql(
      "INSERT INTO t_sys_consistency_checks (check_id, source_table, target_table, level, "
      "consistency_score, total_records, differences_count, created_at) VALUES ('c-good', "
      "'users', 't_sys_users', 'comprehensive', 0.995, 1000, 5, now() + interval '1 ms')",
      db);
  ok(cp->set_phase(id, mig::Phase::kReadSwitch, false, "bob"));
  CHECK(sql(pg, db,
            "SELECT details->>'check_id' || '|' || (details->>'consistency_score') FROM "
            "t_sys_migration_logs WHERE status = 'success' AND to_state = 'read_switch'") ==
        "c-good|0.995");

  // cleanup needs the switch active at 100%.
  CHECK_THAT(err(cp->set_phase(id, mig::Phase::kCleanup, true, "bob"), Kind::kConflict).message,
             Catch::Contains("no read switch config exists for table users"));
  const mig::SwitchConfig sw = ok(cp->register_switch(manual_switch(), "bob"));
  CHECK(sw.status == mig::SwitchStatus::kInactive);
  CHECK_THAT(err(cp->set_phase(id, mig::Phase::kCleanup, false, "bob"), Kind::kConflict).message,
             Catch::Contains("inactive, not active"));
  CHECK(ok(cp->activate_switch(sw.config_id, "bob")).status == mig::SwitchStatus::kActive);
  ok(cp->set_switch_percentage(sw.config_id, 25.0, "bob", "first step"));
  ok(cp->set_switch_percentage(sw.config_id, 50.0, "bob", ""));
  CHECK_THAT(err(cp->set_phase(id, mig::Phase::kCleanup, true, "bob"), Kind::kConflict).message,
             Catch::Contains("sends only 50% of reads"));
  const mig::SwitchConfig full = ok(cp->set_switch_percentage(sw.config_id, 100.0, "bob", "go"));
  CHECK(full.switch_percentage == 100.0);
  CHECK(cp->snapshot()->find_switch(sw.config_id)->switch_percentage == 100.0);

  const mig::Migration cleanup = ok(cp->set_phase(id, mig::Phase::kCleanup, false, "bob"));
  CHECK(cleanup.read_from_target);
  CHECK(cleanup.dual_write_enabled);
  // The manual's step 5.1.
  CHECK_FALSE(ok(cp->set_dual_write(id, false, false, "bob")).dual_write_enabled);

  // Rollback returns to preparation and takes the switch back to the source.
  const mig::Migration back = ok(cp->rollback(id, "carol", "bad data"));
  CHECK(back.phase == mig::Phase::kPreparation);
  CHECK_FALSE(back.dual_write_enabled);
  CHECK_FALSE(back.read_from_target);
  CHECK(back.version == 7);
  const mig::SwitchConfig* rolled = cp->snapshot()->find_switch(sw.config_id);
  REQUIRE(rolled != nullptr);
  CHECK(rolled->status == mig::SwitchStatus::kRolledBack);
  CHECK(rolled->switch_percentage == 0.0);
  CHECK_THAT(err(cp->rollback(id, "carol", ""), Kind::kConflict).message,
             Catch::Contains("already in preparation"));

  CHECK(sql(pg, db,
            "SELECT phase || '|' || version || '|' || dual_write_enabled FROM "
            "t_sys_migrations") == "preparation|7|false");
  CHECK(sql(pg, db,
            "SELECT string_agg(action || ':' || status, ',' ORDER BY id) FROM "
            "t_sys_migration_logs WHERE migration_id = 'users_table_migration'") ==
        "register:success,set-phase:refused,set-phase:success,set-phase:success,"
        "set-phase:refused,set-phase:refused,set-phase:refused,set-phase:success,"
        "set-phase:refused,switch-register:success,set-phase:refused,switch-activate:success,"
        "switch-update-percentage:success,switch-update-percentage:success,set-phase:refused,"
        "switch-update-percentage:success,set-phase:success,disable-dual-write:success,"
        "switch-rollback:success,rollback:success,rollback:refused");
  CHECK(sql(pg, db,
            "SELECT actor || '|' || from_state || '|' || to_state || '|' || message || '|' || "
            "(details->>'reason') FROM t_sys_migration_logs WHERE action = 'rollback' AND "
            "status = 'success'") ==
        "carol|cleanup|preparation|rolled back from cleanup to preparation: bad data|bad data");
  CHECK(sql(pg, db,
            "SELECT message || '|' || (details->>'remedy') FROM t_sys_migration_logs WHERE "
            "status = 'refused' ORDER BY id LIMIT 1") ==
        "cannot move users_table_migration from preparation to read_switch: phases advance one "
        "step at a time (next: dual_write)|move to dual_write first");
  CHECK(sql(pg, db,
            "SELECT string_agg(from_percentage || '>' || to_percentage || ':' || actor, ',' ORDER "
            "BY id) FROM t_sys_read_switch_history WHERE config_id = 'users_gradual_switch'") ==
        "0>25:bob,25>50:bob,50>100:bob,100>0:carol");

  // The same through the API: latest first.
  const auto entries = ok(cp->logs(id, 3));
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].action == "rollback");
  CHECK(entries[0].status == "refused");
  CHECK(entries[1].action == "rollback");
  CHECK(entries[1].status == "success");
  CHECK(entries[1].from_state == "cleanup");
  CHECK(entries[1].to_state == "preparation");
  CHECK(entries[1].actor == "carol");
  CHECK(entries[2].action == "switch-rollback");
  CHECK(entries[0].id > entries[1].id);
  const auto history = ok(cp->percentage_history(sw.config_id, 10));
  REQUIRE(history.size() == 4);
  CHECK(history[0].from == 100.0);
  CHECK(history[0].to == 0.0);
  CHECK(history[3].to == 25.0);
  CHECK(history[3].reason == "first step");
  CHECK(err(cp->logs("nope", 5), Kind::kNotFound).message == "no migration nope");
}

TEST_CASE("key_columns defaults to the source's primary key, read from the catalog", "[ops]") {
  PgCluster& pg = cluster();
  const std::string db = "ctl_keys";
  auto cp = started(config(fresh_db(pg, db)));
  pg.psql(
      "CREATE SCHEMA app; CREATE TABLE app.orders (region text, id bigint, note text, "
      "PRIMARY KEY (id, region)); CREATE TABLE app.t_orders (LIKE app.orders); "
      "CREATE TABLE nokey (a int); CREATE TABLE t_nokey (a int)",
      db);
  mig::Migration m;
  m.migration_id = "orders_mig";
  m.source_table = "app.orders";
  m.target_table = "app.t_orders";
  // Composite key, in the index's column order (not the table's).
  CHECK(ok(cp->register_migration(m, "keys")).key_columns ==
        std::vector<std::string>{"id", "region"});
  CHECK(find(*cp, "orders_mig")->key_columns == std::vector<std::string>{"id", "region"});
  // No primary key: stays empty (to be named by the operator).
  m.migration_id = "nokey_mig";
  m.source_table = "nokey";
  m.target_table = "t_nokey";
  CHECK(ok(cp->register_migration(m, "keys")).key_columns.empty());
  // A table in another database is not looked up in this one.
  m.migration_id = "elsewhere_mig";
  m.source_table = "app.orders_elsewhere";
  m.target_table = "app.t_orders_elsewhere";
  m.database = "other_db";
  CHECK(ok(cp->register_migration(m, "keys")).key_columns.empty());
  // Given explicitly: kept as given.
  mig::Migration given;
  given.migration_id = "given_mig";
  given.source_table = "t_given_src";
  given.target_table = "t_given_dst";
  given.key_columns = {"a"};
  CHECK(ok(cp->register_migration(given, "keys")).key_columns == std::vector<std::string>{"a"});
}

TEST_CASE("unsupported_write_policy is persisted; NULL means the default", "[ops][policy]") {
  PgCluster& pg = cluster();
  const std::string db = "ctl_policy";
  auto cp = started(config(fresh_db(pg, db)));
  const auto stored = [&](const std::string& id) {
    return sql(pg, db,
               "SELECT coalesce(unsupported_write_policy, 'NULL') FROM t_sys_migrations WHERE "
               "migration_id = '" +
                   id + "'");
  };

  // The manual's entry has no such key: NULL, strict's default.
  const mig::Migration manual = ok(cp->register_migration(manual_migration(), "ops"));
  CHECK_FALSE(manual.unsupported_write_policy.has_value());
  CHECK(mig::effective_unsupported_write_policy(manual) == mig::UnsupportedWritePolicy::kReject);
  CHECK(stored("users_table_migration") == "NULL");

  mig::Migration m = mig::migration_from_json(boost::json::parse(
      R"({"migration_id": "flagged", "source_table": "flagged_src", "target_table":
          "t_flagged_src", "unsupported_write_policy": "allow_and_flag"})"));
  const mig::Migration flagged = ok(cp->register_migration(m, "ops"));
  CHECK(flagged.unsupported_write_policy == mig::UnsupportedWritePolicy::kAllowAndFlag);
  CHECK(stored("flagged") == "allow_and_flag");
  REQUIRE(find(*cp, "flagged") != nullptr);
  CHECK(find(*cp, "flagged")->unsupported_write_policy ==
        mig::UnsupportedWritePolicy::kAllowAndFlag);
  // Kept by every later change (update_migration writes it back).
  ok(cp->set_phase("flagged", mig::Phase::kDualWrite, false, "ops"));
  ok(cp->rollback("flagged", "ops", ""));
  CHECK(stored("flagged") == "allow_and_flag");
  CHECK(find(*cp, "flagged")->unsupported_write_policy ==
        mig::UnsupportedWritePolicy::kAllowAndFlag);

  mig::Migration eventual;
  eventual.migration_id = "eventual";
  eventual.source_table = "ev_src";
  eventual.target_table = "t_ev_src";
  eventual.consistency_level = mig::ConsistencyLevel::kEventual;
  ok(cp->register_migration(eventual, "ops"));
  CHECK(stored("eventual") == "NULL");
  CHECK(mig::effective_unsupported_write_policy(*find(*cp, "eventual")) ==
        mig::UnsupportedWritePolicy::kAllowAndFlag);
  eventual.migration_id = "eventual_strict";
  eventual.source_table = "ev2_src";
  eventual.unsupported_write_policy = mig::UnsupportedWritePolicy::kReject;
  ok(cp->register_migration(eventual, "ops"));
  CHECK(stored("eventual_strict") == "reject");
  CHECK(find(*cp, "eventual_strict")->unsupported_write_policy ==
        mig::UnsupportedWritePolicy::kReject);
  // The JSON form carries the effective value.
  CHECK(mig::to_json(*find(*cp, "users_table_migration"))
            .at("unsupported_write_policy")
            .as_string() == "reject");
  CHECK(mig::to_json(*find(*cp, "eventual")).at("unsupported_write_policy").as_string() ==
        "allow_and_flag");

  // The column takes only the two values.
  CHECK_THROWS(pg.psql("UPDATE t_sys_migrations SET unsupported_write_policy = 'ignore'", db));
}

TEST_CASE("switch rules, dual-write rules and error kinds", "[ops][switch]") {
  PgCluster& pg = cluster();
  const std::string db = "ctl_switch";
  auto cp = started(config(fresh_db(pg, db)));
  mig::Migration m = manual_migration();
  m.migration_id = "orders_migration";
  m.source_table = "orders";
  m.target_table = "t_sys_orders";
  ok(cp->register_migration(m, "ops"));
  mig::SwitchConfig s = manual_switch();
  s.config_id = "orders_switch";
  s.table_name = "public.orders";
  ok(cp->register_switch(s, "ops"));

  const mig::OpError early = err(cp->activate_switch("orders_switch", "ops"), Kind::kConflict);
  CHECK(early.message ==
        "cannot activate orders_switch: migration orders_migration is in preparation, not "
        "read_switch");
  CHECK_THAT(early.detail, Catch::Contains("--phase read_switch"));
  CHECK(sql(pg, db,
            "SELECT migration_id || '|' || status FROM t_sys_migration_logs WHERE action = "
            "'switch-activate'") == "orders_migration|refused");
  CHECK_THAT(
      err(cp->set_switch_percentage("orders_switch", 10, "ops", ""), Kind::kConflict).message,
      Catch::Contains("it is inactive"));
  CHECK_THAT(
      err(cp->set_switch_percentage("orders_switch", 150, "ops", ""), Kind::kUnprocessable).message,
      Catch::Contains("150 is outside 0..100"));
  err(cp->set_switch_percentage("nope", 10, "ops", ""), Kind::kNotFound);
  err(cp->activate_switch("nope", "ops"), Kind::kNotFound);
  err(cp->rollback_switch("nope", "ops", ""), Kind::kNotFound);
  err(cp->percentage_history("nope", 10), Kind::kNotFound);
  err(cp->rollback("nope", "ops", ""), Kind::kNotFound);
  err(cp->set_dual_write("nope", true, false, "ops"), Kind::kNotFound);

  mig::SwitchConfig dangling = s;
  dangling.config_id = "dangling";
  dangling.migration_id = "no_such_migration";
  CHECK_THAT(err(cp->register_switch(dangling, "ops"), Kind::kUnprocessable).message,
             Catch::Contains("no migration no_such_migration"));
  mig::SwitchConfig active = s;
  active.config_id = "born_active";
  active.status = mig::SwitchStatus::kActive;
  err(cp->register_switch(active, "ops"), Kind::kUnprocessable);
  CHECK_THAT(err(cp->register_switch(s, "ops"), Kind::kConflict).message,
             Catch::Contains("already exists (status inactive, 0%"));
  mig::Migration advanced = m;
  advanced.migration_id = "advanced";
  advanced.source_table = "other";
  advanced.phase = mig::Phase::kValidation;
  advanced.dual_write_enabled = true;
  CHECK_THAT(err(cp->register_migration(advanced, "ops"), Kind::kUnprocessable).message,
             Catch::Contains("registered in preparation"));

  // enable-dual-write from preparation is the move to dual_write.
  const mig::Migration dw = ok(cp->set_dual_write("orders_migration", true, false, "ops"));
  CHECK(dw.phase == mig::Phase::kDualWrite);
  CHECK(dw.dual_write_enabled);
  CHECK_THAT(
      err(cp->set_dual_write("orders_migration", false, false, "ops"), Kind::kConflict).message,
      Catch::Contains("fall behind"));
  CHECK_FALSE(ok(cp->set_dual_write("orders_migration", false, true, "ops")).dual_write_enabled);
  CHECK(ok(cp->set_dual_write("orders_migration", true, false, "ops")).dual_write_enabled);
  CHECK(sql(pg, db,
            "SELECT string_agg(action || ':' || status || ':' || coalesce(to_state, ''), ',' ORDER "
            "BY "
            "id) FROM "
            "t_sys_migration_logs WHERE action LIKE '%dual-write'") ==
        "enable-dual-write:success:dual_write (dual write on),"
        "disable-dual-write:refused:,"
        "disable-dual-write:success:dual_write (dual write off),"
        "enable-dual-write:success:dual_write (dual write on)");

  // Forced into read_switch without any consistency check: allowed, and the log says so.
  ok(cp->set_phase("orders_migration", mig::Phase::kValidation, false, "ops"));
  ok(cp->set_phase("orders_migration", mig::Phase::kReadSwitch, true, "ops"));
  CHECK_THAT(sql(pg, db,
                 "SELECT message FROM t_sys_migration_logs WHERE to_state = 'read_switch' AND "
                 "status = 'success'"),
             Catch::Contains("(forced past: ") && Catch::Contains("no consistency check"));

  const mig::SwitchConfig on = ok(cp->activate_switch("orders_switch", "ops"));
  CHECK(on.status == mig::SwitchStatus::kActive);
  CHECK(ok(cp->activate_switch("orders_switch", "ops")).version == on.version);  // idempotent

  mig::SwitchConfig second = s;
  second.config_id = "orders_canary";
  second.strategy = mig::SwitchStrategy::kCanary;
  ok(cp->register_switch(second, "ops"));
  CHECK_THAT(err(cp->activate_switch("orders_canary", "ops"), Kind::kConflict).message,
             Catch::Contains("orders_switch is already active for migration orders_migration"));

  ok(cp->set_switch_percentage("orders_switch", 30, "ops", "canary looks fine"));
  CHECK(ok(cp->set_switch_percentage("orders_switch", 30, "ops", "")).switch_percentage == 30);
  const mig::SwitchConfig rb = ok(cp->rollback_switch("orders_switch", "ops", "errors"));
  CHECK(rb.status == mig::SwitchStatus::kRolledBack);
  CHECK(rb.switch_percentage == 0.0);
  CHECK(ok(cp->rollback_switch("orders_switch", "ops", "again")).version == rb.version);
  CHECK(sql(pg, db,
            "SELECT string_agg(from_percentage || '>' || to_percentage, ',' ORDER BY id) FROM "
            "t_sys_read_switch_history") == "0>30,30>0");
  CHECK(sql(pg, db,
            "SELECT count(*) FROM t_sys_migration_logs WHERE action = 'switch-rollback' AND "
            "status = 'success'") == "2");
  CHECK_THAT(err(cp->set_switch_percentage("orders_switch", 10, "ops", ""), Kind::kConflict).detail,
             Catch::Contains("activate it again"));
  // Rolled back, it can be activated again (the migration is still in read_switch).
  CHECK(ok(cp->activate_switch("orders_switch", "ops")).switch_percentage == 0.0);

  // A snapshot taken before a change is immutable; the new one has a higher generation.
  const mig::SnapshotPtr before = cp->snapshot();
  ok(cp->set_switch_percentage("orders_switch", 5, "ops", ""));
  CHECK(before->find_switch("orders_switch")->switch_percentage == 0.0);
  CHECK(cp->snapshot()->find_switch("orders_switch")->switch_percentage == 5.0);
  CHECK(cp->snapshot()->generation > before->generation);
}

TEST_CASE("two ControlPlanes on one database see each other's changes within 1 s", "[notify]") {
  PgCluster& pg = cluster();
  const std::string dsn = fresh_db(pg, "ctl_notify");
  // A periodic reload of a minute: only NOTIFY can make changes visible within a second.
  auto a = started(config(dsn, 60.0));
  auto b = started(config(dsn, 60.0));
  const std::string id = "users_table_migration";

  ok(a->register_migration(manual_migration(), "a"));
  auto t0 = Clock::now();
  REQUIRE(wait_until([&] { return find(*b, id) != nullptr; }, 1000ms, 5ms));
  INFO("b saw the registration after " << elapsed_ms(t0) << " ms");

  ok(b->set_phase(id, mig::Phase::kDualWrite, false, "b"));
  t0 = Clock::now();
  REQUIRE(wait_until([&] { return sees_phase(*a, id, mig::Phase::kDualWrite); }, 1000ms, 5ms));
  INFO("a saw the phase change after " << elapsed_ms(t0) << " ms");

  ok(a->register_switch(manual_switch(), "a"));
  REQUIRE(wait_until([&] { return b->snapshot()->find_switch("users_gradual_switch") != nullptr; },
                     1000ms, 5ms));
  // A change written by hand (SQL + NOTIFY, as another tool would) is picked up too.
  pg.psql(
      "UPDATE t_sys_migrations SET auto_switch_threshold = 0.9, version = version + 1, "
      "updated_at = now(); NOTIFY pgphase_state, 'migration:users_table_migration'",
      "ctl_notify");
  REQUIRE(wait_until(
      [&] {
        const mig::SnapshotPtr s = a->snapshot();
        const mig::Migration* m = s->find_migration(id);
        return m != nullptr && m->auto_switch_threshold == 0.9;
      },
      1000ms, 5ms));
}

TEST_CASE("an outage of the control database: last state kept, kUnavailable, reconnect",
          "[outage]") {
  auto pg = PgCluster::start();
  ServerControl server(*pg);
  const std::string dsn = fresh_db(*pg, "ctl_outage");
  const std::string id = "users_table_migration";
  auto a = started(config(dsn, 0.5));
  ok(a->register_migration(manual_migration(), "a"));
  ok(a->set_phase(id, mig::Phase::kDualWrite, false, "a"));
  const uint64_t generation = a->snapshot()->generation;

  TempDir tmp("ctl-outage");
  write_file(tmp / "later.json",
             R"({"migrations": [{"migration_id": "later_migration", "source_table": "accounts",
                 "target_table": "t_sys_accounts"}]})");

  server.stop();
  REQUIRE(wait_until([&] { return !a->connected(); }, 5000ms));
  const auto t0 = Clock::now();
  const mig::OpError down =
      err(a->set_phase(id, mig::Phase::kValidation, false, "a"), Kind::kUnavailable);
  CHECK(elapsed_ms(t0) < 6000);
  CHECK_THAT(down.message, Catch::StartsWith("control database unavailable: "));
  err(a->register_switch(manual_switch(), "a"), Kind::kUnavailable);
  err(a->logs(id, 5), Kind::kUnavailable);
  // The last state stays in force.
  CHECK(sees_phase(*a, id, mig::Phase::kDualWrite));
  CHECK(a->snapshot()->generation == generation);

  // Starting while the database is down does not throw; the config file waits for it.
  mig::ControlConfig cc = config(dsn, 0.5);
  cc.config_files = {(tmp / "later.json").string()};
  mig::ControlPlane c(cc);
  REQUIRE_NOTHROW(c.start());
  CHECK_FALSE(c.connected());
  CHECK(c.snapshot()->generation == 0);
  CHECK(c.snapshot()->migrations.empty());
  std::this_thread::sleep_for(500ms);  // a few failed reconnects
  CHECK(a->snapshot()->generation == generation);

  server.start();
  REQUIRE(wait_until([&] { return a->connected() && c.connected(); }, 10000ms));
  REQUIRE(wait_until([&] { return sees_phase(c, id, mig::Phase::kDualWrite); }, 2000ms));
  REQUIRE(wait_until([&] { return find(c, "later_migration") != nullptr; }, 2000ms));
  REQUIRE(wait_until([&] { return find(*a, "later_migration") != nullptr; }, 2000ms));

  // Both listen again: a change by one is seen by the other.
  ok(a->set_phase(id, mig::Phase::kValidation, false, "a"));
  REQUIRE(wait_until([&] { return sees_phase(c, id, mig::Phase::kValidation); }, 1000ms, 5ms));
  ok(c.set_phase(id, mig::Phase::kReadSwitch, true, "c"));
  REQUIRE(wait_until([&] { return sees_phase(*a, id, mig::Phase::kReadSwitch); }, 1000ms, 5ms));
  CHECK(sql(*pg, "ctl_outage",
            "SELECT count(*) FROM t_sys_migration_logs WHERE migration_id = "
            "'users_table_migration' AND status = 'success'") == "4");
  c.stop();
  a->stop();
}

TEST_CASE("the manual's config files register once and never override", "[config]") {
  PgCluster& pg = cluster();
  const std::string db = "ctl_files";
  const std::string dsn = fresh_db(pg, db);
  mig::ControlConfig cfg = config(dsn);
  cfg.config_files = {kConf + "migration_configs.json", kConf + "read_switch_configs.json",
                      kConf + "alerting_config.json"};
  {
    auto a = started(cfg);
    const mig::SnapshotPtr s = a->snapshot();
    REQUIRE(s->find_migration("users_table_migration") != nullptr);
    REQUIRE(s->find_switch("users_gradual_switch") != nullptr);
    CHECK(s->find_switch("users_gradual_switch")->status == mig::SwitchStatus::kInactive);
    CHECK(s->switch_for(*s->find_migration("users_table_migration")) ==
          s->find_switch("users_gradual_switch"));
    ok(a->set_phase("users_table_migration", mig::Phase::kDualWrite, false, "ops"));
    a->stop();
  }
  CHECK(sql(pg, db,
            "SELECT string_agg(action || ':' || actor, ',' ORDER BY id) FROM "
            "t_sys_migration_logs") ==
        "register:config-file,switch-register:config-file,set-phase:ops");

  // Loaded again: the database's newer state stays.
  auto b = started(cfg);
  CHECK(sees_phase(*b, "users_table_migration", mig::Phase::kDualWrite));
  CHECK(sql(pg, db, "SELECT count(*) FROM t_sys_migration_logs") == "3");
  CHECK(sql(pg, db, "SELECT phase || '|' || version FROM t_sys_migrations") == "dual_write|2");

  // A bad file stops start() with its name and entry.
  TempDir tmp("ctl-files");
  write_file(
      tmp / "bad.json",
      R"({"switch_configs": [{"config_id": "x", "table_name": "users", "strategy": "fast"}]})");
  mig::ControlConfig bad = config(dsn);
  bad.config_files = {(tmp / "bad.json").string()};
  mig::ControlPlane cp(bad);
  try {
    cp.start();
    FAIL("start() accepted a bad config file");
  } catch (const mig::ConfigFileError& e) {
    CHECK_THAT(e.what(), Catch::Contains("bad.json: switch_configs[0] (x): strategy: \"fast\""));
  }

  // An entry that conflicts with the database (same source table, other id) is reported, not
  // registered, and does not stop the others.
  write_file(tmp / "conflict.json", R"({"migrations": [
      {"migration_id": "users_v2", "source_table": "users", "target_table": "t_sys_users_v2"},
      {"migration_id": "orders_v1", "source_table": "orders", "target_table": "t_sys_orders"}]})");
  mig::ControlConfig conflict = config(dsn);
  conflict.config_files = {(tmp / "conflict.json").string()};
  auto d = started(conflict);
  CHECK(find(*d, "users_v2") == nullptr);
  CHECK(find(*d, "orders_v1") != nullptr);
}
