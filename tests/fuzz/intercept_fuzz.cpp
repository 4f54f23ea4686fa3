// libFuzzer target over intercept/ (the Rewriter and its reply queue) and router/, built with
// clang by run_fuzz.sh.
//
// The input is read as a well-formed client session (FuzzedDataProvider): the phase of the
// migration users -> t_sys_users (or none), the model database's row count, then client messages
// (simple Query, one to three statements or invalid SQL; Parse/Bind/Describe/Execute/Close/Sync/
// Flush over named and unnamed statements and portals, pipelined), each possibly with a fault
// the server answers it with (an ErrorResponse instead of a success, after some rows, at a
// statement of a Query), and after any message possibly the end of a round: the model backend
// (model_backend.h) answers what the rewriter sent on, cut at input-chosen byte positions as a
// socket would deliver it, and the migration may change phase before the next round.
//
// Oracle: the same messages are answered by the same model with no proxy (the reference). The
// client-visible stream (what the rewriter relays plus what it writes) must be well-formed
// backend messages that answer the client's requests in order as the protocol dictates (one
// ReadyForQuery per Sync and Query, ParseComplete per Parse unless an error skipped it, results
// per statement with the client statement's command tag, error then skip to Sync, nothing for
// pgphase's own requests), and each answer must equal the reference's (ErrorResponse compared by
// SQLSTATE) up to the first request whose answers may legitimately differ: a statement pgphase
// refused, or a fault in a request pgphase injected. The rewriter forwards every client request
// once, last in what it sends for that message, with only Close/Parse of its own before it. A
// desynchronised() rewriter, or requests still pending at the end, abort: the model backend is a
// well-behaved server, so either is a bug.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "intercept/rewriter.h"
#include "protocol/codes.h"
#include "protocol/extended.h"
#include "protocol/message_splitter.h"
#include "protocol/messages.h"
#include "protocol/wire.h"
#include "router/plan_cache.h"
#include "router/routing_table.h"
#include "tests/fuzz/model_backend.h"
#include "tests/unit/users_migration.h"
#include "tests/unit/wire_builders.h"

using namespace pgphase;
using fuzz::ModelBackend;
using test::cstr;
using test::i16;
using test::i32;
using test::msg;

