// Two pgphase processes on one control database: a change made through A is visible in B's API
// and in B's /metrics within one second (NOTIFY pgphase_state, not the periodic reload, which
// is set to a minute here), for phase changes, switch percentage changes and a switch rollback.
// Also: concurrent changes through both (one winner, no lost update), the periodic reload as a
// safety net, and the NOTIFY channel itself.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

constexpr auto kDeadline = 3000ms;  // polling gives up here; the assertion is < 1000 ms
constexpr double kMaxMs = 1000;

// A config that makes the periodic reload irrelevant within the test's deadlines.
ServeOptions slow_reload(const it::PgCluster& pg) {
  ServeOptions o = serve_on(pg);
  o.config_json = R"({"state_reload_interval_ms": 60000})";
  return o;
}

std::string phase_in(const Api& api, const std::string& id) {
  const it::HttpResponse r = api.get("/api/v1/migrations/" + id);
  return r.status == 200 ? str(body_object(r), "phase") : "";
}

void expect_phase_visible(const Api& b, uint16_t b_admin, const std::string& id,
                          const std::string& phase, it::Clock::time_point changed) {
  INFO("B sees " << id << " in " << phase);
  const auto api_ms = time_until([&] { return phase_in(b, id) == phase; }, kDeadline);
  REQUIRE(api_ms.has_value());
  const double api_total = it::elapsed_ms(changed);
  const auto metric_ms =
      time_until([&] { return metric_phase(it::scrape_metrics(b_admin), id) == phase; }, kDeadline);
  REQUIRE(metric_ms.has_value());
  const double metric_total = it::elapsed_ms(changed);
  INFO("API after " << api_total << " ms, metrics after " << metric_total << " ms");
  CHECK(api_total < kMaxMs);
  CHECK(metric_total < kMaxMs);
  WARN("phase " << phase << " visible in B after " << api_total << " ms (API), " << metric_total
                << " ms (metrics)");
}

void expect_switch_visible(const Api& b, const std::string& id, double percentage,
                           const std::string& status, it::Clock::time_point changed) {
  INFO("B sees " << id << " at " << percentage << "% " << status);
  const auto ms = time_until(
      [&] {
        const it::HttpResponse r = b.get("/api/v1/switches/" + id);
        if (r.status != 200) return false;
        const json::object s = body_object(r);
        return num(s, "switch_percentage") == percentage && str(s, "status") == status;
      },
      kDeadline);
  REQUIRE(ms.has_value());
  const double total = it::elapsed_ms(changed);
  CHECK(total < kMaxMs);
  WARN("switch " << percentage << "% " << status << " visible in B after " << total << " ms");
}

}  // namespace

