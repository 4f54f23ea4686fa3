// Restarts under traffic (issue 15), against real PostgreSQL 15 clusters and real `pgphase serve`
// processes, with pgbench and libpq clients writing through pgphase while the migration is in
// dual_write:
//
//   [sigterm] [sigkill]   two pgphase instances on one control database; instance B gets SIGTERM
//                         (or SIGKILL) mid-run. A's clients see nothing (pgbench: 0 failed
//                         transactions, a libpq writer: no error), B's clients see a clear error
//                         (57P01 admin shutdown, or the connection lost) and reconnect to a
//                         restarted B; every committed row is in both tables and the tables are
//                         equal.
//   [control_dual_write]  the control database in its own cluster, stopped and started with
//                         pg_ctl while pgbench writes: pgphase keeps the last state
//                         (docs: "keeping the last state ... and retrying"), so writes during
//                         the outage are still dual-written: 0 failed, tables equal.
//   [control_backfill]    a throttled backfill, the control cluster restarted mid-way: the
//                         backfill resumes from its checkpoint and completes, no row is copied
//                         twice, the API's progress never goes back, the tables are equal.
//
// About [control_dual_write]: pgphase reads a migration's table shapes from the migration's
// `database` on the server of --control-dsn (docs/dual-write.md, "Databases";
// migration/other_database_shapes.cpp), not on the --backend server. To have the control
// database on its own server while the data path stays up, the control cluster holds a shape
// twin of the application's tables (same DDL, no rows) in a database of the same name, and the
// data cluster gets pgphase's SQL functions (t_sys_mirror_rows, used by mirrored DELETEs) from
// a pgphase started once with its control plane there.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <mutex>
#include <regex>
#include <thread>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

constexpr const char* kDdl =
    "CREATE TABLE sk_rows (id bigserial PRIMARY KEY, who text NOT NULL, v int NOT NULL "
    "DEFAULT 0, note text, updated_at timestamptz DEFAULT clock_timestamp());"
    "CREATE TABLE t_sys_sk_rows (id bigint PRIMARY KEY, who text NOT NULL, v int NOT NULL "
    "DEFAULT 0, note text, updated_at timestamptz)";
constexpr const char* kColumns = "id, who, v, note, updated_at";
constexpr int kSeedRows = 2000;

// `rows` seed rows in both tables (equal), sk_rows' sequence after them.
std::string seed_sql(int rows) {
  return "INSERT INTO sk_rows (who, v, note) SELECT 'seed', g, 'seed-' || g FROM "
         "generate_series(1, " +
         std::to_string(rows) +
         ") g; INSERT INTO t_sys_sk_rows SELECT * FROM sk_rows; ANALYZE sk_rows";
}

// One pgbench transaction: an insert, an update of a seed row, now and then a delete.
std::string pgbench_script(const std::string& who) {
  return "\\set k random(1, " + std::to_string(kSeedRows) +
         ")\n"
         "\\set r random(1, 20)\n"
         "INSERT INTO sk_rows (who, v, note) VALUES ('" +
         who +
         "', :k, 'pgbench') RETURNING id;\n"
         "UPDATE sk_rows SET v = v + 1, updated_at = clock_timestamp() WHERE id = :k;\n"
         "\\if :r = 1\n"
         "DELETE FROM sk_rows WHERE id = :k + 1;\n"
         "\\endif\n";
}

// Rows of sk_rows not in t_sys_sk_rows plus the other way round, over every column.
long differences(const it::PgConn& c) {
  return std::stol(c.scalar(std::string("SELECT (SELECT count(*) FROM (SELECT ") + kColumns +
                            " FROM sk_rows EXCEPT SELECT " + kColumns +
                            " FROM t_sys_sk_rows) a) + (SELECT count(*) FROM (SELECT " + kColumns +
                            " FROM t_sys_sk_rows EXCEPT SELECT " + kColumns + " FROM sk_rows) b)"));
}

