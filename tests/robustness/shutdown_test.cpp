// Graceful shutdown on SIGTERM: idle sessions are told 57P01 and closed at once, a running
// transaction may finish (its results are delivered and COMMIT works) while new sessions are
// refused with 57P03 and CancelRequests still work, and --shutdown-timeout bounds how long an open
// transaction can hold pgphase up.
#include <catch2/catch.hpp>
#include <csignal>

#include "rob_support.h"

using namespace pgphase;
using namespace pgphase::rob;
using it::BackendMessage;
namespace wire = it::wire;

namespace {

struct ShutdownEnv {
  std::unique_ptr<it::PgCluster> pg =
      it::PgCluster::start({.setup_sql = {"CREATE TABLE rob_sd (id int, who text)"}});
  it::PgConn direct = pg->connect();
};

ShutdownEnv& env() {
  static ShutdownEnv e;
  return e;
}

it::ProxyOptions proxy_options() {
  auto o = it::ProxyOptions::tcp(*env().pg);
  o.log_level = "debug";
  return o;
}

it::RawClient raw_session(const it::ProxyProcess& proxy, const std::string& app) {
  it::RawClient c = it::RawClient::tcp(proxy.port());
  c.startup("postgres", "postgres", {{"application_name", app}});
  return c;
}

// Sends one simple Query and returns its messages up to ReadyForQuery.
std::vector<BackendMessage> query(it::RawClient& c, const std::string& sql) {
  REQUIRE(c.send(wire::query(sql)));
  return c.read_until_ready();
}

// The next message, or a failure that shows what pgphase logged.
BackendMessage next_message(it::RawClient& c, const it::ProxyProcess& proxy,
                            std::chrono::milliseconds timeout) {
  try {
    return c.read_message(timeout);
  } catch (const std::exception& ex) {
    FAIL(ex.what() << "\npgphase stderr:\n" << proxy.stderr_tail(30));
  }
  return {};
}

void require_admin_shutdown(const BackendMessage& m) {
  INFO("type " << m.type << ", body " << hex(m.body));
  REQUIRE(m.type == 'E');
  auto f = m.fields();
  CHECK(f['S'] == "FATAL");
  CHECK(f['C'] == "57P01");
  CHECK(it::contains(f['M'], "shutting down"));
}

std::string rows_of(const std::string& who) {
  return env().direct.scalar("SELECT count(*) FROM rob_sd WHERE who = '" + who + "'");
}

}  // namespace

TEST_CASE("SIGTERM with an idle session", "[shutdown]") {
  ShutdownEnv& e = env();
  it::ProxyProcess proxy(proxy_options());
  it::RawClient idle = raw_session(proxy, "rob_sd_idle");
  const it::PgConn idle_libpq =
      proxy.connect("postgres", "postgres", "", "application_name=rob_sd_idle_libpq");
  REQUIRE(idle_libpq.ok());
  std::vector<std::string> libpq_saw;
  PQsetNoticeReceiver(idle_libpq.get(), record_sqlstate, &libpq_saw);
  REQUIRE(count_backends(e.direct, "rob_sd_idle") == 1);
  REQUIRE(count_backends(e.direct, "rob_sd_idle_libpq") == 1);

  const auto start = it::Clock::now();
  proxy.terminate();
  require_admin_shutdown(next_message(idle, proxy, 2s));
  CHECK(it::elapsed_ms(start) < 1000);
  CHECK(idle.read_some(2s) == "");  // then closed, nothing more
  // The libpq session hears the same (PQisBusy parses what PQconsumeInput read), then sees the
  // connection closed.
  bool libpq_open = true;
  const auto poll_libpq = [&] {
    libpq_open = PQconsumeInput(idle_libpq.get()) == 1;
    (void)PQisBusy(idle_libpq.get());
  };
  CHECK(it::wait_until(
      [&] {
        poll_libpq();
        return !libpq_saw.empty();
      },
      2s));
  CHECK(libpq_saw == std::vector<std::string>{"57P01"});
  CHECK(it::wait_until(
      [&] {
        poll_libpq();
        return !libpq_open;
      },
      2s));
  CHECK(PQstatus(idle_libpq.get()) == CONNECTION_BAD);
  const auto code = proxy.wait_exit(2s);
  INFO("pgphase stderr:\n" << proxy.stderr_tail(20));
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(it::elapsed_ms(start) < 2000);
  CHECK(wait_backends_gone(e.direct, "rob_sd_idle"));
  CHECK(wait_backends_gone(e.direct, "rob_sd_idle_libpq"));
}

