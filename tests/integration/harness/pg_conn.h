// Thin RAII wrappers over libpq for the integration tests: PgConn (a connection) and PgResult.
// Connection failures never throw: check ok() and read error_message() / connect_sqlstate().
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pgphase::it {

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r, &PQclear) {}

  [[nodiscard]] PGresult* get() const noexcept { return r_.get(); }
  [[nodiscard]] explicit operator bool() const noexcept { return r_ != nullptr; }
  // PGRES_FATAL_ERROR for a null result.
  [[nodiscard]] ExecStatusType status() const noexcept;
  [[nodiscard]] std::string status_name() const;
  // PGRES_COMMAND_OK or PGRES_TUPLES_OK.
  [[nodiscard]] bool ok() const noexcept;
  // PQresultErrorField(code), "" when absent (e.g. PG_DIAG_SQLSTATE, PG_DIAG_MESSAGE_PRIMARY).
  [[nodiscard]] std::string field(int code) const;
  [[nodiscard]] std::string sqlstate() const { return field(PG_DIAG_SQLSTATE); }
  [[nodiscard]] std::string error_message() const;
  [[nodiscard]] int rows() const noexcept;
  [[nodiscard]] int cols() const noexcept;
  [[nodiscard]] std::string value(int row = 0, int col = 0) const;  // raw bytes, "" for NULL
  [[nodiscard]] bool is_null(int row, int col) const noexcept;
  [[nodiscard]] std::string cmd_status() const;  // "INSERT 0 2"
  // Status, SQLSTATE and message, for Catch2 INFO/failure messages.
  [[nodiscard]] std::string describe() const;

 private:
  std::shared_ptr<PGresult> r_;
};

class PgConn {
 public:
  PgConn() = default;
  // Connects with PQconnectStart/PQconnectPoll under `timeout`. The connection uses
  // PQERRORS_VERBOSE while connecting, so a server's startup error keeps its SQLSTATE in the
  // message; after a successful connect the verbosity is back to the default.
  static PgConn connect(const std::string& conninfo,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(15000));

  [[nodiscard]] bool ok() const noexcept;
  [[nodiscard]] PGconn* get() const noexcept { return c_.get(); }
  [[nodiscard]] std::string error_message() const;
  // SQLSTATE of the ErrorResponse that failed the connection ("28P01"), "" when the failure was
  // client-side (refused connection, TLS not offered, ...).
  [[nodiscard]] std::string connect_sqlstate() const;

  PgResult exec(const std::string& sql) const;
  // PQexecParams with text parameters (nullopt = NULL) and text results.
  PgResult exec_params(const std::string& sql,
                       const std::vector<std::optional<std::string>>& params) const;
  // Runs `sql` and throws std::runtime_error unless it succeeded.
  PgResult exec_ok(const std::string& sql) const;
  // The first column of the first row; throws unless `sql` returned at least one row.
  [[nodiscard]] std::string scalar(const std::string& sql) const;
  // Drains every pending PQgetResult (after PQsendQuery and friends).
  std::vector<PgResult> results() const;

  [[nodiscard]] PGTransactionStatusType tx_status() const noexcept;
  [[nodiscard]] std::string parameter(const char* name) const;  // PQparameterStatus, "" if unset
  // PQbackendPID: the process id from BackendKeyData (behind a proxy: the proxy's key).
  [[nodiscard]] int backend_pid() const noexcept;
  // pg_backend_pid() from the server: the real PostgreSQL backend process.
  [[nodiscard]] int server_pid() const;
  void close() noexcept { c_.reset(); }

 private:
  std::shared_ptr<PGconn> c_;
  std::string failure_;  // set when connect() timed out
};

// A conninfo string from key/value pairs; values are quoted as libpq expects.
[[nodiscard]] std::string make_conninfo(
    const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace pgphase::it
