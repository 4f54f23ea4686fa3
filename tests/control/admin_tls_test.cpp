// HTTPS on the admin port (--admin-tls-cert/--admin-tls-key, or admin_tls_cert/admin_tls_key in
// the config file): the CLI verifies the certificate against --admin-ca / $PGPHASE_ADMIN_CA and
// refuses an unknown one; plain HTTP to the TLS port gets no answer and leaves it serving; the
// console and /metrics are served over TLS too; half a pair or an unreadable file refuses to
// start with the reason.
#include <catch2/catch.hpp>

#include "ctl_env.h"
#include "harness/process.h"
#include "harness/proxy_process.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

std::string https_url(const it::ProxyProcess& p) {
  return "https://127.0.0.1:" + std::to_string(p.admin_port());
}

std::string free_endpoint() {
  return "127.0.0.1:" + std::to_string(it::free_port());
}

}  // namespace

TEST_CASE("the admin port speaks HTTPS and the CLI verifies it") {
  const auto pg = start_cluster();
  const it::TempDir certs("admin-tls");
  const it::CertPair cert = it::make_self_signed_cert(certs.path(), "admin");
  const it::CertPair other = it::make_self_signed_cert(certs.path(), "other");
  ServeOptions o = serve_on(*pg);
  o.extra_args = {"--admin-tls-cert", cert.cert.string(), "--admin-tls-key", cert.key.string()};
  const auto p = start_pgphase(o);
  CHECK(it::contains(p->stderr_text(), "admin API on https://"));

  // The CLI with the CA: a change and a read.
  const it::RunResult reg = cli({"migration", "register", "--migration-id", "tls_mig",
                                 "--source-table", "tls_src", "--target-table", "t_sys_tls_src",
                                 "--admin-url", https_url(*p), "--admin-ca", cert.cert.string()});
  INFO(reg.describe());
  REQUIRE(reg.ok());
  const it::RunResult list = cli({"migration", "list", "--admin-url", https_url(*p)},
                                 {"PGPHASE_ADMIN_CA=" + cert.cert.string()});
  INFO(list.describe());
  REQUIRE(list.ok());
  CHECK(it::contains(list.out, "tls_mig"));

  // A certificate the CLI does not trust: refused, nothing changed.
  for (const std::vector<std::string>& ca :
       {std::vector<std::string>{}, {"--admin-ca", other.cert.string()}}) {
    std::vector<std::string> args = {"migration", "set-phase",  "--migration-id", "tls_mig",
                                     "--phase",   "dual_write", "--admin-url",    https_url(*p)};
    args.insert(args.end(), ca.begin(), ca.end());
    const it::RunResult bad = cli(args, {}, {"PGPHASE_ADMIN_CA"});
    INFO(bad.describe());
    CHECK_FALSE(bad.ok());
    CHECK(it::icontains(bad.err, "certificate verify failed"));
  }
  CHECK(control_conn(*pg).scalar(
            "SELECT phase FROM t_sys_migrations WHERE migration_id = 'tls_mig'") == "preparation");

  // Plain HTTP to the TLS port: no HTTP answer, and the port keeps serving.
  const it::RunResult plain =
      it::run({"curl", "-sS", "--max-time", "5",
               "http://127.0.0.1:" + std::to_string(p->admin_port()) + "/healthz"});
  CHECK_FALSE(plain.ok());
  const std::string cacert = cert.cert.string();
  for (const std::string path : {"/healthz", "/metrics", "/"}) {
    const it::RunResult r = it::run(
        {"curl", "-sS", "--fail", "--max-time", "10", "--cacert", cacert, https_url(*p) + path});
    INFO(path << ": " << r.describe());
    CHECK(r.ok());
  }
  const it::RunResult metrics =
      it::run({"curl", "-sS", "--max-time", "10", "--cacert", cacert, https_url(*p) + "/metrics"});
  CHECK(it::contains(metrics.out, "pgphase_client_connections"));
  stop_pgphase(*p);
}

TEST_CASE("admin TLS settings are refused at start when half set or unreadable") {
  const auto pg = start_cluster();
  const it::TempDir certs("admin-tls-bad");
  const it::CertPair cert = it::make_self_signed_cert(certs.path(), "admin");
  const std::string bin = it::ProxyProcess::binary();
  const std::string backend = pg->tcp_endpoint();
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--admin-tls-cert", cert.cert.string()},
       "set both admin_tls_cert and admin_tls_key or neither"},
      {{"--admin-tls-key", cert.key.string()},
       "set both admin_tls_cert and admin_tls_key or neither"},
      {{"--admin-tls-cert", cert.cert.string(), "--admin-tls-key",
        (certs.path() / "missing.key").string()},
       "admin_tls_key: cannot read"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {bin,       "serve",         "--listen",  free_endpoint(),
                                     "--admin", free_endpoint(), "--backend", backend};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const it::RunResult r = it::run(argv, {.timeout = std::chrono::seconds(20)});
    INFO(r.describe());
    CHECK(r.exit_code == 2);
    CHECK(it::contains(r.err, c.message));
  }
  // A key that is not the certificate's: the admin port cannot be served; pgphase says so.
  const it::CertPair other = it::make_self_signed_cert(certs.path(), "other");
  std::vector<std::string> argv = {bin,
                                   "serve",
                                   "--listen",
                                   free_endpoint(),
                                   "--admin",
                                   free_endpoint(),
                                   "--backend",
                                   backend,
                                   "--admin-tls-cert",
                                   cert.cert.string(),
                                   "--admin-tls-key",
                                   other.key.string()};
  const it::RunResult mismatch = it::run(argv, {.timeout = std::chrono::seconds(20)});
  INFO(mismatch.describe());
  CHECK(mismatch.exit_code != 0);
  CHECK(it::contains(mismatch.err, "cannot serve the admin API"));
}