TEST_CASE("SIGTERM while a transaction runs a query", "[shutdown]") {
  ShutdownEnv& e = env();
  it::ProxyProcess proxy(proxy_options());
  it::RawClient busy = raw_session(proxy, "rob_sd_busy");
  REQUIRE(it::types(query(busy, "BEGIN")) == "CZ");
  REQUIRE(it::types(query(busy, "INSERT INTO rob_sd VALUES (1, 'busy')")) == "CZ");
  REQUIRE(busy.send(wire::query("SELECT pg_sleep(2), 'slept'")));
  REQUIRE(wait_backend_pid(e.direct, "rob_sd_busy", "active") > 0);

  const auto start = it::Clock::now();
  proxy.terminate();
  // New sessions are refused at once with 57P03, as PostgreSQL does in a smart shutdown; the
  // admin endpoint reports the drain.
  CHECK(it::wait_until(
      [&] {
        const it::PgConn late =
            proxy.connect("postgres", "postgres", "", "application_name=rob_sd_late");
        return !late.ok() && late.connect_sqlstate() == "57P03";
      },
      1s));
  CHECK(it::http_get(proxy.admin_port(), "/healthz").status == 503);

  // The running query completes and its result is delivered; the transaction stays open.
  const auto msgs = busy.read_until_ready(5s);
  REQUIRE(it::types(msgs) == "TDCZ");
  CHECK(msgs[1].columns()[1] == "slept");
  CHECK(msgs[3].body == "T");
  CHECK(it::elapsed_ms(start) > 1000);
  REQUIRE(proxy.running());

  // COMMIT works, then the session is closed with 57P01.
  REQUIRE(busy.send(wire::query("COMMIT")));
  const auto commit = busy.read_until_ready(5s);
  REQUIRE(it::types(commit) == "CZ");
  CHECK(commit[0].tag() == "COMMIT");
  CHECK(commit[1].body == "I");
  require_admin_shutdown(next_message(busy, proxy, 2s));
  CHECK(busy.read_some(2s) == "");

  const auto code = proxy.wait_exit(3s);
  INFO("pgphase stderr:\n" << proxy.stderr_tail(20));
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(rows_of("busy") == "1");
  CHECK(wait_backends_gone(e.direct, "rob_sd_busy"));
}

