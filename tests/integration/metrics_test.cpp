// pgphase's admin endpoint: /healthz, and /metrics after real traffic (connections, bytes,
// messages by type, statements by command, the latency histogram, protocol errors), checked as
// deltas so the test cases may run in any order.
#include <cmath>

#include <catch2/catch.hpp>

#include "harness/harness.h"

using namespace pgphase::it;

namespace {

uint16_t admin() {
  return shared_env().proxy->admin_port();
}

PgConn proxied() {
  PgConn c = shared_env().proxy->connect();
  INFO("connect error: " << c.error_message());
  REQUIRE(c.ok());
  return c;
}

const std::map<std::string, std::string> kToBackend{{"direction", "client_to_backend"}};
const std::map<std::string, std::string> kToClient{{"direction", "backend_to_client"}};

std::map<std::string, std::string> msg(const std::map<std::string, std::string>& dir,
                                       const char* type) {
  auto labels = dir;
  labels["type"] = type;
  return labels;
}

// The cumulative count of the latency bucket whose upper bound is `le`.
double bucket(const Metrics& m, double le) {
  for (const auto& b : m.all("pgphase_statement_duration_seconds_bucket")) {
    const std::string& text = b.labels.at("le");
    if ((text == "+Inf" && std::isinf(le)) || (text != "+Inf" && std::stod(text) == le)) {
      return b.value;
    }
  }
  FAIL("no latency bucket with le=" << le);
  return 0;
}

bool gauge_becomes(const char* name, double want) {
  return wait_until([&] { return scrape_metrics(admin()).get(name) == want; }, 5s, 50ms);
}

}  // namespace

TEST_CASE("GET /healthz answers ok", "[metrics]") {
  const HttpResponse r = http_get(admin(), "/healthz");
  CHECK(r.status == 200);
  CHECK(trim(r.body) == "ok");
}

TEST_CASE("/metrics is valid Prometheus text with the documented families", "[metrics]") {
  const HttpResponse r = http_get(admin(), "/metrics");
  REQUIRE(r.status == 200);
  CHECK(contains(r.header("content-type"), "text/plain"));
  const Metrics m = Metrics::parse(r.body);
  const std::map<std::string, std::string> expected_types{
      {"pgphase_client_connections", "gauge"},
      {"pgphase_client_connections_total", "counter"},
      {"pgphase_backend_connections", "gauge"},
      {"pgphase_bytes_total", "counter"},
      {"pgphase_messages_total", "counter"},
      {"pgphase_statements_total", "counter"},
      {"pgphase_statement_duration_seconds", "histogram"},
      {"pgphase_protocol_errors_total", "counter"},
      {"pgphase_cancel_requests_total", "counter"}};
  for (const auto& [family, type] : expected_types) {
    INFO("family " << family);
    REQUIRE(m.types.contains(family));
    CHECK(m.types.at(family) == type);
  }
  // Every sample belongs to a declared family.
  for (const auto& s : m.samples) {
    std::string base = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!m.types.contains(base) && base.ends_with(suffix)) {
        base.resize(base.size() - std::string_view(suffix).size());
      }
    }
    INFO("sample " << s.name);
    CHECK(m.types.contains(base));
  }
}

