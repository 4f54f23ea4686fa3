#include "alerting/channels.h"

#include <boost/json.hpp>
#include <cstdlib>

#include "alerting/rule.h"

namespace pgphase::alerting {

namespace json = boost::json;

namespace {

std::string get_str(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  if (v == nullptr || v->is_null()) return {};
  if (!v->is_string()) throw RuleError("config." + std::string(k) + ": expected a string");
  return std::string(v->as_string());
}

std::string from_env(const std::string& name, const std::string& what) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr || *v == '\0')
    throw RuleError(what + ": environment variable " + name + " is not set");
  return v;
}

}  // namespace

ChannelConfig parse_channel(const json::value& v) {
  if (!v.is_object()) throw RuleError("a notification config must be a JSON object");
  const auto& o = v.as_object();
  ChannelConfig c;
  const auto* ch = o.if_contains("channel");
  if (ch == nullptr || !ch->is_string() || ch->as_string().empty())
    throw RuleError("channel: required (a name such as \"email\")");
  c.name = std::string(ch->as_string());
  if (const auto* e = o.if_contains("enabled")) {
    if (!e->is_bool()) throw RuleError("enabled: expected true or false");
    c.enabled = e->as_bool();
  }
  json::object cfg;
  if (const auto* x = o.if_contains("config"); x && !x->is_null()) {
    if (!x->is_object()) throw RuleError("config: expected an object");
    cfg = x->as_object();
  }
  c.type = get_str(cfg, "type");
  if (c.type.empty()) c.type = c.name;
  if (c.type != "email" && c.type != "slack" && c.type != "webhook" && c.type != "log")
    throw RuleError("channel " + c.name +
                    ": unknown type (config.type: email, slack, webhook or log)");
  if (c.type == "webhook" || c.type == "slack") {
    c.url = get_str(cfg, c.type == "slack" ? "webhook_url" : "url");
    const std::string env = get_str(cfg, c.type == "slack" ? "webhook_url_env" : "url_env");
    if (!env.empty()) c.url = from_env(env, "channel " + c.name);
    if (c.url.empty())
      throw RuleError("channel " + c.name + ": config." +
                      (c.type == "slack" ? "webhook_url" : "url") + " (or its _env) is required");
    if (const auto* h = cfg.if_contains("headers"); h && h->is_object())
      for (const auto& [k, hv] : h->as_object())
        if (hv.is_string()) c.headers[std::string(k)] = std::string(hv.as_string());
  }
  if (c.type == "email") {
    c.smtp_server = get_str(cfg, "smtp_server");
    if (c.smtp_server.empty())
      throw RuleError("channel " + c.name + ": config.smtp_server is required");
    if (const auto* p = cfg.if_contains("smtp_port")) {
      if (!p->is_number()) throw RuleError("config.smtp_port: expected a number");
      c.smtp_port = p->to_number<int>();
    }
    c.username = get_str(cfg, "username");
    if (const std::string env = get_str(cfg, "password_env"); !env.empty()) c.password_env = env;
    if (cfg.contains("password"))
      c.warnings.push_back("channel " + c.name +
                           ": config.password is ignored (passwords are not read from files); "
                           "set the environment variable " +
                           c.password_env);
    c.from_email = get_str(cfg, "from_email");
    if (c.from_email.empty())
      throw RuleError("channel " + c.name + ": config.from_email is required");
    if (const auto* t = cfg.if_contains("to_emails"); t && t->is_array())
      for (const auto& e : t->as_array())
        if (e.is_string()) c.to_emails.emplace_back(e.as_string());
    if (c.to_emails.empty())
      throw RuleError("channel " + c.name + ": config.to_emails is required");
    if (const auto* u = cfg.if_contains("use_tls"); u && u->is_bool()) c.use_tls = u->as_bool();
  }
  if (const auto* t = cfg.if_contains("timeout_seconds"); t && t->is_number())
    c.timeout_seconds = std::max(1, t->to_number<int>());
  return c;
}

json::object describe(const ChannelConfig& c) {
  json::object o{{"channel", c.name}, {"type", c.type}, {"enabled", c.enabled}};
  if (c.type == "email") {
    o["smtp_server"] = c.smtp_server;
    o["smtp_port"] = c.smtp_port;
    o["from_email"] = c.from_email;
    json::array to;
    for (const auto& t : c.to_emails) to.push_back(json::value(t));
    o["to_emails"] = std::move(to);
    o["use_tls"] = c.use_tls;
    o["password_env"] = c.password_env;
  }
  return o;
}

}  // namespace pgphase::alerting
