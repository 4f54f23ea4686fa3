// The `pgphase migration|switch ...` CLI against a running pgphase: register (flags and the
// manual's JSON), list, status (human and --json), set-phase, enable/disable-dual-write,
// rollback, the switch commands, the manual's --action form, and the exit codes
// (0 done, 1 refused with a one-line reason, 2 usage, 3 admin API unreachable).
#include <catch2/catch.hpp>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

std::string admin_url(const it::ProxyProcess& p) {
  return "http://127.0.0.1:" + std::to_string(p.admin_port());
}

std::vector<std::string> with_url(std::vector<std::string> args) {
  args.emplace_back("--admin-url");
  args.push_back(admin_url(*shared_stack().proxy));
  return args;
}

it::RunResult ok(const std::vector<std::string>& args) {
  const it::RunResult r = cli(with_url(args));
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  return r;
}

// Exit 1 with one non-empty line on stderr; returns that line.
std::string refused(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                    const std::vector<std::string>& unset = {}) {
  const it::RunResult r = cli(with_url(args), env, unset);
  INFO(r.describe());
  CHECK(r.exit_code == 1);
  const std::string line = it::trim(r.err);
  CHECK_FALSE(line.empty());
  CHECK(line.find('\n') == std::string::npos);
  return line;
}

json::object status_json(const std::string& id) {
  const it::RunResult r = ok({"migration", "status", "--migration-id", id, "--json"});
  const json::value v = parse_json(r.out);
  REQUIRE(v.is_object());
  return v.as_object();
}

std::string write_json(const std::string& name, const std::string& content) {
  static it::TempDir dir("ctl-cli");
  const std::string path = (dir / name).string();
  it::write_file(path, content);
  return path;
}

}  // namespace

TEST_CASE("migration commands: register, list, status, set-phase, dual write, rollback") {
  const Api api = shared_stack().api;
  ok({"migration", "register", "--migration-id", "cli_flags", "--source-table", "cli_src",
      "--target-table", "t_sys_cli_src", "--user", "alice"});
  const std::string file = write_json("migrations.json", R"({"migrations": [{
      "migration_id": "cli_file", "source_table": "cli_file_src", "target_table": "t_sys_cli_file",
      "phase": "preparation", "consistency_level": "strict", "dual_write_enabled": false,
      "read_from_target": false, "validation_enabled": true, "auto_switch_threshold": 0.97,
      "rollback_enabled": true}]})");
  ok({"migration", "register", "--config-file", file});
  CHECK(num(get_migration(api, "cli_file"), "auto_switch_threshold") == Approx(0.97));
  CHECK(str(get_migration(api, "cli_flags"), "target_table") == "t_sys_cli_src");
  CHECK(str(api_logs(api, "cli_flags").front(), "actor") == "alice");

  const it::RunResult list = ok({"migration", "list"});
  CHECK(it::contains(list.out, "cli_flags"));
  CHECK(it::contains(list.out, "cli_file"));
  const json::value list_json = parse_json(ok({"migration", "list", "--json"}).out);
  CHECK(it::contains(json::serialize(list_json), "cli_file"));

  const it::RunResult human = ok({"migration", "status", "--migration-id", "cli_flags"});
  CHECK(it::contains(human.out, "cli_flags"));
  CHECK(it::contains(human.out, "preparation"));
  json::object st = status_json("cli_flags");
  CHECK(str(st, "migration_id") == "cli_flags");
  CHECK(str(st, "phase") == "preparation");
  CHECK(str(st, "source_table") == "cli_src");

  // The manual's form.
  const it::RunResult manual =
      ok({"migration", "--action", "status", "--migration-id", "cli_flags"});
  CHECK(it::contains(manual.out, "cli_flags"));
  CHECK(it::contains(manual.out, "preparation"));

  ok({"migration", "enable-dual-write", "--migration-id", "cli_flags", "--user", "bob"});
  st = status_json("cli_flags");
  CHECK(str(st, "phase") == "dual_write");
  CHECK(flag(st, "dual_write_enabled"));
  CHECK(str(api_logs(api, "cli_flags").back(), "actor") == "bob");

  CHECK(it::icontains(refused({"migration", "disable-dual-write", "--migration-id", "cli_flags"}),
                      "force"));
  CHECK(flag(status_json("cli_flags"), "dual_write_enabled"));

  CHECK(it::contains(
      refused({"migration", "set-phase", "--migration-id", "cli_file", "--phase", "validation"}),
      "dual_write"));
  CHECK(str(status_json("cli_file"), "phase") == "preparation");
  refused({"migration", "set-phase", "--migration-id", "cli_file", "--phase", "warp_speed"});
  CHECK(it::contains(refused({"migration", "status", "--migration-id", "cli_nope"}), "cli_nope"));

  ok({"migration", "set-phase", "--migration-id", "cli_flags", "--phase", "validation"});
  CHECK(str(status_json("cli_flags"), "phase") == "validation");
  ok({"migration", "rollback", "--migration-id", "cli_flags", "--reason", "cli drill"});
  st = status_json("cli_flags");
  CHECK(str(st, "phase") == "preparation");
  CHECK_FALSE(flag(st, "dual_write_enabled"));
  const auto logs = api_logs(api, "cli_flags");
  CHECK(str(logs.back(), "from") == "validation");
  CHECK(it::contains(str(logs.back(), "message"), "cli drill"));

  ok({"migration", "set-phase", "--migration-id", "cli_file", "--phase", "dual_write"});
  ok({"migration", "disable-dual-write", "--migration-id", "cli_file", "--force"});
  CHECK_FALSE(flag(status_json("cli_file"), "dual_write_enabled"));
}

