// Microbenchmark of the per-statement cost pgphase adds in a session with a migration in
// dual_write and one in read_switch: classifying a statement that names no migrating table (the
// pre-filter), finding a cached plan for a write, and the message-level work of whole statements
// through the session's Rewriter, both directions (a prepared write, a select-only Query on an
// unrelated table, a routed read simple and prepared, an ORM's unnamed Parse/Bind/Execute).
// Prints the median and p99 of per-iteration times in nanoseconds and the heap allocations per
// iteration (global operator new counted).
//
// Every path but the uncached analysis must allocate nothing per statement: the run exits 1 if
// one does (ctest runs it so, as router_bench_allocations), or if the routed rows did not route.
//
//   build/bench/router_bench [iterations]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "intercept/rewriter.h"
#include "protocol/extended.h"
#include "protocol/wire.h"
#include "router/plan_lookup.h"
#include "router/planner.h"

using namespace pgphase;
using Clock = std::chrono::steady_clock;

namespace {
std::atomic<uint64_t> g_allocations{0};
// Set while iterations are measured (a breakpoint on operator new conditioned on it shows where
// the allocations of a path come from).
volatile bool g_measuring = false;
volatile int g_row = 0;  // rows measured so far (0-based index of the current one)
}  // namespace

// Every allocation of the process is counted (operator delete and the other forms of new
// forward to these).
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

// Migration `id` of `source` to `target` in `phase`, both tables with `columns` (the first the
// key), added to `s`.
void add_migration(migration::Snapshot& s, const std::string& id, const std::string& source,
                   const std::string& target, migration::Phase phase,
                   std::vector<std::string> columns) {
  migration::Migration m;
  m.migration_id = id;
  m.source_table = source;
  m.target_table = target;
  m.phase = phase;
  s.migrations.push_back(m);
  migration::TableShape shape;
  for (auto& c : columns) shape.source_columns.push_back({std::move(c)});
  shape.target_columns = shape.source_columns;
  shape.key_columns = {shape.source_columns.front().name};
  shape.target_has_unique_key = true;
  shape.source_has_unique_key = true;
  s.shapes[id] = shape;
}

migration::Snapshot snapshot() {
  migration::Snapshot s;
  s.generation = 1;
  add_migration(s, "accounts", "pgbench_accounts", "pgbench_accounts_copy",
                migration::Phase::kDualWrite, {"aid", "bid", "abalance", "filler"});
  // A migration in read_switch with a gradual switch at 50%: its reads are routed, half of them
  // to the target (the config id is longer than a short string's inline buffer).
  add_migration(s, "bench_users_mig", "bench_users", "t_sys_bench_users",
                migration::Phase::kReadSwitch, {"id", "name"});
  migration::SwitchConfig sw;
  sw.config_id = "bench_users_gradual_switch";
  sw.table_name = "bench_users";
  sw.migration_id = "bench_users_mig";
  sw.status = migration::SwitchStatus::kActive;
  sw.strategy = migration::SwitchStrategy::kGradual;
  sw.switch_percentage = 50;
  s.switches.push_back(sw);
  return s;
}

// Counts what the Rewriter reports, so the run can check that its rows did what they say.
class CountingObserver final : public intercept::RewriteObserver {
 public:
  void mirrored(std::string_view, router::TagKind, bool, int64_t) override { ++mirrored_; }
  void refused(std::string_view) override {}
  void flagged(std::string_view, std::string_view, std::string_view) override {}
  void analysed(bool, uint64_t) override {}
  void read(std::string_view, bool target, bool, uint64_t) override { ++reads_[target ? 1 : 0]; }
  void unroutable(std::string_view, std::string_view, std::string_view) override {}
  void shadow(migration::ShadowJob) override {}

  uint64_t mirrored_ = 0;
  uint64_t reads_[2] = {0, 0};  // source, target
};

bool g_cached_path_allocated = false;

