#include "ctl_env.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <stdexcept>

namespace pgphase::ctl {
namespace {

it::TempDir& scratch() {
  static it::TempDir dir("ctl");
  return dir;
}

std::string unique_name(const std::string& prefix) {
  static int n = 0;
  return prefix + std::to_string(++n);
}

std::string sql_literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// A value for a NOT NULL column without default that insert_check() does not know about.
std::string filler(const std::string& type) {
  if (type == "boolean") return "true";
  if (type == "jsonb" || type == "json") return "'{}'";
  if (type.find("int") != std::string::npos || type == "numeric" || type == "real" ||
      type == "double precision") {
    return "0";
  }
  if (type.find("timestamp") != std::string::npos) return "now()";
  if (type == "ARRAY") return "'{}'";
  return "'" + unique_name("control-test-") + "'";  // unique: it may be a key
}

}  // namespace

std::unique_ptr<it::PgCluster> start_cluster(std::vector<std::string> setup_sql) {
  it::PgClusterOptions o;
  o.log_connections = false;
  o.setup_sql = std::move(setup_sql);
  o.setup_sql.insert(o.setup_sql.begin(), std::string("CREATE DATABASE ") + kControlDb);
  return it::PgCluster::start(o);
}

std::string control_dsn(const it::PgCluster& pg) {
  return pg.conninfo(kControlDb, "postgres", "", "connect_timeout=3");
}

it::PgConn control_conn(const it::PgCluster& pg) {
  it::PgConn c = it::PgConn::connect(pg.conninfo(kControlDb));
  INFO("control database: " << c.error_message());
  REQUIRE(c.ok());
  return c;
}

std::unique_ptr<it::ProxyProcess> start_pgphase(const ServeOptions& o) {
  it::ProxyOptions p;
  p.backend = o.backend;
  p.ready_timeout = 30s;
  if (!o.control_dsn.empty()) p.extra_args = {"--control-dsn", o.control_dsn};
  for (const auto& f : o.config_files) {
    p.extra_args.emplace_back("--config-file");
    p.extra_args.push_back(f);
  }
  p.extra_args.insert(p.extra_args.end(), o.extra_args.begin(), o.extra_args.end());
  if (!o.config_json.empty()) {
    p.config_file = (scratch() / (unique_name("pgphase-") + ".json")).string();
    it::write_file(p.config_file, o.config_json);
  }
  // The child inherits this process's environment at fork (the harness keeps PGPHASE_*).
  if (o.token) {
    setenv(kTokenEnv, kToken, 1);
  } else {
    unsetenv(kTokenEnv);
  }
  std::unique_ptr<it::ProxyProcess> proc;
  try {
    proc = std::make_unique<it::ProxyProcess>(p);
  } catch (...) {
    setenv(kTokenEnv, kToken, 1);
    throw;
  }
  setenv(kTokenEnv, kToken, 1);
  return proc;
}

ServeOptions serve_on(const it::PgCluster& pg) {
  ServeOptions o;
  o.backend = pg.tcp_endpoint();
  o.control_dsn = control_dsn(pg);
  return o;
}

void stop_pgphase(it::ProxyProcess& p) {
  p.terminate();
  const auto code = p.wait_exit(20s);
  INFO("pgphase stderr:\n" << p.stderr_tail());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
}

Api api_for(const it::ProxyProcess& p) {
  return Api{p.admin_port(), kToken, "tester"};
}

ClusterRestarter::~ClusterRestarter() {
  if (!started_) return;
  const it::RunResult r = it::run(
      {it::pg_tool("pg_ctl"), "stop", "-D", pg_.data_dir(), "-m", "immediate", "-w", "-t", "30"},
      {.as_postgres_user = true, .timeout = 40s});
  (void)r;
}

void ClusterRestarter::stop() {
  it::run_checked(
      {it::pg_tool("pg_ctl"), "stop", "-D", pg_.data_dir(), "-m", "fast", "-w", "-t", "30"},
      {.as_postgres_user = true, .timeout = 40s});
  // The harness's own postmaster child: reap it, so that PgCluster no longer stops it.
  it::wait_until([&] { return !pg_.running(); }, 10s);
  started_ = false;
}

void ClusterRestarter::start() {
  it::run_checked({it::pg_tool("pg_ctl"), "start", "-D", pg_.data_dir(), "-w", "-t", "60", "-l",
                   pg_.socket_dir() + "/restarted.log", "-o", "-p " + std::to_string(pg_.port())},
                  {.as_postgres_user = true, .timeout = 70s});
  started_ = true;
  const std::string ping = pg_.conninfo("postgres", "postgres", "", "connect_timeout=2");
  if (!it::wait_until([&] { return PQping(ping.c_str()) == PQPING_OK; }, 30s, 50ms)) {
    throw std::runtime_error("restarted PostgreSQL does not answer; log:\n" + log());
  }
}

std::string ClusterRestarter::log() const {
  return it::tail_lines(it::read_file(pg_.socket_dir() + "/restarted.log"));
}

void insert_check(const it::PgConn& control, const std::string& migration_id, double score,
                  int age_seconds) {
  // The table's columns are pgphase's business; fill what must be filled.
  const it::PgResult cols = control.exec(
      "SELECT column_name, data_type, is_nullable = 'NO' AND column_default IS NULL "
      "FROM information_schema.columns WHERE table_name = 't_sys_consistency_checks' "
      "ORDER BY ordinal_position");
  INFO(cols.describe());
  REQUIRE(cols.ok());
  REQUIRE(cols.rows() > 0);
  std::vector<std::string> names;
  std::vector<std::string> values;
  bool have_score = false;
  for (int i = 0; i < cols.rows(); ++i) {
    const std::string name = cols.value(i, 0);
    const std::string type = cols.value(i, 1);
    if (name == "migration_id") {
      values.push_back(sql_literal(migration_id));
    } else if (name == "consistency_score" || (name == "score" && !have_score)) {
      values.push_back(std::to_string(score));
      have_score = true;
    } else if (name == "source_table" || name == "target_table") {
      values.push_back("(SELECT " + name + " FROM t_sys_migrations WHERE migration_id = " +
                       sql_literal(migration_id) + ")");
    } else if (name == "created_at") {
      values.push_back("now() - interval '" + std::to_string(age_seconds) + " seconds'");
    } else if (cols.value(i, 2) == "t") {
      values.push_back(filler(type));
    } else {
      continue;
    }
    names.push_back(name);
  }
  REQUIRE(have_score);
  std::string sql = "INSERT INTO t_sys_consistency_checks (";
  for (size_t i = 0; i < names.size(); ++i) sql += (i ? ", " : "") + names[i];
  sql += ") VALUES (";
  for (size_t i = 0; i < values.size(); ++i) sql += (i ? ", " : "") + values[i];
  sql += ")";
  const it::PgResult r = control.exec(sql);
  INFO(sql << "\n" << r.describe());
  REQUIRE(r.ok());
}

std::optional<std::string> metric_phase(const it::Metrics& m, const std::string& migration_id) {
  for (const auto& s : m.all("pgphase_migration_phase")) {
    const auto id = s.labels.find("migration_id");
    if (id == s.labels.end() || id->second != migration_id) continue;
    const auto phase = s.labels.find("phase");
    if (phase != s.labels.end()) {
      if (s.value == 1) return phase->second;
      continue;
    }
    const auto index = static_cast<size_t>(s.value);
    if (s.value >= 0 && static_cast<double>(index) == s.value && index < kPhases.size()) {
      return kPhases[index];
    }
  }
  return std::nullopt;
}

it::RunResult cli(const std::vector<std::string>& args, const std::vector<std::string>& env,
                  const std::vector<std::string>& unset) {
  setenv(kTokenEnv, kToken, 1);
  std::vector<std::string> argv;
  if (!unset.empty()) {
    argv.emplace_back("env");
    for (const auto& name : unset) {
      argv.emplace_back("-u");
      argv.push_back(name);
    }
  }
  argv.push_back(it::ProxyProcess::binary());
  argv.insert(argv.end(), args.begin(), args.end());
  return it::run(argv, {.env = env, .timeout = 30s});
}

std::optional<double> time_until(const std::function<bool()>& pred,
                                 std::chrono::milliseconds timeout,
                                 std::chrono::milliseconds interval) {
  const auto start = it::Clock::now();
  if (!it::wait_until(pred, timeout, interval)) return std::nullopt;
  return it::elapsed_ms(start);
}

std::vector<json::object> api_logs(const Api& api, const std::string& id) {
  const it::HttpResponse r = api.get("/api/v1/migrations/" + id);
  INFO(describe(r));
  REQUIRE(r.status == 200);
  std::vector<json::object> out;
  const json::object m = body_object(r);
  for (const auto& v : arr(m, "logs")) out.push_back(v.as_object());
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return num(a, "id") < num(b, "id"); });
  return out;
}

