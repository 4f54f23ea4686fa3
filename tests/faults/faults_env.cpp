#include "faults_env.h"

#include <poll.h>
#include <algorithm>

#include <catch2/catch.hpp>
#include <filesystem>
#include <future>
#include <map>
#include <sstream>

namespace pgphase::faults {
namespace {

using Clock = std::chrono::steady_clock;

std::string ms_text(Ms m) {
  return std::to_string(m.count()) + "ms";
}

// Source rows (id, v) of [lo, hi] in `t`, ordered.
std::map<int, int> rows(const it::PgConn& c, const std::string& t, int lo, int hi) {
  const it::PgResult r = c.exec("SELECT id, v FROM " + t + " WHERE id BETWEEN " +
                                std::to_string(lo) + " AND " + std::to_string(hi));
  if (!r.ok()) throw std::runtime_error("reading " + t + ": " + r.describe());
  std::map<int, int> out;
  for (int i = 0; i < r.rows(); ++i) out[std::stoi(r.value(i, 0))] = std::stoi(r.value(i, 1));
  return out;
}

std::string ids_text(const std::set<int>& s) {
  std::string out;
  for (int id : s) out += (out.empty() ? "" : ",") + std::to_string(id);
  return "{" + out + "}";
}

// POST /api/v1/migrations of a throwaway migration: a write the control plane must make in the
// control database. Returns "" when it succeeded, else what happened.
std::string api_probe(const Env& e, Ms timeout) {
  static int n = 0;
  const std::string id = "probe_" + std::to_string(++n);
  const std::string body = R"({"migration_id":")" + id + R"(","source_table":"probe_src_)" +
                           std::to_string(n) + R"(","target_table":"t_sys_probe_)" +
                           std::to_string(n) + R"("})";
  const it::HttpHeaders h = {{"Authorization", std::string("Bearer ") + ctl::kToken},
                             {"X-PGPhase-Actor", "tester"}};
  try {
    const auto start = Clock::now();
    const it::HttpResponse r =
        it::http_request(e.api.port, "POST", "/api/v1/migrations", h, body, timeout);
    if (r.status == 201) return "";
    return "HTTP " + std::to_string(r.status) + " after " +
           std::to_string(static_cast<long>(it::elapsed_ms(start))) + "ms: " + r.body;
  } catch (const std::exception& ex) {
    return std::string("no answer: ") + ex.what();
  }
}

}  // namespace

std::string name(Phase p) {
  switch (p) {
    case Phase::kPassThrough:
      return "pass_through";
    case Phase::kDualWrite:
      return "dual_write";
    case Phase::kReadSwitch:
      return "read_switch_50";
    case Phase::kCleanup:
      return "cleanup";
  }
  return "?";
}

std::string name(LinkKind l) {
  switch (l) {
    case LinkKind::kClient:
      return "client";
    case LinkKind::kData:
      return "data";
    case LinkKind::kControl:
      return "control";
  }
  return "?";
}

std::string name(Step s) {
  switch (s) {
    case Step::kBegin:
      return "BEGIN";
    case Step::kInsert:
      return "INSERT";
    case Step::kUpdate:
      return "UPDATE";
    case Step::kCommit:
      return "COMMIT";
    case Step::kRead:
      return "read";
    case Step::kBulk:
      return "bulk read";
  }
  return "?";
}

std::string table(Phase p) {
  switch (p) {
    case Phase::kPassThrough:
      return "f_pt";
    case Phase::kDualWrite:
      return "f_dw";
    case Phase::kReadSwitch:
      return "f_rs";
    case Phase::kCleanup:
      return "f_cl";
  }
  return "?";
}

bool dual(Phase p) {
  return p != Phase::kPassThrough;
}

std::string Env::client_conninfo() const {
  return it::make_conninfo({{"host", "127.0.0.1"},
                            {"port", std::to_string(client->port())},
                            {"dbname", ctl::kControlDb},
                            {"user", kAppRole},
                            {"password", kAppPassword},
                            {"connect_timeout", "5"},
                            {"application_name", "faults-client"}});
}

