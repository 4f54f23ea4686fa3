// The serve options of docs/control-plane.md beyond --control-dsn: $PGPHASE_CONTROL_DSN, the
// config keys control_dsn, control_dsn_env, config_files and admin_token_env.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

// Sets an environment variable of this process (inherited by pgphase) for a scope.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { unsetenv(name_.c_str()); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
};

// The control plane of `p` works: a registration through it lands in the control database.
void expect_control_plane(const it::ProxyProcess& p, const it::PgCluster& pg,
                          const std::string& id) {
  (void)register_migration(api_for(p), id, id + "_src", "t_sys_" + id);
  CHECK(control_conn(pg).scalar("SELECT count(*) FROM t_sys_migrations WHERE migration_id = '" +
                                id + "'") == "1");
}

}  // namespace

TEST_CASE("the control database from $PGPHASE_CONTROL_DSN, control_dsn and control_dsn_env") {
  const auto pg = start_cluster();
  ServeOptions o;
  o.backend = pg->tcp_endpoint();
  {
    const ScopedEnv dsn("PGPHASE_CONTROL_DSN", control_dsn(*pg));
    const auto p = start_pgphase(o);
    expect_control_plane(*p, *pg, "from_env_default");
  }
  {
    json::object conf{{"control_dsn", control_dsn(*pg)}};
    o.config_json = json::serialize(conf);
    const auto p = start_pgphase(o);
    expect_control_plane(*p, *pg, "from_config_key");
  }
  {
    const ScopedEnv dsn("CTL_TEST_CONTROL_DSN", control_dsn(*pg));
    o.config_json = R"({"control_dsn_env": "CTL_TEST_CONTROL_DSN"})";
    const auto p = start_pgphase(o);
    expect_control_plane(*p, *pg, "from_named_env");
    const std::string log = p->stderr_text();
    CHECK_FALSE(it::contains(log, control_dsn(*pg)));  // the conninfo is never logged
  }
}

TEST_CASE("config_files in the config file load the manual's files") {
  const auto pg = start_cluster();
  ServeOptions o = serve_on(*pg);
  const std::string conf = std::string(PGPHASE_SOURCE_DIR) + "/conf/";
  o.config_json =
      json::serialize(json::object{{"config_files", json::array{conf + "migration_configs.json",
                                                                conf + "read_switch_configs.json",
                                                                conf + "alerting_config.json"}}});
  const auto p = start_pgphase(o);
  const Api api = api_for(*p);
  CHECK(str(get_migration(api, "users_table_migration"), "target_table") == "t_sys_users");
  CHECK(str(get_switch(api, "users_gradual_switch"), "strategy") == "gradual");
}

TEST_CASE("admin_token_env names the variable holding the token") {
  const auto pg = start_cluster();
  const ScopedEnv token("CTL_TEST_OTHER_TOKEN", "another-secret-token");
  ServeOptions o = serve_on(*pg);
  o.config_json = R"({"admin_token_env": "CTL_TEST_OTHER_TOKEN"})";
  const auto p = start_pgphase(o);  // PGPHASE_ADMIN_TOKEN is set too, but not the one in use
  const Api with_default = api_for(*p);
  const std::string body =
      R"({"migration_id": "tok_mig", "source_table": "tok", "target_table": "t_sys_tok"})";
  expect_error(with_default.post("/api/v1/migrations", body), 401);
  const it::HttpResponse r =
      with_default.with_token("another-secret-token").post("/api/v1/migrations", body);
  INFO(describe(r));
  CHECK(r.status == 201);
}