TEST_CASE("changes through A are visible in B's API and metrics within one second") {
  const auto pg = start_cluster();
  const auto a_proc = start_pgphase(slow_reload(*pg));
  const auto b_proc = start_pgphase(slow_reload(*pg));
  const Api a = api_for(*a_proc).as("instance_a");
  const Api b = api_for(*b_proc).as("instance_b");

  (void)register_migration(a, "multi_mig", "multi", "t_sys_multi");
  auto t = it::Clock::now();
  REQUIRE(time_until([&] { return phase_in(b, "multi_mig") == "preparation"; }, kDeadline));
  CHECK(it::elapsed_ms(t) < kMaxMs);

  for (const std::string phase : {"dual_write", "validation"}) {
    (void)set_phase(a, "multi_mig", phase);
    expect_phase_visible(b, b_proc->admin_port(), "multi_mig", phase, it::Clock::now());
  }
  (void)set_phase(a, "multi_mig", "read_switch", true);
  expect_phase_visible(b, b_proc->admin_port(), "multi_mig", "read_switch", it::Clock::now());

  // The other direction: a change through B reaches A.
  (void)register_switch(b, "multi_sw", "multi", "multi_mig");
  t = it::Clock::now();
  REQUIRE(time_until([&] { return a.get("/api/v1/switches/multi_sw").status == 200; }, kDeadline));
  CHECK(it::elapsed_ms(t) < kMaxMs);
  REQUIRE(b.post("/api/v1/switches/multi_sw/activate").status == 200);
  expect_switch_visible(a, "multi_sw", 0, "active", it::Clock::now());

  for (const double pct : {25.0, 60.0, 100.0}) {
    (void)set_percentage(a, "multi_sw", pct);
    expect_switch_visible(b, "multi_sw", pct, "active", it::Clock::now());
  }
  const it::HttpResponse rb = a.post("/api/v1/switches/multi_sw/rollback", R"({"reason": "x"})");
  INFO(describe(rb));
  REQUIRE(rb.status == 200);
  expect_switch_visible(b, "multi_sw", 0, "rolled_back", it::Clock::now());

  // A migration rollback through B, seen by A.
  const it::HttpResponse mrb = b.post("/api/v1/migrations/multi_mig/rollback");
  INFO(describe(mrb));
  REQUIRE(mrb.status == 200);
  expect_phase_visible(a, a_proc->admin_port(), "multi_mig", "preparation", it::Clock::now());

  // Both wrote to the same log, each under its own actor.
  const auto logs = api_logs(b, "multi_mig");
  bool by_a = false, by_b = false;
  for (const auto& e : logs) {
    by_a = by_a || str(e, "actor") == "instance_a";
    by_b = by_b || str(e, "actor") == "instance_b";
  }
  CHECK(by_a);
  CHECK(by_b);
}

namespace {

// Runs `n` calls of `fn(i)` at once on their own threads; returns their results in order.
template <class Fn>
auto in_parallel(int n, Fn fn) {
  using R = decltype(fn(0));
  std::vector<R> out(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      try {
        out[static_cast<size_t>(i)] = fn(i);
      } catch (const std::exception&) {
        out[static_cast<size_t>(i)] = R{};
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  return out;
}

int count_status(const std::vector<it::HttpResponse>& rs, int status) {
  return static_cast<int>(
      std::count_if(rs.begin(), rs.end(), [&](const auto& r) { return r.status == status; }));
}

std::string statuses(const std::vector<it::HttpResponse>& rs) {
  std::string out;
  for (const auto& r : rs) out += describe(r) + "\n";
  return out;
}

}  // namespace

TEST_CASE("concurrent changes through A and B: one winner, consistent history") {
  const auto pg = start_cluster();
  const auto a_proc = start_pgphase(serve_on(*pg));
  const auto b_proc = start_pgphase(serve_on(*pg));
  const Api a = api_for(*a_proc).as("racer_a");
  const Api b = api_for(*b_proc).as("racer_b");
  const auto either = [&](int i) -> const Api& { return i % 2 == 0 ? a : b; };
  constexpr int kRacers = 8;

  const auto reg = in_parallel(kRacers, [&](int i) {
    return either(i).post("/api/v1/migrations",
                          R"({"migration_id": "race_mig", "source_table": "race",)"
                          R"( "target_table": "t_sys_race_)" +
                              std::to_string(i) + R"("})");
  });
  INFO(statuses(reg));
  CHECK(count_status(reg, 201) == 1);
  CHECK(count_status(reg, 409) == kRacers - 1);

  const auto moves = in_parallel(kRacers, [&](int i) {
    return either(i).post("/api/v1/migrations/race_mig/phase", R"({"phase": "dual_write"})");
  });
  INFO(statuses(moves));
  CHECK(count_status(moves, 200) == 1);
  CHECK(count_status(moves, 409) == kRacers - 1);
  const json::object m = get_migration(a, "race_mig");
  CHECK(str(m, "phase") == "dual_write");
  int successes = 0, refusals = 0;
  for (const auto& e : api_logs(a, "race_mig")) {
    if (str(e, "to") != "dual_write") continue;
    successes += str(e, "status") == "success";
    refusals += str(e, "status") == "refused";
  }
  CHECK(successes == 1);
  CHECK(refusals == kRacers - 1);