FaultRelay& Env::relay(LinkKind l) const {
  switch (l) {
    case LinkKind::kClient:
      return *client;
    case LinkKind::kData:
      return *data;
    case LinkKind::kControl:
      return *control;
  }
  return *client;
}

Env& env() {
  static Env e = [] {
    Env x;
    x.pg = ctl::start_cluster();
    x.data = std::make_unique<FaultRelay>("127.0.0.1", x.pg->port());
    x.control = std::make_unique<FaultRelay>("127.0.0.1", x.pg->port());
    x.direct = ctl::control_conn(*x.pg);
    std::string schema = std::string("CREATE ROLE ") + kAppRole + " LOGIN SUPERUSER PASSWORD '" +
                         kAppPassword + "';" + "ALTER ROLE " + kAppRole +
                         " SET statement_timeout = '" + ms_text(kStatementTimeout) + "';" +
                         "ALTER ROLE " + kAppRole + " SET idle_in_transaction_session_timeout = '" +
                         ms_text(kIdleInTransactionTimeout) + "';" + "ALTER ROLE " + kAppRole +
                         " SET idle_session_timeout = '" + ms_text(kIdleSessionTimeout) + "';";
    for (Phase p : kAllPhases) {
      const std::string t = table(p);
      schema += "CREATE TABLE " + t + " (id int PRIMARY KEY, v int NOT NULL, note text);" +
                "CREATE TABLE t_sys_" + t + " (id int PRIMARY KEY, v int NOT NULL, note text);";
    }
    x.direct.exec_ok(schema);
    ctl::ServeOptions o;
    o.backend = "127.0.0.1:" + std::to_string(x.data->port());
    o.control_dsn = it::make_conninfo({{"host", "127.0.0.1"},
                                       {"port", std::to_string(x.control->port())},
                                       {"dbname", ctl::kControlDb},
                                       {"user", "postgres"},
                                       {"connect_timeout", "3"}});
    o.extra_args = {"--connect-timeout-ms",
                    "3000",
                    "--shutdown-timeout",
                    "5",
                    "--query-timeout",
                    std::to_string(kQueryTimeout.count() / 1000),
                    "--control-answer-timeout-ms",
                    std::to_string(kControlAnswerTimeout.count())};
    x.proxy = ctl::start_pgphase(o);
    x.client = std::make_unique<FaultRelay>("127.0.0.1", x.proxy->port());
    x.api = ctl::api_for(*x.proxy);
    ctl::register_migration(x.api, "f_dw_mig", "f_dw", "t_sys_f_dw");
    ctl::set_phase(x.api, "f_dw_mig", "dual_write");
    for (const std::string t : {"f_rs", "f_cl"}) {
      ctl::register_migration(x.api, t + "_mig", t, "t_sys_" + t);
      ctl::advance_to(x.api, t + "_mig", "read_switch");
      ctl::register_switch(x.api, t + "_sw", t, t + "_mig");
      const it::HttpResponse a = x.api.post("/api/v1/switches/" + t + "_sw/activate", "{}");
      INFO(ctl::describe(a));
      REQUIRE(a.status == 200);
      ctl::set_percentage(x.api, t + "_sw", t == "f_rs" ? 50 : 100);
    }
    ctl::advance_to(x.api, "f_cl_mig", "cleanup");
    // Warm-up: pgphase opens some connections and files on first use (a session per phase,
    // control connections for the admin API); the cases' baselines come after that.
    for (Phase p : kAllPhases) {
      Client c = Client::open(x.client_conninfo());
      REQUIRE(c.ok());
      const std::string id = std::to_string(1 + static_cast<int>(p));
      REQUIRE(c.exec("INSERT INTO " + table(p) + " (id, v) VALUES (" + id + ", " + id + ")").kind ==
              Answer::kOk);
      REQUIRE(c.exec("SELECT * FROM " + table(p)).kind == Answer::kOk);
    }
    REQUIRE(api_probe(x, 10s).empty());
    // pgphase's periodic tasks open their control connections lazily (seconds after start):
    // the baselines are taken once the counts have held still for 6 s (at most 40 s of waiting).
    auto counts = [&] { return std::pair(x.control->open(), fd_count(x.proxy->pid())); };
    auto last = counts();
    auto since = Clock::now();
    it::wait_until(
        [&] {
          const auto now = counts();
          if (now != last) {
            last = now;
            since = Clock::now();
          }
          return Clock::now() - since >= 6s;
        },
        40s, 200ms);
    x.warm_control = x.control->open();
    return x;
  }();
  return e;
}

