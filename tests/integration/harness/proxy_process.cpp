#include "harness/proxy_process.h"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "harness/http.h"
#include "harness/pg_cluster.h"

#ifndef PGPHASE_BINARY
#define PGPHASE_BINARY "pgphase"
#endif

namespace pgphase::it {

ProxyOptions ProxyOptions::tcp(const PgCluster& cluster) {
  ProxyOptions o;
  o.backend = cluster.tcp_endpoint();
  return o;
}

ProxyOptions ProxyOptions::unix_socket(const PgCluster& cluster) {
  ProxyOptions o;
  o.backend = cluster.unix_endpoint();
  return o;
}

std::string ProxyProcess::binary() {
  const char* env = std::getenv("PGPHASE_BIN");
  return (env != nullptr && *env != '\0') ? env : PGPHASE_BINARY;
}

RunResult ProxyProcess::run_cli(const std::vector<std::string>& args,
                                std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {.timeout = timeout});
}

ProxyProcess::ProxyProcess(ProxyOptions options) : options_(std::move(options)), dir_("proxy") {
  if (options_.backend.empty()) throw std::invalid_argument("ProxyOptions.backend is required");
  launch();
}

ProxyProcess::~ProxyProcess() {
  child_.kill_and_wait();
}

void ProxyProcess::launch() {
  for (int attempt = 1;; ++attempt) {
    port_ = free_port();
    admin_port_ = free_port();
    argv_ = {binary(),      "serve",
             "--listen",    "127.0.0.1:" + std::to_string(port_),
             "--backend",   options_.backend,
             "--admin",     "127.0.0.1:" + std::to_string(admin_port_),
             "--workers",   std::to_string(options_.workers),
             "--log-level", options_.log_level};
    const auto add = [&](const char* flag, const std::string& value) {
      if (value.empty()) return;
      argv_.emplace_back(flag);
      argv_.push_back(value);
    };
    add("--tls-cert", options_.tls_cert);
    add("--tls-key", options_.tls_key);
    add("--backend-tls", options_.backend_tls);
    if (options_.max_message_size) {
      add("--max-message-size", std::to_string(*options_.max_message_size));
    }
    if (options_.shutdown_timeout) {
      add("--shutdown-timeout", std::to_string(*options_.shutdown_timeout));
    }
    add("--config", options_.config_file);
    argv_.insert(argv_.end(), options_.extra_args.begin(), options_.extra_args.end());
    const std::string control = control_plane_dsn();
    if (!control.empty()) {
      argv_.emplace_back("--control-dsn");
      argv_.push_back(control);
    }

    SpawnOptions spawn;
    spawn.stdout_path = (dir_ / "stdout.log").string();
    spawn.stderr_path = stderr_path();
    child_ = Child(argv_, spawn);
    const bool up = wait_until(
        [&] { return !child_.running() || (is_listening(port_) && is_listening(admin_port_)); },
        options_.ready_timeout);
    if (up && child_.running()) {
      if (!control.empty()) attach_unrelated_migration(control);
      return;
    }
    const std::string why = stderr_tail();
    child_.kill_and_wait();
    if (attempt < 4 && icontains(why, "in use")) continue;
    std::string cmd;
    for (const auto& a : argv_) cmd += a + " ";
    throw std::runtime_error(
        "pgphase did not come up: " +
        (up ? "it exited with " + std::to_string(child_.exit_code().value_or(-999))
            : "ports " + std::to_string(port_) + "/" + std::to_string(admin_port_) +
                  " not listening after " + std::to_string(options_.ready_timeout.count()) +
                  " ms") +
        "\ncommand: " + cmd + "\nstderr tail:\n" + why);
  }
}