// Times `f` `n` times. `cached`: a path that must not allocate.
template <class F>
void measure(const char* what, size_t n, F&& f, bool cached = true) {
  std::vector<double> ns(n);
  for (size_t i = 0; i < n / 10; ++i) f();  // warm up
  const uint64_t allocations_before = g_allocations.load(std::memory_order_relaxed);
  g_measuring = true;
  for (size_t i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    f();
    ns[i] = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  }
  g_measuring = false;
  g_row = g_row + 1;
  const double allocations =
      static_cast<double>(g_allocations.load(std::memory_order_relaxed) - allocations_before) /
      static_cast<double>(n);
  std::sort(ns.begin(), ns.end());
  std::printf("%-58s median %8.0f ns   p99 %8.0f ns   allocations %5.2f\n", what, ns[n / 2],
              ns[n * 99 / 100], allocations);
  if (cached && allocations > 0) g_cached_path_allocated = true;
}

std::string msg(char type, const std::string& body) {
  std::string out = protocol::begin_message(type);
  out += body;
  protocol::finish_message(out);
  return out;
}

// Parse of `sql` as statement `name`, no parameter types given.
std::string parse_message(std::string_view name, std::string_view sql) {
  return protocol::encode_parse(name, sql, {});
}

// Bind of statement `statement` to the unnamed portal, text parameters `params`, text results.
std::string bind_message(std::string_view statement,
                         std::initializer_list<std::string_view> params) {
  std::string body;
  body.push_back('\0');  // portal ""
  body += statement;
  body.push_back('\0');
  protocol::append_u16(body, 0);  // parameter formats: all text
  protocol::append_u16(body, static_cast<uint16_t>(params.size()));
  for (std::string_view p : params) {
    protocol::append_u32(body, static_cast<uint32_t>(p.size()));
    body += p;
  }
  protocol::append_u16(body, 0);  // result formats: all text
  return msg('B', body);
}

// RowDescription of one text-format column `name` of type `oid` (length `typlen`).
std::string one_column_description(std::string_view name, uint32_t oid, int16_t typlen) {
  std::string body;
  protocol::append_u16(body, 1);
  body += name;
  body.push_back('\0');
  protocol::append_u32(body, 0);  // table oid
  protocol::append_u16(body, 0);  // column number
  protocol::append_u32(body, oid);
  protocol::append_u16(body, static_cast<uint16_t>(typlen));
  protocol::append_u32(body, UINT32_MAX);  // typmod -1
  protocol::append_u16(body, 0);           // text
  return msg('T', body);
}