  // Percentage changes at once: every accepted change is in the history, as one unbroken chain
  // 0 -> ... -> the final percentage (no lost update).
  advance_to(a, "race_mig", "read_switch");
  (void)register_switch(a, "race_sw", "race", "race_mig");
  REQUIRE(a.post("/api/v1/switches/race_sw/activate").status == 200);
  const auto pcts = in_parallel(kRacers, [&](int i) {
    return either(i).post("/api/v1/switches/race_sw/percentage",
                          R"({"percentage": )" + std::to_string(10 + i) + "}");
  });
  INFO(statuses(pcts));
  const int accepted = count_status(pcts, 200);
  CHECK(accepted >= 1);
  CHECK(accepted + count_status(pcts, 409) == kRacers);
  const json::value an = parse_json(a.get("/api/v1/switches/race_sw/analytics").body);
  const json::array& history = an.at("percentage_history").as_array();
  INFO("history: " << json::serialize(history));
  CHECK(static_cast<int>(history.size()) == accepted);
  double at = 0;
  std::vector<bool> used(history.size(), false);
  for (size_t step = 0; step < history.size(); ++step) {
    bool found = false;
    for (size_t k = 0; k < history.size() && !found; ++k) {
      if (used[k] || num(history[k].as_object(), "from") != at) continue;
      used[k] = found = true;
      at = num(history[k].as_object(), "to");
    }
    INFO("no history entry continues the chain from " << at);
    REQUIRE(found);
  }
  // B follows A's last accepted change (NOTIFY): its view ends where the chain ends.
  const auto converged = time_until(
      [&] { return num(get_switch(b, "race_sw"), "switch_percentage") == at; }, 5s, 10ms);
  INFO("B's percentage: " << num(get_switch(b, "race_sw"), "switch_percentage"));
  CHECK(converged.has_value());
}

TEST_CASE("the periodic reload picks up a change that came without NOTIFY") {
  const auto pg = start_cluster();
  ServeOptions o = serve_on(*pg);
  o.config_json = R"({"state_reload_interval_ms": 300})";
  const auto proc = start_pgphase(o);
  const Api api = api_for(*proc);
  (void)register_migration(api, "reload_mig", "reload", "t_sys_reload");
  CHECK(num(get_migration(api, "reload_mig"), "auto_switch_threshold") == Approx(0.99));
  const it::PgConn control = control_conn(*pg);
  control.exec_ok(
      "UPDATE t_sys_migrations SET auto_switch_threshold = 0.91, version = version + 1, "
      "updated_at = now() WHERE migration_id = 'reload_mig'");
  const auto ms = time_until(
      [&] { return num(get_migration(api, "reload_mig"), "auto_switch_threshold") == 0.91; }, 5s,
      20ms);
  REQUIRE(ms.has_value());
  CHECK(*ms < 1500);
}

TEST_CASE("changes are announced on NOTIFY channel pgphase_state") {
  const auto pg = start_cluster();
  const auto proc = start_pgphase(serve_on(*pg));
  const Api api = api_for(*proc);
  const it::PgConn listener = control_conn(*pg);
  listener.exec_ok("LISTEN pgphase_state");
  const auto notified = [&] {
    PQconsumeInput(listener.get());
    bool any = false;
    while (PGnotify* n = PQnotifies(listener.get())) {
      any = any || std::string(n->relname) == "pgphase_state";
      PQfreemem(n);
    }
    return any;
  };
  (void)register_migration(api, "notify_mig", "notify", "t_sys_notify");
  CHECK(time_until(notified, 2s, 10ms).has_value());
  (void)set_phase(api, "notify_mig", "dual_write");
  CHECK(time_until(notified, 2s, 10ms).has_value());
}