// The rows that differ (up to 10), as failure context of the next assertion.
void list_differences(const it::PgConn& c) {
  const it::PgResult rows = c.exec(std::string("(SELECT 'source only' AS side, ") + kColumns +
                                   " FROM sk_rows EXCEPT SELECT " + "'source only', " + kColumns +
                                   " FROM t_sys_sk_rows) UNION ALL (SELECT 'target only', " +
                                   kColumns + " FROM t_sys_sk_rows EXCEPT SELECT 'target only', " +
                                   kColumns + " FROM sk_rows) LIMIT 10");
  for (int i = 0; i < rows.rows(); ++i) {
    UNSCOPED_INFO(rows.value(i, 0) << ": id " << rows.value(i, 1) << ", who " << rows.value(i, 2)
                                   << ", v " << rows.value(i, 3) << ", note " << rows.value(i, 4)
                                   << ", updated_at " << rows.value(i, 5));
  }
}

// libpq hands an ErrorResponse that arrives while no query runs (pgphase's or PostgreSQL's
// FATAL 57P01 to an idle session) to the notice receiver, not to the next query's result (that
// one only says "server closed the connection unexpectedly"): capture it as "SQLSTATE message".
void capture_notices(const it::PgConn& c, std::string* sink) {
  PQsetNoticeReceiver(
      c.get(),
      [](void* arg, const PGresult* r) {
        const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char* msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        *static_cast<std::string*>(arg) +=
            std::string(state != nullptr ? state : "") + " " + (msg != nullptr ? msg : "") + "\n";
      },
      sink);
}

struct PgbenchOutcome {
  it::RunResult run;
  long processed = -1;  // "number of transactions actually processed"
  long failed = -1;     // "number of failed transactions" (PostgreSQL 15's pgbench)
  bool aborted = false;
};

PgbenchOutcome parse_pgbench(it::RunResult r) {
  PgbenchOutcome o;
  std::smatch m;
  static const std::regex processed(R"(number of transactions actually processed: (\d+))");
  static const std::regex failed(R"(number of failed transactions: (\d+))");
  if (std::regex_search(r.out, m, processed)) o.processed = std::stol(m[1]);
  if (std::regex_search(r.out, m, failed)) o.failed = std::stol(m[1]);
  o.aborted = it::contains(r.err, "aborted") || it::contains(r.out, "aborted");
  o.run = std::move(r);
  return o;
}

// pgbench through pgphase at `port` (127.0.0.1, role postgres).
PgbenchOutcome pgbench(uint16_t port, const std::string& db, const std::string& script,
                       const std::vector<std::string>& how) {
  std::vector<std::string> argv = {it::pg_tool("pgbench"), "-n", "-r", "-f", script};
  argv.insert(argv.end(), how.begin(), how.end());
  for (const std::string& a :
       {std::string("-h"), std::string("127.0.0.1"), std::string("-p"), std::to_string(port),
        std::string("-U"), std::string("postgres"), db}) {
    argv.push_back(a);
  }
  return parse_pgbench(it::run(argv, {.timeout = std::chrono::seconds(120)}));
}

// A libpq client writing through pgphase in explicit transactions (an insert with parameters,
// extended protocol, and an update of a seed row, simple protocol), remembering the note of
// every insert whose COMMIT succeeded. On an error it records what it saw and reconnects to
// port() (which may change: a restarted pgphase listens elsewhere).
class AckWriter {
 public:
  AckWriter(std::string tag, std::string db, uint16_t port)
      : tag_(std::move(tag)), db_(std::move(db)), port_(port) {
    thread_ = std::thread([this] { loop(); });
  }
  ~AckWriter() { stop(); }
  AckWriter(const AckWriter&) = delete;
  AckWriter& operator=(const AckWriter&) = delete;

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void set_port(uint16_t p) { port_ = p; }
  [[nodiscard]] long acked_count() const { return acked_n_; }
  [[nodiscard]] std::vector<std::string> acked() const {
    std::lock_guard lock(mu_);
    return acked_;
  }
  [[nodiscard]] std::vector<std::string> errors() const {
    std::lock_guard lock(mu_);
    return errors_;
  }
  [[nodiscard]] long connects() const { return connects_; }

