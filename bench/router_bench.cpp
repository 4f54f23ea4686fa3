// Microbenchmark of the per-statement cost pgphase adds in a session with a migration in
// dual_write: classifying a statement that names no migrating table (the pre-filter), finding a
// cached plan for a write, and the message-level work of one execution of a prepared write
// (Bind/Execute/Sync in, BindComplete/DataRow/CommandComplete/ReadyForQuery out, through the
// session's Rewriter). Prints the median and p99 of per-iteration times in nanoseconds.
//
//   build/bench/router_bench [iterations]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol/extended.h"
#include "protocol/wire.h"
#include "intercept/rewriter.h"
#include "router/planner.h"

using namespace pgphase;
using Clock = std::chrono::steady_clock;

namespace {

migration::Snapshot snapshot() {
  migration::Snapshot s;
  s.generation = 1;
  migration::Migration m;
  m.migration_id = "accounts";
  m.source_table = "pgbench_accounts";
  m.target_table = "pgbench_accounts_copy";
  m.phase = migration::Phase::kDualWrite;
  s.migrations.push_back(m);
  migration::TableShape shape;
  shape.source_columns = {{"aid"}, {"bid"}, {"abalance"}, {"filler"}};
  shape.target_columns = shape.source_columns;
  shape.key_columns = {"aid"};
  shape.target_has_unique_key = true;
  shape.source_has_unique_key = true;
  s.shapes["accounts"] = shape;
  return s;
}

template <class F>
void measure(const char* what, size_t n, F&& f) {
  std::vector<double> ns(n);
  for (size_t i = 0; i < n / 10; ++i) f();  // warm up
  for (size_t i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    f();
    ns[i] = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  }
  std::sort(ns.begin(), ns.end());
  std::printf("%-58s median %8.0f ns   p99 %8.0f ns\n", what, ns[n / 2], ns[n * 99 / 100]);
}

std::string msg(char type, const std::string& body) {
  std::string out = protocol::begin_message(type);
  out += body;
  protocol::finish_message(out);
  return out;
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
  intercept::NullRewriteObserver observer;
  intercept::Rewriter rw([&] { return table; }, cache, observer);

  const std::string other = "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2";
  measure("classify a statement naming no migrating table", n, [&] {
    volatile bool b = table->may_touch(other);
    (void)b;
  });
  const std::string write = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2";
  cache.insert(1, write,
               std::make_shared<const router::QueryPlan>(router::plan_query(*table, write)));
  measure("find the cached plan of a write", n, [&] {
    volatile bool b = cache.find(1, write) != nullptr;
    (void)b;
  });
  measure("analyse and rewrite a write (no cache)", n / 20, [&] {
    volatile size_t s = router::plan_query(*table, write).sql.size();
    (void)s;
  });

  // One execution of a prepared write, both directions, through the Rewriter.
  std::string parse_body = "s1";
  parse_body.push_back('\0');
  parse_body += write;
  parse_body.push_back('\0');
  parse_body += std::string("\0\0", 2);
  const std::string parse = msg('P', parse_body);
  std::string out;
  rw.frontend_held('P', body_of(parse), out);
  std::string bind_body;
  bind_body.push_back('\0');
  bind_body += "s1";
  bind_body.push_back('\0');
  bind_body += std::string("\0\0\0\x02", 4);
  bind_body += std::string("\0\0\0\x01", 4) + "5";
  bind_body += std::string("\0\0\0\x01", 4) + "7";
  bind_body += std::string("\0\0", 2);
  const std::string bind = msg('B', bind_body);
  const std::string execute = msg('E', std::string("\0\0\0\0\0", 5));
  const std::string sync = msg('S', "");
  const std::string parse_complete = msg('1', "");
  const std::string bind_complete = msg('2', "");
  const std::string data_row = msg('D', std::string("\0\x01\0\0\0\x01", 6) + "1");
  const std::string command_complete = msg('C', std::string("SELECT 1") + '\0');
  const std::string ready = msg('Z', "I");
  auto view = [](const std::string& m) {
    return protocol::MessageView{m[0],
                                 protocol::read_u32(reinterpret_cast<const uint8_t*>(m.data()) + 1),
                                 body_of(m).first(std::min<size_t>(body_of(m).size(), 32))};
  };
  (void)rw.backend_disposition(view(parse_complete));
  measure("one execution of a cached prepared write (both ways)", n, [&] {
    out.clear();
    for (const std::string* m : {&bind, &execute}) {
      if (rw.frontend_disposition(view(*m)) == protocol::Disposition::kHold)
        rw.frontend_held((*m)[0], body_of(*m), out);
    }
    (void)rw.frontend_disposition(view(sync));
    for (const std::string* m : {&bind_complete, &data_row, &command_complete, &ready}) {
      if (rw.backend_disposition(view(*m)) == protocol::Disposition::kHold)
        rw.backend_held((*m)[0], body_of(*m), out);
    }
  });
  if (rw.pending() != 0 || rw.desynchronised()) {
    std::fprintf(stderr, "router_bench: the rewriter lost track (%zu pending)\n", rw.pending());
    return 1;
  }
  return 0;
}