std::string ProxyProcess::control_plane_dsn() {
  const char* on = std::getenv("PGPHASE_IT_CONTROL_PLANE");
  if (on == nullptr || std::string_view(on) != "1") return {};
  for (const auto& a : options_.extra_args) {
    if (a == "--control-dsn") return {};
  }
  if (!options_.config_file.empty()) return {};
  // The backend as libpq host/port: "127.0.0.1:5432" or "unix:/dir/.s.PGSQL.5432".
  std::string host;
  std::string port;
  if (options_.backend.starts_with("unix:")) {
    const std::string path = options_.backend.substr(5);
    const auto slash = path.rfind('/');
    host = path.substr(0, slash);
    port = path.substr(path.rfind('.') + 1);
  } else {
    const auto colon = options_.backend.rfind(':');
    host = options_.backend.substr(0, colon);
    port = options_.backend.substr(colon + 1);
  }
  const auto dsn = [&](const std::string& db) {
    return make_conninfo({{"host", host}, {"port", port}, {"dbname", db}, {"user", "postgres"}});
  };
  PgConn admin = PgConn::connect(dsn("postgres"), std::chrono::seconds(5));
  if (!admin.ok()) return {};  // tests of a backend that is down: no control plane to attach
  if (admin.scalar("SELECT count(*) FROM pg_database WHERE datname = 'pgphase_it_control'") ==
      "0") {
    (void)admin.exec("CREATE DATABASE pgphase_it_control");  // a racing twin may have made it
  }
  PgConn control = PgConn::connect(dsn("pgphase_it_control"));
  if (!control.ok()) throw std::runtime_error("control plane mode: " + control.error_message());
  control.exec_ok(
      "CREATE TABLE IF NOT EXISTS it_unrelated (id int PRIMARY KEY, v text);"
      "CREATE TABLE IF NOT EXISTS t_sys_it_unrelated (id int PRIMARY KEY, v text)");
  return dsn("pgphase_it_control");
}

void ProxyProcess::attach_unrelated_migration(const std::string& dsn) {
  PgConn control = PgConn::connect(dsn);
  if (!control.ok()) throw std::runtime_error("control plane mode: " + control.error_message());
  const bool schema = wait_until(
      [&] { return control.scalar("SELECT to_regclass('t_sys_migrations') IS NOT NULL") == "t"; },
      std::chrono::seconds(15));
  if (!schema)
    throw std::runtime_error("control plane mode: no t_sys_migrations\n" + stderr_tail());
  // Straight into the store (as another instance would have written it): dual_write, for every
  // database behind pgphase; pgphase picks it up at its next reload.
  control.exec_ok(
      "INSERT INTO t_sys_migrations (migration_id, source_table, target_table, database, phase, "
      "dual_write_enabled, key_columns) VALUES ('it_unrelated', 'it_unrelated', "
      "'t_sys_it_unrelated', '', 'dual_write', true, '[\"id\"]') ON CONFLICT DO NOTHING");
  const bool loaded = wait_until(
      [&] {
        const HttpResponse r = http_get(admin_port_, "/metrics");
        return r.status == 200 &&
               r.body.find(
                   "pgphase_migration_dual_write_enabled{migration_id=\"it_unrelated\"} 1") !=
                   std::string::npos;
      },
      std::chrono::seconds(15));
  if (!loaded)
    throw std::runtime_error("control plane mode: migration it_unrelated not loaded\n" +
                             stderr_tail());
}

std::string ProxyProcess::stderr_tail(size_t lines) const {
  return tail_lines(stderr_text(), lines);
}

long ProxyProcess::rss_kb() const {
  if (child_.pid() <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(child_.pid()) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::string ProxyProcess::conninfo(const std::string& db, const std::string& user,
                                   const std::string& password, const std::string& extra) const {
  std::vector<std::pair<std::string, std::string>> kv = {
      {"host", "127.0.0.1"}, {"port", std::to_string(port_)}, {"dbname", db}, {"user", user}};
  if (!password.empty()) kv.emplace_back("password", password);
  const std::string base = make_conninfo(kv);
  return extra.empty() ? base : base + " " + extra;
}

PgConn ProxyProcess::connect(const std::string& db, const std::string& user,
                             const std::string& password, const std::string& extra) const {
  return PgConn::connect(conninfo(db, user, password, extra));
}

}  // namespace pgphase::it
