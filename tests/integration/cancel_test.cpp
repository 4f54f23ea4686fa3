// Query cancellation through pgphase: PQcancel with the key pgphase handed out reaches the right
// backend quickly (57014 within a second), leaves other sessions alone, and a CancelRequest with
// a wrong key cancels nothing.
#include <catch2/catch.hpp>

#include "harness/harness.h"

using namespace pgphase::it;

namespace {

PgConn proxied() {
  PgConn c = shared_env().proxy->connect();
  INFO("connect error: " << c.error_message());
  REQUIRE(c.ok());
  return c;
}

// True once PostgreSQL shows backend `pid` running `query_part` (seen directly, not proxied).
bool wait_active(int pid, const std::string& query_part) {
  const PgConn direct = shared_env().pg->connect();
  return wait_until(
      [&] {
        const PgResult r =
            direct.exec("SELECT state = 'active' AND query LIKE '%" + query_part +
                        "%' FROM pg_stat_activity WHERE pid = " + std::to_string(pid));
        return r.ok() && r.rows() == 1 && r.value() == "t";
      },
      10s);
}

bool send_cancel(const PgConn& c, std::string& error) {
  std::unique_ptr<PGcancel, void (*)(PGcancel*)> cancel(PQgetCancel(c.get()), &PQfreeCancel);
  if (!cancel) return false;
  char buf[256] = {};
  const bool ok = PQcancel(cancel.get(), buf, sizeof buf) == 1;
  error = buf;
  return ok;
}

}  // namespace

TEST_CASE("PQcancel stops a running query within a second", "[cancel]") {
  const PgConn a = proxied();
  const PgConn b = proxied();
  const int a_pid = a.server_pid();
  const int b_pid = b.server_pid();
  REQUIRE(a_pid != b_pid);

  REQUIRE(PQsendQuery(a.get(), "SELECT pg_sleep(30) /* it_cancel_a */") == 1);
  REQUIRE(PQsendQuery(b.get(), "SELECT pg_sleep(30) /* it_cancel_b */") == 1);
  REQUIRE(wait_active(a_pid, "it_cancel_a"));
  REQUIRE(wait_active(b_pid, "it_cancel_b"));

  const auto start = Clock::now();
  std::string error;
  REQUIRE(send_cancel(a, error));
  INFO("PQcancel: " << error);
  const PgResult r(PQgetResult(a.get()));
  const double ms = elapsed_ms(start);
  INFO("cancel took " << ms << " ms; result " << r.describe());
  CHECK(r.status() == PGRES_FATAL_ERROR);
  CHECK(r.sqlstate() == "57014");
  CHECK(r.field(PG_DIAG_MESSAGE_PRIMARY) == "canceling statement due to user request");
  CHECK(ms < 1000);
  CHECK_FALSE(PgResult(PQgetResult(a.get())));

  // b is untouched: still sleeping. Cancel it too, with its own key.
  CHECK(wait_active(b_pid, "it_cancel_b"));
  REQUIRE(send_cancel(b, error));
  const PgResult rb(PQgetResult(b.get()));
  CHECK(rb.sqlstate() == "57014");
  CHECK_FALSE(PgResult(PQgetResult(b.get())));

  // Both sessions stay usable.
  CHECK(a.scalar("SELECT 'a alive'") == "a alive");
  CHECK(b.scalar("SELECT 'b alive'") == "b alive");
}

TEST_CASE("cancelling one session does not affect a concurrent short query", "[cancel]") {
  const PgConn a = proxied();
  const PgConn b = proxied();
  const int a_pid = a.server_pid();
  REQUIRE(PQsendQuery(a.get(), "SELECT pg_sleep(30) /* it_cancel_c */") == 1);
  REQUIRE(PQsendQuery(b.get(), "SELECT pg_sleep(1.5), 'b finished'") == 1);
  REQUIRE(wait_active(a_pid, "it_cancel_c"));
  std::string error;
  REQUIRE(send_cancel(a, error));
  CHECK(PgResult(PQgetResult(a.get())).sqlstate() == "57014");
  CHECK_FALSE(PgResult(PQgetResult(a.get())));
  const PgResult rb(PQgetResult(b.get()));
  INFO(rb.describe());
  REQUIRE(rb.status() == PGRES_TUPLES_OK);
  CHECK(rb.value(0, 1) == "b finished");
  CHECK_FALSE(PgResult(PQgetResult(b.get())));
}

TEST_CASE("a CancelRequest with a wrong key cancels nothing", "[cancel]") {
  const PgConn a = proxied();
  const int a_pid = a.server_pid();
  REQUIRE(PQsendQuery(a.get(), "SELECT pg_sleep(1.5), 'not cancelled' /* it_cancel_d */") == 1);
  REQUIRE(wait_active(a_pid, "it_cancel_d"));
  // pgphase's own process id for the session, with a wrong secret; then the real backend pid.
  for (int32_t pid : {a.backend_pid(), a_pid}) {
    RawClient raw = RawClient::tcp(shared_env().proxy->port());
    raw.send(wire::cancel_request(pid, 0x5eed));
    CHECK(raw.wait_closed(5s));  // the proxy closes a cancel connection without a reply
  }
  const PgResult r(PQgetResult(a.get()));
  INFO(r.describe());
  REQUIRE(r.status() == PGRES_TUPLES_OK);
  CHECK(r.value(0, 1) == "not cancelled");
  CHECK_FALSE(PgResult(PQgetResult(a.get())));
}

TEST_CASE("cancel through pgphase increments pgphase_cancel_requests_total", "[cancel][metrics]") {
  auto& env = shared_env();
  const double before =
      scrape_metrics(env.proxy->admin_port()).get("pgphase_cancel_requests_total");
  const PgConn a = proxied();
  const int a_pid = a.server_pid();
  REQUIRE(PQsendQuery(a.get(), "SELECT pg_sleep(30) /* it_cancel_e */") == 1);
  REQUIRE(wait_active(a_pid, "it_cancel_e"));
  std::string error;
  REQUIRE(send_cancel(a, error));
  CHECK(PgResult(PQgetResult(a.get())).sqlstate() == "57014");
  CHECK_FALSE(PgResult(PQgetResult(a.get())));
  CHECK(wait_until(
      [&] {
        return scrape_metrics(env.proxy->admin_port()).get("pgphase_cancel_requests_total") >=
               before + 1;
      },
      3s, 50ms));
}
