// The alert lifecycle and its edges: a flapping condition (same alert while it returns within
// resolve_after; at most one notification per suppression window across alerts), acknowledge
// (no more repeats) and resolve through the CLI, silences (alert kept, no notification),
// delivery failures made visible (retries, t_sys_alert_notifications, metrics), broken rules
// refused with the reason (API, config file, CLI) without stopping the others, and
// `pgphase alerts monitor` evaluating a control database on its own.
#include <catch2/catch.hpp>
#include <thread>

#include "alert_env.h"

using namespace pgphase;
using namespace pgphase::alert_test;

namespace {

std::string admin_url(const Env& e) {
  return "http://127.0.0.1:" + std::to_string(e.stack.proxy->admin_port());
}

std::string rule(const std::string& id, const std::string& condition, int suppression,
                 const std::string& channels = R"(["hook"])", int duration = 0) {
  return R"({"rule_id": ")" + id + R"(", "alert_type": "test", "severity": "warning",
      "condition": ")" +
         condition + R"(", "threshold": 1, "duration": )" + std::to_string(duration) +
         R"(, "notification_channels": )" + channels + R"(, "suppression_duration": )" +
         std::to_string(suppression) + "}";
}

}  // namespace

TEST_CASE("a flapping condition: one alert while it returns quickly, one notification per window") {
  Env& e = env();
  const Api& api = e.stack.api;
  e.direct.exec_ok("CREATE TABLE flap (v int); INSERT INTO flap VALUES (1)");
  add_rule(api, rule("flap_rule", "SELECT v FROM flap", 10));
  wait_for([&] { return events(e.hook, "flap_rule") == 1; }, std::chrono::seconds(10),
           "the first notification");
  const auto first = std::chrono::steady_clock::now();
  // Clears and returns faster than resolve_after (1.5 s): still the same alert.
  for (int i = 0; i < 8; ++i) {
    e.direct.exec_ok(std::string("UPDATE flap SET v = ") + (i % 2 ? "1" : "0"));
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  e.direct.exec_ok("UPDATE flap SET v = 1");
  CHECK(alerts_of(api, "flap_rule").size() == 1);
  // Clears for longer: resolved; returns: a new alert, muted inside the window.
  e.direct.exec_ok("UPDATE flap SET v = 0");
  wait_for([&] { return str(alerts_of(api, "flap_rule").front(), "status") == "resolved"; },
           std::chrono::seconds(10), "resolution");
  e.direct.exec_ok("UPDATE flap SET v = 1");
  wait_for([&] { return alerts_of(api, "flap_rule").size() == 2; }, std::chrono::seconds(10),
           "the second alert");
  CHECK(std::chrono::steady_clock::now() - first < std::chrono::seconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(events(e.hook, "flap_rule", "firing") + events(e.hook, "flap_rule", "repeat") == 1);
  CHECK(alerts_of(api, "flap_rule").front().at("suppressed_notifications").to_number<int>() == 1);
  // After the window the still-firing alert is notified: one more, not a storm.
  wait_for([&] { return events(e.hook, "flap_rule", "repeat") == 1; }, std::chrono::seconds(15),
           "the notification after the window");
  CHECK(std::chrono::steady_clock::now() - first >= std::chrono::milliseconds(9800));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK(events(e.hook, "flap_rule", "firing") + events(e.hook, "flap_rule", "repeat") == 2);
  e.direct.exec_ok("UPDATE flap SET v = 0");
}

TEST_CASE("acknowledge stops repeats; resolve; silences mute but keep the alert") {
  Env& e = env();
  const Api& api = e.stack.api;
  add_rule(api, rule("ack_rule", "SELECT 1", 1));
  wait_for([&] { return events(e.hook, "ack_rule", "repeat") >= 1; }, std::chrono::seconds(10),
           "a repeat after the 1 s window");
  const std::string id = str(alerts_of(api, "ack_rule").front(), "alert_id");
  const it::RunResult ack = cli(
      {"alerts", "acknowledge", "--alert-id", id, "--user", "admin", "--admin-url", admin_url(e)});
  INFO(ack.describe());
  REQUIRE(ack.ok());
  const json::object acked = alerts_of(api, "ack_rule").front();
  CHECK(str(acked, "status") == "acknowledged");
  CHECK(str(acked, "acknowledged_by") == "admin");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int seen = events(e.hook, "ack_rule", "");
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  CHECK(events(e.hook, "ack_rule", "") == seen);
  // Status lists it; resolve through the CLI.
  const it::RunResult status = cli({"alerts", "status", "--admin-url", admin_url(e)});
  CHECK(it::contains(status.out, id));
  const it::RunResult res =
      cli({"alerts", "resolve", "--alert-id", id, "--user", "admin", "--admin-url", admin_url(e)});
  REQUIRE(res.ok());
  CHECK(str(alerts_of(api, "ack_rule").back(), "status") == "resolved");
  CHECK(str(alerts_of(api, "ack_rule").back(), "resolved_by") == "admin");
  // Unknown and resolved alerts.
  CHECK(api.post("/api/v1/alerts/alert_nope/acknowledge", "{}").status == 404);
  CHECK(api.post("/api/v1/alerts/" + id + "/acknowledge", "{}").status == 409);
  CHECK(api.with_token("").post("/api/v1/alerts/" + id + "/resolve", "{}").status == 401);
  // Disabling the rule resolves what it still has open.
  add_rule(api, R"({"rule_id": "ack_rule", "alert_type": "test", "severity": "warning",
      "condition": "SELECT 1", "threshold": 1, "enabled": false})");
  wait_for(
      [&] {
        for (const auto& a : alerts_of(api, "ack_rule"))
          if (str(a, "status") != "resolved") return false;
        return true;
      },
      std::chrono::seconds(10), "every ack_rule alert resolved");

  // A silence mutes the rule's notifications; the alert is still there.
  const it::RunResult sil = cli({"alerts", "silence", "--rule-id", "sil_rule", "--duration", "600",
                                 "--comment", "maintenance", "--admin-url", admin_url(e)});
  INFO(sil.describe());
  REQUIRE(sil.ok());
  add_rule(api, rule("sil_rule", "SELECT 1", 300));
  wait_for([&] { return !alerts_of(api, "sil_rule").empty(); }, std::chrono::seconds(10),
           "the silenced alert");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  CHECK(events(e.hook, "sil_rule", "") == 0);
  CHECK(str(alerts_of(api, "sil_rule").front(), "status") == "firing");
  CHECK(it::contains(api.get("/api/v1/silences").body, "maintenance"));
  CHECK(api.post("/api/v1/silences", R"({"duration_seconds": 60})").status == 422);
}

TEST_CASE("delivery failures are retried and visible; the proxy does not wait on them") {
  Env& e = env();
  const Api& api = e.stack.api;
  add_rule(api, rule("fail_rule", "SELECT 1", 300, R"(["bad_hook", "strict_mail", "nowhere"])"));
  wait_for(
      [&] {
        return e.direct.scalar(
                   "SELECT count(*) FROM t_sys_alert_notifications WHERE status = "
                   "'failed' AND channel IN ('bad_hook', 'strict_mail', 'nowhere')") == "3";
      },
      std::chrono::seconds(20), "three failed deliveries");
  CHECK(e.direct.scalar("SELECT attempts || ' ' || error FROM t_sys_alert_notifications WHERE "
                        "channel = 'bad_hook'") == "4 HTTP 500: ok");
  CHECK(it::contains(e.direct.scalar("SELECT attempts || ' ' || error FROM "
                                     "t_sys_alert_notifications WHERE channel = 'strict_mail'"),
                     "does not offer STARTTLS"));
  CHECK(it::contains(e.direct.scalar("SELECT error FROM t_sys_alert_notifications WHERE channel "
                                     "= 'nowhere'"),
                     "no notification config"));
  CHECK(e.failing.requests().size() == 4);
  const it::Metrics m = it::scrape_metrics(e.stack.proxy->admin_port());
  CHECK(m.get("pgphase_alert_notifications_total",
              {{"channel", "bad_hook"}, {"result", "failed"}}) == 1);
  CHECK(m.get("pgphase_alert_notifications_total",
              {{"channel", "bad_hook"}, {"result", "retried"}}) == 3);
  CHECK(m.get("pgphase_alert_evaluations_total", {{"result", "ok"}}) > 0);
  CHECK(m.get("pgphase_alerts_active", {{"severity", "warning"}}) >= 1);
  // The proxy answered throughout.
  it::PgConn c = it::PgConn::connect(e.stack.proxy->conninfo(kControlDb));
  CHECK(c.scalar("SELECT 42") == "42");
}

TEST_CASE("email over STARTTLS with AUTH: the password from the environment, never logged") {
  Env& e = env();
  add_rule(e.stack.api, rule("tls_rule", "SELECT 1", 300, R"(["tls_mail"])"));
  wait_for([&] { return mails(*e.tls_smtp, "ALERT warning: tls_rule") == 1; },
           std::chrono::seconds(15), "the email over TLS");
  const std::string m = e.tls_smtp->messages().front();
  CHECK(m.rfind(std::string("[tls] [auth alerts:") + kSmtpPassword + "] ", 0) == 0);
  CHECK(it::contains(m, "RCPT TO:<ops@test>"));
  // Recorded once the delivery finished.
  wait_for(
      [&] {
        return e.direct.scalar(
                   "SELECT count(*) FROM t_sys_alert_notifications WHERE channel = "
                   "'tls_mail'") == "1";
      },
      std::chrono::seconds(10), "the delivery record");
  CHECK(e.direct.scalar("SELECT status || ' ' || attempts FROM t_sys_alert_notifications WHERE "
                        "channel = 'tls_mail'") == "sent 1");
  CHECK_FALSE(it::contains(e.stack.proxy->stderr_text(), kSmtpPassword));
  CHECK_FALSE(it::contains(e.stack.proxy->stderr_text(), "never-used"));  // the file's password
}

TEST_CASE("broken rules are refused with the reason and never stop the others") {
  Env& e = env();
  const Api& api = e.stack.api;
  e.direct.exec_ok("CREATE TABLE IF NOT EXISTS keep (v int); INSERT INTO keep VALUES (1)");
  auto refused = [&](const std::string& body, const std::string& why) {
    const it::HttpResponse r = api.post("/api/v1/alert-rules", body);
    INFO(describe(r));
    CHECK(r.status == 422);
    CHECK(it::contains(r.body, why));
  };
  refused(rule("b1", "SELECT count(*) FROM no_such_table", 60), "no_such_table");
  refused(rule("b2", "SELECT 1, 2", 60), "2 columns");
  refused(rule("b3", "SELECT 'x'", 60), "not a number");
  refused(rule("b4", "DELETE FROM keep RETURNING 1", 60), "read-only transaction");
  refused(rule("b5", "SELECT 1; DELETE FROM keep", 60), "multiple commands");
  refused(R"({"rule_id": "b6", "alert_type": "t", "severity": "warning",
      "condition": "wat_rate > 1"})",
          "known signal");
  refused(R"({"rule_id": "b7", "alert_type": "t", "severity": "loud", "condition": "SELECT 1",
      "threshold": 1})",
          "severity");
  refused(R"({"rule_id": "b8", "alert_type": "t", "severity": "info", "condition": "SELECT 1",
      "threshold": 1, "auto_recovery": true, "recovery_action": "reboot"})",
          "recovery_action");
  CHECK(api.post("/api/v1/alert-rules", "{nope").status == 400);
  CHECK(api.with_token("").post("/api/v1/alert-rules", rule("b9", "SELECT 1", 60)).status == 401);
  CHECK(e.direct.scalar("SELECT count(*) FROM keep") == "1");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_alert_rules WHERE rule_id LIKE 'b_'") == "0");
  // The config file's valid rule was loaded at start, its broken one refused (and reported).
  const it::HttpResponse rules = api.get("/api/v1/alert-rules");
  CHECK(it::contains(rules.body, "\"file_rule\""));
  CHECK_FALSE(it::contains(rules.body, "file_broken_rule"));
  CHECK(it::contains(e.stack.proxy->stderr_text(), "file_broken_rule"));
  // The CLI registers a file's rules the same way.
  it::TempDir dir("rulefile");
  const std::string path = dir.str() + "/rules.json";
  it::write_file(path, R"({"alert_rules": [)" + rule("cli_good", "SELECT 0", 60) + "," +
                           rule("cli_bad", "SELECT nope", 60) + "]}");
  const it::RunResult r =
      cli({"alerts", "rules", "--config-file", path, "--admin-url", admin_url(e)});
  CHECK(r.exit_code == 1);
  CHECK(it::contains(r.out, "cli_good"));
  CHECK(it::contains(r.err, "cli_bad"));
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_alert_rules WHERE rule_id = 'cli_good'") ==
        "1");
  const it::RunResult listed = cli({"alerts", "rules", "--admin-url", admin_url(e)});
  CHECK(it::contains(listed.out, "cli_good"));
}

