#include "migration/pg_client.h"

#include <poll.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/log.h"

namespace pgphase::migration::pg {
namespace {

// libpq messages end with a newline and may span several lines (one per address tried, hints
// indented with tabs): one line, parts separated by "; ".
std::string clean(const char* text) {
  std::string out;
  if (text == nullptr) return out;
  bool pending_break = false;
  for (const char* p = text; *p != '\0'; ++p) {
    if (*p == '\n') {
      pending_break = true;
    } else if (*p == '\t' || *p == '\r') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      if (pending_break && !out.empty()) {
        while (!out.empty() && out.back() == ' ') out.pop_back();
        out += "; ";
      }
      pending_break = false;
      if (*p == ' ' && !out.empty() && out.back() == ' ') continue;
      out += *p;
    }
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == ';')) out.pop_back();
  return out;
}

// Notices and asynchronous errors (a FATAL sent to an idle connection at shutdown) go to the log
// instead of libpq's default, stderr.
void notice_to_log(void* /*arg*/, const char* message) {
  log::debug("control database notice: ", clean(message));
}

bool lost_state(std::string_view sqlstate) {
  // connection exceptions, admin/crash shutdown, cannot connect now
  return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" ||
         sqlstate == "57P03";
}

template <class T>
T parse_number(std::string_view text, const char* what) {
  T value{};
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size()) {
    throw PgError("22P02",
                  std::string("unexpected ") + what + " value \"" + std::string(text) +
                      "\" in a control database result",
                  false);
  }
  return value;
}

}  // namespace

std::string param(double v) {
  char buf[64];
  const auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc{} ? std::string(buf, ptr) : std::string("NaN");
}
std::string param(int64_t v) {
  return std::to_string(v);
}
std::string param(bool v) {
  return v ? "true" : "false";
}

// ---- Result ----------------------------------------------------------------------------------

int Result::column(const char* name) const {
  const int c = PQfnumber(r_.get(), name);
  if (c < 0) throw PgError("42703", std::string("result has no column ") + name, false);
  return c;
}

std::string Result::str(int row, int col) const {
  return std::string(PQgetvalue(r_.get(), row, col),
                     static_cast<size_t>(PQgetlength(r_.get(), row, col)));
}

bool Result::boolean(int row, int col) const {
  return str(row, col) == "t";
}

int64_t Result::int64(int row, int col) const {
  return parse_number<int64_t>(str(row, col), "integer");
}

double Result::float64(int row, int col) const {
  const std::string text = str(row, col);
  if (text == "NaN" || text == "Infinity" || text == "-Infinity") {
    throw PgError("22P02", "unexpected non-finite number in a control database result", false);
  }
  return parse_number<double>(text, "numeric");
}

std::optional<double> Result::opt_float64(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return float64(row, col);
}

int64_t Result::affected() const {
  const char* n = PQcmdTuples(r_.get());
  if (n == nullptr || *n == '\0') return 0;
  return parse_number<int64_t>(n, "row count");
}

// ---- Connection --------------------------------------------------------------------------------

Connection Connection::open(const std::string& conninfo, std::chrono::milliseconds timeout,
                            int wake_fd, const std::string& database) {
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (parsed == nullptr) {
    // libpq's message may quote part of the string, which may hold a password: not echoed.
    if (parse_error != nullptr) PQfreemem(parse_error);
    throw PgError("08001",
                  "the control database conninfo is not valid libpq syntax (check the keywords "
                  "and quoting; the value is not shown because it may hold a password)",
                  true);
  }
  PQconninfoFree(parsed);

  // Defaults first, the conninfo (expanded from the first "dbname") so that it overrides them,
  // then the database asked for (libpq keeps the last value of a repeated keyword).
  const char* keys[] = {"application_name",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "dbname",
                        database.empty() ? nullptr : "dbname",
                        nullptr};
  const char* values[] = {"pgphase-control",
                          "1",
                          "10",
                          "5",
                          "3",
                          "15000",
                          conninfo.c_str(),
                          database.empty() ? nullptr : database.c_str(),
                          nullptr};
  Connection conn(PQconnectStartParams(keys, values, 1));
  if (!conn.c_) throw PgError("08001", "out of memory starting a libpq connection", true);
  PQsetNoticeProcessor(conn.raw(), &notice_to_log, nullptr);
  if (PQstatus(conn.raw()) == CONNECTION_BAD) {
    throw PgError("08001", clean(PQerrorMessage(conn.raw())), true);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  for (;;) {
    if (state == PGRES_POLLING_OK) break;
    if (state == PGRES_POLLING_FAILED) {
      throw PgError("08001", clean(PQerrorMessage(conn.raw())), true);
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      throw PgError("08001",
                    "timed out after " + std::to_string(timeout.count()) + " ms connecting to " +
                        conn.describe(),
                    true);
    }
    pollfd fds[2] = {{PQsocket(conn.raw()),
                      static_cast<short>(state == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0},
                     {wake_fd, POLLIN, 0}};
    const int n = ::poll(fds, wake_fd >= 0 ? 2 : 1, static_cast<int>(left.count()));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw PgError("08001", std::string("poll: ") + std::strerror(errno), true);
    }
    if (wake_fd >= 0 && (fds[1].revents & POLLIN) != 0) {
      throw PgError("08001", "connection attempt interrupted (shutting down)", true);
    }
    if (n == 0) continue;
    state = PQconnectPoll(conn.raw());
  }
  return conn;
}

bool Connection::ok() const noexcept {
  return c_ && PQstatus(c_.get()) == CONNECTION_OK;
}

bool Connection::alive() noexcept {
  if (!ok()) return false;
  pollfd fd{PQsocket(c_.get()), POLLIN, 0};
  if (::poll(&fd, 1, 0) > 0) {
    if (PQconsumeInput(c_.get()) != 1) return false;
    while (PGnotify* n = PQnotifies(c_.get())) PQfreemem(n);
  }
  return ok();
}

std::string Connection::describe() const {
  if (!c_) return "(not connected)";
  const char* host = PQhost(c_.get());
  const char* port = PQport(c_.get());
  const char* db = PQdb(c_.get());
  return std::string(host ? host : "") + ":" + (port ? port : "") + "/" + (db ? db : "");
}

void Connection::fail(PGresult* r) const {
  const bool lost = !c_ || PQstatus(c_.get()) == CONNECTION_BAD;
  if (r == nullptr) {
    throw PgError(lost ? "08006" : "", clean(c_ ? PQerrorMessage(c_.get()) : "not connected"),
                  true);
  }
  const Result holder(r);
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
  std::string message = primary != nullptr ? primary : clean(PQresultErrorMessage(r));
  if (message.empty()) message = clean(PQerrorMessage(c_.get()));
  if (detail != nullptr) message += " (" + std::string(detail) + ")";
  std::string sqlstate = state != nullptr ? state : (lost ? "08006" : "");
  const bool gone = lost || lost_state(sqlstate);
  throw PgError(std::move(sqlstate), message, gone);
}

Result Connection::exec(const std::string& sql, const std::vector<Param>& params) {
  if (!c_) throw PgError("08003", "not connected", true);
  if (answer_timeout_.count() > 0) {
    if (params.empty()) {
      if (PQsendQuery(c_.get(), sql.c_str()) != 1) fail(nullptr);  // may hold several statements
    } else {
      send(sql, params);
    }
    return receive();
  }
  PGresult* r = nullptr;
  if (params.empty()) {
    r = PQexec(c_.get(), sql.c_str());
  } else {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    r = PQexecParams(c_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                     nullptr, nullptr, 0);
  }
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (r == nullptr || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)) fail(r);
  return Result(r);
}