TEST_CASE("switch commands: register, list, activate, update-percentage, analytics, rollback") {
  const Api api = shared_stack().api;
  (void)register_migration(api, "cli_sw_mig", "cli_sw_tab", "t_sys_cli_sw_tab");
  advance_to(api, "cli_sw_mig", "read_switch");
  const std::string file = write_json("switches.json", R"({"switch_configs": [{
      "config_id": "cli_sw", "table_name": "cli_sw_tab", "migration_id": "cli_sw_mig",
      "current_source": "source", "target_source": "target", "strategy": "gradual",
      "switch_percentage": 0.0, "conditions": {"consistency_threshold": 0.99,
      "error_rate_threshold": 0.01, "latency_threshold": 100}, "rollback_enabled": true,
      "auto_rollback_threshold": 0.05, "status": "inactive"}]})");
  ok({"switch", "register", "--config-file", file});
  CHECK(str(get_switch(api, "cli_sw"), "table_name") == "cli_sw_tab");
  CHECK(it::contains(ok({"switch", "list"}).out, "cli_sw"));

  ok({"switch", "--action", "activate", "--config-id", "cli_sw"});
  CHECK(str(get_switch(api, "cli_sw"), "status") == "active");
  ok({"switch", "update-percentage", "--config-id", "cli_sw", "--percentage", "25.0", "--user",
      "alice", "--reason", "first quarter"});
  ok({"switch", "update-percentage", "--config-id", "cli_sw", "--percentage", "50", "--user",
      "bob"});
  CHECK(num(get_switch(api, "cli_sw"), "switch_percentage") == 50);
  CHECK(it::contains(
      refused({"switch", "update-percentage", "--config-id", "cli_sw", "--percentage", "101"}),
      "percentage"));
  CHECK(num(get_switch(api, "cli_sw"), "switch_percentage") == 50);

  const it::RunResult analytics = ok({"switch", "analytics", "--config-id", "cli_sw"});
  CHECK(it::contains(analytics.out, "25"));
  CHECK(it::contains(analytics.out, "50"));
  CHECK(it::contains(analytics.out, "alice"));
  CHECK(it::contains(analytics.out, "bob"));
  const json::value a =
      parse_json(ok({"switch", "analytics", "--config-id", "cli_sw", "--json"}).out);
  const json::array& history = a.at("percentage_history").as_array();
  REQUIRE(history.size() == 2);
  bool alice_25 = false;
  for (const auto& h : history) {
    const json::object& e = h.as_object();
    alice_25 = alice_25 || (num(e, "to") == 25 && str(e, "actor") == "alice" &&
                            str(e, "reason") == "first quarter");
  }
  CHECK(alice_25);

  ok({"switch", "rollback", "--config-id", "cli_sw", "--reason", "latency"});
  const json::object s = get_switch(api, "cli_sw");
  CHECK(str(s, "status") == "rolled_back");
  CHECK(num(s, "switch_percentage") == 0);
}