TEST_CASE("pgphase alerts monitor evaluates a control database by itself") {
  Env& e = env();
  e.direct.exec_ok("CREATE DATABASE monitor_db");
  it::TempDir dir("monitor");
  const std::string path = dir.str() + "/alerting_config.json";
  it::write_file(path, alerting_config(e, R"(, {"rule_id": "monitor_rule", "alert_type": "test",
      "severity": "info", "condition": "SELECT 1", "threshold": 1,
      "notification_channels": ["hook"]})"));
  it::SpawnOptions so;
  so.stdout_path = dir.str() + "/out.log";
  so.stderr_path = dir.str() + "/err.log";
  it::Child monitor(
      {it::ProxyProcess::binary(), "alerts", "monitor", "--db-url",
       e.stack.pg->conninfo("monitor_db"), "--config-file", path, "--interval-ms", "200"},
      so);
  wait_for([&] { return events(e.hook, "monitor_rule") == 1; }, std::chrono::seconds(20),
           "the monitor's notification");
  it::PgConn m = e.stack.pg->connect("monitor_db");
  CHECK(m.scalar("SELECT count(*) FROM t_sys_alerts WHERE rule_id = 'monitor_rule'") == "1");
  monitor.signal(SIGTERM);
  const auto code = monitor.wait(std::chrono::seconds(20));
  REQUIRE(code.has_value());
  CHECK(*code == 1);  // the file's broken rule was refused (and reported)
  CHECK(it::contains(it::read_file(dir.str() + "/err.log"), "file_broken_rule"));
}

