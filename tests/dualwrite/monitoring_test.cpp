// conf/prometheus/pgphase-rules.yml and conf/grafana/pgphase-dashboard.json name only metrics
// pgphase exports: a real pgphase with a migration that has dual-written, backfilled, been
// validated and switched reads is scraped, and every pgphase_* name in both files must be a
// family of its /metrics (a histogram's _bucket/_sum/_count by its family). The rules' syntax is
// checked by `promtool check rules` (ctest conf_prometheus_rules, Debian package prometheus).
#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "oracle.h"

using namespace pgphase;
using namespace pgphase::dw;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::set<std::string> metric_names(const std::string& text) {
  std::set<std::string> out;
  const std::regex name("pgphase_[a-z_]+");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator();
       ++it)
    out.insert(it->str());
  return out;
}

}  // namespace

TEST_CASE("every metric the dashboard and the alerting rules name is one pgphase exports") {
  Env& e = env();
  // Dual writes of users_mig, through pgphase.
  it::PgConn app = e.proxied();
  for (int i = 0; i < 5; ++i) app.exec_ok("INSERT INTO users (name) VALUES ('monitored')");

  // A second migration that backfills, is validated and switches half its reads.
  e.direct.exec_ok(
      "CREATE TABLE mon_t (id int PRIMARY KEY, v text);"
      "CREATE TABLE t_sys_mon_t (id int PRIMARY KEY, v text);"
      "INSERT INTO mon_t SELECT g, 'v' || g FROM generate_series(1, 300) g");
  register_migration(e.stack.api, "mon_mig", "mon_t", "t_sys_mon_t");
  set_phase(e.stack.api, "mon_mig", "dual_write");
  REQUIRE(
      e.stack.api.post("/api/v1/migrations/mon_mig/backfill", R"({"batch_size": 100})").status ==
      200);
  REQUIRE(
      ctl::time_until([&] { return e.direct.scalar("SELECT count(*) FROM t_sys_mon_t") == "300"; },
                      std::chrono::seconds(30), std::chrono::milliseconds(100)));
  REQUIRE(e.stack.api.post("/api/v1/validations", R"({"migration_id": "mon_mig"})").status == 202);
  REQUIRE(ctl::time_until(
      [&] {
        return e.direct.scalar(
                   "SELECT count(*) FROM t_sys_consistency_checks WHERE migration_id = "
                   "'mon_mig'") != "0";
      },
      std::chrono::seconds(30), std::chrono::milliseconds(100)));
  advance_to(e.stack.api, "mon_mig", "read_switch");
  switch_reads(e, "mon_sw", "mon_t", "mon_mig", 50);
  for (int i = 0; i < 40; ++i)
    app.exec_ok("SELECT v FROM mon_t WHERE id = " + std::to_string(i + 1));

  // A write pgphase refuses, a read that stays on the source, and an alert rule evaluated.
  CHECK(app.exec("ALTER TABLE mon_t ADD COLUMN z int").sqlstate() == "0A000");
  app.exec_ok("SELECT mon_t FROM mon_t WHERE id = 1");  // a row-type use: not routable
  const it::HttpResponse rule =
      e.stack.api.post("/api/v1/alert-rules",
                       R"({"rule_id": "mon_rule", "rule_name": "monitored", "alert_type": "custom",
          "severity": "warning", "condition": "SELECT 0", "threshold": 1, "duration": 0})");
  INFO(describe(rule));
  REQUIRE((rule.status == 201 || rule.status == 200));
  it::Metrics m;
  REQUIRE(ctl::time_until(
      [&] {
        m = it::scrape_metrics(e.stack.proxy->admin_port());
        return m.types.count("pgphase_alert_evaluations_total") == 1 &&
               m.types.count("pgphase_read_unroutable_total") == 1;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(200)));
  CHECK(m.value("pgphase_consistency_score", {{"migration_id", "mon_mig"}}) == 1.0);
  CHECK(m.get("pgphase_migration_log_entries",
              {{"migration_id", "mon_mig"}, {"status", "success"}}) > 0);
  CHECK(m.get("pgphase_read_switch_statements_total", {{"config_id", "mon_sw"}}) >= 40);
  // The dashboard is JSON Grafana imports: panels, each with at least one query.
  const json::value dashboard = json::parse(
      read_file(std::string(PGPHASE_SOURCE_DIR) + "/conf/grafana/pgphase-dashboard.json"));
  const json::array& panels = dashboard.at("panels").as_array();
  CHECK(panels.size() >= 12);
  for (const auto& p : panels) CHECK(!p.at("targets").as_array().empty());
  for (const char* file :
       {"/conf/prometheus/pgphase-rules.yml", "/conf/grafana/pgphase-dashboard.json"}) {
    const std::set<std::string> names =
        metric_names(read_file(std::string(PGPHASE_SOURCE_DIR) + file));
    CHECK(names.size() >= 8);
    for (const std::string& n : names) {
      std::string family = n;
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s(suffix);
        if (m.types.count(family) == 0 && family.size() > s.size() &&
            family.compare(family.size() - s.size(), s.size(), s) == 0)
          family = family.substr(0, family.size() - s.size());
      }
      INFO(file << ": " << n);
      CHECK(m.types.count(family) == 1);
    }
  }
}