TEST_CASE("CLI auth and exit codes: missing/wrong token 1, unreachable 3, usage 2") {
  const Api api = shared_stack().api;
  (void)register_migration(api, "cli_auth", "cli_auth_src", "t_sys_cli_auth");
  const std::vector<std::string> set_phase_args = {"migration", "set-phase", "--migration-id",
                                                   "cli_auth",  "--phase",   "dual_write"};
  const std::string no_token = refused(set_phase_args, {}, {kTokenEnv});
  CHECK((it::icontains(no_token, "token") || it::contains(no_token, "401")));
  const std::string wrong = refused(set_phase_args, {std::string(kTokenEnv) + "=wrong"});
  CHECK((it::icontains(wrong, "token") || it::contains(wrong, "401")));
  CHECK(str(get_migration(api, "cli_auth"), "phase") == "preparation");

  // Reading needs no token.
  const it::RunResult read =
      cli(with_url({"migration", "status", "--migration-id", "cli_auth"}), {}, {kTokenEnv});
  INFO(read.describe());
  CHECK(read.exit_code == 0);
  CHECK(it::contains(read.out, "cli_auth"));

  // $PGPHASE_ADMIN_URL instead of --admin-url.
  const it::RunResult env_url =
      cli({"migration", "list"}, {"PGPHASE_ADMIN_URL=" + admin_url(*shared_stack().proxy)});
  INFO(env_url.describe());
  CHECK(env_url.exit_code == 0);
  CHECK(it::contains(env_url.out, "cli_auth"));

  const std::string dead = "http://127.0.0.1:" + std::to_string(it::free_port());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"migration", "list", "--admin-url", dead},
           {"migration", "status", "--migration-id", "cli_auth", "--admin-url", dead},
           {"switch", "activate", "--config-id", "x", "--admin-url", dead}}) {
    const it::RunResult r = cli(args);
    INFO(r.describe());
    CHECK(r.exit_code == 3);
    CHECK_FALSE(it::trim(r.err).empty());
  }
  const it::RunResult dead_env = cli({"migration", "list"}, {"PGPHASE_ADMIN_URL=" + dead});
  INFO(dead_env.describe());
  CHECK(dead_env.exit_code == 3);

  for (const auto& args : std::vector<std::vector<std::string>>{
           {"migration"},
           {"migration", "frobnicate"},
           {"migration", "status"},
           {"migration", "set-phase", "--migration-id", "cli_auth"},
           {"migration", "list", "--no-such-flag"},
           {"switch", "update-percentage", "--config-id", "x", "--percentage", "abc"},
           {"switch", "update-percentage", "--config-id", "x"},
           {"switch", "--action", "explode", "--config-id", "x"}}) {
    const it::RunResult r = cli(with_url(args));
    INFO(r.describe());
    CHECK(r.exit_code == 2);
    CHECK_FALSE(it::trim(r.err).empty());
  }
  CHECK(str(get_migration(api, "cli_auth"), "phase") == "preparation");

  const it::RunResult help = cli({"migration", "--help"});
  INFO(help.describe());
  CHECK(help.exit_code == 0);
  CHECK(it::contains(help.out, "set-phase"));
}

TEST_CASE("the manual's command lines and URL forms users type") {
  const Stack& s = shared_stack();
  (void)register_migration(s.api, "cli_manual", "cli_manual_src", "t_sys_cli_manual");
  const std::string url = admin_url(*s.proxy);
  // As in the manual, with its --db-url (which the CLI does not need).
  const it::RunResult manual =
      cli({"migration", "--db-url", "postgresql://user:password@localhost:5432/database",
           "--action", "status", "--migration-id", "cli_manual", "--admin-url", url});
  INFO(manual.describe());
  CHECK(manual.exit_code == 0);
  CHECK(it::contains(manual.out, "cli_manual"));
  CHECK_FALSE(it::contains(manual.err, "password@"));  // never echo credentials
  const it::RunResult slash = cli({"migration", "list", "--admin-url", url + "/"});
  INFO(slash.describe());
  CHECK(slash.exit_code == 0);
  CHECK(it::contains(slash.out, "cli_manual"));

  const it::RunResult unresolvable =
      cli({"migration", "list", "--admin-url", "http://no-such-host.invalid:8432"});
  INFO(unresolvable.describe());
  CHECK(unresolvable.exit_code == 3);
  // Not an HTTP server at all (PostgreSQL's port): a prompt failure, not a hang or a crash.
  const auto start = it::Clock::now();
  const it::RunResult not_http =
      cli({"migration", "list", "--admin-url", "http://127.0.0.1:" + std::to_string(s.pg->port())});
  INFO(not_http.describe());
  CHECK_FALSE(not_http.timed_out);
  CHECK((not_http.exit_code == 1 || not_http.exit_code == 3));
  CHECK_FALSE(it::trim(not_http.err).empty());
  CHECK(it::elapsed_ms(start) < 10000);
}