 private:
  void loop() {
    std::string notices;  // outlives `c`, whose notice receiver writes here
    it::PgConn c;
    long i = 0;
    while (!stop_) {
      if (!c.ok()) {
        c = it::PgConn::connect("host=127.0.0.1 port=" + std::to_string(port_.load()) +
                                    " dbname=" + db_ +
                                    " user=postgres application_name=ackwriter connect_timeout=3",
                                std::chrono::seconds(3));
        if (!c.ok()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        ++connects_;
        notices.clear();
        capture_notices(c, &notices);
      }
      ++i;
      const std::string note = tag_ + "-" + std::to_string(i);
      const std::string seed = std::to_string((i * 7919) % kSeedRows + 1);
      std::string failure;
      auto step = [&](const it::PgResult& r) {
        if (failure.empty() && !r.ok()) failure = r.sqlstate() + " " + r.error_message();
        return failure.empty();
      };
      if (step(c.exec("BEGIN")) &&
          step(c.exec_params("INSERT INTO sk_rows (who, v, note) VALUES ($1, $2, $3)",
                             {tag_, std::to_string(i % 1000), note})) &&
          step(c.exec("UPDATE sk_rows SET v = v + 1, updated_at = clock_timestamp() WHERE id = " +
                      seed)) &&
          step(c.exec("COMMIT"))) {
        std::lock_guard lock(mu_);
        acked_.push_back(note);
        ++acked_n_;
        continue;
      }
      {
        std::lock_guard lock(mu_);
        errors_.push_back(it::trim(failure) +
                          (PQstatus(c.get()) == CONNECTION_BAD ? " [connection lost]" : "") +
                          (notices.empty() ? "" : " [notice: " + it::trim(notices) + "]"));
      }
      if (PQstatus(c.get()) == CONNECTION_BAD) {
        c.close();
      } else {
        (void)c.exec("ROLLBACK");
      }
    }
  }

  std::string tag_;
  std::string db_;
  std::atomic<uint16_t> port_;
  std::atomic<bool> stop_{false};
  std::atomic<long> acked_n_{0};
  std::atomic<long> connects_{0};
  mutable std::mutex mu_;
  std::vector<std::string> acked_;
  std::vector<std::string> errors_;
  std::thread thread_;
};

// How many of `notes` are missing from `table` (the notes are unique per writer).
long missing(const it::PgConn& c, const std::string& table, const std::vector<std::string>& notes) {
  if (notes.empty()) return 0;
  std::string arr = "{";
  for (size_t k = 0; k < notes.size(); ++k) arr += (k ? "," : "") + notes[k];
  arr += "}";
  const it::PgResult r =
      c.exec_params("SELECT count(*) FROM unnest($1::text[]) n WHERE NOT EXISTS (SELECT 1 FROM " +
                        table + " t WHERE t.note = n)",
                    {arr});
  INFO(r.describe());
  REQUIRE(r.ok());
  return std::stol(r.value());
}

// Inserts a probe through pgphase until the target has it (the migration's shapes are loaded),
// then deletes the probes through it. An instance that has not yet heard of the phase change
// (NOTIFY reaches it within a second, slower on a loaded machine) writes its probes to the
// source only, as it writes everything then: that is what the backfill after dual_write is for.
// The mirrored DELETE removes them, so that the tables start equal.
void wait_dual_writing(const it::PgConn& proxied, const it::PgConn& direct) {
  const bool mirrored = it::wait_until(
      [&] {
        (void)proxied.exec("INSERT INTO sk_rows (who, note) VALUES ('probe', 'probe')");
        return direct.scalar("SELECT count(*) FROM t_sys_sk_rows WHERE who = 'probe'") != "0";
      },
      15s, 100ms);
  REQUIRE(mirrored);
  REQUIRE(proxied.exec("DELETE FROM sk_rows WHERE who = 'probe'").ok());
  REQUIRE(direct.scalar("SELECT count(*) FROM sk_rows WHERE who = 'probe'") == "0");
  REQUIRE(direct.scalar("SELECT count(*) FROM t_sys_sk_rows WHERE who = 'probe'") == "0");
}

double control_connected(const it::ProxyProcess& p) {
  return it::scrape_metrics(p.admin_port()).value("pgphase_control_db_connected").value_or(-1);
}

std::string joined(const std::vector<std::string>& v, size_t max = 8) {
  std::string out;
  for (size_t k = 0; k < v.size() && k < max; ++k) out += v[k] + "\n";
  if (v.size() > max) out += "... (" + std::to_string(v.size()) + " in all)\n";
  return out;
}

// Two instances, pgbench and a writer through each, `sig` to B mid-run, B restarted.
void two_instances_and_a_signal(int sig) {
  const auto pg = start_cluster();
  {
    const it::PgConn setup = control_conn(*pg);
    setup.exec_ok(kDdl);
    setup.exec_ok(seed_sql(kSeedRows));
  }
  const it::PgConn direct = control_conn(*pg);
  const ServeOptions o = serve_on(*pg);
  const auto a = start_pgphase(o);
  auto b = start_pgphase(o);
  const Api api = api_for(*a);
  json::object extra;
  extra["key_columns"] = json::array{"id"};
  (void)register_migration(api, "sk_mig", "sk_rows", "t_sys_sk_rows", extra);
  (void)set_phase(api, "sk_mig", "dual_write");
  {
    const it::PgConn via_b = b->connect(kControlDb);
    REQUIRE(via_b.ok());
    wait_dual_writing(a->connect(kControlDb), direct);
    wait_dual_writing(via_b, direct);
  }
  const it::PgConn held_a = a->connect(kControlDb);  // a session of A open across B's restart
  REQUIRE(held_a.ok());
  const it::PgConn held_b = b->connect(kControlDb);  // an idle session of B when it goes
  REQUIRE(held_b.ok());
  REQUIRE(held_b.scalar("SELECT 1") == "1");
  std::string held_b_notices;
  capture_notices(held_b, &held_b_notices);

  it::TempDir dir("soak-restart");
  it::write_file(dir / "a.sql", pgbench_script("A"));
  it::write_file(dir / "b.sql", pgbench_script("B"));
  AckWriter writer_a("wa", kControlDb, a->port());
  AckWriter writer_b("wb", kControlDb, b->port());

  PgbenchOutcome bench_a;
  PgbenchOutcome bench_b;
  const uint16_t port_a = a->port();
  const uint16_t port_b = b->port();
  std::thread ta([&] {
    bench_a = pgbench(port_a, kControlDb, (dir / "a.sql").string(),
                      {"-T", "14", "-c", "3", "-j", "1", "-M", "prepared"});
  });
  std::thread tb([&] {
    bench_b = pgbench(port_b, kControlDb, (dir / "b.sql").string(),
                      {"-T", "14", "-c", "3", "-j", "1", "-M", "simple"});
  });
  // Both sides have been writing for a while before B goes.
  const bool warmed = it::wait_until(
      [&] { return writer_a.acked_count() >= 30 && writer_b.acked_count() >= 30; }, 15s, 20ms);
  std::this_thread::sleep_for(2s);  // traffic, not an assertion
  const long b_acked_before = writer_b.acked_count();

  b->signal(sig);
  const auto code = b->wait_exit(20s);
  INFO("pgphase B stderr:\n" << b->stderr_tail(60));
  REQUIRE(code.has_value());
  if (sig == SIGTERM) {
    CHECK(*code == 0);  // a graceful shutdown: busy sessions closed when their transaction ends
  } else {
    CHECK(*code == -SIGKILL);
  }
  const std::string b_stderr = b->stderr_text();
  // The idle session: SIGTERM closes it at once with FATAL 57P01 (README, "Shutdown"), which
  // libpq reports on the next request; SIGKILL: the connection is simply gone.
  (void)PQconsumeInput(held_b.get());
  const it::PgResult idle_answer = held_b.exec("SELECT 1");
  b = start_pgphase(o);  // "restarted B" (new ports, same control database)
  writer_b.set_port(b->port());
  const long b_connects_before = writer_b.connects();
  const bool b_back = it::wait_until(
      [&] {
        return writer_b.connects() > b_connects_before &&
               writer_b.acked_count() >= b_acked_before + 30;
      },
      20s, 20ms);
  const PgbenchOutcome bench_b2 = pgbench(b->port(), kControlDb, (dir / "b.sql").string(),
                                          {"-t", "100", "-c", "2", "-j", "1", "-M", "prepared"});
  ta.join();
  tb.join();
  writer_a.stop();
  writer_b.stop();

  REQUIRE(warmed);
  // A: untouched.
  INFO("pgbench via A: " << bench_a.run.describe());
  CHECK(bench_a.run.ok());
  CHECK_FALSE(bench_a.aborted);
  CHECK(bench_a.failed == 0);
  CHECK(bench_a.processed > 100);
  CHECK(it::contains(bench_a.run.out, "statement latencies in milliseconds"));
  INFO("writer A errors:\n" << joined(writer_a.errors()));
  CHECK(writer_a.errors().empty());
  CHECK(writer_a.connects() == 1);
  CHECK(held_a.scalar("SELECT count(*) > 0 FROM sk_rows") == "t");

  // B: its clients saw a clear error, and reconnected to the restarted B.
  INFO("pgbench via B (signalled): " << bench_b.run.describe());
  CHECK_FALSE(bench_b.run.ok());
  CHECK(bench_b.aborted);
  const std::vector<std::string> b_errors = writer_b.errors();
  INFO("writer B errors:\n" << joined(b_errors));
  REQUIRE_FALSE(b_errors.empty());
  for (const std::string& e : b_errors) {
    // SIGTERM: FATAL 57P01 (admin shutdown) after the transaction, 57P03 for a session that
    // starts while draining, or the connection closed; SIGKILL: the connection lost.
    const bool clear = it::contains(e, "[connection lost]") || e.rfind("57P01", 0) == 0 ||
                       e.rfind("57P03", 0) == 0;
    INFO("error: " << e);
    CHECK(clear);
  }
  if (sig == SIGTERM) {
    const bool admin_shutdown =
        std::any_of(b_errors.begin(), b_errors.end(),
                    [](const std::string& e) { return it::contains(e, "57P01"); }) ||
        it::contains(bench_b.run.err, "terminating connection due to administrator command");
    WARN("SIGTERM: a busy client of B saw 57P01: " << admin_shutdown);
    INFO("idle session of B: " << idle_answer.describe());
    CHECK_FALSE(idle_answer.ok());
    INFO("notices of the idle session: " << held_b_notices);
    CHECK(it::contains(held_b_notices,
                       "57P01 terminating connection because pgphase is shutting down"));
    CHECK(it::contains(b_stderr, "shutdown"));
  } else {
    INFO("idle session of B: " << idle_answer.describe());
    CHECK_FALSE(idle_answer.ok());
  }
  CHECK(b_back);
  INFO("pgbench via restarted B: " << bench_b2.run.describe());
  CHECK(bench_b2.run.ok());
  CHECK(bench_b2.failed == 0);
  CHECK(bench_b2.processed == 200);

  // Every committed row is in both tables, and the tables are equal.
  const auto acked_a = writer_a.acked();
  const auto acked_b = writer_b.acked();
  CHECK(missing(direct, "sk_rows", acked_a) == 0);
  CHECK(missing(direct, "t_sys_sk_rows", acked_a) == 0);
  CHECK(missing(direct, "sk_rows", acked_b) == 0);
  CHECK(missing(direct, "t_sys_sk_rows", acked_b) == 0);
  const long diff = differences(direct);
  if (diff != 0) list_differences(direct);
  CHECK(diff == 0);
  CHECK(direct.scalar("SELECT count(*) FROM sk_rows") ==
        direct.scalar("SELECT count(*) FROM t_sys_sk_rows"));
  WARN((sig == SIGTERM ? "SIGTERM" : "SIGKILL")
       << ": pgbench A " << bench_a.processed << " tx, " << bench_a.failed
       << " failed; pgbench B before the signal " << bench_b.processed << " tx ("
       << (bench_b.aborted ? "aborted" : "not aborted") << "); restarted B " << bench_b2.processed
       << " tx; writer A " << acked_a.size() << " commits, writer B " << acked_b.size()
       << " commits, " << b_errors.size()
       << " errors, first: " << (b_errors.empty() ? "" : b_errors.front()) << "; rows "
       << direct.scalar("SELECT count(*) FROM sk_rows") << ", differences " << diff);
  stop_pgphase(*a);
  stop_pgphase(*b);
}

}  // namespace