void Connection::send(const std::string& sql, const std::vector<Param>& params) {
  if (!c_) throw PgError("08003", "not connected", true);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (PQsendQueryParams(c_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                        values.data(), nullptr, nullptr, 0) != 1)
    fail(nullptr);
}

void Connection::await_answer() {
  if (answer_timeout_.count() <= 0) return;
  const auto deadline = std::chrono::steady_clock::now() + answer_timeout_;
  while (PQisBusy(c_.get()) == 1) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      const std::string where = describe();
      c_.reset();
      throw PgError("08006",
                    "no answer from " + where + " within " +
                        std::to_string(answer_timeout_.count()) + " ms; connection closed",
                    true);
    }
    pollfd fd{PQsocket(c_.get()), POLLIN, 0};
    const int n = ::poll(&fd, 1, static_cast<int>(left.count()));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw PgError("08006", std::string("poll: ") + std::strerror(errno), true);
    }
    if (n > 0 && PQconsumeInput(c_.get()) != 1) return;  // broken: PQgetResult reports it
  }
}

Result Connection::receive() {
  if (!c_) throw PgError("08003", "not connected", true);
  // The last result of the statement wins; an error result is kept over later ones. Each result
  // is awaited within the answer timeout (a text of several statements has several).
  using Held = std::unique_ptr<PGresult, decltype(&PQclear)>;
  Held last(nullptr, &PQclear);
  bool failed = false;
  for (;;) {
    await_answer();
    Held r(PQgetResult(c_.get()), &PQclear);
    if (!r) break;
    const ExecStatusType st = PQresultStatus(r.get());
    const bool bad = st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
    if (failed && !bad) continue;
    last = std::move(r);
    failed = failed || bad;
  }
  if (!last || failed) fail(last.release());
  return Result(last.release());
}

std::string Connection::error_message() const {
  return c_ ? clean(PQerrorMessage(c_.get())) : "not connected";
}

bool Connection::consume_input() noexcept {
  return c_ && PQconsumeInput(c_.get()) == 1 && PQstatus(c_.get()) == CONNECTION_OK;
}

std::vector<Notification> Connection::notifications() {
  std::vector<Notification> out;
  if (!c_) return out;
  while (PGnotify* n = PQnotifies(c_.get())) {
    out.push_back({n->relname ? n->relname : "", n->extra ? n->extra : "", n->be_pid});
    PQfreemem(n);
  }
  return out;
}

// ---- Transaction -------------------------------------------------------------------------------

Transaction::Transaction(Connection& c, const std::string& begin) : c_(c) {
  c_.exec(begin);
}

Transaction::~Transaction() {
  rollback();
}

void Transaction::commit() {
  open_ = false;
  c_.exec("COMMIT");
}

void Transaction::rollback() noexcept {
  if (!open_) return;
  open_ = false;
  if (!c_.ok()) return;
  try {
    c_.exec("ROLLBACK");
  } catch (const PgError& e) {
    // Nothing to undo on a connection that failed (the server rolls back when it goes), and a
    // destructor must not throw; the caller already has the error that got it here.
    log::debug("control database: ROLLBACK failed: ", e.what());
  }
}

}  // namespace pgphase::migration::pg
