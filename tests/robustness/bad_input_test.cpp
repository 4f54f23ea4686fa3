// Bad input from clients: every malformed or abandoned connection gets an ErrorResponse with
// SQLSTATE 08P01 (or a clean close), leaves no backend connection on the server, and does not
// disturb a healthy libpq session that has a query in flight through the same pgphase.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <random>

#include "rob_support.h"

using namespace pgphase;
using namespace pgphase::rob;
using it::BackendMessage;
namespace wire = it::wire;

namespace {

constexpr uint32_t kMaxMessage = 1u << 20;
const char* const kHealthyApp = "rob_healthy";

// PGPHASE_ROB_REWRITING=1 (the ctest entry robustness_bad_input_rewriting): the same attacks on a
// pgphase with a control plane and a migration in dual_write, so that sessions go through the
// message splitter and the rewriter instead of the byte relay.
bool rewriting() {
  const char* v = std::getenv("PGPHASE_ROB_REWRITING");
  return v != nullptr && std::string_view(v) == "1";
}
constexpr const char* kRewriteToken = "rob-rewrite-token";

struct BadInputEnv {
  BadInputEnv() {
    if (!rewriting()) return;
    const it::HttpResponse r = it::http_request(
        proxy->admin_port(), "POST", "/api/v1/migrations",
        {{"Authorization", std::string("Bearer ") + kRewriteToken}},
        R"({"migration_id":"rob_mig","source_table":"rob_mig","target_table":"t_sys_rob_mig"})");
    REQUIRE(r.status == 201);
    const it::HttpResponse p = it::http_request(
        proxy->admin_port(), "POST", "/api/v1/migrations/rob_mig/phase",
        {{"Authorization", std::string("Bearer ") + kRewriteToken}}, R"({"phase":"dual_write"})");
    REQUIRE(p.status == 200);
  }
  std::unique_ptr<it::PgCluster> pg = it::PgCluster::start(
      {.setup_sql = {"CREATE TABLE rob_vanish (id int, who text)",
                     "CREATE TABLE rob_mig (id int PRIMARY KEY, v text)",
                     "CREATE TABLE t_sys_rob_mig (id int PRIMARY KEY, v text)"}});
  it::TempDir certs{"certs"};
  it::CertPair cert = it::make_self_signed_cert(certs.path(), "proxy");
  std::unique_ptr<it::ProxyProcess> proxy = std::make_unique<it::ProxyProcess>([this] {
    auto o = it::ProxyOptions::tcp(*pg);
    o.max_message_size = kMaxMessage;
    o.tls_cert = cert.cert.string();
    o.tls_key = cert.key.string();
    if (rewriting()) {
      ::setenv("PGPHASE_ADMIN_TOKEN", kRewriteToken, 1);
      o.extra_args = {"--control-dsn", pg->conninfo("postgres")};
    }
    return o;
  }());
  it::PgConn direct = pg->connect();
  it::PgConn healthy =
      proxy->connect("postgres", "postgres", "", std::string("application_name=") + kHealthyApp);
};

BadInputEnv& env() {
  static BadInputEnv e;
  return e;
}

double metric(const char* name, const std::map<std::string, std::string>& labels = {}) {
  return it::scrape_metrics(env().proxy->admin_port()).get(name, labels);
}

// Runs `attack` while the healthy session has a query in flight, then checks that query's
// result, a new query on the same session, that pgphase still runs, and that no backend other
// than the healthy session's is left on the server.
template <class F>
void with_neighbour(F&& attack) {
  BadInputEnv& e = env();
  REQUIRE(e.direct.ok());
  REQUIRE(e.healthy.ok());
  REQUIRE(PQsendQuery(e.healthy.get(), "SELECT pg_sleep(0.2), 'alive'") == 1);
  attack();
  const auto results = e.healthy.results();
  REQUIRE(results.size() == 1);
  INFO(results[0].describe());
  REQUIRE(results[0].ok());
  CHECK(results[0].value(0, 1) == "alive");
  CHECK(e.healthy.scalar("SELECT 6 * 7") == "42");
  CHECK(e.proxy->running());
  INFO("pgphase stderr:\n" << e.proxy->stderr_tail(20));
  CHECK(it::wait_until(
      [&] {
        return count_other_backends(e.direct, {kHealthyApp, "pgphase-control"}) == 0;
      },
      3s, 50ms));
}

// `received` must be exactly one FATAL ErrorResponse with SQLSTATE 08P01.
void require_protocol_violation(const Exchange& x, const std::string& message_part = "") {
  INFO("received: " << hex(x.received));
  REQUIRE(x.closed);
  const auto msgs = split_messages(x.received);
  REQUIRE(it::types(msgs) == "E");
  auto f = msgs[0].fields();
  INFO("message: " << f['M']);
  CHECK(f['S'] == "FATAL");
  CHECK(f['C'] == "08P01");
  if (!message_part.empty()) CHECK(it::contains(f['M'], message_part));
}

// A trusted raw session through pgphase named `app`, ready for queries.
it::RawClient raw_session(const std::string& app) {
  it::RawClient c = it::RawClient::tcp(env().proxy->port());
  c.startup("postgres", "postgres", {{"application_name", app}});
  REQUIRE(count_backends(env().direct, app) == 1);
  return c;
}

// Sends `bytes` on an authenticated session and reads the reply until pgphase closes.
Exchange after_auth(const std::string& app, const std::string& bytes) {
  it::RawClient c = raw_session(app);
  Exchange x;
  c.send(bytes);
  for (;;) {
    const std::string got = c.read_some(5s);
    if (got.empty()) break;
    x.received += got;
  }
  x.closed = true;
  return x;
}

}  // namespace

