// consistency_level eventual: a failed target write does not fail the client's statement; it is
// logged in t_sys_dual_write_logs (in the client's transaction: a rolled-back write leaves no log)
// and `pgphase migration repair` re-copies those keys from the source. Also allow_and_flag (the
// eventual default): a write pgphase cannot mirror passes and is recorded as a divergence.
#include <catch2/catch.hpp>
#include <thread>

#include "dw_env.h"

using namespace pgphase;
using namespace pgphase::dw;

namespace {

void setup_accounts(Env& e) {
  static bool done = false;
  if (done) return;
  done = true;
  e.direct.exec_ok(
      "CREATE TABLE accounts (id bigserial PRIMARY KEY, owner text, balance numeric(10,2) "
      "DEFAULT 0, opened timestamptz DEFAULT now());"
      "CREATE TABLE t_sys_accounts (id bigint PRIMARY KEY, owner text, balance numeric(10,2) "
      "CHECK (balance >= 0), opened timestamptz)");
  register_migration(e.stack.api, "acc_mig", "accounts", "t_sys_accounts",
                     {{"consistency_level", "eventual"}});
  set_phase(e.stack.api, "acc_mig", "dual_write");
}

std::string unrepaired(const Env& e) {
  return e.direct.scalar(
      "SELECT count(*) FROM t_sys_dual_write_logs WHERE migration_id = 'acc_mig' AND NOT "
      "target_success AND repaired_at IS NULL");
}

}  // namespace

TEST_CASE("eventual: a target failure is logged, the client's write succeeds, repair fixes it") {
  Env& e = env();
  setup_accounts(e);
  const it::PgConn c = e.proxied();
  auto r = c.exec("INSERT INTO accounts (owner, balance) VALUES ('ok', 10), ('bad', -5)");
  INFO(r.describe());
  CHECK(r.cmd_status() == "INSERT 0 2");
  // The whole batch failed on the target, in its own subtransaction.
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_accounts") == "0");
  CHECK(unrepaired(e) == "2");
  CHECK(e.direct.scalar("SELECT string_agg(record_id, ' ' ORDER BY record_id) FROM "
                        "t_sys_dual_write_logs WHERE migration_id = 'acc_mig'") ==
        "{\"id\": 1} {\"id\": 2}");
  CHECK(e.direct.scalar("SELECT bool_and(source_success) AND bool_and(error_message LIKE "
                        "'%violates check constraint%23514%') FROM t_sys_dual_write_logs WHERE "
                        "migration_id = 'acc_mig'") == "t");

  // Extended protocol, RETURNING, inside a transaction that goes on after the failure.
  c.exec_ok("BEGIN");
  r = c.exec_params("INSERT INTO accounts (owner, balance) VALUES ($1, $2) RETURNING id, owner",
                    {"bad2", "-1"});
  CHECK(r.cmd_status() == "INSERT 0 1");
  CHECK(r.value(0, 1) == "bad2");
  r = c.exec_params("UPDATE accounts SET balance = balance + 1 WHERE owner = $1", {"ok"});
  CHECK(r.cmd_status() == "UPDATE 1");
  c.exec_ok("COMMIT");
  CHECK(unrepaired(e) == "3");
  CHECK(e.direct.scalar("SELECT balance FROM t_sys_accounts WHERE owner = 'ok'") == "11.00");

  // A rolled-back write leaves no log: nothing to repair.
  c.exec_ok("BEGIN");
  c.exec_ok("INSERT INTO accounts (owner, balance) VALUES ('gone', -9)");
  c.exec_ok("ROLLBACK");
  CHECK(unrepaired(e) == "3");

  // Repair (after the cause is fixed) through the CLI.
  e.direct.exec_ok("UPDATE accounts SET balance = 0 WHERE balance < 0");
  e.direct.exec_ok("DELETE FROM accounts WHERE owner = 'bad2'");  // gone from the source
  e.direct.exec_ok(
      "INSERT INTO t_sys_accounts (id, owner, balance) SELECT id, owner, 0 FROM "
      "accounts WHERE owner = 'nobody'");
  const it::RunResult rr = cli({"migration", "repair", "--migration-id", "acc_mig", "--admin-url",
                                "http://127.0.0.1:" + std::to_string(e.stack.proxy->admin_port())});
  INFO(rr.describe());
  REQUIRE(rr.ok());
  CHECK(rr.out.find("repaired 3 failed dual writes") != std::string::npos);
  CHECK(unrepaired(e) == "0");
  CHECK(differences(e.direct, "accounts", "t_sys_accounts", "id, owner, balance, opened") == 0);
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_migration_logs WHERE migration_id = "
                        "'acc_mig' AND action = 'repair' AND status = 'success'") == "1");
  // Idempotent: nothing left.
  const it::HttpResponse again = e.stack.api.post("/api/v1/migrations/acc_mig/repair", "{}");
  CHECK(again.status == 200);
  CHECK(again.body.find("\"log_rows\":0") != std::string::npos);
  CHECK(e.stack.api.post("/api/v1/migrations/nope/repair", "{}").status == 404);
}

