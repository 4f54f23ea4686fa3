#include "app/serve.h"

#include <boost/program_options.hpp>
#include <boost/system/system_error.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "admin/auth.h"
#include "admin/metrics.h"
#include "admin/migration_metrics.h"
#include "admin/routes.h"
#include "alerting/service.h"
#include "app/admin_thread.h"
#include "app/app_config.h"
#include "common/log.h"
#include "migration/auto_rollback.h"
#include "migration/backfill.h"
#include "migration/config_files.h"
#include "migration/control_plane.h"
#include "migration/read_stats.h"
#include "migration/shadow.h"
#include "proxy/server.h"
#include "stats/stats.h"
#include "validator/validation_jobs.h"

namespace pgphase::app {

namespace po = boost::program_options;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read config file \"" + path + "\"");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

po::options_description serve_options() {
  po::options_description opts("pgphase serve options");
  opts.add_options()("help,h", "show this help")(
      "config", po::value<std::string>(),
      "JSON config file (e.g. conf/pgphase.json); flags override it")(
      "listen", po::value<std::string>(),
      "client listen address host:port (default 127.0.0.1:6432)")(
      "backend", po::value<std::string>(),
      "PostgreSQL address host:port or unix:/path/.s.PGSQL.5432 (default 127.0.0.1:5432)")(
      "admin", po::value<std::string>(), "admin HTTP address host:port (default 127.0.0.1:8432)")(
      "workers", po::value<unsigned>(), "worker threads (default: one per core)")(
      "tls-cert", po::value<std::string>(), "certificate chain (PEM) for client TLS")(
      "tls-key", po::value<std::string>(), "private key (PEM) for client TLS")(
      "admin-tls-cert", po::value<std::string>(),
      "certificate chain (PEM): the admin port speaks HTTPS (with --admin-tls-key)")(
      "admin-tls-key", po::value<std::string>(), "private key (PEM) of the admin port")(
      "backend-tls", po::value<std::string>(), "disable | prefer | require (default disable)")(
      "max-message-size", po::value<uint32_t>(),
      "largest protocol message accepted, bytes (default 1 GiB)")(
      "shutdown-timeout", po::value<unsigned>(),
      "seconds sessions get to finish on SIGTERM (default 30)")(
      "connect-timeout-ms", po::value<unsigned>(), "backend connect timeout (default 5000)")(
      "query-timeout", po::value<unsigned>(),
      "seconds a client's request may wait for the server's ReadyForQuery before pgphase closes "
      "the session with an error (default 0: off)")(
      "client-idle-timeout", po::value<unsigned>(),
      "seconds a session may stay idle outside a transaction before pgphase closes it (default "
      "0: off)")("max-client-connections", po::value<unsigned>(),
                 "client connection limit (default 10000)")(
      "log-level", po::value<std::string>(), "debug | info | warn | error (default info)")(
      "control-dsn", po::value<std::string>(),
      "libpq conninfo of the control database (default $PGPHASE_CONTROL_DSN); without one pgphase "
      "is a plain pass-through")(
      "control-answer-timeout-ms", po::value<unsigned>(),
      "how long a control-database statement may go unanswered before its connection is given "
      "up and reopened (default 35000; above the control sessions' statement_timeout of 30 s)")(
      "config-file", po::value<std::vector<std::string>>(),
      "the manual's migration_configs.json / read_switch_configs.json / alerting_config.json to "
      "register at start (repeatable)");
  return opts;
}

