// Mixed concurrent writes through pgphase with the migration in dual_write: pgbench custom
// scripts (7 clients, extended and prepared protocol) plus a libpq client in explicit
// transactions with savepoints, 30 s, with serial ids, now(), random(), clock_timestamp() and
// ON CONFLICT. Afterwards source and target are equal row for row.
#include <catch2/catch.hpp>
#include <thread>

#include "dw_env.h"

using namespace pgphase;
using namespace pgphase::dw;

namespace {

constexpr const char* kScript = R"(\set uid random(1, 3000)
\set amt random(1, 1000)
INSERT INTO users (name, email, amount) VALUES ('pgb', 'u' || :uid || '@x', :amt) ON CONFLICT (email) DO UPDATE SET amount = users.amount + EXCLUDED.amount, name = 'upserted';
UPDATE users SET score = random(), created_at = now() WHERE id = :uid;
INSERT INTO users (name, score) VALUES ('plain', random()) RETURNING id, created_at;
DELETE FROM users WHERE id = :uid + 7 AND amount < 300;
UPDATE users SET amount = amount + 1 WHERE id BETWEEN :uid AND :uid + 2 RETURNING id;
)";

}  // namespace

TEST_CASE("8 concurrent writers for 30 s leave source and target equal") {
  Env& e = env();
  reset_tables(e.direct);
  it::TempDir dir("dwconc");
  const std::string script = dir.str() + "/mixed.sql";
  it::write_file(script, kScript);

  std::atomic<bool> stop{false};
  std::atomic<long> client_ops{0};
  std::string client_error;
  std::thread writer([&] {
    try {
      const it::PgConn c = e.proxied();
      long i = 0;
      while (!stop) {
        ++i;
        c.exec_ok("BEGIN");
        c.exec_params("INSERT INTO users (name, amount) VALUES ($1, $2)",
                      {"libpq" + std::to_string(i), std::to_string(i % 500)});
        c.exec_ok("SAVEPOINT s");
        c.exec_ok(
            "UPDATE users SET touched_by = 'x', amount = amount * 2 WHERE id = (SELECT "
            "max(id) FROM users)");
        if (i % 3 == 0) {
          c.exec_ok("ROLLBACK TO SAVEPOINT s");
        } else {
          c.exec_ok("RELEASE SAVEPOINT s");
        }
        if (i % 5 == 0) {
          c.exec_params("DELETE FROM users WHERE id = $1", {std::to_string(i)});
        }
        c.exec_ok(i % 7 == 0 ? "ROLLBACK" : "COMMIT");
        ++client_ops;
      }
    } catch (const std::exception& ex) {
      client_error = ex.what();
    }
  });

  const auto port = std::to_string(e.stack.proxy->port());
  std::vector<std::thread> benches;
  std::vector<it::RunResult> results(2);
  const std::vector<std::pair<std::string, std::string>> runs = {{"extended", "4"},
                                                                 {"prepared", "3"}};
  for (size_t k = 0; k < runs.size(); ++k) {
    benches.emplace_back([&, k] {
      results[k] = it::run({it::pg_tool("pgbench"),
                            "-n",
                            "-T",
                            "30",
                            "-c",
                            runs[k].second,
                            "-j",
                            "1",
                            "-M",
                            runs[k].first,
                            "--max-tries=20",
                            "-f",
                            script,
                            "-h",
                            "127.0.0.1",
                            "-p",
                            port,
                            "-U",
                            "postgres",
                            kControlDb},
                           {.timeout = std::chrono::seconds(120)});
    });
  }
  for (auto& t : benches) t.join();
  stop = true;
  writer.join();
  INFO("libpq client: " << client_error);
  CHECK(client_error.empty());
  CHECK(client_ops > 10);
  for (const auto& r : results) {
    INFO(r.describe());
    CHECK(r.ok());
    CHECK(r.out.find("number of transactions actually processed") != std::string::npos);
  }
  const long rows = std::stol(e.direct.scalar("SELECT count(*) FROM users"));
  WARN("rows after the run: " << rows << ", libpq transactions: " << client_ops);
  CHECK(rows > 100);
  CHECK(differences(e.direct, "users", "t_sys_users") == 0);
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_users") == std::to_string(rows));
}
