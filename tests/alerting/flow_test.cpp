// Real failures fire the right rule: a dual-write failure in eventual mode (a target CHECK
// violation logged in t_sys_dual_write_logs) and a revoked privilege on the target during
// read_switch (reads routed to the target fail). Each fires only after its duration, notifies the
// webhook and SMTP (or Slack) receivers exactly once within the suppression window, runs its
// recovery action once (repair; the switch back to 0%) recorded with the alert id, resolves
// automatically when the condition clears, and shows up in the statistics.
#include <catch2/catch.hpp>
#include <optional>
#include <thread>

#include "alert_env.h"

using namespace pgphase;
using namespace pgphase::alert_test;

TEST_CASE("a dual-write failure fires, notifies once, repairs, resolves, shows in statistics") {
  Env& e = env();
  const Api& api = e.stack.api;
  e.direct.exec_ok(
      "CREATE TABLE accounts (id bigserial PRIMARY KEY, owner text, balance numeric(10,2));"
      "CREATE TABLE t_sys_accounts (id bigint PRIMARY KEY, owner text, balance numeric(10,2) "
      "CHECK (balance >= 0))");
  register_migration(api, "acc_mig", "accounts", "t_sys_accounts",
                     {{"consistency_level", "eventual"}});
  set_phase(api, "acc_mig", "dual_write");
  add_rule(api, R"({"rule_id": "dw_fail", "rule_name": "dual write failures",
      "alert_type": "dual_write_failure", "severity": "critical",
      "condition": "SELECT count(*) FROM t_sys_dual_write_logs WHERE migration_id = 'acc_mig' AND NOT target_success AND repaired_at IS NULL",
      "threshold": 1, "duration": 2, "notification_channels": ["hook", "mail"],
      "suppression_duration": 300, "auto_recovery": true,
      "recovery_action": "retry_failed_dual_writes", "migration_id": "acc_mig"})");

  it::PgConn app = it::PgConn::connect(e.stack.proxy->conninfo(kControlDb));
  REQUIRE(app.ok());
  const auto failed_at = std::chrono::steady_clock::now();
  CHECK(app.exec_ok("INSERT INTO accounts (owner, balance) VALUES ('bad', -5)").cmd_status() ==
        "INSERT 0 1");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_dual_write_logs WHERE NOT target_success") ==
        "1");
  // The dual-write success rate of the migration drops (the failed target write counts).
  add_rule(api, R"({"rule_id": "dw_rate", "alert_type": "dual_write_success",
      "severity": "warning", "condition": "dual_write_success_rate < 0.98",
      "notification_channels": ["log"]})");
  // The cause is fixed on the source (directly); the failed write is still unrepaired.
  e.direct.exec_ok("UPDATE accounts SET balance = 0 WHERE owner = 'bad'");

  // Pending: nothing fires before the duration.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  CHECK(alerts_of(api, "dw_fail").empty());
  CHECK(events(e.hook, "dw_fail", "") == 0);

  wait_for([&] { return !alerts_of(api, "dw_fail").empty(); }, std::chrono::seconds(10),
           "the alert to fire");
  CHECK(std::chrono::steady_clock::now() - failed_at >= std::chrono::milliseconds(1900));
  const json::object fired = alerts_of(api, "dw_fail").front();
  const std::string id = str(fired, "alert_id");
  CHECK(str(fired, "severity") == "critical");
  CHECK(str(fired, "migration_id") == "acc_mig");

  // Notified once by webhook and email.
  wait_for(
      [&] { return events(e.hook, "dw_fail") == 1 && mails(e.smtp, "dual write failures") >= 1; },
      std::chrono::seconds(10), "the webhook and the email");
  // The recovery ran once and the condition cleared: resolved automatically.
  wait_for([&] { return str(alerts_of(api, "dw_fail").front(), "status") == "resolved"; },
           std::chrono::seconds(15), "automatic resolution");
  const json::object done = alerts_of(api, "dw_fail").front();
  CHECK(str(done, "alert_id") == id);
  CHECK(str(done, "resolved_by") == "auto");
  CHECK(str(done, "recovery_action") == "retry_failed_dual_writes");
  CHECK(str(done, "recovery_status") == "succeeded");
  CHECK(it::contains(str(done, "recovery_result"), "1 failed writes repaired"));
  CHECK(alerts_of(api, "dw_fail").size() == 1);
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_migration_logs WHERE migration_id = "
                        "'acc_mig' AND action = 'alert_recovery' AND details->>'alert_id' = '" +
                        id + "' AND status = 'success'") == "1");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_migration_logs WHERE action = 'repair' AND "
                        "actor = 'alert:" +
                        id + "'") == "1");
  CHECK(e.direct.scalar("SELECT owner || ' ' || balance FROM t_sys_accounts") == "bad 0.00");

  // Exactly one firing notification per channel within the suppression window, then the
  // resolution.
  wait_for([&] { return events(e.hook, "dw_fail", "resolved") == 1; }, std::chrono::seconds(10),
           "the resolved notification");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  CHECK(events(e.hook, "dw_fail", "firing") == 1);
  CHECK(events(e.hook, "dw_fail", "repeat") == 0);
  CHECK(mails(e.smtp, "ALERT critical: dual write failures") == 1);
  CHECK(mails(e.smtp, "RESOLVED critical: dual write failures") == 1);
  for (const auto& req : e.hook.requests()) {
    if (!it::contains(req, "dw_fail") || !it::contains(req, "\"firing\"")) continue;
    const json::value v = json::parse(req.substr(req.find(' ') + 1));
    CHECK(v.at("migration_id") == json::value("acc_mig"));
    CHECK(v.at("alerts").as_array().at(0).at("alert_id") == json::value(id));
  }

  const auto rate = alerts_of(api, "dw_rate");
  REQUIRE(rate.size() == 1);
  CHECK(str(rate.front(), "migration_id") == "acc_mig");
  CHECK(rate.front().at("value").to_number<double>() == 0.0);

  // Statistics, through the API and the CLI.
  const it::HttpResponse st = api.get("/api/v1/alerts/statistics?days=7");
  REQUIRE(st.status == 200);
  const json::object s = body_object(st);
  CHECK(s.at("by_type").as_object().at("dual_write_failure").to_number<int>() == 1);
  CHECK(s.at("by_severity").as_object().at("critical").to_number<int>() >= 1);
  CHECK(s.at("resolved_automatically").to_number<int>() >= 1);
  CHECK(s.at("mean_time_to_resolve_seconds").is_number());
  CHECK(s.at("notifications").as_object().at("hook:sent").to_number<int>() >= 2);
  const it::RunResult cli_st =
      cli({"alerts", "statistics", "--days", "7", "--admin-url",
           "http://127.0.0.1:" + std::to_string(e.stack.proxy->admin_port())});
  INFO(cli_st.describe());
  CHECK(cli_st.ok());
  CHECK(it::contains(cli_st.out, "dual_write_failure=1"));
}

