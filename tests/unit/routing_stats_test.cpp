// stats/: the workers' routing figures. Each worker writes its own shard while readers merge
// them: totals are exact once the writers stop, and an id a worker first sees while a reader
// merges is found, whole. No database, no sockets.
#include "stats/routing_stats.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "stats/relay_stats.h"
#include "stats/stats.h"

using namespace pgphase;
using stats::WriteOp;

namespace {

uint64_t statements(const stats::RoutingTotals& t, const std::string& id, WriteOp op, bool ok) {
  const auto it = t.dual_writes.find(id);
  return it == t.dual_writes.end() ? 0 : it->second.statements[static_cast<size_t>(op)][ok ? 1 : 0];
}

}  // namespace

TEST_CASE("a worker's figures by migration, config and side") {
  stats::RoutingStats rs(1);
  stats::RoutingShard& w = rs.shard(0);
  w.mirrored("m", WriteOp::kInsert, true, 3);
  w.mirrored("m", WriteOp::kInsert, false, 0);
  w.mirrored("m", WriteOp::kUpdate, true, 0);  // no rows: counted as a statement only
  w.refused("m");
  w.flagged("m");
  w.flagged("m");
  w.analysed(true, 1000);
  w.analysed(false, 500);
  w.read("c", true, true, 400'000);         // 0.4 ms: bucket le=0.0005
  w.read("c", true, false, 7'000'000);      // 7 ms: bucket le=0.01
  w.read("c", false, true, 9'000'000'000);  // 9 s: +Inf
  w.unroutable("m", "c");
  w.unroutable("m", "");

  const stats::RoutingTotals t = rs.totals();
  CHECK(statements(t, "m", WriteOp::kInsert, true) == 1);
  CHECK(statements(t, "m", WriteOp::kInsert, false) == 1);
  CHECK(statements(t, "m", WriteOp::kUpdate, true) == 1);
  const stats::DualWriteTotals& d = t.dual_writes.at("m");
  CHECK(d.rows[static_cast<size_t>(WriteOp::kInsert)] == 3);
  CHECK(d.rows[static_cast<size_t>(WriteOp::kUpdate)] == 0);
  CHECK(d.refused == 1);
  CHECK(d.flagged == 2);
  CHECK(t.analysis.hits == 1);
  CHECK(t.analysis.misses == 1);
  CHECK(t.analysis.nanoseconds == 1500);
  const auto& target = t.reads.at("c")[1];
  CHECK(target.ok == 1);
  CHECK(target.errors == 1);
  CHECK(target.latency[0] == 1);
  CHECK(target.latency[4] == 1);
  CHECK(target.latency_ns == 7'400'000);
  const auto& source = t.reads.at("c")[0];
  CHECK(source.ok == 1);
  CHECK(source.latency[stats::kReadLatencyBuckets.size()] == 1);
  CHECK(t.unroutable.at({"m", "c"}) == 1);
  CHECK(t.unroutable.at({"m", ""}) == 1);
}

TEST_CASE("two workers write their shards while a reader merges: exact totals") {
  constexpr int kPerWorker = 200'000;
  stats::Stats figures(2, true);
  std::atomic<bool> done{false};
  std::vector<uint64_t> seen;  // the reader's successive sums: never decreasing
  std::thread reader([&] {
    while (!done.load()) {
      const stats::RoutingTotals t = figures.routing().totals();
      uint64_t sum = statements(t, "shared", WriteOp::kInsert, true);
      if (const auto it = t.reads.find("cfg"); it != t.reads.end()) sum += it->second[1].ok;
      seen.push_back(sum);
    }
  });
  std::vector<std::thread> writers;
  for (size_t i = 0; i < 2; ++i) {
    writers.emplace_back([&, i] {
      stats::RoutingShard& w = figures.routing().shard(i);
      stats::StatsShard& relay = figures.relay(i);
      for (int n = 0; n < kPerWorker; ++n) {
        w.mirrored("shared", WriteOp::kInsert, true, 2);
        w.read("cfg", true, true, 1000 + static_cast<uint64_t>(n % 7));
        w.analysed(n % 2 == 0, 10);
        stats::bump(relay.statements[0]);
        relay.observe_latency_ns(100'000);
      }
    });
  }
  for (auto& t : writers) t.join();
  done = true;
  reader.join();

  const stats::RoutingTotals t = figures.routing().totals();
  CHECK(statements(t, "shared", WriteOp::kInsert, true) == 2 * kPerWorker);
  CHECK(t.dual_writes.at("shared").rows[0] == 4u * kPerWorker);
  CHECK(t.reads.at("cfg")[1].ok == 2 * kPerWorker);
  uint64_t in_buckets = 0;
  for (const uint64_t b : t.reads.at("cfg")[1].latency) in_buckets += b;
  CHECK(in_buckets == 2 * kPerWorker);
  CHECK(t.analysis.hits + t.analysis.misses == 2 * kPerWorker);
  CHECK(t.analysis.nanoseconds == 20u * kPerWorker);
  uint64_t relay_statements = 0;
  for (size_t i = 0; i < figures.workers(); ++i)
    relay_statements += stats::load(figures.relay(i).statements[0]);
  CHECK(relay_statements == 2 * kPerWorker);
  CHECK(std::is_sorted(seen.begin(), seen.end()));
}

TEST_CASE("ids first seen while a reader merges are registered whole") {
  constexpr int kIds = 2000;
  stats::RoutingStats rs(2);
  std::atomic<bool> done{false};
  size_t max_ids = 0;
  bool keyless = false;  // (Catch's assertions are for the main thread only)
  std::thread reader([&] {
    while (!done.load()) {
      const stats::RoutingTotals t = rs.totals();
      // An entry is seen with its key or not at all.
      for (const auto& [id, d] : t.dual_writes) keyless = keyless || id.empty();
      max_ids = std::max(max_ids, t.dual_writes.size());
      rs.for_each_window("c7", [](const stats::ReadWindow&) {});
    }
  });
  std::vector<std::thread> writers;
  for (size_t i = 0; i < 2; ++i) {
    writers.emplace_back([&, i] {
      stats::RoutingShard& w = rs.shard(i);
      for (int n = 0; n < kIds; ++n) {
        const std::string id = "m" + std::to_string(n);
        w.mirrored(id, WriteOp::kDelete, i == 0, 1);
        w.mirrored(id, WriteOp::kDelete, i == 0, 1);
        w.read("c" + std::to_string(n % 10), i == 1, true, 5000);
        w.unroutable(id, "c" + std::to_string(n % 10));
      }
    });
  }
  for (auto& t : writers) t.join();
  done = true;
  reader.join();

  CHECK_FALSE(keyless);
  const stats::RoutingTotals t = rs.totals();
  REQUIRE(t.dual_writes.size() == kIds);
  CHECK(max_ids <= static_cast<size_t>(kIds));
  for (int n = 0; n < kIds; ++n) {
    const std::string id = "m" + std::to_string(n);
    CHECK(statements(t, id, WriteOp::kDelete, true) == 2);
    CHECK(statements(t, id, WriteOp::kDelete, false) == 2);
    CHECK(t.unroutable.at({id, "c" + std::to_string(n % 10)}) == 2);
  }
  REQUIRE(t.reads.size() == 10);
  CHECK(t.reads.at("c3")[0].ok == kIds / 10);
  CHECK(t.reads.at("c3")[1].ok == kIds / 10);
}