TEST_CASE("garbage startup packets", "[bad_input]") {
  const double backends_before = metric("pgphase_backend_connections_total");
  const double errors_before =
      metric("pgphase_protocol_errors_total", {{"kind", "bad_startup_packet"}});
  std::mt19937 rng(20240611);
  const auto random_bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (auto& ch : s) ch = static_cast<char>(rng() & 0xff);
    return s;
  };
  with_neighbour([&] {
    // A plausible length with an unknown protocol code, then random bytes.
    require_protocol_violation(
        exchange(env().proxy->port(), wire::i32(100) + wire::i32(0x12345678) + random_bytes(92)),
        "protocol");
    // Protocol 3.0 with a body of random non-zero bytes (no terminators).
    std::string body = random_bytes(92);
    for (auto& ch : body) ch = static_cast<char>(ch == 0 ? 'x' : ch);
    require_protocol_violation(
        exchange(env().proxy->port(), wire::i32(100) + wire::i32(wire::kProtocolV3) + body));
    // Purely random bytes, then a half-close: an 08P01 error or a silent close, nothing else.
    for (int i = 0; i < 30; ++i) {
      const std::string junk = random_bytes(1 + rng() % 512);
      const Exchange x = exchange(env().proxy->port(), junk, /*shut_write=*/true);
      INFO("sent: " << hex(junk));
      if (x.received.empty()) {
        CHECK(x.closed);
      } else {
        require_protocol_violation(x);
      }
    }
  });
  CHECK(metric("pgphase_backend_connections_total") == backends_before);
  CHECK(metric("pgphase_protocol_errors_total", {{"kind", "bad_startup_packet"}}) >=
        errors_before + 2);
}