TEST_CASE(
    "the default rules of conf/alert_rules.json load; recovery actions act on the migration") {
  Env& e = env();
  const Api& api = e.stack.api;
  const std::string rules = api.get("/api/v1/alert-rules").body;
  for (const char* id :
       {"migration_success_warning", "migration_success_critical", "consistency_warning",
        "consistency_critical", "dual_write_success_warning", "dual_write_success_critical",
        "switch_error_warning", "switch_error_critical", "latency_warning", "latency_critical"})
    CHECK(it::contains(rules, std::string("\"") + id + "\""));
  CHECK(it::contains(rules, R"("condition":"consistency_score < 0.99")"));

  // Each action, on its own migration, from a rule that always holds.
  e.direct.exec_ok(
      "CREATE TABLE ra_a (id int PRIMARY KEY); CREATE TABLE t_sys_ra_a (id int PRIMARY KEY);"
      "CREATE TABLE ra_b (id int PRIMARY KEY); CREATE TABLE t_sys_ra_b (id int PRIMARY KEY);"
      "INSERT INTO ra_b SELECT generate_series(1, 5000);"
      "CREATE TABLE ra_c (id int PRIMARY KEY); CREATE TABLE t_sys_ra_c (id int PRIMARY KEY);");
  register_migration(api, "ra_a", "ra_a", "t_sys_ra_a");
  register_migration(api, "ra_b", "ra_b", "t_sys_ra_b");
  register_migration(api, "ra_c", "ra_c", "t_sys_ra_c");
  for (const char* id : {"ra_a", "ra_b", "ra_c"}) set_phase(api, id, "dual_write");
  // A slow backfill to pause.
  REQUIRE(api.post("/api/v1/migrations/ra_b/backfill",
                   R"({"batch_size": 10, "max_rows_per_second": 20})")
              .status == 200);
  // A failed phase change to retry (as a failing step of a migration tool would log it).
  e.direct.exec_ok(
      "INSERT INTO t_sys_migration_logs (migration_id, action, actor, from_state, to_state, "
      "status, message) VALUES ('ra_c', 'set-phase', 'tool', 'dual_write', 'validation', "
      "'failed', 'timeout')");
  auto action_rule = [](const std::string& id, const std::string& migration,
                        const std::string& action) {
    return R"({"rule_id": ")" + id + R"(", "alert_type": "test", "severity": "info",
        "condition": "SELECT 1", "threshold": 1, "notification_channels": ["log"],
        "auto_recovery": true, "recovery_action": ")" +
           action + R"(", "migration_id": ")" + migration + R"("})";
  };
  add_rule(api, action_rule("ra_disable", "ra_a", "disable_dual_write"));
  add_rule(api, action_rule("ra_pause", "ra_b", "pause_backfill"));
  add_rule(api, action_rule("ra_retry", "ra_c", "retry_migration"));
  for (const char* r : {"ra_disable", "ra_pause", "ra_retry"})
    wait_for(
        [&] {
          const auto a = alerts_of(api, r);
          return !a.empty() && !a.front().at("recovery_status").is_null();
        },
        std::chrono::seconds(10), std::string("the recovery of ") + r);
  for (const char* r : {"ra_disable", "ra_pause", "ra_retry"}) {
    INFO(r << ": " << json::serialize(alerts_of(api, r).front()));
    CHECK(str(alerts_of(api, r).front(), "recovery_status") == "succeeded");
  }
  CHECK_FALSE(get_migration(api, "ra_a").at("dual_write_enabled").as_bool());
  CHECK(e.direct.scalar("SELECT status FROM t_sys_backfills WHERE migration_id = 'ra_b'") ==
        "paused");
  CHECK(str(get_migration(api, "ra_c"), "phase") == "validation");
  // Each ran once for its alert, and the logs name the alert.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_migration_logs WHERE action = "
                        "'alert_recovery' AND migration_id IN ('ra_a', 'ra_b', 'ra_c')") == "3");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_migration_logs WHERE migration_id = 'ra_c' "
                        "AND to_state = 'validation' AND status = 'success' AND actor LIKE "
                        "'alert:alert_%'") == "1");
}