#define FUZZ_CHECK(cond, ...)                                                       \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                            \
      std::fputc('\n', stderr);                                                     \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace {

namespace fe = protocol::fe;
namespace be = protocol::be;

// ---- Client texts ----

constexpr const char* kTexts[] = {
    "SELECT * FROM users",
    "SELECT id, name FROM users WHERE id = 1",
    "SELECT name FROM users WHERE id = $1",
    "SELECT count(*) FROM users",
    "SELECT 1",
    "SELECT * FROM orders",
    "SELECT u.name, o.total FROM users u JOIN orders o ON o.uid = u.id",
    "INSERT INTO users VALUES (1, 'a')",
    "INSERT INTO users (id, name) VALUES ($1, $2)",
    "INSERT INTO users (id, name) VALUES (1, 'a'), (2, 'b') RETURNING id",
    "INSERT INTO users VALUES (3, 'c') RETURNING *",
    "INSERT INTO users SELECT * FROM users",
    "INSERT INTO orders VALUES (1, 2, 3)",
    "UPDATE users SET name = 'b' WHERE id = 1",
    "UPDATE users SET name = $1 WHERE id = $2 RETURNING name, id",
    "UPDATE users SET id = id + 1",
    "DELETE FROM users WHERE id = 1",
    "DELETE FROM users WHERE id = $1 RETURNING *",
    "DELETE FROM orders",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "TRUNCATE users",
    "SET application_name = 'fuzz'",
    "INSERT INTO users VALUES (4, 'd') ON CONFLICT (id) DO UPDATE SET name = excluded.name",
    "SELEC * FROM users",
    "UPDATE users SET",
    "",
};
constexpr size_t kNTexts = sizeof(kTexts) / sizeof(kTexts[0]);

const std::string kLongA = std::string(63, 'L') + "a";  // the server keys both as 63 'L's
const std::string kLongB = std::string(63, 'L') + "b";
const std::string kStatementNames[] = {"", "s1", "s2", kLongA, kLongB};
const std::string kPortalNames[] = {"", "p1", "p2"};

// ---- A client request, and what the oracle expects of its answer ----

struct Request {
  char type = 0;
  std::string bytes;       // the whole message
  char describe_kind = 0;  // Describe: 'S' or 'P'
  std::string sql;         // Query
};

std::span<const uint8_t> span_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Message {
  char type;
  std::string body;
};

// Whole messages of `stream`; aborts unless it is exactly that.
std::vector<Message> split(std::string_view stream, const char* who) {
  std::vector<Message> out;
  while (!stream.empty()) {
    const auto d = protocol::decode_message(span_of(stream), protocol::kDefaultMaxMessageLength);
    FUZZ_CHECK(d.status == protocol::DecodeStatus::kComplete, "%s: not whole messages", who);
    out.push_back(
        {d.type, std::string(reinterpret_cast<const char*>(d.body.data()), d.body.size())});
    stream.remove_prefix(d.total);
  }
  return out;
}

// What the oracle compares: an ErrorResponse by its SQLSTATE, anything else byte for byte.
std::string normal(const Message& m) {
  if (m.type == be::kErrorResponse) {
    return std::string("E") + std::string(protocol::error_sqlstate(span_of(m.body)));
  }
  return m.type + m.body;
}

std::string_view tag_of(const Message& m) {
  std::string_view t = m.body;
  if (!t.empty() && t.back() == '\0') t.remove_suffix(1);
  return t;
}

bool tag_fits(std::string_view tag, const fuzz::Statement& st) {
  if (st.tx == fuzz::Statement::Tx::kCommit && tag == "ROLLBACK") return true;
  if (!st.tag_counts) return tag == st.tag;
  if (!tag.starts_with(st.tag + " ")) return false;
  const std::string_view n = tag.substr(st.tag.size() + 1);
  return !n.empty() && n.find_first_not_of("0123456789") == std::string_view::npos;
}

// Checks that `ms` answers `requests` as the protocol dictates and returns each request's
// answer (normalised). `who` names the stream in failures.
std::vector<std::vector<std::string>> answers(const std::vector<Request>& requests,
                                              const std::vector<Message>& ms, int64_t rows,
                                              const char* who) {
  std::vector<std::vector<std::string>> groups(requests.size());
  size_t at = 0;
  bool skipping = false;
  // The next message, ParameterStatus and notices kept in the group but passed over.
  auto next = [&](std::vector<std::string>& g) -> const Message* {
    while (at < ms.size() &&
           (ms[at].type == be::kParameterStatus || ms[at].type == be::kNoticeResponse)) {
      g.push_back(normal(ms[at++]));
    }
    if (at == ms.size()) return nullptr;
    g.push_back(normal(ms[at]));
    return &ms[at++];
  };
  auto expect = [&](const Message* m, std::string_view types, size_t k) {
    FUZZ_CHECK(m != nullptr, "%s: request %zu ('%c') unanswered", who, k, requests[k].type);
    FUZZ_CHECK(types.find(m->type) != std::string_view::npos,
               "%s: request %zu ('%c') answered '%c', expected one of \"%.*s\"", who, k,
               requests[k].type, m->type, static_cast<int>(types.size()), types.data());
    return m->type;
  };
  auto ready = [&](const Message* m, size_t k) {
    expect(m, "Z", k);
    FUZZ_CHECK(m->body.size() == 1 && std::string_view("ITE").find(m->body[0]) != std::string::npos,
               "%s: bad ReadyForQuery", who);
  };
  // DataRows of `cols` columns up to what ends them.
  auto rows_then = [&](std::vector<std::string>& g, int cols, size_t k) -> const Message* {
    for (;;) {
      const Message* m = next(g);
      if (m == nullptr || m->type != be::kDataRow) return m;
      FUZZ_CHECK(m->body.size() >= 2, "%s: short DataRow", who);
      const int n = protocol::read_u16(reinterpret_cast<const uint8_t*>(m->body.data()));
      FUZZ_CHECK(cols < 0 || n == cols, "%s: request %zu: DataRow of %d columns after %d", who, k,
                 n, cols);
    }
  };
  for (size_t k = 0; k < requests.size(); ++k) {
    const Request& r = requests[k];
    auto& g = groups[k];
    if (r.type == fe::kSync) {
      ready(next(g), k);
      skipping = false;
      continue;
    }
    if (skipping || r.type == fe::kFlush) continue;
    switch (r.type) {
      case fe::kQuery: {
        const fuzz::Text t = fuzz::analyse(r.sql, rows);
        size_t results = 0;
        bool failed = false;
        const Message* m = next(g);
        while (m != nullptr && m->type != be::kReadyForQuery) {
          expect(m, "TCIE", k);
          if (m->type == be::kErrorResponse) {
            failed = true;
            m = next(g);
            break;
          }
          if (m->type == be::kEmptyQueryResponse) {
            FUZZ_CHECK(t.statements.empty(), "%s: EmptyQueryResponse to a statement", who);
            ++results;
            m = next(g);
            continue;
          }
          FUZZ_CHECK(results < t.statements.size(), "%s: request %zu: more results than statements",
                     who, k);
          const fuzz::Statement& st = t.statements[results];
          if (m->type == be::kRowDescription) {
            const auto n = protocol::row_description_field_count(span_of(m->body));
            FUZZ_CHECK(n.has_value(), "%s: bad RowDescription", who);
            FUZZ_CHECK(st.kind == fuzz::Statement::Kind::kRows && *n == st.columns.size(),
                       "%s: request %zu: RowDescription of %u columns for \"%s\"", who, k, *n,
                       r.sql.c_str());
            m = rows_then(g, *n, k);
            if (m != nullptr && m->type == be::kErrorResponse) {
              failed = true;
              m = next(g);
              break;
            }
            expect(m, "C", k);
          } else {
            FUZZ_CHECK(st.kind != fuzz::Statement::Kind::kRows || st.dml_returning == false,
                       "%s: request %zu: rows of \"%s\" without RowDescription", who, k,
                       r.sql.c_str());
          }
          FUZZ_CHECK(tag_fits(tag_of(*m), st), "%s: request %zu: tag \"%s\" for \"%s\"", who, k,
                     m->body.c_str(), r.sql.c_str());
          ++results;
          m = next(g);
        }
        FUZZ_CHECK(failed || results == std::max<size_t>(t.statements.size(), 1),
                   "%s: request %zu: %zu results for %zu statements of \"%s\"", who, k, results,
                   t.statements.size(), r.sql.c_str());
        ready(m, k);
        break;
      }
      case fe::kParse:
        skipping = expect(next(g), "1E", k) == be::kErrorResponse;
        break;
      case fe::kBind:
        skipping = expect(next(g), "2E", k) == be::kErrorResponse;
        break;
      case fe::kClose:
        skipping = expect(next(g), "3E", k) == be::kErrorResponse;
        break;
      case fe::kDescribe: {
        const Message* m = next(g);
        if (r.describe_kind == 'S' && expect(m, "tE", k) == be::kParameterDescription) m = next(g);
        skipping = expect(m, "TnE", k) == be::kErrorResponse;
        if (m->type == be::kRowDescription) {
          FUZZ_CHECK(protocol::row_description_field_count(span_of(m->body)).has_value(),
                     "%s: bad RowDescription", who);
        }
        break;
      }
      case fe::kExecute: {
        const Message* m = rows_then(g, -1, k);
        const char t = expect(m, "CsIE", k);
        if (t == be::kCommandComplete) {
          FUZZ_CHECK(!m->body.empty() && m->body.back() == '\0', "%s: unterminated tag", who);
        }
        skipping = t == be::kErrorResponse;
        break;
      }
      default:
        break;
    }
  }
  FUZZ_CHECK(at == ms.size(), "%s: %zu messages answer no request", who, ms.size() - at);
  return groups;
}

// ---- The session ----

std::shared_ptr<const router::RoutingTable> table_for(uint8_t phase, uint64_t generation) {
  using migration::Phase;
  switch (phase) {
    case 0:
      return std::make_shared<const router::RoutingTable>();  // no migration for the session
    case 1:
      return router::RoutingTable::build(test::users_snapshot(Phase::kPreparation, generation),
                                         "app");
    case 2:
      return router::RoutingTable::build(test::users_snapshot(Phase::kDualWrite, generation),
                                         "app");
    case 3:
      return router::RoutingTable::build(test::users_snapshot(Phase::kValidation, generation),
                                         "app");
    case 4:
    case 5:
    case 6:
      return router::RoutingTable::build(
          test::with_users_switch(test::users_snapshot(Phase::kReadSwitch, generation),
                                  phase == 4   ? 0
                                  : phase == 5 ? 50
                                               : 100),
          "app");
    case 7:
      return router::RoutingTable::build(test::users_snapshot(Phase::kCleanup, generation), "app");
    default:
      return router::RoutingTable::build(test::users_snapshot(Phase::kCompleted, generation),
                                         "app");
  }
}
constexpr uint8_t kPhases = 9;

struct Session {
  router::PlanCache cache{1 << 20};
  intercept::NullRewriteObserver observer;
  std::shared_ptr<const router::RoutingTable> table;
  intercept::Rewriter rw{[this] { return router::TableRef(table); }, cache, observer};
  protocol::MessageSplitter fe{protocol::Direction::kFrontend, 1 << 20};
  protocol::MessageSplitter be{protocol::Direction::kBackend, 1u << 30};
  std::string visible;

  // One client message, cut into up to three chunks: what goes to the server for it.
  std::string client(std::string_view m, FuzzedDataProvider& in) {
    std::string sent;
    protocol::Splice out;
    size_t at = 0;
    for (int i = 0; i < 3 && at < m.size(); ++i) {
      const size_t n = i == 2 || in.ConsumeBool()
                           ? m.size() - at
                           : in.ConsumeIntegralInRange<size_t>(0, m.size() - at);
      out.clear();
      const auto err = fe.feed(
          span_of(m.substr(at, n)), out,
          [&](const protocol::MessageView& v) { return rw.frontend_disposition(v); },
          [&](char t, std::span<const uint8_t> b, std::string& o) { rw.frontend_held(t, b, o); });
      FUZZ_CHECK(err == protocol::ScanError::kNone, "frontend splitter refused a client message");
      sent += out.joined();
      at += n;
    }
    FUZZ_CHECK(fe.at_boundary(), "frontend splitter not at a boundary after a whole message");
    return sent;
  }

  // The server's answers, cut at input-chosen positions.
  void server(std::string_view answer, FuzzedDataProvider& in) {
    protocol::Splice out;
    while (!answer.empty() && !rw.desynchronised()) {
      const size_t n =
          in.ConsumeBool() ? answer.size() : in.ConsumeIntegralInRange<size_t>(1, answer.size());
      out.clear();
      const auto err = be.feed(
          span_of(answer.substr(0, n)), out,
          [&](const protocol::MessageView& v) { return rw.backend_disposition(v); },
          [&](char t, std::span<const uint8_t> b, std::string& o) { rw.backend_held(t, b, o); });
      FUZZ_CHECK(err == protocol::ScanError::kNone, "backend splitter refused the model's answer");
      visible += out.joined();
      answer.remove_prefix(n);
    }
  }
};

// ---- Client messages ----

std::string parse_message(const std::string& name, std::string_view sql, bool typed) {
  return msg(fe::kParse, cstr(name) + cstr(sql) + (typed ? i16(1) + i32(25) : i16(0)));
}

std::string bind_message(const std::string& portal, const std::string& statement, int params,
                         int formats, int16_t format) {
  std::string body = cstr(portal) + cstr(statement) + i16(0) + i16(static_cast<int16_t>(params));
  for (int i = 0; i < params; ++i) body += i32(1) + std::to_string(i % 10);
  body += i16(static_cast<int16_t>(formats));
  for (int i = 0; i < formats; ++i) body += i16(format);
  return msg(fe::kBind, body);
}

class Client {
 public:
  Client(FuzzedDataProvider& in, int64_t rows) : in_(in), rows_(rows) {}

  Request next() {
    Request r;
    switch (in_.ConsumeIntegralInRange<int>(0, 9)) {
      case 0:
      case 1: {
        r.type = fe::kQuery;
        const int n = in_.ConsumeIntegralInRange<int>(1, 3);
        for (int i = 0; i < n; ++i) {
          if (i > 0) r.sql += "; ";
          r.sql += kTexts[in_.ConsumeIntegralInRange<size_t>(0, kNTexts - 1)];
        }
        r.bytes = msg(fe::kQuery, cstr(r.sql));
        return r;
      }
      case 2: {
        r.type = fe::kParse;
        const size_t s = in_.ConsumeIntegralInRange<size_t>(0, std::size(kStatementNames) - 1);
        const char* sql = kTexts[in_.ConsumeIntegralInRange<size_t>(0, kNTexts - 1)];
        r.bytes = parse_message(kStatementNames[s], sql, in_.ConsumeBool());
        texts_[s] = sql;
        return r;
      }
      case 3:
      case 4: {
        r.type = fe::kBind;
        const size_t s = in_.ConsumeIntegralInRange<size_t>(0, std::size(kStatementNames) - 1);
        const fuzz::Text t = fuzz::analyse(texts_[s], rows_);
        int params = t.params;
        if (in_.ConsumeIntegralInRange<int>(0, 15) == 0) params = (params + 1) % 3;  // wrong
        const size_t cols = !t.statements.empty() ? t.statements[0].columns.size() : 0;
        const int shape = in_.ConsumeIntegralInRange<int>(0, 2);
        const int formats = shape == 0 ? 0 : shape == 1 ? 1 : static_cast<int>(cols);
        r.bytes =
            bind_message(kPortalNames[in_.ConsumeIntegralInRange<size_t>(0, 2)], kStatementNames[s],
                         params, formats, static_cast<int16_t>(in_.ConsumeBool() ? 1 : 0));
        return r;
      }
      case 5: {
        r.type = fe::kDescribe;
        r.describe_kind = in_.ConsumeBool() ? 'S' : 'P';
        const std::string& name = r.describe_kind == 'S'
                                      ? kStatementNames[in_.ConsumeIntegralInRange<size_t>(
                                            0, std::size(kStatementNames) - 1)]
                                      : kPortalNames[in_.ConsumeIntegralInRange<size_t>(0, 2)];
        r.bytes = msg(fe::kDescribe, std::string(1, r.describe_kind) + cstr(name));
        return r;
      }
      case 6: {
        r.type = fe::kExecute;
        r.bytes = msg(fe::kExecute, cstr(kPortalNames[in_.ConsumeIntegralInRange<size_t>(0, 2)]) +
                                        i32(in_.ConsumeIntegralInRange<int32_t>(0, 2)));
        return r;
      }
      case 7: {
        r.type = fe::kClose;
        const bool statement = in_.ConsumeBool();
        const std::string& name = statement
                                      ? kStatementNames[in_.ConsumeIntegralInRange<size_t>(
                                            0, std::size(kStatementNames) - 1)]
                                      : kPortalNames[in_.ConsumeIntegralInRange<size_t>(0, 2)];
        r.bytes = msg(fe::kClose, std::string(1, statement ? 'S' : 'P') + cstr(name));
        return r;
      }
      case 8:
        r.type = fe::kFlush;
        r.bytes = msg(fe::kFlush, "");
        return r;
      default:
        r.type = fe::kSync;
        r.bytes = msg(fe::kSync, "");
        return r;
    }
  }

 private:
  FuzzedDataProvider& in_;
  int64_t rows_;
  std::string texts_[std::size(kStatementNames)];  // as the client last prepared them
};

// Printable ASCII of a message, for failures and traces.
std::string shown(std::string_view m) {
  std::string out;
  for (const char c : m) out += c >= 32 && c < 127 ? c : '.';
  return out;
}

// INTERCEPT_FUZZ_TRACE=1: every exchange on stderr.
const bool g_trace = std::getenv("INTERCEPT_FUZZ_TRACE") != nullptr;
// INTERCEPT_FUZZ_STRICT=1: the known differences (ModelBackend::known_unsettled and its kin) fail
// too.
const bool g_strict = std::getenv("INTERCEPT_FUZZ_STRICT") != nullptr;
// INTERCEPT_FUZZ_REPORT=1 (the CI run): an answer that differs from PostgreSQL's (the model's
// own answer to the client's requests) or a desynchronisation is printed and counted instead of
// failing; well-formedness and the match of every answer to the client's requests still fail.
// Long runs leave it unset: there every difference fails (tests/fuzz/findings/ lists the open
// ones).
const bool g_report = std::getenv("INTERCEPT_FUZZ_REPORT") != nullptr;

// INTERCEPT_FUZZ_REPORT_DIR (set by run_fuzz.sh): where a reported session's input is kept, as
// report-<hash>, to be replayed like a crash reproducer.
void keep_report(const uint8_t* data, size_t size) {
  const char* dir = std::getenv("INTERCEPT_FUZZ_REPORT_DIR");
  if (dir == nullptr) return;
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 1099511628211ULL;
  char path[4096];
  std::snprintf(path, sizeof path, "%s/report-%016llx", dir, static_cast<unsigned long long>(h));
  if (std::FILE* f = std::fopen(path, "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
}

struct Stats {
  uint64_t runs = 0, diverged = 0, differed = 0;
  ~Stats() {
    if (runs > 0)
      std::fprintf(stderr,
                   "intercept_fuzz: %llu sessions, %llu with a legitimate divergence, %llu "
                   "answered differently from PostgreSQL (reported)\n",
                   static_cast<unsigned long long>(runs), static_cast<unsigned long long>(diverged),
                   static_cast<unsigned long long>(differed));
  }
};
Stats g_stats;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  uint8_t phase = in.ConsumeIntegralInRange<uint8_t>(0, kPhases - 1);
  uint64_t generation = 3;
  const int64_t rows = in.ConsumeIntegralInRange<int64_t>(0, 3);

  Session s;
  s.table = table_for(phase, generation);
  if (g_trace) std::fprintf(stderr, "phase %u, %lld rows\n", phase, static_cast<long long>(rows));
  ModelBackend proxied(rows, !g_strict);
  ModelBackend reference(rows, !g_strict);
  Client client(in, rows);
  std::vector<Request> requests;
  const size_t max = in.ConsumeIntegralInRange<size_t>(1, 40);

  auto end_round = [&] {
    if (s.rw.desynchronised()) return;
    const std::string answer = proxied.answer();
    if (g_trace) {
      std::fprintf(stderr, "server:");
      for (const Message& m : split(answer, "server")) {
        std::fprintf(stderr, " %s", shown(m.type + m.body).c_str());
      }
      std::fprintf(stderr, "\n");
    }
    s.server(answer, in);
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
      phase = in.ConsumeIntegralInRange<uint8_t>(0, kPhases - 1);
      s.table = table_for(phase, ++generation);
      if (g_trace) std::fprintf(stderr, "phase %u\n", phase);
    }
  };
  for (size_t k = 0; k < max && in.remaining_bytes() > 0 && !s.rw.desynchronised(); ++k) {
    Request r = client.next();
    const auto g = static_cast<uint32_t>(requests.size());
    switch (in.ConsumeIntegralInRange<int>(0, 11)) {
      case 0:
      case 1: {
        ModelBackend::Fault f{in.ConsumeIntegralInRange<uint16_t>(0, 2),
                              in.ConsumeIntegralInRange<uint8_t>(0, 3)};
        proxied.fail(g, f);
        reference.fail(g, f);
        break;
      }
      case 2:
        proxied.fail_injected(g);
        break;
      default:
        break;
    }
    const std::string sent = s.client(r.bytes, in);
    // Every client request goes on once, last of what is sent for it, after only pgphase's own
    // Close and Parse.
    const std::vector<Message> out = split(sent, "to server");
    FUZZ_CHECK(!out.empty() && out.back().type == r.type, "client '%c' not forwarded", r.type);
    for (size_t i = 0; i + 1 < out.size(); ++i) {
      FUZZ_CHECK(out[i].type == fe::kClose || out[i].type == fe::kParse,
                 "pgphase sent '%c' of its own", out[i].type);
    }
    if (g_trace) {
      std::fprintf(stderr, "client #%u %s\n  to server:", g, shown(r.bytes).c_str());
      for (const Message& m : out) std::fprintf(stderr, " %s", shown(m.type + m.body).c_str());
      std::fprintf(stderr, "\n");
    }
    proxied.receive(g, sent, r.bytes);
    reference.receive(g, r.bytes);
    requests.push_back(std::move(r));
    const char t = requests.back().type;
    if ((t == fe::kSync || t == fe::kQuery || t == fe::kFlush)
            ? in.ConsumeBool()
            : in.ConsumeIntegralInRange<int>(0, 7) == 0)
      end_round();
  }
  if (!s.rw.desynchronised()) {
    Request sync{fe::kSync, msg(fe::kSync, "")};
    const auto g = static_cast<uint32_t>(requests.size());
    const std::string sent = s.client(sync.bytes, in);
    proxied.receive(g, sent);
    reference.receive(g, sync.bytes);
    requests.push_back(std::move(sync));
    end_round();
  }
  if (g_report && s.rw.desynchronised()) {
    std::fprintf(stderr, "finding: desynchronised on a well-formed exchange: %s\n",
                 s.rw.desync_reason().c_str());
    ++g_stats.differed;
    keep_report(data, size);
    return 0;
  }
  FUZZ_CHECK(!s.rw.desynchronised(), "desynchronised on a well-formed exchange: %s",
             s.rw.desync_reason().c_str());
  FUZZ_CHECK(s.rw.pending() == 0, "%zu requests still pending after the last ReadyForQuery",
             s.rw.pending());
  FUZZ_CHECK(s.be.at_boundary(), "backend splitter mid-message at the end");

  const std::vector<Message> seen = split(s.visible, "to client");
  const std::vector<Message> want = split(reference.answer(), "reference");
  const auto got = answers(requests, seen, rows, "to client");
  const auto expected = answers(requests, want, rows, "reference");
  const size_t same =
      std::min(proxied.diverged().value_or(static_cast<uint32_t>(requests.size())),
               reference.diverged().value_or(static_cast<uint32_t>(requests.size())));
  ++g_stats.runs;
  if (same < requests.size()) ++g_stats.diverged;
  for (size_t k = 0; k < same; ++k) {
    if (got[k] == expected[k]) continue;
    std::fprintf(stderr, "request %zu ('%c') answered differently through pgphase (phase %u)\n", k,
                 requests[k].type, phase);
    for (size_t j = 0; j <= k; ++j) {
      std::fprintf(stderr, "  #%zu %s\n", j, shown(requests[j].bytes).c_str());
    }
    auto dump = [](const char* what, const std::vector<std::string>& g) {
      std::fprintf(stderr, "  %s:", what);
      for (const auto& m : g) std::fprintf(stderr, " [%s]", shown(m).c_str());
      std::fprintf(stderr, "\n");
    };
    dump("pgphase", got[k]);
    dump("reference", expected[k]);
    if (g_report) {
      ++g_stats.differed;
      keep_report(data, size);
      return 0;
    }
    std::abort();
  }
  return 0;
}