void apply_flags(AppConfig& config, const po::variables_map& vm) {
  using proxy::parse_endpoint;
  auto& p = config.proxy;
  if (vm.count("listen")) p.listen = parse_endpoint(vm["listen"].as<std::string>(), "--listen");
  if (vm.count("backend")) p.backend = parse_endpoint(vm["backend"].as<std::string>(), "--backend");
  if (vm.count("admin")) p.admin = parse_endpoint(vm["admin"].as<std::string>(), "--admin");
  if (vm.count("workers")) p.workers = vm["workers"].as<unsigned>();
  if (vm.count("tls-cert")) p.tls_cert = vm["tls-cert"].as<std::string>();
  if (vm.count("admin-tls-cert")) config.admin.tls_cert = vm["admin-tls-cert"].as<std::string>();
  if (vm.count("admin-tls-key")) config.admin.tls_key = vm["admin-tls-key"].as<std::string>();
  if (vm.count("tls-key")) p.tls_key = vm["tls-key"].as<std::string>();
  if (vm.count("backend-tls"))
    p.backend_tls = proxy::parse_backend_tls(vm["backend-tls"].as<std::string>());
  if (vm.count("max-message-size")) p.max_message_size = vm["max-message-size"].as<uint32_t>();
  if (vm.count("shutdown-timeout"))
    p.shutdown_timeout_seconds = vm["shutdown-timeout"].as<unsigned>();
  if (vm.count("connect-timeout-ms"))
    p.connect_timeout_ms = vm["connect-timeout-ms"].as<unsigned>();
  if (vm.count("query-timeout")) p.query_timeout_seconds = vm["query-timeout"].as<unsigned>();
  if (vm.count("client-idle-timeout"))
    p.client_idle_timeout_seconds = vm["client-idle-timeout"].as<unsigned>();
  if (vm.count("max-client-connections"))
    p.max_client_connections = vm["max-client-connections"].as<unsigned>();
  if (vm.count("log-level")) p.log_level = vm["log-level"].as<std::string>();
  if (vm.count("control-dsn")) {
    config.control.dsn = vm["control-dsn"].as<std::string>();
    if (config.control.dsn.empty()) throw ConfigError("--control-dsn: empty");
  }
  if (vm.count("control-answer-timeout-ms")) {
    config.control.answer_timeout_ms = vm["control-answer-timeout-ms"].as<unsigned>();
    if (config.control.answer_timeout_ms == 0)
      throw ConfigError("--control-answer-timeout-ms: must be at least 1");
  }
  if (vm.count("config-file"))
    config.control.config_files = vm["config-file"].as<std::vector<std::string>>();
}