TEST_CASE("startup packet length out of range", "[bad_input]") {
  const double backends_before = metric("pgphase_backend_connections_total");
  with_neighbour([&] {
    for (int32_t len : {0, 3, 4, 7, -1}) {
      INFO("length " << len);
      require_protocol_violation(
          exchange(env().proxy->port(), wire::i32(len) + wire::i32(wire::kProtocolV3)),
          "invalid length of startup packet");
    }
    // Longer than PostgreSQL's 10000-byte limit: refused from the header alone.
    for (int32_t len : {10001, 1 << 20, 0x7fffffff}) {
      INFO("length " << len);
      require_protocol_violation(
          exchange(env().proxy->port(), wire::i32(len) + wire::i32(wire::kProtocolV3) + "user"),
          "invalid length of startup packet");
    }
  });
  CHECK(metric("pgphase_backend_connections_total") == backends_before);
}

TEST_CASE("truncated startup packet, then close", "[bad_input]") {
  const double backends_before = metric("pgphase_backend_connections_total");
  const std::string full = wire::startup({{"user", "postgres"}, {"database", "postgres"}});
  with_neighbour([&] {
    for (size_t cut : {size_t{2}, size_t{6}, full.size() / 2, full.size() - 1}) {
      INFO("sent " << cut << " of " << full.size() << " bytes");
      const Exchange x = exchange(env().proxy->port(), full.substr(0, cut), /*shut_write=*/true);
      CHECK(x.closed);
      CHECK(x.received.empty());
    }
    // The same without a half-close: the socket is simply closed.
    for (int i = 0; i < 5; ++i) {
      it::RawClient c = it::RawClient::tcp(env().proxy->port());
      c.send(full.substr(0, full.size() / 2));
      c.close();
    }
  });
  CHECK(metric("pgphase_backend_connections_total") == backends_before);
}

TEST_CASE("message length below 4 after authentication", "[bad_input]") {
  const double before = metric("pgphase_protocol_errors_total", {{"kind", "length_too_short"}});
  with_neighbour([&] {
    for (int32_t len : {0, 3}) {
      INFO("length " << len);
      require_protocol_violation(after_auth("rob_short", "Q" + wire::i32(len)), "length");
      CHECK(wait_backends_gone(env().direct, "rob_short"));
    }
  });
  CHECK(metric("pgphase_protocol_errors_total", {{"kind", "length_too_short"}}) == before + 2);
}

TEST_CASE("message length over --max-message-size", "[bad_input]") {
  // Control: a 512 KiB Query, under the 1 MiB limit, goes through.
  {
    it::RawClient c = raw_session("rob_big_ok");
    c.send(wire::query("SELECT length('" + std::string(512 * 1024, 'x') + "')"));
    const auto msgs = c.read_until_ready();
    REQUIRE(it::types(msgs) == "TDCZ");
    CHECK(msgs[1].columns()[0] == "524288");
  }
  const double before = metric("pgphase_protocol_errors_total", {{"kind", "length_too_long"}});
  with_neighbour([&] {
    // A Query header claiming 2 MiB, followed by the start of its body.
    const std::string header = "Q" + wire::i32(2 * 1024 * 1024 + 4);
    require_protocol_violation(after_auth("rob_too_long", header + "SELECT 1 /* ..."), "length");
    CHECK(wait_backends_gone(env().direct, "rob_too_long"));
  });
  CHECK(metric("pgphase_protocol_errors_total", {{"kind", "length_too_long"}}) == before + 1);
}

TEST_CASE("--max-message-size guards clients only: larger rows from the server pass",
          "[bad_input]") {
  // PostgreSQL may send a DataRow larger than the client-side cap; it must arrive intact.
  it::RawClient c = raw_session("rob_big_row");
  c.send(wire::query("SELECT repeat('x', 2000000), 'tail'"));
  const auto msgs = c.read_until_ready(10s);
  REQUIRE(it::types(msgs) == "TDCZ");
  CHECK(msgs[1].columns()[0] == std::string(2000000, 'x'));
  CHECK(msgs[1].columns()[1] == "tail");
}

