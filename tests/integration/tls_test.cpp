// TLS on both sides of pgphase: client TLS termination with a self-signed certificate, 'N' to
// SSLRequest/GSSENCRequest when not configured, SCRAM without channel binding through a
// TLS-terminating proxy, and backend TLS disable/prefer/require against ssl=on/off clusters.
#include <catch2/catch.hpp>

#include "harness/harness.h"

using namespace pgphase::it;

namespace {

struct TlsEnv {
  std::unique_ptr<PgCluster> plain = PgCluster::start();
  std::unique_ptr<PgCluster> ssl = PgCluster::start({.ssl = true});
  TempDir certs{"certs"};
  CertPair proxy_cert = make_self_signed_cert(certs.path(), "pgphase");
};

TlsEnv& env() {
  static TlsEnv e;
  return e;
}

ProxyOptions with_client_tls(ProxyOptions o) {
  o.tls_cert = env().proxy_cert.cert.string();
  o.tls_key = env().proxy_cert.key.string();
  return o;
}

ProxyOptions with_backend_tls(ProxyOptions o, const char* mode) {
  o.backend_tls = mode;
  return o;
}

// ssl column of pg_stat_ssl for the session's real backend: whether pgphase->PostgreSQL is TLS.
std::string backend_ssl(const PgConn& c) {
  return c.scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
}

}  // namespace

TEST_CASE("client TLS is terminated by pgphase", "[tls]") {
  ProxyProcess proxy(with_client_tls(ProxyOptions::tcp(*env().plain)));
  for (const TestRole& role : kTestRoles) {
    INFO("role " << role.name);
    const PgConn c =
        proxy.connect("postgres", role.name, role.password ? role.password : "", "sslmode=require");
    INFO("error: " << c.error_message());
    REQUIRE(c.ok());
    CHECK(PQsslInUse(c.get()) == 1);
    const char* protocol = PQsslAttribute(c.get(), "protocol");
    REQUIRE(protocol != nullptr);
    CHECK(std::string(protocol).starts_with("TLSv1."));
    CHECK(c.scalar("SELECT current_user") == role.name);
    CHECK(backend_ssl(c) == "f");  // --backend-tls not given: plain to the backend
  }
  // The certificate the proxy presents is the configured one (verify-full against it).
  const PgConn verified =
      PgConn::connect(make_conninfo({{"host", "localhost"},
                                     {"hostaddr", "127.0.0.1"},
                                     {"port", std::to_string(proxy.port())},
                                     {"dbname", "postgres"},
                                     {"user", "postgres"},
                                     {"sslmode", "verify-full"},
                                     {"sslrootcert", env().proxy_cert.cert.string()}}));
  INFO("verify-full error: " << verified.error_message());
  REQUIRE(verified.ok());
  CHECK(PQsslInUse(verified.get()) == 1);
  // Large rows through the TLS relay.
  CHECK(verified.scalar("SELECT length(repeat('x', 3000000))") == "3000000");
  const PgResult big =
      verified.exec("SELECT repeat(md5(i::text), 200) FROM generate_series(1, 300) i");
  REQUIRE(big.status() == PGRES_TUPLES_OK);
  CHECK(big.rows() == 300);
  CHECK(big.value(299, 0).size() == 6400);
}

TEST_CASE("SCRAM through client TLS and backend TLS: no channel binding is offered",
          "[tls][scram]") {
  ProxyProcess proxy(with_client_tls(with_backend_tls(ProxyOptions::tcp(*env().ssl), "require")));
  // Directly, the ssl=on cluster offers SCRAM-SHA-256-PLUS and channel binding works.
  const PgConn direct = PgConn::connect(env().ssl->conninfo(
      "postgres", kScramRole.name, kScramRole.password, "sslmode=require channel_binding=require"));
  INFO("direct error: " << direct.error_message());
  REQUIRE(direct.ok());

  // The client's TLS channel ends at pgphase, so pgphase must not offer SCRAM-SHA-256-PLUS:
  // a client that insists on channel binding finds none on offer.
  const PgConn need_binding = proxy.connect("postgres", kScramRole.name, kScramRole.password,
                                            "sslmode=require channel_binding=require");
  REQUIRE_FALSE(need_binding.ok());
  INFO("channel_binding=require error: " << need_binding.error_message());
  CHECK(contains(need_binding.error_message(),
                 "server did not offer an authentication method that supports channel binding"));

  // Without channel binding SCRAM works over TLS on both legs.
  const PgConn c = proxy.connect("postgres", kScramRole.name, kScramRole.password,
                                 "sslmode=require channel_binding=disable");
  INFO("error: " << c.error_message());
  REQUIRE(c.ok());
  CHECK(PQsslInUse(c.get()) == 1);
  CHECK(c.scalar("SELECT current_user") == kScramRole.name);
  CHECK(backend_ssl(c) == "t");

  const PgConn wrong = proxy.connect("postgres", kScramRole.name, "wrong",
                                     "sslmode=require channel_binding=disable");
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.connect_sqlstate() == "28P01");

  // Known limitation, inherent to a proxy that holds no credentials: libpq's default
  // (channel_binding=prefer) over TLS sends the gs2 flag 'y' ("client supports binding, server
  // does not seem to"); PostgreSQL on a TLS connection treats that as a downgrade attack, and the
  // flag is covered by the client's proof, so pgphase cannot rewrite it. PostgreSQL's own error
  // must reach the client.
  const PgConn prefer = proxy.connect("postgres", kScramRole.name, kScramRole.password,
                                      "sslmode=require channel_binding=prefer");
  REQUIRE_FALSE(prefer.ok());
  INFO("channel_binding=prefer error: " << prefer.error_message());
  CHECK(prefer.connect_sqlstate() == "28000");
  CHECK(contains(prefer.error_message(), "SCRAM channel binding negotiation error"));
}

