#include "alert_env.h"

#include <catch2/catch.hpp>

namespace pgphase::alert_test {

std::string alerting_config(const Env& e, const std::string& extra_rules) {
  const std::string smtp = std::to_string(e.smtp.port());
  return R"({
  "alert_rules": [
    {"rule_id": "file_rule", "rule_name": "from the file", "alert_type": "migration_failure",
     "severity": "warning",
     "condition": "SELECT COUNT(*) FROM t_sys_migration_logs WHERE status = 'failed' AND created_at > NOW() - INTERVAL '5 minutes'",
     "threshold": 1000000, "duration": 60, "enabled": true, "notification_channels": ["hook"],
     "suppression_duration": 300, "auto_recovery": false},
    {"rule_id": "file_broken_rule", "rule_name": "broken", "alert_type": "migration_failure",
     "severity": "critical", "condition": "SELECT COUNT(*) FROM no_such_table", "threshold": 1}
    )" + extra_rules +
         R"(
  ],
  "notification_configs": [
    {"channel": "hook", "enabled": true, "config": {"type": "webhook", "url": ")" +
         e.hook.url("/hook") + R"("}},
    {"channel": "chat", "enabled": true, "config": {"type": "slack", "webhook_url": ")" +
         e.hook.url("/slack") + R"("}},
    {"channel": "bad_hook", "enabled": true, "config": {"type": "webhook", "url": ")" +
         e.failing.url("/hook") + R"(", "timeout_seconds": 2}},
    {"channel": "mail", "enabled": true, "config": {"type": "email", "smtp_server": "127.0.0.1",
     "smtp_port": )" +
         smtp + R"(, "from_email": "pgphase@test", "to_emails": ["ops@test"],
     "use_tls": false, "password": "never-used"}},
    {"channel": "strict_mail", "enabled": true, "config": {"type": "email",
     "smtp_server": "127.0.0.1", "smtp_port": )" +
         smtp + R"(, "from_email": "pgphase@test",
     "to_emails": ["ops@test"], "use_tls": true}},
    {"channel": "tls_mail", "enabled": true, "config": {"type": "email",
     "smtp_server": "127.0.0.1", "smtp_port": )" +
         std::to_string(e.tls_smtp ? e.tls_smtp->port() : 0) + R"(, "username": "alerts",
     "from_email": "pgphase@test", "to_emails": ["ops@test"], "use_tls": true}}
  ]
})";
}

Env::Env() : dir(std::make_unique<it::TempDir>("alerts")) {
  failing.set_status(500);
  // A certificate for 127.0.0.1 that pgphase (a child: it inherits the environment) trusts.
  const it::CertPair cert = it::make_self_signed_cert(dir->str(), "smtp");
  tls_smtp = std::make_unique<SmtpReceiver>(cert.cert.string(), cert.key.string());
  setenv("SSL_CERT_FILE", cert.cert.c_str(), 1);
  setenv("PGPHASE_SMTP_PASSWORD", kSmtpPassword, 1);
  config_path = dir->str() + "/alerting_config.json";
  it::write_file(config_path, alerting_config(*this));
  stack.pg = start_cluster();
  ServeOptions o = serve_on(*stack.pg);
  // The manual's file shape with this test's receivers, and the default rules shipped in conf/.
  o.config_files = {config_path, std::string(PGPHASE_SOURCE_DIR) + "/conf/alert_rules.json"};
  o.config_json =
      R"({"alert_interval_ms": 200, "alert_resolve_after_ms": 1500, "alert_retry_base_ms": 100})";
  stack.proxy = start_pgphase(o);
  stack.api = api_for(*stack.proxy);
  direct = control_conn(*stack.pg);
}

Env& env() {
  static Env e;
  return e;
}

int events(const HttpReceiver& r, const std::string& rule_id, const std::string& event) {
  int n = 0;
  for (const auto& req : r.requests()) {
    const auto sp = req.find(' ');
    if (req.substr(0, sp) != "/hook") continue;
    const json::value v = json::parse(req.substr(sp + 1));
    const auto& o = v.as_object();
    if (o.at("rule_id").as_string() != rule_id) continue;
    if (!event.empty() && o.at("event").as_string() != event) continue;
    ++n;
  }
  return n;
}

int mails(const SmtpReceiver& r, const std::string& text) {
  int n = 0;
  for (const auto& m : r.messages())
    if (m.find(text) != std::string::npos) ++n;
  return n;
}

std::vector<json::object> alerts_of(const Api& api, const std::string& rule_id) {
  const it::HttpResponse r = api.get("/api/v1/alerts?status=all&limit=1000");
  REQUIRE(r.status == 200);
  std::vector<json::object> out;
  const json::value all = parse_json(r.body);
  for (const auto& a : all.as_array())
    if (a.as_object().at("rule_id").as_string() == rule_id) out.push_back(a.as_object());
  return out;
}

void add_rule(const Api& api, const std::string& rule_json) {
  const it::HttpResponse r = api.post("/api/v1/alert-rules", rule_json);
  INFO(describe(r));
  REQUIRE((r.status == 201 || r.status == 200));
}

void wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
              const std::string& what) {
  INFO("waiting for " << what);
  REQUIRE(time_until(pred, timeout, std::chrono::milliseconds(50)).has_value());
}

}  // namespace pgphase::alert_test
