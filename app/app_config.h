// pgphase serve's configuration: the proxy settings (proxy::ProxyConfig), the migration control
// plane (migration::ControlConfig) and the admin API's settings, read from one flat JSON file
// (conf/pgphase.json) whose keys are dispatched to their owner. Unknown keys are refused by name.
// Command-line flags override the file (app/serve.cpp).
#pragma once

#include <string>
#include <string_view>

#include "migration/control_plane.h"
#include "proxy/config.h"

namespace pgphase::app {

using proxy::ConfigError;

struct AdminSettings {
  std::string token_env = "PGPHASE_ADMIN_TOKEN";  // environment variable holding the bearer token
  std::string tls_cert;  // PEM certificate chain: the admin port speaks HTTPS (with tls_key)
  std::string tls_key;   // PEM private key
};

// The alert evaluator's timing (alerting/engine.h).
struct AlertSettings {
  int interval_ms = 1000;        // evaluation round
  int resolve_after_ms = 30000;  // a cleared condition resolves its alert after this
  int retry_base_ms = 1000;      // notification retries after 1x, 2x, 4x this
};

struct AppConfig {
  AlertSettings alerts;
  proxy::ProxyConfig proxy;
  migration::ControlConfig control;  // control.dsn empty: plain pass-through, no control plane
  AdminSettings admin;
  std::string control_dsn_env;  // name of an environment variable holding the conninfo
};

// Applies the keys of the JSON file. Throws ConfigError naming the key on unknown keys, wrong
// types and bad values.
void apply_json(AppConfig& config, std::string_view json_text);

// Fills control.dsn when neither the file nor a flag set it: from the variable named by
// control_dsn_env (which must then be set), else from $PGPHASE_CONTROL_DSN. Throws ConfigError.
void resolve_environment(AppConfig& config);

// Cross-field rules of every part. Throws ConfigError.
void validate(const AppConfig& config);

}  // namespace pgphase::app