int fd_count(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

int app_backends(const it::PgConn& direct) {
  return std::stoi(direct.scalar(std::string("SELECT count(*) FROM pg_stat_activity WHERE "
                                             "usename = '") +
                                 kAppRole + "' AND pid <> pg_backend_pid()"));
}

std::string Answer::describe() const {
  static const char* kinds[] = {"ok", "error", "broken connection", "TIMEOUT (hung)"};
  std::ostringstream s;
  s << kinds[kind] << " after " << static_cast<long>(ms) << "ms";
  if (!sqlstate.empty()) s << " SQLSTATE " << sqlstate;
  if (!message.empty()) s << ": " << it::trim(message);
  return s.str();
}

Client Client::open(const std::string& conninfo, Ms bound) {
  Client c;
  c.conn_ = it::PgConn::connect(conninfo, bound);
  if (c.conn_.ok()) PQsetnonblocking(c.conn_.get(), 1);
  return c;
}

Answer Client::exec(const std::string& sql, Ms bound) const {
  Answer a;
  const auto start = Clock::now();
  const auto deadline = start + bound;
  PGconn* c = conn_.get();
  auto done = [&](Answer::Kind k) {
    a.kind = k;
    a.ms = it::elapsed_ms(start);
    if (k != Answer::kTimeout && c != nullptr && PQstatus(c) == CONNECTION_BAD) {
      a.kind = Answer::kBroken;
    }
    if (a.message.empty() && a.kind != Answer::kOk && a.kind != Answer::kTimeout && c) {
      a.message = PQerrorMessage(c);
    }
    return a;
  };
  if (c == nullptr || PQstatus(c) != CONNECTION_OK) return done(Answer::kBroken);
  if (PQsendQuery(c, sql.c_str()) != 1) return done(Answer::kBroken);
  bool failed = false;
  for (;;) {
    const int f = PQflush(c);
    if (f < 0) return done(Answer::kBroken);
    bool consumed_ok = true;
    if (!PQisBusy(c)) {
      // Every result of the query string; the last one (or the first error) is the answer.
      while (!PQisBusy(c)) {
        PGresult* r = PQgetResult(c);
        if (r == nullptr) return done(failed ? Answer::kError : Answer::kOk);
        it::PgResult res(r);
        if (!res.ok()) {
          if (!failed) {
            failed = true;
            a.result = res;
            a.sqlstate = res.sqlstate();
            a.message = res.error_message();
          }
        } else if (!failed) {
          a.result = res;
        }
      }
    }
    const auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    if (left.count() <= 0) return done(Answer::kTimeout);
    pollfd p{PQsocket(c), static_cast<short>(POLLIN | (f == 1 ? POLLOUT : 0)), 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
    if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      consumed_ok = PQconsumeInput(c) == 1;
    }
    if (!consumed_ok) {
      // Collect what libpq made of the loss (bounded: a broken connection ends the query).
      for (int i = 0; i < 16; ++i) {
        PGresult* r = PQgetResult(c);
        if (r == nullptr) break;
        it::PgResult res(r);
        if (!res.ok() && !failed) {
          failed = true;
          a.result = res;
          a.sqlstate = res.sqlstate();
          a.message = res.error_message();
        }
      }
      return done(failed ? Answer::kError : Answer::kBroken);
    }
  }
}

int next_base() {
  static int n = 0;
  return 100000 + 1000 * n++;
}

void run_case(const CaseSpec& spec, int base) {
  Env& e = env();
  const std::string src = table(spec.phase);
  const std::string dst = "t_sys_" + src;
  const pid_t pid = e.proxy->pid();
  INFO("phase " << name(spec.phase) << ", link " << name(spec.link) << ", ids from " << base);

  // Baseline: no application session anywhere, the relays' client/data links all closed.
  REQUIRE(it::wait_until(
      [&] { return app_backends(e.direct) == 0 && e.client->open() == 0 && e.data->open() == 0; },
      kSettleBound));
  const int fds_before = fd_count(pid);
  const size_t control_before = e.control->open();
  REQUIRE(fds_before > 0);

  const size_t client_index = e.client->accepted();
  const size_t data_index = e.data->accepted();
  Client c = Client::open(e.client_conninfo());
  INFO("connect: " << c.error());
  REQUIRE(c.ok());
  std::vector<std::shared_ptr<Link>> links;
  if (spec.link == LinkKind::kControl) {
    links = e.control->open_links();
    REQUIRE(!links.empty());
  } else {
    const size_t index = spec.link == LinkKind::kClient ? client_index : data_index;
    auto l = e.relay(spec.link).link(index);
    REQUIRE(l != nullptr);
    CHECK(e.relay(spec.link).accepted() == index + 1);  // exactly this session's link
    links.push_back(l);
  }

  std::set<int> committed, failed, ambiguous;
  std::vector<std::string> failures;  // what the client saw fail (diagnostics)
  bool armed = false;
  bool ended = false;  // the session ended (broken, or a failure stopped the workload)
  std::future<std::string> api_during_f;  // the admin API write made during a control fault
  auto step = [&](int txn, Step s, const std::string& sql) -> Answer {
    if (!armed && txn >= spec.before && s == spec.arm_at) {
      armed = true;
      spec.arm(links);
      if (spec.link == LinkKind::kControl) {
        // Control traffic while the control link is faulty (asynchronous: the session's
        // transaction must not sit idle meanwhile).
        api_during_f = std::async(std::launch::async,
                                  [&e] { return api_probe(e, kControlSilenceBound + 1000ms); });
      }
    }
    Answer a = c.exec(sql, spec.call_bound);
    UNSCOPED_INFO("txn " << txn << " " << name(s) << ": " << a.describe());
    return a;
  };
  auto check_failure = [&](const Answer& a, const std::string& what) {
    failures.push_back(what + ": " + a.describe());
    INFO(what << ": " << a.describe());
    if (a.kind == Answer::kTimeout) {
      if (spec.client_timeout_ok) return;
      if (spec.must_answer_within.count() > 0) {
        FAIL_CHECK("pgphase gave no answer within " << spec.must_answer_within.count()
                                                    << "ms (no timeout for a silent peer)");
      } else {
        FAIL_CHECK("the client call hung (no answer within " << spec.call_bound.count() << "ms)");
      }
      return;
    }
    // A failure is a SQLSTATE error or a connection libpq reports as broken.
    CHECK((a.kind == Answer::kBroken || !a.sqlstate.empty()));
    if (spec.must_answer_within.count() > 0) CHECK(a.ms <= spec.must_answer_within.count() + 2000);
  };

  const int total = spec.before + spec.during;
  for (int txn = 0; txn < total && !ended; ++txn) {
    const int id = base + txn;
    const std::string sid = std::to_string(id);
    const Step steps[] = {Step::kBegin, Step::kInsert, Step::kUpdate, Step::kCommit};
    const std::string sqls[] = {
        "BEGIN", "INSERT INTO " + src + " (id, v, note) VALUES (" + sid + ", 0, repeat('n', 300))",
        "UPDATE " + src + " SET v = id WHERE id = " + sid, "COMMIT"};
    for (int i = 0; i < 4 && !ended; ++i) {
      const Answer a = step(txn, steps[i], sqls[i]);
      if (a.kind == Answer::kOk) {
        if (steps[i] == Step::kCommit) {
          if (a.result.cmd_status() == "COMMIT") {
            committed.insert(id);
          } else {
            failed.insert(id);  // "ROLLBACK": the server refused the commit
          }
        }
        continue;
      }
      check_failure(a, "txn " + sid + " " + name(steps[i]));
      ended = true;
      if (steps[i] == Step::kCommit && a.kind != Answer::kError) {
        ambiguous.insert(id);  // lost during COMMIT: either outcome, the same in both tables
      } else {
        failed.insert(id);
      }
    }
    if (ended) break;
    // Reads through pgphase return exactly the rows written.
    const Answer r = step(txn, Step::kRead,
                          "SELECT id, v FROM " + src + " WHERE id BETWEEN " + std::to_string(base) +
                              " AND " + std::to_string(base + 999) + " ORDER BY id");
    if (r.kind != Answer::kOk) {
      check_failure(r, "txn " + sid + " read");
      ended = true;
      break;
    }
    std::set<int> seen;
    bool values_ok = true;
    for (int i = 0; i < r.result.rows(); ++i) {
      const int rid = std::stoi(r.result.value(i, 0));
      seen.insert(rid);
      values_ok = values_ok && r.result.value(i, 1) == r.result.value(i, 0);
    }
    INFO("read after txn " << sid << " returned " << ids_text(seen) << ", committed "
                           << ids_text(committed));
    CHECK(seen == committed);
    CHECK(values_ok);
    if (spec.bulk) {
      const Answer b = step(txn, Step::kBulk,
                            "SELECT g, repeat(chr(65 + g % 26), 1000) FROM "
                            "generate_series(1, 400) g");
      if (b.kind != Answer::kOk) {
        check_failure(b, "txn " + sid + " bulk read");
        ended = true;
        break;
      }
      bool exact = b.result.rows() == 400;
      for (int i = 0; exact && i < b.result.rows(); ++i) {
        const int g = i + 1;
        exact = b.result.value(i, 0) == std::to_string(g) &&
                b.result.value(i, 1) == std::string(1000, static_cast<char>('A' + g % 26));
      }
      CHECK(exact);
    }
  }
  INFO("committed " << ids_text(committed) << ", failed " << ids_text(failed) << ", ambiguous "
                    << ids_text(ambiguous));
  std::string failures_text;
  for (const auto& f : failures) failures_text += "\n  " + f;
  INFO("client failures:" << (failures.empty() ? " none" : failures_text));
  CHECK(armed);
  if (spec.breaks) {
    CHECK(!failures.empty());  // the fault ended the session with an error the client saw
  } else if (!spec.client_timeout_ok && spec.must_answer_within.count() == 0) {
    CHECK(failures.empty());
    CHECK(static_cast<int>(committed.size()) == total);
  }
  c.close();

  // Control traffic during the fault got an answer (success or a clear error) in time.
  if (spec.link == LinkKind::kControl && api_during_f.valid()) {
    const std::string api_during = api_during_f.get();
    INFO("admin API write during the fault: " << (api_during.empty() ? "201" : api_during));
    CHECK(!it::contains(api_during, "no answer"));
  }
  if (!spec.close_links_after) {
    for (const auto& l : links) l->clear();
  }

  // Tables: committed rows in both (or the source), failed in neither, ambiguous alike.
  const auto in_src = rows(e.direct, src, base, base + 999);
  const auto in_dst = rows(e.direct, dst, base, base + 999);
  for (int id : committed) {
    INFO("committed id " << id);
    CHECK(in_src.count(id) == 1);
    if (in_src.count(id)) CHECK(in_src.at(id) == id);
    if (dual(spec.phase)) {
      CHECK(in_dst.count(id) == 1);
      if (in_dst.count(id)) CHECK(in_dst.at(id) == id);
    }
  }
  for (int id : failed) {
    INFO("failed id " << id);
    CHECK(in_src.count(id) == 0);
    CHECK(in_dst.count(id) == 0);
  }
  for (int id : ambiguous) {
    INFO("ambiguous id " << id);
    if (dual(spec.phase)) CHECK(in_src.count(id) == in_dst.count(id));
  }
  if (dual(spec.phase)) {
    CHECK(in_src == in_dst);
  } else {
    CHECK(in_dst.empty());
  }

  // pgphase still serves new sessions (a full transaction and a read).
  {
    const int id = base + 900;
    const std::string sid = std::to_string(id);
    bool served = false;
    std::string last;
    // A few attempts: a control-link fault may leave the control plane reconnecting.
    it::wait_until(
        [&] {
          Client n = Client::open(e.client_conninfo());
          if (!n.ok()) {
            last = n.error();
            return false;
          }
          const Answer a = n.exec("INSERT INTO " + src + " (id, v) VALUES (" + sid + ", " + sid +
                                  ") ON CONFLICT (id) DO NOTHING");
          const Answer r = n.exec("SELECT v FROM " + src + " WHERE id = " + sid);
          last = a.describe() + " / " + r.describe();
          served = a.kind == Answer::kOk && r.kind == Answer::kOk && r.result.rows() == 1 &&
                   r.result.value(0, 0) == sid;
          return served;
        },
        10s, 200ms);
    INFO("new session after the fault: " << last);
    CHECK(served);
    if (dual(spec.phase)) CHECK(rows(e.direct, dst, id, id).count(id) == 1);
  }
  if (spec.link == LinkKind::kControl) {
    std::string last;
    const bool api_ok = it::wait_until(
        [&] {
          last = api_probe(e, kControlSilenceBound + 1000ms);
          return last.empty();
        },
        kControlSilenceBound + 5000ms, 250ms);
    INFO("admin API write after the fault: " << last);
    CHECK(api_ok);
  }

  // Back to the baseline: pgphase's fds, its backend connections, the relays' links.
  int fds = -1, backends = -1;
  size_t client_open = 0, data_open = 0;
  const bool settled = it::wait_until(
      [&] {
        fds = fd_count(pid);
        backends = app_backends(e.direct);
        client_open = e.client->open();
        data_open = e.data->open();
        // Silent links stay open in the relay (it ignores their peers): not counted then.
        // pgphase opens (and re-opens, after a control-link fault) its control connections
        // lazily, one per component that keeps one (kMaxControlConnections): they may come back
        // later, but never beyond that; every other fd of pgphase is back to the baseline.
        const auto control_open = static_cast<int>(e.control->open());
        const bool fds_ok =
            fds - control_open <= fds_before - static_cast<int>(control_before) &&
            e.control->open() <= std::max({control_before, e.warm_control, kMaxControlConnections});
        if (spec.close_links_after) return fds_ok && backends == 0;
        return fds_ok && backends == 0 && client_open == 0 && data_open == 0;
      },
      kSettleBound, 100ms);
  INFO("pgphase fds " << fds << " (baseline " << fds_before << "), app backends " << backends
                      << ", client-relay links open " << client_open << ", data-relay links open "
                      << data_open << ", control links open " << e.control->open() << " (baseline "
                      << control_before << ")");
  if (!settled) {
    const it::PgResult act = e.direct.exec(
        "SELECT usename, application_name, state, left(query, 80) FROM pg_stat_activity WHERE "
        "backend_type = 'client backend' AND pid <> pg_backend_pid()");
    for (int i = 0; i < act.rows(); ++i) {
      UNSCOPED_INFO("pg_stat_activity: " << act.value(i, 0) << " | " << act.value(i, 1) << " | "
                                         << act.value(i, 2) << " | " << act.value(i, 3));
    }
  }
  CHECK(settled);
  CHECK(e.proxy->running());
  if (spec.close_links_after) {
    // The half-open peers stay until here; then they go, so the next case starts clean.
    for (const auto& l : links) l->stop();
    REQUIRE(
        it::wait_until([&] { return e.client->open() == 0 && e.data->open() == 0; }, kSettleBound));
  }
}

}  // namespace pgphase::faults