TEST_CASE("unknown message type after authentication", "[bad_input]") {
  const double before = metric("pgphase_protocol_errors_total", {{"kind", "unknown_message_type"}});
  with_neighbour([&] {
    require_protocol_violation(after_auth("rob_type_z", wire::message('z', "hello")), "type");
    CHECK(wait_backends_gone(env().direct, "rob_type_z"));
    require_protocol_violation(after_auth("rob_type_nul", std::string(1, '\0') + wire::i32(4)),
                               "type");
    CHECK(wait_backends_gone(env().direct, "rob_type_nul"));
  });
  CHECK(metric("pgphase_protocol_errors_total", {{"kind", "unknown_message_type"}}) == before + 2);
}

TEST_CASE("unknown message type while a result streams to a client that does not read",
          "[bad_input]") {
  BadInputEnv& e = env();
  with_neighbour([&] {
    it::RawClient c = raw_session("rob_type_busy");
    c.send(wire::query("SELECT repeat('x', 1000) FROM generate_series(1, 1000000)"));
    // The result fills the socket buffers; PostgreSQL then waits to write to pgphase.
    REQUIRE(it::wait_until(
        [&] {
          return e.direct.scalar(
                     "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                     "'rob_type_busy' AND wait_event = 'ClientWrite'") == "1";
        },
        10s, 50ms));
    c.send(wire::message('z', "hello"));
    // The backend goes although the client still has not read anything.
    CHECK(wait_backends_gone(e.direct, "rob_type_busy"));
    // Reading now gets part of the result and then the close, within a bounded time.
    std::string got;
    bool closed = false;
    const auto start = it::Clock::now();
    while (it::elapsed_ms(start) < 20000) {
      const std::string s = c.read_some(5s);
      if (s.empty()) {
        closed = true;
        break;
      }
      got += s;
    }
    INFO("received " << got.size() << " bytes");
    CHECK(closed);
    CHECK(got.size() < 1000u * 1000u * 1000u);  // not the whole result
    REQUIRE_FALSE(got.empty());
    CHECK(got[0] == 'T');
  });
}

TEST_CASE("a client that vanishes mid-transaction", "[bad_input]") {
  BadInputEnv& e = env();
  const auto visible = [&](const std::string& who) {
    return e.direct.scalar("SELECT count(*) FROM rob_vanish WHERE who = '" + who + "'");
  };
  // The server sees the INSERT's transaction open (it has an xid) until the client goes.
  const auto xid_assigned = [&](const std::string& app) {
    return e.direct.scalar(
               "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + app +
               "' AND state = 'idle in transaction' AND backend_xid IS NOT NULL") == "1";
  };

  SECTION("raw socket reset (SO_LINGER 0)") {
    with_neighbour([&] {
      it::RawClient c = raw_session("rob_vanish_rst");
      c.send(wire::query("BEGIN"));
      REQUIRE(it::types(c.read_until_ready()) == "CZ");
      c.send(wire::query("INSERT INTO rob_vanish VALUES (1, 'rst')"));
      const auto msgs = c.read_until_ready();
      REQUIRE(it::types(msgs) == "CZ");
      CHECK(msgs[0].tag() == "INSERT 0 1");
      CHECK(msgs[1].body == "T");
      REQUIRE(xid_assigned("rob_vanish_rst"));
      const linger hard{1, 0};
      REQUIRE(setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0);
      c.close();
      CHECK(wait_backends_gone(e.direct, "rob_vanish_rst"));
    });
    CHECK(visible("rst") == "0");
  }

  SECTION("psql killed with SIGKILL") {
    it::TempDir dir("psql");
    const std::string fifo = (dir / "script.sql").string();
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    with_neighbour([&] {
      it::SpawnOptions spawn;
      spawn.stderr_path = (dir / "psql.err").string();
      it::Child psql(
          {it::pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
           e.proxy->conninfo("postgres", "postgres", "", "application_name=rob_vanish_psql"), "-f",
           fifo},
          spawn);
      int fd = -1;
      REQUIRE(it::wait_until([&] { return (fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK)) >= 0; },
                             10s));
      const std::string script = "BEGIN;\nINSERT INTO rob_vanish VALUES (2, 'psql');\n";
      REQUIRE(write(fd, script.data(), script.size()) == static_cast<ssize_t>(script.size()));
      INFO("psql stderr: " << it::read_file(dir / "psql.err"));
      REQUIRE(it::wait_until([&] { return xid_assigned("rob_vanish_psql"); }, 10s, 50ms));
      psql.signal(SIGKILL);
      CHECK(psql.wait(5s) == -SIGKILL);
      close(fd);
      CHECK(wait_backends_gone(e.direct, "rob_vanish_psql"));
    });
    CHECK(visible("psql") == "0");
  }
}

