#include "harness/pg_cluster.h"

#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <stdexcept>

namespace pgphase::it {
namespace fs = std::filesystem;

namespace {

void give_to_postgres(const fs::path& path) {
  if (!running_as_root()) return;
  const OsUser& u = postgres_os_user();
  if (chown(path.c_str(), u.uid, u.gid) != 0) {
    throw std::runtime_error("chown " + path.string() + " to postgres failed");
  }
}

std::string hba_rules(const std::vector<std::string>& extra) {
  std::string out = "# Written by the pgphase integration-test harness.\n";
  for (const auto& line : extra) out += line + "\n";
  for (const char* type : {"local", "host"}) {
    const std::string addr = std::string(type) == "host" ? " 127.0.0.1/32" : "";
    for (const TestRole& role : kTestRoles) {
      out += std::string(type) + " all " + role.name + addr + " " + role.method + "\n";
    }
    out += std::string(type) + " replication postgres" + addr + " trust\n";
    out += std::string(type) + " all all" + addr + " scram-sha-256\n";
  }
  return out;
}

}  // namespace

PgCluster::PgCluster(PgClusterOptions options) : options_(std::move(options)), dir_("pg") {
  try {
    init_cluster();
    launch();
    create_roles();
  } catch (...) {
    stop();
    throw;
  }
}

std::unique_ptr<PgCluster> PgCluster::start(PgClusterOptions options) {
  return std::make_unique<PgCluster>(std::move(options));
}

PgCluster::~PgCluster() {
  stop();
}

std::string PgCluster::socket_path() const {
  return socket_dir() + "/.s.PGSQL." + std::to_string(port_);
}

std::string PgCluster::data_dir() const {
  return (dir_ / "data").string();
}
std::string PgCluster::tcp_endpoint() const {
  return "127.0.0.1:" + std::to_string(port_);
}
std::string PgCluster::unix_endpoint() const {
  return "unix:" + socket_path();
}

void PgCluster::init_cluster() {
  fs::permissions(dir_.path(), fs::perms::owner_all | fs::perms::group_read |
                                   fs::perms::group_exec | fs::perms::others_read |
                                   fs::perms::others_exec);
  give_to_postgres(dir_.path());
  run_checked({pg_tool("initdb"), "-D", data_dir(), "-U", "postgres", "-A", "trust", "-E", "UTF8",
               "--locale=C", "--no-sync", "--no-instructions"},
              {.as_postgres_user = true, .timeout = 120s});
  std::string conf =
      "\n# pgphase integration-test harness\n"
      "listen_addresses = '127.0.0.1'\n"
      "unix_socket_directories = '" +
      socket_dir() +
      "'\n"
      "max_connections = " +
      std::to_string(options_.max_connections) +
      "\n"
      "shared_buffers = 16MB\n"
      "fsync = off\n"
      "synchronous_commit = off\n"
      "full_page_writes = off\n"
      "lc_messages = 'C'\n"
      "password_encryption = 'scram-sha-256'\n"
      "log_line_prefix = '%m [%p] %q%u@%d '\n"
      "log_connections = " +
      (options_.log_connections ? "on" : "off") + "\n";
  if (options_.ssl) {
    const CertPair cert = make_self_signed_cert(data_dir(), "server");
    give_to_postgres(cert.cert);
    give_to_postgres(cert.key);
    conf += "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n";
  } else {
    conf += "ssl = off\n";
  }
  for (const auto& line : options_.extra_conf) conf += line + "\n";
  append_file(fs::path(data_dir()) / "postgresql.conf", conf);
  write_file(fs::path(data_dir()) / "pg_hba.conf", hba_rules(options_.extra_hba));
}

void PgCluster::launch() {
  for (int attempt = 1;; ++attempt) {
    port_ = free_port();
    SpawnOptions spawn;
    spawn.as_postgres_user = true;
    spawn.stdout_path = (dir_ / "postgres.out").string();
    spawn.stderr_path = (dir_ / "postgres.log").string();
    spawn.pdeathsig = SIGQUIT;  // immediate shutdown if the test process dies
    postmaster_ =
        Child({pg_tool("postgres"), "-D", data_dir(), "-p", std::to_string(port_)}, spawn);
    const std::string ping = conninfo("postgres", "postgres", "", "connect_timeout=2");
    const bool up =
        wait_until([&] { return !postmaster_.running() || PQping(ping.c_str()) == PQPING_OK; },
                   options_.start_timeout, 50ms);
    if (up && postmaster_.running()) return;
    const std::string why = log_tail();
    postmaster_.kill_and_wait();
    if (attempt < 5 && contains(why, "already in use")) continue;
    throw std::runtime_error("PostgreSQL did not start on port " + std::to_string(port_) +
                             (up ? " (it exited)" : " (timed out)") + "; log tail:\n" + why);
  }
}

void PgCluster::create_roles() {
  const PgConn c = connect();
  if (!c.ok()) throw std::runtime_error("cannot connect to the new cluster: " + c.error_message());
  for (const TestRole& role : kTestRoles) {
    if (role.password == nullptr) continue;
    const std::string enc = std::string(role.method) == "md5" ? "md5" : "scram-sha-256";
    c.exec_ok("SET password_encryption = '" + enc + "'");
    c.exec_ok("CREATE ROLE " + std::string(role.name) + " LOGIN PASSWORD '" + role.password + "'");
    c.exec_ok("GRANT CREATE ON SCHEMA public TO " + std::string(role.name));
  }
  const std::string md5_hash = c.scalar("SELECT rolpassword FROM pg_authid WHERE rolname = '" +
                                        std::string(kMd5Role.name) + "'");
  if (!md5_hash.starts_with("md5")) throw std::runtime_error("u_md5 has no md5 password hash");
  for (const auto& sql : options_.setup_sql) c.exec_ok(sql);
}

std::string PgCluster::conninfo(const std::string& db, const std::string& user,
                                const std::string& password, const std::string& extra) const {
  std::vector<std::pair<std::string, std::string>> kv = {
      {"host", "127.0.0.1"}, {"port", std::to_string(port_)}, {"dbname", db}, {"user", user}};
  if (!password.empty()) kv.emplace_back("password", password);
  const std::string base = make_conninfo(kv);
  return extra.empty() ? base : base + " " + extra;
}

std::string PgCluster::unix_conninfo(const std::string& db, const std::string& user,
                                     const std::string& password, const std::string& extra) const {
  std::vector<std::pair<std::string, std::string>> kv = {
      {"host", socket_dir()}, {"port", std::to_string(port_)}, {"dbname", db}, {"user", user}};
  if (!password.empty()) kv.emplace_back("password", password);
  const std::string base = make_conninfo(kv);
  return extra.empty() ? base : base + " " + extra;
}

PgConn PgCluster::connect(const std::string& db, const std::string& user,
                          const std::string& password) const {
  return PgConn::connect(conninfo(db, user, password));
}

std::string PgCluster::psql(const std::string& sql, const std::string& db) const {
  return run_checked({pg_tool("psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                      conninfo(db), "-c", sql})
      .out;
}

std::string PgCluster::log() const {
  return read_file(dir_ / "postgres.log");
}
std::string PgCluster::log_tail(size_t lines) const {
  return tail_lines(log(), lines);
}

bool PgCluster::running() {
  return postmaster_.running();
}

void PgCluster::stop() noexcept {
  try {
    if (postmaster_.running()) {
      const RunResult r =
          run({pg_tool("pg_ctl"), "stop", "-D", data_dir(), "-m", "immediate", "-w", "-t", "30"},
              {.as_postgres_user = true, .timeout = 40s});
      (void)r;
      postmaster_.wait(10s);
    }
  } catch (...) {
  }
  postmaster_.kill_and_wait();
}

}  // namespace pgphase::it