json::object get_migration(const Api& api, const std::string& id) {
  const it::HttpResponse r = api.get("/api/v1/migrations/" + id);
  INFO(describe(r));
  REQUIRE(r.status == 200);
  return body_object(r);
}

json::object get_switch(const Api& api, const std::string& id) {
  const it::HttpResponse r = api.get("/api/v1/switches/" + id);
  INFO(describe(r));
  REQUIRE(r.status == 200);
  return body_object(r);
}

}  // namespace pgphase::ctl

namespace pgphase::ctl {

Stack& shared_stack() {
  static Stack s = [] {
    Stack st;
    st.pg = start_cluster();
    st.proxy = start_pgphase(serve_on(*st.pg));
    st.api = api_for(*st.proxy);
    return st;
  }();
  return s;
}

json::object register_migration(const Api& api, const std::string& id, const std::string& source,
                                const std::string& target, const json::object& extra) {
  json::object body{{"migration_id", id}, {"source_table", source}, {"target_table", target}};
  for (const auto& [k, v] : extra) body[k] = v;
  const it::HttpResponse r = api.post("/api/v1/migrations", json::serialize(body));
  INFO("register " << json::serialize(body) << " -> " << describe(r));
  REQUIRE(r.status == 201);
  return body_object(r);
}

json::object register_switch(const Api& api, const std::string& id, const std::string& table,
                             const std::string& migration_id, const json::object& extra) {
  json::object body{{"config_id", id},
                    {"table_name", table},
                    {"migration_id", migration_id},
                    {"current_source", "source"},
                    {"target_source", "target"},
                    {"strategy", "gradual"},
                    {"switch_percentage", 0.0},
                    {"conditions", json::object{{"consistency_threshold", 0.99}}},
                    {"rollback_enabled", true},
                    {"auto_rollback_threshold", 0.05},
                    {"status", "inactive"}};
  for (const auto& [k, v] : extra) body[k] = v;
  const it::HttpResponse r = api.post("/api/v1/switches", json::serialize(body));
  INFO("register " << json::serialize(body) << " -> " << describe(r));
  REQUIRE(r.status == 201);
  return body_object(r);
}

json::object set_phase(const Api& api, const std::string& id, const std::string& phase,
                       bool force) {
  const json::object body{{"phase", phase}, {"force", force}};
  const it::HttpResponse r = api.post("/api/v1/migrations/" + id + "/phase", json::serialize(body));
  INFO(id << " -> " << phase << (force ? " (force)" : "") << ": " << describe(r));
  REQUIRE(r.status == 200);
  json::object m = body_object(r);
  CHECK(str(m, "phase") == phase);
  return m;
}

void advance_to(const Api& api, const std::string& id, const std::string& phase) {
  const auto target = std::find(kPhases.begin(), kPhases.end(), phase);
  REQUIRE(target != kPhases.end());
  std::string current = str(get_migration(api, id), "phase");
  while (current != phase) {
    const auto at = std::find(kPhases.begin(), kPhases.end(), current);
    REQUIRE(at < target);
    current = *(at + 1);
    (void)set_phase(api, id, current, true);
  }
}

json::object set_percentage(const Api& api, const std::string& id, double percentage,
                            const std::string& reason) {
  const json::object body{{"percentage", percentage}, {"reason", reason}};
  const it::HttpResponse r =
      api.post("/api/v1/switches/" + id + "/percentage", json::serialize(body));
  INFO(id << " -> " << percentage << "%: " << describe(r));
  REQUIRE(r.status == 200);
  json::object s = body_object(r);
  CHECK(num(s, "switch_percentage") == Approx(percentage));
  return s;
}

}  // namespace pgphase::ctl
