// A real, throwaway PostgreSQL 15 cluster per test process (never a mock).
//
// PgCluster initdbs a cluster in a fresh TempDir (owned by the `postgres` OS user when the tests
// run as root), starts `postgres` on a free TCP port on 127.0.0.1 with its unix socket in the
// same directory, and creates the test roles below. The destructor (or stop()) stops it with
// `pg_ctl stop -m immediate` and deletes the directory; if the test process dies instead, the
// postmaster gets SIGQUIT (immediate shutdown) through PR_SET_PDEATHSIG.
//
// pg_hba.conf, for both TCP 127.0.0.1 and the unix socket:
//   postgres    trust           (also for replication connections, so that a proxy that forwards
//   u_password  password         them would be caught: PostgreSQL itself would accept them)
//   u_md5       md5             (its password is stored as an md5 hash)
//   u_scram     scram-sha-256
//   any other role: scram-sha-256
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "harness/pg_conn.h"
#include "harness/process.h"
#include "harness/util.h"

namespace pgphase::it {

struct TestRole {
  const char* name;
  const char* password;  // nullptr for trust
  const char* method;    // the pg_hba.conf method, also what PostgreSQL logs as "method="
};
inline constexpr TestRole kTrustRole{"postgres", nullptr, "trust"};
inline constexpr TestRole kPasswordRole{"u_password", "pw-cleartext-1", "password"};
inline constexpr TestRole kMd5Role{"u_md5", "pw-md5-2", "md5"};
inline constexpr TestRole kScramRole{"u_scram", "pw-scram-3", "scram-sha-256"};
inline constexpr std::array<TestRole, 4> kTestRoles{kTrustRole, kPasswordRole, kMd5Role,
                                                    kScramRole};

struct PgClusterOptions {
  bool ssl = false;  // ssl=on with a self-signed certificate generated into the data directory
  bool log_connections = true;  // log_connections=on: the log names each session's auth method
  int max_connections = 60;
  std::vector<std::string> extra_conf;  // lines appended to postgresql.conf
  std::vector<std::string> extra_hba;   // lines placed before the default pg_hba.conf rules
  std::vector<std::string> setup_sql;   // run as postgres (database postgres) once started
  std::chrono::milliseconds start_timeout{60000};
};

class PgCluster {
 public:
  explicit PgCluster(PgClusterOptions options = {});  // initdb + start; throws with the log tail
  static std::unique_ptr<PgCluster> start(PgClusterOptions options = {});
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  [[nodiscard]] uint16_t port() const noexcept { return port_; }
  [[nodiscard]] std::string socket_dir() const { return dir_.str(); }
  // <socket_dir>/.s.PGSQL.<port>
  [[nodiscard]] std::string socket_path() const;
  [[nodiscard]] std::string data_dir() const;
  // --backend values for pgphase: "127.0.0.1:<port>" and "unix:<socket_path>".
  [[nodiscard]] std::string tcp_endpoint() const;
  [[nodiscard]] std::string unix_endpoint() const;
  [[nodiscard]] bool ssl() const noexcept { return options_.ssl; }

  // Direct (not proxied) conninfo over TCP 127.0.0.1, or over the unix socket. `extra` is
  // appended verbatim ("sslmode=require application_name=x").
  [[nodiscard]] std::string conninfo(const std::string& db = "postgres",
                                     const std::string& user = "postgres",
                                     const std::string& password = "",
                                     const std::string& extra = "") const;
  [[nodiscard]] std::string unix_conninfo(const std::string& db = "postgres",
                                          const std::string& user = "postgres",
                                          const std::string& password = "",
                                          const std::string& extra = "") const;
  // A direct libpq connection (TCP).
  [[nodiscard]] PgConn connect(const std::string& db = "postgres",
                               const std::string& user = "postgres",
                               const std::string& password = "") const;
  // Runs `sql` with psql (-X -A -t -q, ON_ERROR_STOP) as role postgres and returns stdout
  // (unaligned, tuples only, '|' between columns). Throws with psql's stderr on failure.
  std::string psql(const std::string& sql, const std::string& db = "postgres") const;

  // The server log (postgres' stderr).
  [[nodiscard]] std::string log() const;
  [[nodiscard]] std::string log_tail(size_t lines = 40) const;
  [[nodiscard]] bool running();
  // pg_ctl stop -m immediate, then reap; idempotent. The directory goes with the destructor.
  void stop() noexcept;

 private:
  void init_cluster();
  void launch();
  void create_roles();
  PgClusterOptions options_;
  TempDir dir_;
  uint16_t port_ = 0;
  Child postmaster_;
};

}  // namespace pgphase::it