TEST_CASE("CancelRequests still reach running queries while pgphase drains", "[shutdown]") {
  ShutdownEnv& e = env();
  it::ProxyProcess proxy(proxy_options());
  const it::PgConn c = proxy.connect("postgres", "postgres", "", "application_name=rob_sd_cancel");
  REQUIRE(c.ok());
  REQUIRE(PQsendQuery(c.get(), "SELECT pg_sleep(30)") == 1);
  REQUIRE(wait_backend_pid(e.direct, "rob_sd_cancel", "active") > 0);

  proxy.terminate();
  REQUIRE(it::wait_until([&] { return it::http_get(proxy.admin_port(), "/healthz").status == 503; },
                         2s));
  const auto start = it::Clock::now();
  PGcancel* cancel = PQgetCancel(c.get());
  REQUIRE(cancel != nullptr);
  char errbuf[256];
  CHECK(PQcancel(cancel, errbuf, sizeof errbuf) == 1);
  PQfreeCancel(cancel);
  const it::PgResult r(PQgetResult(c.get()));
  CHECK(r.status() == PGRES_FATAL_ERROR);
  CHECK(r.sqlstate() == "57014");
  CHECK(it::elapsed_ms(start) < 1000);
  // The session is idle now, so the drain closes it and pgphase exits.
  const auto code = proxy.wait_exit(3s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(wait_backends_gone(e.direct, "rob_sd_cancel"));
}

TEST_CASE("SIGTERM while a libpq pipeline has a query in flight (no Sync yet)", "[pipeline]") {
  // Extended protocol with Flush instead of Sync: no ReadyForQuery is due, yet a query runs.
  ShutdownEnv& e = env();
  it::ProxyProcess proxy(proxy_options());
  const it::PgConn c = proxy.connect("postgres", "postgres", "", "application_name=rob_sd_pipe");
  REQUIRE(c.ok());
  std::vector<std::string> heard;
  PQsetNoticeReceiver(c.get(), record_sqlstate, &heard);
  REQUIRE(PQenterPipelineMode(c.get()) == 1);
  // Control, without a shutdown: the same sequence works through pgphase.
  REQUIRE(PQsendQueryParams(c.get(), "SELECT 'control'", 0, nullptr, nullptr, nullptr, nullptr,
                            0) == 1);
  REQUIRE(PQsendFlushRequest(c.get()) == 1);
  REQUIRE(PQflush(c.get()) == 0);
  {
    const it::PgResult control(PQgetResult(c.get()));
    REQUIRE(control.status() == PGRES_TUPLES_OK);
    CHECK(control.value(0, 0) == "control");
    CHECK(PQgetResult(c.get()) == nullptr);
  }
  REQUIRE(PQsendQueryParams(c.get(), "SELECT pg_sleep(2), 'piped'", 0, nullptr, nullptr, nullptr,
                            nullptr, 0) == 1);
  REQUIRE(PQsendFlushRequest(c.get()) == 1);
  REQUIRE(PQflush(c.get()) == 0);
  REQUIRE(wait_backend_pid(e.direct, "rob_sd_pipe", "active") > 0);

  proxy.terminate();
  // The running query completes and its result is delivered.
  const it::PgResult r(PQgetResult(c.get()));
  INFO("result: " << r.describe() << "\nlibpq: " << c.error_message() << "\npgphase stderr:\n"
                  << proxy.stderr_tail(20));
  REQUIRE(r.status() == PGRES_TUPLES_OK);
  CHECK(r.value(0, 1) == "piped");
  CHECK(PQgetResult(c.get()) == nullptr);  // the end of that query's results
  // The pipeline's Sync is answered, then the session is closed with 57P01.
  REQUIRE(PQpipelineSync(c.get()) == 1);
  const it::PgResult sync(PQgetResult(c.get()));
  CHECK(sync.status() == PGRES_PIPELINE_SYNC);
  CHECK(PQexitPipelineMode(c.get()) == 1);
  CHECK(it::wait_until(
      [&] {
        const bool open = PQconsumeInput(c.get()) == 1;
        (void)PQisBusy(c.get());
        return !open;
      },
      3s));
  CHECK(heard == std::vector<std::string>{"57P01"});
  const auto code = proxy.wait_exit(3s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(wait_backends_gone(e.direct, "rob_sd_pipe"));
}

TEST_CASE("--shutdown-timeout closes a session stuck in a transaction", "[shutdown]") {
  ShutdownEnv& e = env();
  auto options = proxy_options();
  options.shutdown_timeout = 1;
  it::ProxyProcess proxy(options);
  it::RawClient stuck = raw_session(proxy, "rob_sd_stuck");
  REQUIRE(it::types(query(stuck, "BEGIN")) == "CZ");
  REQUIRE(it::types(query(stuck, "INSERT INTO rob_sd VALUES (2, 'stuck')")) == "CZ");
  REQUIRE(wait_backend_pid(e.direct, "rob_sd_stuck", "idle in transaction") > 0);

  const auto start = it::Clock::now();
  proxy.terminate();
  const BackendMessage m = next_message(stuck, proxy, 5s);
  const double closed_after = it::elapsed_ms(start);
  require_admin_shutdown(m);
  CHECK(closed_after > 800);
  CHECK(closed_after < 3000);
  CHECK(stuck.read_some(2s) == "");

  // No transaction is left open on the server, and the INSERT was rolled back.
  CHECK(wait_backends_gone(e.direct, "rob_sd_stuck"));
  CHECK(e.direct.scalar("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in "
                        "transaction%' AND pid <> pg_backend_pid()") == "0");
  CHECK(rows_of("stuck") == "0");
  const auto code = proxy.wait_exit(3s);
  INFO("pgphase stderr:\n" << proxy.stderr_tail(20));
  REQUIRE(code.has_value());
  CHECK(*code == 0);
}