TEST_CASE("SIGTERM of one of two pgphase instances under pgbench", "[sigterm]") {
  two_instances_and_a_signal(SIGTERM);
}

TEST_CASE("SIGKILL of one of two pgphase instances under pgbench", "[sigkill]") {
  two_instances_and_a_signal(SIGKILL);
}

TEST_CASE("control database restarted (own cluster) during dual_write under pgbench",
          "[control_dual_write]") {
  constexpr const char* kAppDb = "sk_app";
  const auto data = start_cluster({std::string("CREATE DATABASE ") + kAppDb});
  const auto control = start_cluster({std::string("CREATE DATABASE ") + kAppDb});
  ClusterRestarter control_ctl(*control);
  const it::PgConn direct = it::PgConn::connect(data->conninfo(kAppDb));
  REQUIRE(direct.ok());
  direct.exec_ok(kDdl);
  direct.exec_ok(seed_sql(kSeedRows));
  {
    // The shape twin on the control server, where pgphase reads the migration's shapes.
    const it::PgConn twin = it::PgConn::connect(control->conninfo(kAppDb));
    REQUIRE(twin.ok());
    twin.exec_ok(kDdl);
  }
  {
    // pgphase's SQL functions (t_sys_mirror_rows for mirrored DELETEs) in the data database.
    ServeOptions boot;
    boot.backend = data->tcp_endpoint();
    boot.control_dsn = data->conninfo(kAppDb, "postgres", "", "connect_timeout=3");
    const auto p = start_pgphase(boot);
    stop_pgphase(*p);
    REQUIRE(direct.scalar("SELECT to_regproc('t_sys_mirror_rows') IS NOT NULL") == "t");
  }
  ServeOptions o;
  o.backend = data->tcp_endpoint();
  o.control_dsn = control_dsn(*control);
  const auto proxy = start_pgphase(o);
  const Api api = api_for(*proxy);
  json::object extra;
  extra["database"] = kAppDb;
  extra["key_columns"] = json::array{"id"};
  (void)register_migration(api, "sk_mig", "sk_rows", "t_sys_sk_rows", extra);
  (void)set_phase(api, "sk_mig", "dual_write");
  wait_dual_writing(proxy->connect(kAppDb), direct);
  REQUIRE(control_connected(*proxy) == 1);

  it::TempDir dir("soak-control");
  it::write_file(dir / "w.sql", pgbench_script("P"));
  AckWriter writer("wc", kAppDb, proxy->port());
  PgbenchOutcome bench;
  PgbenchOutcome bench_simple;
  const uint16_t port = proxy->port();
  std::thread tb([&] {
    bench = pgbench(port, kAppDb, (dir / "w.sql").string(),
                    {"-T", "16", "-c", "3", "-j", "1", "-M", "prepared"});
  });
  std::thread ts([&] {
    bench_simple = pgbench(port, kAppDb, (dir / "w.sql").string(),
                           {"-T", "16", "-c", "2", "-j", "1", "-M", "simple"});
  });
  REQUIRE(it::wait_until([&] { return writer.acked_count() >= 30; }, 15s, 20ms));
  std::this_thread::sleep_for(2s);  // traffic before the outage, not an assertion

  control_ctl.stop();
  INFO("pgphase stderr:\n" << proxy->stderr_tail(60));
  const auto noticed = time_until([&] { return control_connected(*proxy) == 0; }, 10s, 50ms);
  CHECK(noticed.has_value());
  // During the outage: the writer goes on committing, and a new session's writes are mirrored.
  const long before_outage_writes = writer.acked_count();
  const bool wrote_during =
      it::wait_until([&] { return writer.acked_count() >= before_outage_writes + 100; }, 20s, 20ms);
  long during_diff = -1;
  {
    const it::PgConn fresh = proxy->connect(kAppDb);
    INFO("new session during the outage: " << fresh.error_message());
    REQUIRE(fresh.ok());
    const it::PgResult ins = fresh.exec(
        "INSERT INTO sk_rows (who, v, note) VALUES ('outage', 1, 'outage-1') RETURNING id");
    INFO(ins.describe());
    REQUIRE(ins.ok());
    const std::string id = ins.value();
    const it::PgResult upd = fresh.exec_params(
        "UPDATE sk_rows SET v = 42, updated_at = clock_timestamp() WHERE id = $1", {id});
    INFO(upd.describe());
    CHECK(upd.cmd_status() == "UPDATE 1");
    const it::PgResult del = fresh.exec("DELETE FROM sk_rows WHERE id = " + std::to_string(7));
    INFO(del.describe());
    CHECK(del.ok());
    CHECK(direct.scalar("SELECT v FROM t_sys_sk_rows WHERE id = " + id) == "42");
    CHECK(direct.scalar("SELECT count(*) FROM t_sys_sk_rows WHERE id = 7") == "0");
    during_diff = std::stol(direct.scalar(
        "SELECT count(*) FROM (SELECT id, v, note FROM sk_rows WHERE note = 'outage-1' EXCEPT "
        "SELECT id, v, note FROM t_sys_sk_rows) x"));
  }
  const bool still_down = control_connected(*proxy) == 0;
  control_ctl.start();
  const auto back = time_until([&] { return control_connected(*proxy) == 1; }, 20s, 50ms);
  tb.join();
  ts.join();
  writer.stop();

  CHECK(still_down);  // the writes above happened while the control database was away
  CHECK(wrote_during);
  CHECK(during_diff == 0);
  INFO("control cluster log:\n" << control_ctl.log());
  REQUIRE(back.has_value());
  CHECK(it::contains(proxy->stderr_text(), "keeping the last state"));
  for (const PgbenchOutcome* b : {&bench, &bench_simple}) {
    INFO("pgbench: " << b->run.describe());
    CHECK(b->run.ok());
    CHECK_FALSE(b->aborted);
    CHECK(b->failed == 0);
    CHECK(b->processed > 50);
  }
  INFO("writer errors:\n" << joined(writer.errors()));
  CHECK(writer.errors().empty());
  const auto acked = writer.acked();
  CHECK(missing(direct, "sk_rows", acked) == 0);
  CHECK(missing(direct, "t_sys_sk_rows", acked) == 0);
  const long diff = differences(direct);
  if (diff != 0) list_differences(direct);
  CHECK(diff == 0);
  // The control plane works again: a phase change goes through.
  CHECK(time_until(
            [&] {
              return api.post("/api/v1/migrations/sk_mig/phase",
                              R"({"phase": "validation", "force": true})")
                         .status == 200;
            },
            10s, 200ms)
            .has_value());
  WARN("control outage: noticed after "
       << noticed.value_or(-1) << " ms, back after " << back.value_or(-1) << " ms; pgbench "
       << bench.processed << " + " << bench_simple.processed << " tx, "
       << bench.failed + bench_simple.failed << " failed; writer " << acked.size() << " commits ("
       << writer.acked_count() - before_outage_writes << " from the outage on); differences "
       << diff);
  stop_pgphase(*proxy);
}

