// Transparent authentication through pgphase: trust, cleartext password, md5 and SCRAM-SHA-256,
// with the right and the wrong password, to a TCP backend and to a unix-socket backend. The
// cluster log (log_connections) proves which method PostgreSQL actually used.
#include <catch2/catch.hpp>

#include "harness/harness.h"

using namespace pgphase::it;

namespace {

ProxyOptions debug_logging(ProxyOptions o) {
  o.log_level = "debug";  // the most verbose level, to show that even it logs no secrets
  return o;
}

struct AuthEnv {
  std::unique_ptr<PgCluster> pg = PgCluster::start();
  std::unique_ptr<ProxyProcess> tcp =
      std::make_unique<ProxyProcess>(debug_logging(ProxyOptions::tcp(*pg)));
  std::unique_ptr<ProxyProcess> unix_sock =
      std::make_unique<ProxyProcess>(ProxyOptions::unix_socket(*pg));
};

AuthEnv& env() {
  static AuthEnv e;
  return e;
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

// What PostgreSQL 15 logs once a password method succeeded.
std::string auth_log_line(const TestRole& role) {
  return std::string("connection authenticated: identity=\"") + role.name +
         "\" method=" + role.method;
}

void check_role(ProxyProcess& proxy, const TestRole& role, bool unix_backend) {
  PgCluster& pg = *env().pg;
  const std::string pw = role.password != nullptr ? role.password : "";
  const std::string logged = auth_log_line(role);
  const size_t logged_before = count(pg.log(), logged);

  const PgConn good = proxy.connect("postgres", role.name, pw);
  INFO("connect error: " << good.error_message());
  REQUIRE(good.ok());
  CHECK(good.scalar("SELECT current_user") == role.name);
  CHECK(good.scalar("SELECT inet_client_addr() IS NULL") == (unix_backend ? "t" : "f"));
  CHECK(PQconnectionUsedPassword(good.get()) == (role.password != nullptr ? 1 : 0));
  if (role.password != nullptr) {
    CHECK(wait_until([&] { return count(pg.log(), logged) == logged_before + 1; }, 3s));
  }

  if (role.password == nullptr) return;  // trust has no wrong password
  const PgConn bad = proxy.connect("postgres", role.name, pw + "-wrong");
  REQUIRE_FALSE(bad.ok());
  INFO("wrong-password error: " << bad.error_message());
  CHECK(bad.connect_sqlstate() == "28P01");
  CHECK(contains(bad.error_message(),
                 std::string("password authentication failed for user \"") + role.name + "\""));

  const PgConn none = proxy.connect("postgres", role.name, "");
  REQUIRE_FALSE(none.ok());
  INFO("no-password error: " << none.error_message());
  CHECK(contains(none.error_message(), "no password supplied"));
}

}  // namespace

TEST_CASE("each auth method through pgphase to a TCP backend", "[auth]") {
  for (const TestRole& role : kTestRoles) {
    SECTION(role.method) {
      check_role(*env().tcp, role, false);
    }
  }
}

TEST_CASE("each auth method through pgphase to a unix-socket backend", "[auth]") {
  for (const TestRole& role : kTestRoles) {
    SECTION(role.method) {
      check_role(*env().unix_sock, role, true);
    }
  }
}

TEST_CASE("the cluster enforces the expected methods when connected to directly", "[auth]") {
  // Guards the fixture: the md5 role really has an md5 hash, scram a SCRAM verifier.
  const PgConn c = env().pg->connect();
  REQUIRE(c.ok());
  CHECK(c.scalar("SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'u_md5'") == "md5");
  CHECK(c.scalar("SELECT left(rolpassword, 13) FROM pg_authid WHERE rolname = 'u_scram'") ==
        "SCRAM-SHA-256");
  const PgConn direct_bad = env().pg->connect("postgres", kMd5Role.name, "nope");
  REQUIRE_FALSE(direct_bad.ok());
  CHECK(direct_bad.connect_sqlstate() == "28P01");
}

TEST_CASE("many sequential and concurrent SCRAM logins", "[auth]") {
  std::vector<PgConn> open;
  for (int i = 0; i < 10; ++i) {
    open.push_back(env().tcp->connect("postgres", kScramRole.name, kScramRole.password));
    INFO("login " << i << ": " << open.back().error_message());
    REQUIRE(open.back().ok());
  }
  for (auto& c : open) CHECK(c.scalar("SELECT current_user") == kScramRole.name);
}

TEST_CASE("no password reaches pgphase's log, even at debug level", "[auth]") {
  for (const TestRole& role : kTestRoles) {
    if (role.password == nullptr) continue;
    PgConn good = env().tcp->connect("postgres", role.name, role.password);
    REQUIRE(good.ok());
    PgConn bad = env().tcp->connect("postgres", role.name, "wrong-secret-xyz");
    REQUIRE_FALSE(bad.ok());
  }
  const std::string log = env().tcp->stderr_text();
  CHECK(log.find("session: startup user=") != std::string::npos);  // debug lines were written
  for (const TestRole& role : kTestRoles) {
    if (role.password != nullptr) CHECK(log.find(role.password) == std::string::npos);
  }
  CHECK(log.find("wrong-secret-xyz") == std::string::npos);
}