TEST_CASE("signals per migration: consistency_score and migration_success_rate") {
  Env& e = env();
  const Api& api = e.stack.api;
  e.direct.exec_ok(
      "CREATE TABLE sg_a (id int PRIMARY KEY); CREATE TABLE t_sys_sg_a (id int PRIMARY KEY);"
      "CREATE TABLE sg_b (id int PRIMARY KEY); CREATE TABLE t_sys_sg_b (id int PRIMARY KEY);");
  register_migration(api, "sg_a", "sg_a", "t_sys_sg_a");
  register_migration(api, "sg_b", "sg_b", "t_sys_sg_b");
  insert_check(e.direct, "sg_a", 0.9);
  insert_check(e.direct, "sg_b", 0.999);
  e.direct.exec_ok(
      "INSERT INTO t_sys_migration_logs (migration_id, action, actor, from_state, to_state, "
      "status, message) SELECT 'sg_b', 'set-phase', 'tool', 'preparation', 'dual_write', "
      "'failed', 'x' FROM generate_series(1, 3)");
  add_rule(api, R"({"rule_id": "sig_cons", "alert_type": "consistency", "severity": "warning",
      "condition": "consistency_score < 0.95", "notification_channels": ["hook"]})");
  add_rule(api, R"({"rule_id": "sig_success", "alert_type": "migration_failure",
      "severity": "critical", "condition": "migration_success_rate < 0.9",
      "migration_id": "sg_b", "notification_channels": ["hook"]})");
  wait_for(
      [&] { return !alerts_of(api, "sig_cons").empty() && !alerts_of(api, "sig_success").empty(); },
      std::chrono::seconds(10), "both signal alerts");
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const auto cons = alerts_of(api, "sig_cons");
  REQUIRE(cons.size() == 1);  // sg_a only: sg_b scores 0.999
  CHECK(str(cons.front(), "scope") == "sg_a");
  CHECK(str(cons.front(), "migration_id") == "sg_a");
  CHECK(cons.front().at("value").to_number<double>() == Approx(0.9));
  const auto rate = alerts_of(api, "sig_success");
  REQUIRE(rate.size() == 1);
  CHECK(str(rate.front(), "migration_id") == "sg_b");
  const double expected = std::stod(e.direct.scalar(
      "SELECT count(*) FILTER (WHERE status = 'success')::float8 / count(*) FROM "
      "t_sys_migration_logs WHERE migration_id = 'sg_b' AND status IN ('success', 'failed')"));
  CHECK(expected < 0.9);
  CHECK(rate.front().at("value").to_number<double>() == Approx(expected));
  wait_for([&] { return events(e.hook, "sig_cons") == 1 && events(e.hook, "sig_success") == 1; },
           std::chrono::seconds(10), "their notifications");
}