TEST_CASE("a revoked privilege during read_switch fires switch_error_rate and rolls back") {
  Env& e = env();
  const Api& api = e.stack.api;
  e.direct.exec_ok(
      "CREATE TABLE items (id int PRIMARY KEY, v text);"
      "CREATE TABLE t_sys_items (id int PRIMARY KEY, v text);"
      "INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 100) g;"
      "INSERT INTO t_sys_items SELECT * FROM items;"
      "GRANT ALL ON items, t_sys_items TO u_scram");
  register_migration(api, "items_mig", "items", "t_sys_items");
  advance_to(api, "items_mig", "read_switch");
  // The switch's own auto-rollback never trips (error rate above 100%): the alert rule is what
  // rolls it back.
  register_switch(
      api, "items_switch", "items", "items_mig",
      {{"strategy", "immediate"},
       {"auto_rollback_threshold", 1.0},
       {"conditions", json::object{{"error_rate_threshold", 1.0}, {"window_seconds", 4}}}});
  REQUIRE(api.post("/api/v1/switches/items_switch/activate").status == 200);
  set_percentage(api, "items_switch", 100);
  add_rule(api, R"({"rule_id": "switch_err", "rule_name": "reads of the target fail",
      "alert_type": "switch_error", "severity": "critical",
      "condition": "switch_error_rate > 0.05", "duration": 1,
      "notification_channels": ["hook", "chat", "mail"], "suppression_duration": 300,
      "auto_recovery": true, "recovery_action": "rollback_read_switch"})");

  it::PgConn app = it::PgConn::connect(
      e.stack.proxy->conninfo(kControlDb, it::kScramRole.name, it::kScramRole.password));
  INFO(app.error_message());
  REQUIRE(app.ok());
  CHECK(app.scalar("SELECT v FROM items WHERE id = 7") == "v7");  // from the target
  e.direct.exec_ok("REVOKE SELECT ON t_sys_items FROM u_scram");
  const std::string revoked_at = e.direct.scalar("SELECT clock_timestamp()::text");
  int errors = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(12);
  while (std::chrono::steady_clock::now() < until &&
         get_switch(api, "items_switch").at("switch_percentage").to_number<double>() > 0) {
    const it::PgResult r = app.exec("SELECT v FROM items WHERE id = 7");
    if (!r.ok()) {
      ++errors;
      CHECK(r.sqlstate() == "42501");  // what PostgreSQL answers for the target
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(errors > 0);
  // Not before its 1 s duration (the first failing read came after the REVOKE).
  CHECK(e.direct.scalar("SELECT fired_at - '" + revoked_at +
                        "'::timestamptz >= interval '900 ms' FROM t_sys_alerts WHERE rule_id = "
                        "'switch_err'") == "t");
  const json::object sw = get_switch(api, "items_switch");
  CHECK(sw.at("switch_percentage").to_number<double>() == 0);
  // Reads are back on the source and succeed.
  CHECK(app.scalar("SELECT v FROM items WHERE id = 7") == "v7");

  const auto list = alerts_of(api, "switch_err");
  REQUIRE(list.size() == 1);
  const std::string id = str(list.front(), "alert_id");
  CHECK(str(list.front(), "scope") == "items_switch");
  CHECK(str(list.front(), "migration_id") == "items_mig");
  CHECK(str(list.front(), "recovery_status") == "succeeded");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_read_switch_history WHERE config_id = "
                        "'items_switch' AND to_percentage = 0 AND actor = 'alert:" +
                        id + "'") == "1");
  wait_for([&] { return events(e.hook, "switch_err") == 1; }, std::chrono::seconds(10),
           "the webhook");
  wait_for(
      [&] {
        int n = 0;
        for (const auto& r : e.hook.requests())
          if (r.rfind("/slack ", 0) == 0 && it::contains(r, "reads of the target fail")) ++n;
        return n == 1;
      },
      std::chrono::seconds(10), "the Slack message");
  wait_for([&] { return mails(e.smtp, "ALERT critical: reads of the target fail") == 1; },
           std::chrono::seconds(10), "the email");
  // No more target reads: the 4 s window empties and the alert resolves by itself.
  wait_for([&] { return str(alerts_of(api, "switch_err").front(), "status") == "resolved"; },
           std::chrono::seconds(20), "automatic resolution");
  CHECK(str(alerts_of(api, "switch_err").front(), "resolved_by") == "auto");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  CHECK(events(e.hook, "switch_err", "firing") == 1);
  CHECK(mails(e.smtp, "ALERT critical: reads of the target fail") == 1);
  const json::object st = body_object(api.get("/api/v1/alerts/statistics?days=7"));
  CHECK(st.at("by_type").as_object().at("switch_error").to_number<int>() == 1);
}
