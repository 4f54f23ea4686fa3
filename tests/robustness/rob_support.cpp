#include "rob_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace pgphase::rob {

namespace {
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}
}  // namespace

int count_backends(const it::PgConn& direct, const std::string& app) {
  return std::stoi(
      direct.scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                    "AND pid <> pg_backend_pid() AND application_name = " +
                    quote(app)));
}

int count_other_backends(const it::PgConn& direct, const std::vector<std::string>& except) {
  std::string sql =
      "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
      "AND pid <> pg_backend_pid()";
  for (const auto& e : except) sql += " AND application_name <> " + quote(e);
  return std::stoi(direct.scalar(sql));
}

bool wait_backends_gone(const it::PgConn& direct, const std::string& app,
                        std::chrono::milliseconds timeout) {
  return it::wait_until([&] { return count_backends(direct, app) == 0; }, timeout, 50ms);
}

int wait_backend_pid(const it::PgConn& direct, const std::string& app, const std::string& state,
                     std::chrono::milliseconds timeout) {
  int pid = 0;
  it::wait_until(
      [&] {
        const it::PgResult r = direct.exec_ok(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND application_name = " +
            quote(app) + " AND state = " + quote(state));
        if (r.rows() != 1) return false;
        pid = std::stoi(r.value(0, 0));
        return true;
      },
      timeout, 50ms);
  return pid;
}

void record_sqlstate(void* arg, const PGresult* r) {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  static_cast<std::vector<std::string>*>(arg)->push_back(state != nullptr ? state : "");
}

Exchange exchange(uint16_t port, const std::string& bytes, bool shut_write,
                  std::chrono::milliseconds timeout) {
  it::RawClient c = it::RawClient::tcp(port);
  Exchange out;
  c.send(bytes);  // the peer may already have closed: what it said is read below
  if (shut_write) c.shutdown_write();
  const auto deadline = it::Clock::now() + timeout;
  try {
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - it::Clock::now());
      if (left <= 0ms) break;
      const std::string got = c.read_some(left);
      if (got.empty()) {
        out.closed = true;
        break;
      }
      out.received += got;
    }
  } catch (const std::runtime_error&) {
    // timed out: closed stays false
  }
  return out;
}

std::vector<it::BackendMessage> split_messages(const std::string& bytes) {
  std::vector<it::BackendMessage> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (pos + 5 > bytes.size()) throw std::runtime_error("truncated header: " + hex(bytes));
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + pos + 1);
    const uint32_t len =
        (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
    if (len < 4 || pos + 1 + len > bytes.size()) {
      throw std::runtime_error("bad or truncated message: " + hex(bytes));
    }
    out.push_back({bytes[pos], bytes.substr(pos + 5, len - 4)});
    pos += 1 + len;
  }
  return out;
}

std::string hex(const std::string& s, size_t max) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out + (s.size() > max ? "..." : "") + " (" + std::to_string(s.size()) + " bytes)";
}

it::PgResult first_error(const std::vector<it::PgResult>& results) {
  for (const auto& r : results) {
    if (r.status() == PGRES_FATAL_ERROR) return r;
  }
  return {};
}

}  // namespace pgphase::rob