TEST_CASE("the manual's alerting_config.json loads unchanged") {
  Env& e = env();
  e.direct.exec_ok("CREATE DATABASE manual_db");
  it::TempDir dir("manual");
  it::SpawnOptions so;
  so.stderr_path = dir.str() + "/err.log";
  so.stdout_path = dir.str() + "/out.log";
  it::Child monitor({it::ProxyProcess::binary(), "alerts", "monitor", "--db-url",
                     e.stack.pg->conninfo("manual_db"), "--config-file",
                     std::string(PGPHASE_SOURCE_DIR) + "/conf/alerting_config.json"},
                    so);
  it::PgConn m = e.stack.pg->connect("manual_db");
  wait_for(
      [&] {
        const it::PgResult r = m.exec("SELECT count(*) FROM t_sys_alert_rules");
        return r.ok() && r.value() == "1";
      },
      std::chrono::seconds(20), "the manual's rule");
  CHECK(m.scalar("SELECT rule_name || '|' || alert_type || '|' || severity || '|' || threshold || "
                 "'|' || duration || '|' || notification_channels::text || '|' || "
                 "suppression_duration || '|' || auto_recovery || '|' || recovery_action FROM "
                 "t_sys_alert_rules WHERE rule_id = 'migration_failure_rule'") ==
        "\xe8\xbf\x81\xe7\xa7\xbb\xe5\xa4\xb1\xe8\xb4\xa5\xe5\x91\x8a\xe8\xad\xa6|"
        "migration_failure|critical|1|60|[\"email\", \"slack\"]|300|true|retry_failed_migrations");
  monitor.signal(SIGTERM);
  const auto code = monitor.wait(std::chrono::seconds(20));
  REQUIRE(code.has_value());
  CHECK(*code == 0);  // nothing refused
  const std::string err =
      it::read_file(dir.str() + "/err.log") + it::read_file(dir.str() + "/out.log");
  CHECK(it::contains(err, "config.password is ignored"));
  CHECK_FALSE(it::contains(err, "\"password\""));
}
