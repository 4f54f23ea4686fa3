// Building blocks of the alerting tests: one PostgreSQL cluster, a webhook/Slack receiver, a
// second receiver that answers 500, an SMTP receiver, and one pgphase whose --config-file is an
// alerting_config.json naming them (channels hook, chat, mail, bad_hook, strict_mail) plus one
// valid and one broken rule, plus tls_mail (STARTTLS, AUTH with $PGPHASE_SMTP_PASSWORD =
// kSmtpPassword), with fast evaluation (200 ms rounds, alerts resolve 1.5 s after their condition
// clears, notification retries after 100/200/400 ms).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ctl_env.h"
#include "receivers.h"

namespace pgphase::alert_test {

using namespace pgphase::ctl;

inline constexpr const char* kSmtpPassword = "s3cret-smtp-pw";

struct Env {
  Env();  // starts everything
  std::unique_ptr<it::TempDir> dir;
  HttpReceiver hook;
  HttpReceiver failing;  // answers 500
  SmtpReceiver smtp;
  std::unique_ptr<SmtpReceiver> tls_smtp;  // STARTTLS with a certificate pgphase trusts
                                           // (SSL_CERT_FILE), AUTH PLAIN
  std::string config_path;
  Stack stack;
  it::PgConn direct;  // the control database
};

Env& env();

// The alerting_config.json content for these receivers (`extra_rules`: JSON objects appended to
// alert_rules).
[[nodiscard]] std::string alerting_config(const Env& e, const std::string& extra_rules = "");

// Webhook payloads received for `rule_id` with `event` (firing, repeat, resolved; "" = any).
[[nodiscard]] int events(const HttpReceiver& r, const std::string& rule_id,
                         const std::string& event = "firing");
// Emails whose subject names `text`.
[[nodiscard]] int mails(const SmtpReceiver& r, const std::string& text);

// The alerts (GET /api/v1/alerts?status=all) of `rule_id`, newest first.
[[nodiscard]] std::vector<json::object> alerts_of(const Api& api, const std::string& rule_id);
// POST /api/v1/alert-rules; REQUIREs 201 or 200.
void add_rule(const Api& api, const std::string& rule_json);
// Waits until `pred` holds (REQUIRE within `timeout`).
void wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
              const std::string& what);

}  // namespace pgphase::alert_test
