// Notification channels: the manual's notification_configs entries ({"channel", "enabled",
// "config"}). Types: email (SMTP, STARTTLS when use_tls), slack (incoming webhook), webhook (JSON
// POST) and log. A channel's name is its "channel" value; its type is config.type, else the name.
// Secrets are never read from the file: the SMTP password comes from the environment variable
// named by config.password_env (default PGPHASE_SMTP_PASSWORD); a plain "password" in the file is
// ignored with a warning. Webhook URLs (which carry Slack's secret) may come from url_env /
// webhook_url_env likewise.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace boost::json {
class value;
class object;
}  // namespace boost::json

namespace pgphase::alerting {

struct ChannelConfig {
  std::string name;  // what rules list in notification_channels
  std::string type;  // email | slack | webhook | log
  bool enabled = true;
  // webhook / slack
  std::string url;
  std::map<std::string, std::string> headers;
  // email
  std::string smtp_server;
  int smtp_port = 587;
  std::string username;
  std::string password_env = "PGPHASE_SMTP_PASSWORD";
  std::string from_email;
  std::vector<std::string> to_emails;
  bool use_tls = true;
  int timeout_seconds = 10;
  std::vector<std::string> warnings;  // e.g. a plain-text password that was ignored
};

// Parses one entry; throws RuleError (rule.h) naming the field.
[[nodiscard]] ChannelConfig parse_channel(const boost::json::value& v);
// The channel as JSON without secrets (for GET endpoints and logs).
[[nodiscard]] boost::json::object describe(const ChannelConfig& c);

}  // namespace pgphase::alerting
