// A small libpq layer for the control plane: an RAII connection (connected asynchronously under a
// deadline, interruptible through a wake-up fd), parameterised statements with text parameters,
// a result wrapper, transactions, and one exception type (PgError) carrying the SQLSTATE.
// The conninfo is never logged or put in messages: describe() names only host, port and database.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pgphase::migration::pg {

// Every failure of this layer. sqlstate() is the server's SQLSTATE, or "08001"/"08006" for
// client-side connection failures; connection_lost() says the connection is unusable.
class PgError : public std::runtime_error {
 public:
  PgError(std::string sqlstate, const std::string& message, bool connection_lost)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)), lost_(connection_lost) {}
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }
  [[nodiscard]] bool connection_lost() const noexcept { return lost_; }

 private:
  std::string sqlstate_;
  bool lost_;
};

// A text parameter; nullopt is SQL NULL.
using Param = std::optional<std::string>;
[[nodiscard]] std::string param(double v);
[[nodiscard]] std::string param(int64_t v);
[[nodiscard]] std::string param(bool v);

class Result {
 public:
  explicit Result(PGresult* r) : r_(r, &PQclear) {}

  [[nodiscard]] int rows() const noexcept { return PQntuples(r_.get()); }
  [[nodiscard]] int cols() const noexcept { return PQnfields(r_.get()); }
  [[nodiscard]] bool is_null(int row, int col) const noexcept {
    return PQgetisnull(r_.get(), row, col) != 0;
  }
  // The column number of `name`; throws PgError when the result has no such column.
  [[nodiscard]] int column(const char* name) const;
  // Text values ("" for NULL) and conversions; conversions throw PgError on malformed text.
  [[nodiscard]] std::string str(int row, int col) const;
  [[nodiscard]] bool boolean(int row, int col) const;
  [[nodiscard]] int64_t int64(int row, int col) const;
  [[nodiscard]] double float64(int row, int col) const;
  [[nodiscard]] std::optional<double> opt_float64(int row, int col) const;
  // Rows affected by INSERT/UPDATE/DELETE (PQcmdTuples).
  [[nodiscard]] int64_t affected() const;

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> r_;
};

struct Notification {
  std::string channel;
  std::string payload;
  int backend_pid = 0;
};

class Connection {
 public:
  Connection() = default;
  // Connects within `timeout`. A readable `wake_fd` (>= 0) aborts the attempt (PgError). Adds
  // application_name=pgphase-control and TCP keepalive/user-timeout defaults that the conninfo
  // may override. A conninfo libpq cannot parse is refused without echoing it. A non-empty
  // `database` replaces the conninfo's dbname (same server and credentials, another database).
  static Connection open(const std::string& conninfo, std::chrono::milliseconds timeout,
                         int wake_fd = -1, const std::string& database = "");

  [[nodiscard]] bool ok() const noexcept;
  // ok(), after reading whatever an idle connection has received: a server that shut down or
  // restarted since the last use has sent a FATAL or closed the socket, which PQstatus() only
  // notices once something is read.
  [[nodiscard]] bool alive() noexcept;
  [[nodiscard]] PGconn* raw() const noexcept { return c_.get(); }
  [[nodiscard]] int socket() const noexcept { return c_ ? PQsocket(c_.get()) : -1; }
  // libpq's last error on this connection, on one line.
  [[nodiscard]] std::string error_message() const;
  // "host:port/dbname", for logs and messages.
  [[nodiscard]] std::string describe() const;
  void close() noexcept { c_.reset(); }
  // The longest exec()/receive() wait for the server's answer (0: no limit, the default). Past
  // it the connection is closed and PgError 08006 (connection lost) is thrown: a server that
  // stopped answering, or a network path that went silent without a reset (which TCP keepalives
  // and tcp_user_timeout do not see when something in between still acknowledges), must not
  // hold the caller forever. Set it above the session's statement_timeout.
  void set_answer_timeout(std::chrono::milliseconds t) noexcept { answer_timeout_ = t; }
  // What pgphase's own short control statements use unless configured otherwise: above the
  // 30 s statement_timeout of control sessions.
  static constexpr std::chrono::milliseconds kControlAnswerTimeout{35'000};

  // One statement with text parameters ($1, $2, ...; none: may be several statements). Throws
  // PgError unless it succeeded.
  Result exec(const std::string& sql, const std::vector<Param>& params = {});
  // The same in two halves, so that one thread can keep statements running on several
  // connections at once: send() dispatches (throws PgError if it cannot), receive() waits for the
  // statement's result (throws PgError unless it succeeded).
  void send(const std::string& sql, const std::vector<Param>& params = {});
  Result receive();

  // LISTEN support: reads what the socket has (false when the connection broke), then the
  // notifications received so far.
  bool consume_input() noexcept;
  std::vector<Notification> notifications();

 private:
  explicit Connection(PGconn* c) : c_(c, &PQfinish) {}
  [[noreturn]] void fail(PGresult* r) const;
  // Waits until the answer of the statement sent can be read without blocking (answer_timeout_).
  void await_answer();
  std::unique_ptr<PGconn, decltype(&PQfinish)> c_{nullptr, &PQfinish};
  std::chrono::milliseconds answer_timeout_{0};
};

// BEGIN on construction; ROLLBACK on destruction unless commit() ran (errors ignored there).
class Transaction {
 public:
  explicit Transaction(Connection& c, const std::string& begin = "BEGIN");
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();
  void rollback() noexcept;

 private:
  Connection& c_;
  bool open_ = true;
};

}  // namespace pgphase::migration::pg