TEST_CASE("SSLRequest followed by plaintext in the same write", "[bad_input]") {
  // Control: pgphase has TLS configured and accepts a lone SSLRequest.
  {
    it::RawClient c = it::RawClient::tcp(env().proxy->port());
    c.send(wire::ssl_request());
    CHECK(c.read_exact(1) == "S");
  }
  const double before =
      metric("pgphase_protocol_errors_total", {{"kind", "unencrypted_data_after_ssl_request"}});
  const double backends_before = metric("pgphase_backend_connections_total");
  with_neighbour([&] {
    const std::string startup = wire::startup(
        {{"user", "postgres"}, {"database", "postgres"}, {"application_name", "rob_ssl_inject"}});
    require_protocol_violation(exchange(env().proxy->port(), wire::ssl_request() + startup),
                               "unencrypted data after SSL request");
  });
  CHECK(metric("pgphase_protocol_errors_total", {{"kind", "unencrypted_data_after_ssl_request"}}) ==
        before + 1);
  CHECK(metric("pgphase_backend_connections_total") == backends_before);
}

TEST_CASE("malformed and out-of-order extended messages while statements are rewritten",
          "[bad_input]") {
  if (!rewriting()) return;  // the rewriter's own decoders: only with a control plane
  with_neighbour([&] {
    it::RawClient c = raw_session("rob_ext");
    // A rewritten INSERT through Parse/Bind/Execute works, then garbage inside valid frames: a
    // Parse without its NUL terminators, a truncated Bind, a Bind of an unknown statement, an
    // Execute of an unknown portal. The server answers each with an error; nothing crashes.
    c.send(wire::parse("ins", "INSERT INTO rob_mig VALUES ($1, 'x')") +
           wire::bind("", "ins", {"1"}) + wire::execute("") + wire::sync());
    auto msgs = c.read_until_ready();
    CHECK(it::types(msgs) == "12CZ");
    CHECK(msgs[2].tag() == "INSERT 0 1");
    c.send(wire::message('P', "bad\x01INSERT INTO rob_mig VALUES (2)") + wire::sync());
    msgs = c.read_until_ready();
    CHECK(it::types(msgs) == "EZ");
    c.send(wire::message('B', std::string("\0ins\0\0\x01", 7)) + wire::sync());
    msgs = c.read_until_ready();
    CHECK(it::types(msgs) == "EZ");
    c.send(wire::bind("", "nosuch", {}) + wire::execute("nosuch_portal") + wire::sync());
    msgs = c.read_until_ready();
    CHECK(it::types(msgs) == "EZ");
    c.send(wire::message('D', "X") + wire::message('C', "Pnope") + wire::sync());
    msgs = c.read_until_ready();
    CHECK(it::types(msgs).back() == 'Z');
    // The session still answers exactly, and the rewritten statement still mirrors.
    c.send(wire::bind("", "ins", {"3"}) + wire::execute("") + wire::sync());
    msgs = c.read_until_ready();
    CHECK(it::types(msgs) == "2CZ");
    c.send(wire::query("SELECT count(*) FROM t_sys_rob_mig"));
    msgs = c.read_until_ready();
    REQUIRE(it::types(msgs) == "TDCZ");
    CHECK(msgs[1].columns()[0] == "2");
  });
}
