#include "harness/pg_conn.h"

#include <poll.h>

#include <regex>
#include <stdexcept>

#include "harness/util.h"

namespace pgphase::it {

ExecStatusType PgResult::status() const noexcept {
  return r_ ? PQresultStatus(r_.get()) : PGRES_FATAL_ERROR;
}

std::string PgResult::status_name() const {
  return r_ ? PQresStatus(status()) : "(null result)";
}

bool PgResult::ok() const noexcept {
  return status() == PGRES_COMMAND_OK || status() == PGRES_TUPLES_OK;
}

std::string PgResult::field(int code) const {
  const char* v = r_ ? PQresultErrorField(r_.get(), code) : nullptr;
  return v != nullptr ? v : "";
}

std::string PgResult::error_message() const {
  return r_ ? PQresultErrorMessage(r_.get()) : "(null result)";
}

int PgResult::rows() const noexcept {
  return r_ ? PQntuples(r_.get()) : 0;
}
int PgResult::cols() const noexcept {
  return r_ ? PQnfields(r_.get()) : 0;
}

std::string PgResult::value(int row, int col) const {
  if (!r_ || row >= rows() || col >= cols()) {
    throw std::out_of_range("PgResult::value(" + std::to_string(row) + "," + std::to_string(col) +
                            ") out of range: " + describe());
  }
  return std::string(PQgetvalue(r_.get(), row, col),
                     static_cast<size_t>(PQgetlength(r_.get(), row, col)));
}

bool PgResult::is_null(int row, int col) const noexcept {
  return r_ && PQgetisnull(r_.get(), row, col) != 0;
}

std::string PgResult::cmd_status() const {
  return r_ ? PQcmdStatus(r_.get()) : "";
}

std::string PgResult::describe() const {
  std::string out = status_name();
  if (!sqlstate().empty()) out += " [" + sqlstate() + "]";
  const std::string msg = trim(error_message());
  if (!msg.empty()) out += " " + msg;
  return out;
}

PgConn PgConn::connect(const std::string& conninfo, std::chrono::milliseconds timeout) {
  harness_init();
  PgConn conn;
  conn.c_.reset(PQconnectStart(conninfo.c_str()), &PQfinish);
  PGconn* c = conn.c_.get();
  if (c == nullptr) throw std::bad_alloc();
  PQsetErrorVerbosity(c, PQERRORS_VERBOSE);
  const auto deadline = Clock::now() + timeout;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      conn.failure_ = "connection not established within " + std::to_string(timeout.count()) +
                      " ms (" + conninfo + "): " + PQerrorMessage(c);
      conn.c_.reset();
      return conn;
    }
    pollfd p{PQsocket(c), static_cast<short>(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    if (p.fd >= 0) poll(&p, 1, static_cast<int>(std::min<long>(left, 100)));
    st = PQconnectPoll(c);
  }
  if (PQstatus(c) == CONNECTION_OK) PQsetErrorVerbosity(c, PQERRORS_DEFAULT);
  return conn;
}

bool PgConn::ok() const noexcept {
  return c_ && PQstatus(c_.get()) == CONNECTION_OK;
}

std::string PgConn::error_message() const {
  if (!failure_.empty()) return failure_;
  return c_ ? PQerrorMessage(c_.get()) : "(no connection)";
}

std::string PgConn::connect_sqlstate() const {
  // Verbose messages read "FATAL:  28P01: password authentication failed ...".
  static const std::regex re("(?:FATAL|ERROR|PANIC):  ([0-9A-Z]{5}): ");
  std::smatch m;
  const std::string msg = error_message();
  return std::regex_search(msg, m, re) ? m[1].str() : "";
}

PgResult PgConn::exec(const std::string& sql) const {
  return PgResult(PQexec(get(), sql.c_str()));
}

PgResult PgConn::exec_params(const std::string& sql,
                             const std::vector<std::optional<std::string>>& params) const {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return PgResult(PQexecParams(get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
}

PgResult PgConn::exec_ok(const std::string& sql) const {
  PgResult r = exec(sql);
  if (!r.ok()) throw std::runtime_error("query failed: " + sql + ": " + r.describe());
  return r;
}

std::string PgConn::scalar(const std::string& sql) const {
  PgResult r = exec_ok(sql);
  if (r.rows() < 1 || r.cols() < 1) throw std::runtime_error("query returned no rows: " + sql);
  return r.value(0, 0);
}

std::vector<PgResult> PgConn::results() const {
  std::vector<PgResult> out;
  while (PGresult* r = PQgetResult(get())) out.emplace_back(r);
  return out;
}

PGTransactionStatusType PgConn::tx_status() const noexcept {
  return c_ ? PQtransactionStatus(c_.get()) : PQTRANS_UNKNOWN;
}

std::string PgConn::parameter(const char* name) const {
  const char* v = c_ ? PQparameterStatus(c_.get(), name) : nullptr;
  return v != nullptr ? v : "";
}

int PgConn::backend_pid() const noexcept {
  return c_ ? PQbackendPID(c_.get()) : 0;
}

int PgConn::server_pid() const {
  return std::stoi(scalar("SELECT pg_backend_pid()"));
}

std::string make_conninfo(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    std::string quoted;
    for (char ch : v) {
      if (ch == '\'' || ch == '\\') quoted += '\\';
      quoted += ch;
    }
    out += (out.empty() ? "" : " ") + k + "='" + quoted + "'";
  }
  return out;
}

}  // namespace pgphase::it