TEST_CASE("SCRAM with libpq defaults through client TLS to a plain backend", "[tls][scram]") {
  ProxyProcess proxy(with_client_tls(ProxyOptions::tcp(*env().plain)));
  const PgConn c = proxy.connect("postgres", kScramRole.name, kScramRole.password,
                                 "sslmode=require");  // channel_binding=prefer by default
  INFO("error: " << c.error_message());
  REQUIRE(c.ok());
  CHECK(PQsslInUse(c.get()) == 1);
  CHECK(c.scalar("SELECT current_user") == kScramRole.name);
}

TEST_CASE("without a certificate pgphase answers N to SSLRequest", "[tls]") {
  ProxyProcess proxy(ProxyOptions::tcp(*env().plain));
  const PgConn prefer = proxy.connect("postgres", "postgres", "", "sslmode=prefer");
  INFO("prefer error: " << prefer.error_message());
  REQUIRE(prefer.ok());
  CHECK(PQsslInUse(prefer.get()) == 0);
  CHECK(prefer.scalar("SELECT 1") == "1");

  const PgConn require = proxy.connect("postgres", "postgres", "", "sslmode=require");
  REQUIRE_FALSE(require.ok());
  INFO("require error: " << require.error_message());
  CHECK(contains(require.error_message(), "server does not support SSL"));

  RawClient raw = RawClient::tcp(proxy.port());
  raw.send(wire::ssl_request());
  CHECK(raw.read_exact(1) == "N");
  const auto msgs = raw.startup();
  CHECK(types(msgs).back() == 'Z');
}

TEST_CASE("GSSENCRequest is answered N and the session continues", "[tls][gss]") {
  ProxyProcess proxy(with_client_tls(ProxyOptions::tcp(*env().plain)));
  const PgConn c = proxy.connect("postgres", "postgres", "", "gssencmode=prefer sslmode=prefer");
  INFO("error: " << c.error_message());
  REQUIRE(c.ok());
  CHECK(c.scalar("SELECT 'gss ok'") == "gss ok");

  // libpq sends GSSENCRequest only with Kerberos credentials, so also send it by hand.
  RawClient raw = RawClient::tcp(proxy.port());
  raw.send(wire::gssenc_request());
  CHECK(raw.read_exact(1) == "N");
  raw.send(wire::ssl_request());  // PostgreSQL clients may try SSL next on the same socket
  CHECK(raw.read_exact(1) == "S");
  raw.close();

  RawClient plain = RawClient::tcp(proxy.port());
  plain.send(wire::gssenc_request());
  CHECK(plain.read_exact(1) == "N");
  const auto msgs = plain.startup();
  CHECK(types(msgs).back() == 'Z');
  plain.send(wire::query("SELECT 42"));
  const auto rows = plain.read_until_ready();
  REQUIRE(types(rows) == "TDCZ");
  CHECK(rows[1].columns().at(0).value_or("") == "42");
}

TEST_CASE("backend TLS require against an ssl=on cluster", "[tls][backend]") {
  ProxyProcess proxy(with_backend_tls(ProxyOptions::tcp(*env().ssl), "require"));
  for (const TestRole& role : kTestRoles) {
    INFO("role " << role.name);
    const PgConn c = proxy.connect("postgres", role.name, role.password ? role.password : "");
    INFO("error: " << c.error_message());
    REQUIRE(c.ok());
    CHECK(PQsslInUse(c.get()) == 0);  // client side is plain
    CHECK(backend_ssl(c) == "t");
    CHECK(c.scalar("SELECT version IS NOT NULL FROM pg_stat_ssl WHERE pid = pg_backend_pid()") ==
          "t");
  }
}

TEST_CASE("backend TLS require against an ssl=off cluster fails clearly", "[tls][backend]") {
  ProxyProcess proxy(with_backend_tls(ProxyOptions::tcp(*env().plain), "require"));
  const PgConn c = proxy.connect("postgres", "postgres", "", "application_name=it_require_plain");
  REQUIRE_FALSE(c.ok());
  const std::string msg = c.error_message();
  INFO("error: " << msg);
  CHECK((icontains(msg, "ssl") || icontains(msg, "tls")));
  CHECK(c.connect_sqlstate().starts_with("08"));  // class 08: connection exception
  // No session reached PostgreSQL without TLS (it would log the authorized connection).
  CHECK_FALSE(contains(env().plain->log(), "application_name=it_require_plain"));
  CHECK(proxy.running());
}

TEST_CASE("backend TLS prefer and disable", "[tls][backend]") {
  SECTION("prefer against ssl=off works in plain") {
    ProxyProcess proxy(with_backend_tls(ProxyOptions::tcp(*env().plain), "prefer"));
    const PgConn c = proxy.connect("postgres", kScramRole.name, kScramRole.password);
    INFO("error: " << c.error_message());
    REQUIRE(c.ok());
    CHECK(backend_ssl(c) == "f");
  }
  SECTION("prefer against ssl=on uses TLS") {
    ProxyProcess proxy(with_backend_tls(ProxyOptions::tcp(*env().ssl), "prefer"));
    const PgConn c = proxy.connect("postgres", kMd5Role.name, kMd5Role.password);
    INFO("error: " << c.error_message());
    REQUIRE(c.ok());
    CHECK(backend_ssl(c) == "t");
  }
  SECTION("disable against ssl=on stays plain") {
    ProxyProcess proxy(with_backend_tls(ProxyOptions::tcp(*env().ssl), "disable"));
    const PgConn c = proxy.connect();
    INFO("error: " << c.error_message());
    REQUIRE(c.ok());
    CHECK(backend_ssl(c) == "f");
  }
}