TEST_CASE("control database restarted during a backfill: it resumes and completes",
          "[control_backfill]") {
  constexpr int kRows = 120000;
  const auto pg = start_cluster();
  ClusterRestarter restarter(*pg);
  {
    const it::PgConn setup = control_conn(*pg);
    setup.exec_ok(kDdl);
    setup.exec_ok(
        "INSERT INTO sk_rows (who, v, note) SELECT 'old', g, 'old-' || g FROM "
        "generate_series(1, " +
        std::to_string(kRows) + ") g; ANALYZE sk_rows");
  }
  const auto proxy = start_pgphase(serve_on(*pg));
  const Api api = api_for(*proxy);
  json::object extra;
  extra["key_columns"] = json::array{"id"};
  (void)register_migration(api, "sk_bf", "sk_rows", "t_sys_sk_rows", extra);
  (void)set_phase(api, "sk_bf", "dual_write");
  {
    const it::PgConn direct = control_conn(*pg);
    wait_dual_writing(proxy->connect(kControlDb), direct);
  }
  // Writes through pgphase during the copy (reconnecting across the restart).
  AckWriter writer("wbf", kControlDb, proxy->port());

  const it::HttpResponse start = api.post("/api/v1/migrations/sk_bf/backfill",
                                          R"({"batch_size": 1000, "max_rows_per_second": 20000})");
  INFO(describe(start));
  REQUIRE(start.status == 200);
  std::vector<double> progress;  // rows_copied of every 200 answer, in order
  std::vector<int> statuses;
  std::string final_status;
  json::object last;
  auto poll = [&] {
    const it::HttpResponse r = api.get("/api/v1/migrations/sk_bf/backfill");
    statuses.push_back(r.status);
    if (r.status != 200) return false;
    last = body_object(r);
    progress.push_back(num(last, "rows_copied"));
    final_status = str(last, "status");
    return true;
  };
  REQUIRE(it::wait_until([&] { return poll() && progress.back() >= kRows / 5; }, 30s, 50ms));
  REQUIRE(final_status == "running");

  restarter.stop();
  // While the control database is away the API answers (503 or the last progress): poll it.
  for (int k = 0; k < 5; ++k) {
    (void)poll();
    std::this_thread::sleep_for(100ms);
  }
  restarter.start();
  long copied_at_restart = 0;
  {
    const it::PgConn c = control_conn(*pg);
    copied_at_restart =
        std::stol(c.scalar("SELECT rows_copied FROM t_sys_backfills WHERE migration_id = 'sk_bf'"));
    INFO("status at restart: " << c.scalar(
             "SELECT status FROM t_sys_backfills WHERE migration_id = 'sk_bf'"));
    CHECK(c.scalar("SELECT status FROM t_sys_backfills WHERE migration_id = 'sk_bf'") == "running");
  }
  REQUIRE(copied_at_restart < kRows);  // the restart came mid-way
  INFO("pgphase stderr:\n" << proxy->stderr_tail(60));
  const bool completed =
      it::wait_until([&] { return poll() && final_status != "running"; }, 60s, 100ms);
  writer.stop();
  REQUIRE(completed);
  CHECK(final_status == "completed");

  const it::PgConn c = control_conn(*pg);
  const std::string source_rows = c.scalar("SELECT count(*) FROM sk_rows");
  // No row copied twice: the checkpoint commits with its batch, so a batch cut by the restart
  // counts nothing and is copied again. Every original row was read once; rows the writer added
  // (dual-written, never deleted) may be read too, so rows_copied lies between the two counts.
  const long db_copied =
      std::stol(c.scalar("SELECT rows_copied FROM t_sys_backfills WHERE migration_id = 'sk_bf'"));
  const long db_inserted =
      std::stol(c.scalar("SELECT rows_inserted FROM t_sys_backfills WHERE migration_id = 'sk_bf'"));
  CHECK(db_copied >= kRows);
  CHECK(db_copied <= std::stol(source_rows));
  CHECK(db_inserted <= db_copied);
  CHECK(db_inserted > kRows / 2);  // the writer's upserts reach at most kSeedRows old rows first
  CHECK(num(last, "rows_copied") == static_cast<double>(db_copied));
  CHECK(num(last, "rows_inserted") == static_cast<double>(db_inserted));
  CHECK(c.scalar("SELECT status FROM t_sys_backfills WHERE migration_id = 'sk_bf'") == "completed");
  // The progress the API showed never went back.
  for (size_t k = 1; k < progress.size(); ++k) {
    INFO("progress " << progress[k - 1] << " -> " << progress[k]);
    CHECK(progress[k] >= progress[k - 1]);
  }
  // Writers: every committed row in both tables; the tables equal.
  INFO("writer errors:\n" << joined(writer.errors()));
  const auto acked = writer.acked();
  CHECK(acked.size() > 20);
  CHECK(missing(c, "sk_rows", acked) == 0);
  CHECK(missing(c, "t_sys_sk_rows", acked) == 0);
  const long diff = differences(c);
  CHECK(diff == 0);
  CHECK(c.scalar("SELECT count(*) FROM t_sys_sk_rows") == source_rows);
  int non200 = 0;
  for (int s : statuses) non200 += s != 200 ? 1 : 0;
  WARN("backfill: " << copied_at_restart << " of " << kRows
                    << " rows copied at the restart; completed with rows_copied "
                    << num(last, "rows_copied") << ", rows_inserted " << num(last, "rows_inserted")
                    << "; " << non200 << " of " << statuses.size() << " API polls not 200; writer "
                    << acked.size() << " commits, " << writer.errors().size()
                    << " errors; differences " << diff);
  stop_pgphase(*proxy);
}