TEST_CASE("allow_and_flag: COPY into the source passes and is recorded as a divergence") {
  Env& e = env();
  setup_accounts(e);
  const it::PgConn c = e.proxied();
  const it::PgResult start(PQexec(c.get(), "COPY accounts (id, owner, balance) FROM STDIN"));
  INFO(start.describe());
  REQUIRE(start.status() == PGRES_COPY_IN);
  const std::string data = "900\tcopied\t1\n";
  REQUIRE(PQputCopyData(c.get(), data.data(), static_cast<int>(data.size())) == 1);
  REQUIRE(PQputCopyEnd(c.get(), nullptr) == 1);
  const auto results = c.results();
  REQUIRE_FALSE(results.empty());
  CHECK(results.front().cmd_status() == "COPY 1");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_accounts WHERE id = 900") == "0");
  const auto logged = time_until(
      [&] {
        return e.direct.scalar(
                   "SELECT count(*) FROM t_sys_migration_logs WHERE migration_id = "
                   "'acc_mig' AND action = 'unsupported_write' AND status = "
                   "'flagged'") != "0";
      },
      std::chrono::seconds(10), std::chrono::milliseconds(20));
  REQUIRE(logged.has_value());
  CHECK(e.direct
            .scalar("SELECT details->>'reason' FROM t_sys_migration_logs WHERE action = "
                    "'unsupported_write' LIMIT 1")
            .find("COPY FROM") != std::string::npos);
  const auto m = it::scrape_metrics(e.stack.proxy->admin_port());
  CHECK(m.value("pgphase_unsupported_writes_total",
                {{"migration_id", "acc_mig"}, {"action", "flagged"}})
            .value_or(0) >= 1);
}

TEST_CASE("eventual: a client role without rights on t_sys_dual_write_logs still gets its log") {
  Env& e = env();
  setup_accounts(e);
  e.direct.exec_ok(
      "DO $$ BEGIN CREATE ROLE acc_app; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
      "GRANT SELECT, INSERT, UPDATE, DELETE ON accounts, t_sys_accounts TO acc_app;"
      "GRANT USAGE ON SEQUENCE accounts_id_seq TO acc_app");
  const std::string before = unrepaired(e);
  const it::PgConn c = e.proxied();
  c.exec_ok("SET ROLE acc_app");
  const auto r = c.exec("INSERT INTO accounts (owner, balance) VALUES ('no rights', -3)");
  INFO(r.describe());
  CHECK(r.cmd_status() == "INSERT 0 1");
  CHECK(std::stol(unrepaired(e)) == std::stol(before) + 1);
  CHECK(c.exec("SELECT count(*) FROM t_sys_dual_write_logs").sqlstate() == "42501");
}