// Runs everything until SIGTERM/SIGINT has drained the proxy.
int run(AppConfig config) {
  std::unique_ptr<migration::ControlPlane> control;
  std::function<migration::SnapshotPtr()> snapshots;
  if (!config.control.dsn.empty()) {
    control = std::make_unique<migration::ControlPlane>(config.control);
    snapshots = [c = control.get()] { return c->snapshot(); };
  }
  proxy::FlagSink flags;
  if (control) {
    flags = [c = control.get()](std::string id, std::string reason, std::string sql) {
      c->record_flagged_write(id, reason, sql);
    };
  }
  // The workers' figures: written by the proxy, read by /metrics, the analytics, the alerting and
  // the auto-rollback.
  stats::Stats figures(proxy::worker_threads(config.proxy), control != nullptr);
  admin::Metrics metrics(figures);
  migration::ReadStats read_stats(&figures.routing());
  std::unique_ptr<migration::ShadowRunner> shadow;
  if (control) shadow = std::make_unique<migration::ShadowRunner>(config.control.dsn, read_stats);
  proxy::Server server(config.proxy, figures, control ? &control->published() : nullptr, flags,
                       shadow.get());
  std::unique_ptr<migration::AutoRollback> auto_rollback;
  if (control) auto_rollback = std::make_unique<migration::AutoRollback>(*control, read_stats);
  std::unique_ptr<migration::BackfillManager> backfill;
  if (control) {
    backfill = std::make_unique<migration::BackfillManager>(config.control.dsn, *control,
                                                            &metrics.registry());
  }

  std::unique_ptr<validator::ValidationJobs> validations;
  if (control)
    validations =
        std::make_unique<validator::ValidationJobs>(config.control.dsn, &metrics.registry());
  std::unique_ptr<alerting::Alerting> alerts;
  if (control) {
    alerting::AlertingOptions ao;
    ao.engine.interval = std::chrono::milliseconds(config.alerts.interval_ms);
    ao.engine.resolve_after = std::chrono::milliseconds(config.alerts.resolve_after_ms);
    ao.retry_base = std::chrono::milliseconds(config.alerts.retry_base_ms);
    alerts = std::make_unique<alerting::Alerting>(config.control.dsn, control.get(), &read_stats,
                                                  &figures.routing(), &metrics.registry(), ao);
  }

  std::shared_ptr<admin::MigrationCollector> collector;
  if (control) {
    collector = std::make_shared<admin::MigrationCollector>(
        snapshots, [c = control.get()] { return c->connected(); },
        [c = control.get()]() -> std::optional<admin::MigrationCollector::StoredFigures> {
          if (!c->connected()) return std::nullopt;  // a scrape never waits for a reconnect
          return c->stored_figures();
        });
    metrics.add_collectable(collector);
    log::info("control plane: starting (", config.control.config_files.size(), " config files)");
    try {
      control->start();
      auto_rollback->start();
      shadow->start();
      backfill->start();
      // The alert rules and channels of the manual's alerting_config.json (a refused rule is
      // reported and never stops the others).
      try {
        (void)alerts->load_files(config.control.config_files);
      } catch (const std::exception& e) {
        log::warn("alerting: the configuration files' rules were not loaded: ", e.what());
      }
      alerts->start();
    } catch (const migration::ConfigFileError& e) {
      throw ConfigError(e.what());  // a bad --config-file is a configuration error (exit 2)
    }
  } else {
    log::info("no control database configured: plain pass-through; migration endpoints answer 503");
  }

  const admin::AdminAuth auth = admin::AdminAuth::from_env(config.admin.token_env);
  if (!auth.configured())
    log::warn("admin API: $", config.admin.token_env, " is not set; every change is refused (401)");
  admin::AdminContext admin_ctx{metrics,        [&server] { return !server.shutting_down(); },
                                control.get(),  &auth,
                                &read_stats,    auto_rollback.get(),
                                backfill.get(), validations.get(),
                                alerts.get(),   &figures.routing()};
  std::unique_ptr<AdminThread> admin_thread;
  try {
    admin_thread = std::make_unique<AdminThread>(
        config.proxy.admin,
        [&admin_ctx](const admin::HttpRequest& r) { return admin::handle_request(r, admin_ctx); },
        admin::HttpServerOptions{admin::may_block, 2, config.admin.tls_cert, config.admin.tls_key});
  } catch (const boost::system::system_error& e) {
    log::error("cannot serve the admin API on ", config.proxy.admin.to_string(), ": ",
               e.code().message());
    if (auto_rollback) auto_rollback->stop();
    if (control) control->stop();
    return 1;
  }
  log::info("admin API on ", config.admin.tls_cert.empty() ? "http://" : "https://",
            config.proxy.admin.host, ":", admin_thread->port());

  const int rc = server.run();
  admin_thread->stop();
  if (backfill) backfill->stop();
  validations.reset();
  if (alerts) alerts->stop();
  if (shadow) shadow->stop();
  if (auto_rollback) auto_rollback->stop();
  if (control) control->stop();
  return rc;
}

}  // namespace

int serve_command(int argc, char** argv) {
  const auto opts = serve_options();
  po::variables_map vm;
  po::store(
      po::command_line_parser(argc, argv)
          .options(opts)
          .style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing)
          .run(),
      vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return 0;
  }
  AppConfig config;
  if (vm.count("config")) apply_json(config, read_file(vm["config"].as<std::string>()));
  apply_flags(config, vm);
  resolve_environment(config);
  validate(config);
  log::Level level{};
  (void)log::parse_level(config.proxy.log_level, level);
  log::set_level(level);
  return run(std::move(config));
}

}  // namespace pgphase::app