TEST_CASE("/metrics counts real traffic", "[metrics]") {
  const Metrics before = scrape_metrics(admin());
  {
    std::vector<PgConn> conns;
    for (int i = 0; i < 3; ++i) conns.push_back(proxied());
    for (const PgConn& c : conns) {
      for (int q = 0; q < 5; ++q)
        CHECK(c.scalar("SELECT " + std::to_string(q)) == std::to_string(q));
    }
    conns[0].exec_ok("CREATE TEMP TABLE metrics_t(i int)");
    conns[0].exec_ok("INSERT INTO metrics_t VALUES (1), (2)");
    conns[0].exec_ok("UPDATE metrics_t SET i = i + 1");
    for (int q = 0; q < 3; ++q) {
      CHECK(conns[1].exec_params("SELECT $1::int", {std::to_string(q)}).value() ==
            std::to_string(q));
    }
    const PgResult slow = conns[2].exec("SELECT pg_sleep(0.3)");
    CHECK(slow.ok());

    CHECK(gauge_becomes("pgphase_client_connections", 3));
    CHECK(gauge_becomes("pgphase_backend_connections", 3));
  }
  const Metrics after = scrape_metrics(admin());
  const auto delta = [&](std::string_view name, const std::map<std::string, std::string>& l = {}) {
    return after.get(name, l) - before.get(name, l);
  };
  CHECK(delta("pgphase_client_connections_total") >= 3);
  CHECK(delta("pgphase_bytes_total", kToBackend) > 300);
  CHECK(delta("pgphase_bytes_total", kToClient) > 1000);
  CHECK(delta("pgphase_messages_total", msg(kToBackend, "Q")) >= 19);
  CHECK(delta("pgphase_messages_total", msg(kToBackend, "P")) >= 3);
  CHECK(delta("pgphase_messages_total", msg(kToBackend, "B")) >= 3);
  CHECK(delta("pgphase_messages_total", msg(kToBackend, "E")) >= 3);
  CHECK(delta("pgphase_messages_total", msg(kToBackend, "S")) >= 3);
  CHECK(delta("pgphase_messages_total", msg(kToClient, "Z")) >= 22);
  CHECK(delta("pgphase_messages_total", msg(kToClient, "D")) >= 19);
  CHECK(delta("pgphase_statements_total", {{"command", "SELECT"}}) >= 19);
  CHECK(delta("pgphase_statements_total", {{"command", "INSERT"}}) >= 1);
  CHECK(delta("pgphase_statements_total", {{"command", "UPDATE"}}) >= 1);
  CHECK(delta("pgphase_statements_total", {{"command", "CREATE"}}) >= 1);
  CHECK(delta("pgphase_statement_duration_seconds_count") >= 22);
  CHECK(delta("pgphase_statement_duration_seconds_sum") >= 0.3);
  // The pg_sleep(0.3) landed in a bucket above 0.25 s.
  const double above_250ms = (bucket(after, INFINITY) - bucket(after, 0.25)) -
                             (bucket(before, INFINITY) - bucket(before, 0.25));
  CHECK(above_250ms >= 1);

  // Closing the sessions brings both gauges back to zero.
  CHECK(gauge_becomes("pgphase_client_connections", 0));
  CHECK(gauge_becomes("pgphase_backend_connections", 0));
}

TEST_CASE("the latency histogram is cumulative and consistent", "[metrics]") {
  {
    const PgConn c = proxied();
    for (int i = 0; i < 10; ++i) c.exec_ok("SELECT 1");
  }
  const Metrics m = scrape_metrics(admin());
  const auto buckets = m.all("pgphase_statement_duration_seconds_bucket");
  REQUIRE(buckets.size() >= 2);
  double previous_le = -1;
  double previous_count = 0;
  for (const auto& b : buckets) {
    INFO("le=" << b.labels.at("le") << " count " << b.value);
    const double le = b.labels.at("le") == "+Inf" ? INFINITY : std::stod(b.labels.at("le"));
    CHECK(le > previous_le);
    CHECK(b.value >= previous_count);
    previous_le = le;
    previous_count = b.value;
  }
  CHECK(buckets.back().labels.at("le") == "+Inf");
  CHECK(buckets.back().value == m.get("pgphase_statement_duration_seconds_count"));
  CHECK(m.get("pgphase_statement_duration_seconds_count") >= 10);
  CHECK(m.get("pgphase_statement_duration_seconds_sum") > 0);
}

TEST_CASE("a malformed startup packet is counted as a protocol error", "[metrics]") {
  const double before = scrape_metrics(admin()).get("pgphase_protocol_errors_total");
  RawClient raw = RawClient::tcp(shared_env().proxy->port());
  raw.send(wire::i32(3) + wire::i32(196608));  // a length below the minimum of 8
  CHECK(raw.wait_closed(5s));
  CHECK(wait_until(
      [&] { return scrape_metrics(admin()).get("pgphase_protocol_errors_total") >= before + 1; },
      3s, 50ms));
}