std::span<const uint8_t> body_of(const std::string& m) {
  return {reinterpret_cast<const uint8_t*>(m.data()) + 5, m.size() - 5};
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200000;
  const auto snap = snapshot();
  const auto table = router::RoutingTable::build(snap, "bench");
  router::PlanCache cache(8u << 20);
  CountingObserver observer;
  intercept::Rewriter rw([&] { return table; }, cache, observer);

  const std::string other = "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2";
  measure("classify a statement naming no migrating table", n, [&] {
    volatile bool b = table->may_touch(other);
    (void)b;
  });
  const std::string write = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2";
  cache.insert(
      1, write,
      {std::make_shared<const router::QueryPlan>(router::plan_query(*table, write)), nullptr});
  measure("find the cached plan of a write", n, [&] {
    volatile bool b = cache.find(1, write) != nullptr;
    (void)b;
  });
  measure(
      "analyse and rewrite a write (no cache)", n / 20,
      [&] {
        volatile size_t s = router::plan_query(*table, write).sql.size();
        (void)s;
      },
      false);

  // One execution of a prepared write, both directions, through the Rewriter.
  const std::string parse = parse_message("s1", write);
  std::string out;
  rw.frontend_held('P', body_of(parse), out);
  const std::string bind = bind_message("s1", {"5", "7"});
  const std::string execute = msg('E', std::string("\0\0\0\0\0", 5));
  const std::string sync = msg('S', "");
  const std::string parse_complete = msg('1', "");
  const std::string bind_complete = msg('2', "");
  const std::string close_complete = msg('3', "");
  const std::string data_row = msg('D', std::string("\0\x01\0\0\0\x01", 6) + "1");
  const std::string command_complete = msg('C', std::string("SELECT 1") + '\0');
  const std::string ready = msg('Z', "I");
  auto view = [](const std::string& m) {
    return protocol::MessageView{m[0],
                                 protocol::read_u32(reinterpret_cast<const uint8_t*>(m.data()) + 1),
                                 body_of(m).first(std::min<size_t>(body_of(m).size(), 32))};
  };
  // The client's messages and the server's answers through the Rewriter, as a session passes
  // them (a held message to frontend_held/backend_held, the rest streamed).
  auto ask = [&](std::initializer_list<const std::string*> requests) {
    for (const std::string* m : requests) {
      if (rw.frontend_disposition(view(*m)) == protocol::Disposition::kHold)
        rw.frontend_held((*m)[0], body_of(*m), out);
    }
  };
  auto answer = [&](std::initializer_list<const std::string*> replies) {
    for (const std::string* m : replies) {
      if (rw.backend_disposition(view(*m)) == protocol::Disposition::kHold)
        rw.backend_held((*m)[0], body_of(*m), out);
    }
  };
  // One row: the client's `requests` and the server's `replies`, per iteration.
  using Messages = std::initializer_list<const std::string*>;
  auto round_trip = [&](const char* what, Messages requests, Messages replies) {
    measure(what, n, [&] {
      out.clear();
      ask(requests);
      answer(replies);
    });
  };
  // One row of Query messages, a new text each iteration (`text(i)`, built before timing), and
  // the server's `replies`: a path that renders plans from a shape, so it may allocate.
  auto new_texts = [&](const char* what, auto text, Messages replies) {
    std::vector<std::string> queries;
    for (size_t i = 0; i < n + n / 10 + 2; ++i) queries.push_back(msg('Q', text(i) + '\0'));
    size_t next = 0;
    measure(
        what, n,
        [&] {
          out.clear();
          ask({&queries[next++]});
          answer(replies);
        },
        false);
  };
  answer({&parse_complete});
  round_trip("one execution of a cached prepared write (both ways)", {&bind, &execute, &sync},
             {&bind_complete, &data_row, &command_complete, &ready});
  // pgbench's select-only transaction in the simple protocol, on a table no migration names, in
  // a session with a migration in dual_write: Query in, RowDescription/DataRow/CommandComplete/
  // ReadyForQuery out.
  const std::string query =
      msg('Q', std::string("SELECT abalance FROM pgbench_branches WHERE bid = 1") + '\0');
  const std::string row_description = one_column_description("abalance", 23, 4);  // int4
  round_trip("one select-only Query, no migrating table (both ways)", {&query},
             {&row_description, &data_row, &command_complete, &ready});
  // One routed read in the simple protocol (read_switch, gradual 50%): Query in, its answer out,
  // the read counted per side. A text without literals is found by its text.
  const std::string routed_query =
      msg('Q', std::string("SELECT name FROM bench_users WHERE name IS NOT NULL") + '\0');
  const std::string name_description = one_column_description("name", 25, -1);  // text
  const std::string name_row = msg('D', std::string("\0\x01\0\0\0\x01", 6) + "x");
  round_trip("one routed read Query, read_switch 50% (both ways)", {&routed_query},
             {&name_description, &name_row, &command_complete, &ready});
  // The same with inlined literals, a new text each time (pgbench -S -M simple): its plan is
  // rendered from the shape's (a new plan, so this path allocates).
  new_texts(
      "one routed read Query with new literals, shape cached",
      [](size_t i) { return "SELECT name FROM bench_users WHERE id = " + std::to_string(i + 1); },
      {&name_description, &name_row, &command_complete, &ready});
  // The same read prepared once (named), then Bind/Execute/Sync per execution: half of them
  // bind the statement's target-reading twin.
  out.clear();
  const std::string read_parse = parse_message("r1", "SELECT name FROM bench_users WHERE id = $1");
  ask({&read_parse});
  answer({&parse_complete});
  const std::string read_bind = bind_message("r1", {"1"});
  measure("one execution of a prepared routed read (both ways)", n, [&] {
    out.clear();
    ask({&read_bind, &execute, &sync});
    // The twin's Close and Parse, when this execution prepared it, are answered first.
    while (rw.pending() > 3) answer({rw.pending() == 5 ? &close_complete : &parse_complete});
    answer({&bind_complete, &name_row, &command_complete, &ready});
  });
  // An ORM's unprepared statement: the unnamed statement parsed, bound and executed each time
  // (pgjdbc below prepareThreshold, psycopg), a write of the dual_write migration.
  const std::string unnamed_parse = parse_message("", write);
  const std::string unnamed_bind = bind_message("", {"5", "7"});
  round_trip("one unnamed Parse/Bind/Execute of a write (both ways)",
             {&unnamed_parse, &unnamed_bind, &execute, &sync},
             {&parse_complete, &bind_complete, &data_row, &command_complete, &ready});
  // An application that inlines literals (psycopg2, Django, Rails in the simple protocol):
  // every write a new text of one shape (pgbench's UPDATE in -M simple), its plan rendered from
  // the shape's template. The rendered plan is new, so this path allocates.
  const std::string count_description = one_column_description("count", 20, 8);  // int8
  new_texts("one Query write with new literals, shape cached (both ways)",
            [](size_t i) {
              return "UPDATE pgbench_accounts SET abalance = abalance + " +
                     std::to_string(static_cast<long>(i % 5000) - 2500) +
                     " WHERE aid = " + std::to_string(i + 1);
            },
            {&count_description, &data_row, &command_complete, &ready});
  // First sight of a shape against planning a text without the cache (what every such text
  // cost before shapes were cached): texts of distinct shapes (a comment differs).
  const size_t firsts = n / 20;
  std::vector<std::string> shapes;
  for (size_t i = 0; i < firsts + firsts / 10 + 1; ++i) {
    shapes.push_back("UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid = 3 /* " +
                     std::to_string(i) + " */");
  }
  // The two alternate text by text (the same texts, each in its own fresh cache), so that
  // neither gains from running after the other.
  router::PlanCache by_text(64u << 20);
  router::PlanCache by_shape(64u << 20);
  router::LookupScratch scratch;
  std::vector<double> before_ns;
  std::vector<double> after_ns;
  for (size_t i = 0; i < firsts; ++i) {
    const std::string& sql = shapes[i];
    auto t0 = Clock::now();
    if (by_text.find(1, sql) == nullptr) {
      auto p = std::make_shared<const router::QueryPlan>(router::plan_query(*table, sql));
      by_text.insert(1, sql, {std::move(p), nullptr});
    }
    auto t1 = Clock::now();
    volatile bool b = router::find_or_plan(by_shape, *table, sql, {}, scratch).cached;
    (void)b;
    auto t2 = Clock::now();
    before_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    after_ns.push_back(std::chrono::duration<double, std::nano>(t2 - t1).count());
  }
  for (auto* v : {&before_ns, &after_ns}) std::sort(v->begin(), v->end());
  std::printf("%-58s median %8.0f ns   p99 %8.0f ns\n",
              "first sight of a text, cached by text (before shapes)", before_ns[firsts / 2],
              before_ns[firsts * 99 / 100]);
  std::printf("%-58s median %8.0f ns   p99 %8.0f ns\n",
              "first sight of a shape (plan, template, cache)", after_ns[firsts / 2],
              after_ns[firsts * 99 / 100]);
  std::printf("reads counted: %llu source, %llu target; writes mirrored: %llu\n",
              static_cast<unsigned long long>(observer.reads_[0]),
              static_cast<unsigned long long>(observer.reads_[1]),
              static_cast<unsigned long long>(observer.mirrored_));
  if (observer.reads_[0] == 0 || observer.reads_[1] == 0 || observer.mirrored_ == 0) {
    std::fprintf(stderr, "router_bench: the routed rows did not route both ways\n");
    return 1;
  }
  if (g_cached_path_allocated) {
    std::fprintf(stderr, "router_bench: a cached path allocated\n");
    return 1;
  }
  if (rw.pending() != 0 || rw.desynchronised()) {
    std::fprintf(stderr, "router_bench: the rewriter lost track (%zu pending)\n", rw.pending());
    return 1;
  }
  return 0;
}
