// migration/read_stats: views over the workers' read windows (stats/read_window.h): the last N
// seconds and since activation, percentiles from the logarithmic buckets, error rates, unroutable
// reads, resets, shadow figures, and a reader merging while two workers write. No database.
#include "migration/read_stats.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <thread>
#include <vector>

#include "stats/read_window.h"
#include "stats/routing_stats.h"

using namespace pgphase;
using std::chrono::seconds;

namespace {

constexpr uint64_t ms(double v) {
  return static_cast<uint64_t>(v * 1e6);
}

// The upper bound of the bucket `v` ms falls in (what a percentile reports).
double bound(double v) {
  return stats::log_bucket_upper_ms(stats::log_bucket(ms(v)));
}

}  // namespace

TEST_CASE("log buckets are 10% wide from 0.01 ms") {
  CHECK(stats::log_bucket(0) == 0);
  CHECK(stats::log_bucket(ms(0.01)) == 0);
  CHECK(stats::log_bucket(ms(0.0105)) == 1);
  CHECK(stats::log_bucket(ms(1e9)) == stats::kLogBuckets - 1);
  for (const double v : {0.02, 0.5, 3.0, 47.0, 1200.0}) {
    CHECK(bound(v) >= v);
    CHECK(bound(v) <= v * 1.1 + 1e-9);
  }
}

TEST_CASE("a window counts the seconds it covers; since activation counts all") {
  stats::RoutingStats rs(2);
  migration::ReadStats reads(&rs);
  const int64_t now = stats::steady_second();
  // Worker 0: 100 target reads now, 1 ms to 100 ms; worker 1: 10 errors 90 s ago, 5 ms.
  for (int i = 1; i <= 100; ++i) rs.shard(0).read("c", true, true, ms(i), now);
  for (int i = 0; i < 10; ++i) rs.shard(1).read("c", true, false, ms(5), now - 90);
  rs.shard(1).read("c", false, true, ms(2), now);
  rs.shard(0).unroutable("m", "c", now);
  rs.shard(1).unroutable("m", "c", now - 90);

  const migration::ReadView minute = reads.view("c", seconds(60));
  CHECK(minute.seconds == 60);
  CHECK(minute.target.statements == 100);
  CHECK(minute.target.errors == 0);
  CHECK(minute.target.error_rate == 0);
  CHECK(minute.target.mean_ms == Approx(50.5));
  CHECK(minute.target.p50_ms == Approx(bound(50)));
  CHECK(minute.target.p95_ms == Approx(bound(95)));
  CHECK(minute.target.p99_ms == Approx(bound(99)));
  CHECK(minute.source.statements == 1);
  CHECK(minute.source.p50_ms == Approx(bound(2)));
  CHECK(minute.unroutable == 1);

  const migration::ReadView two = reads.view("c", seconds(120));
  CHECK(two.target.statements == 110);
  CHECK(two.target.errors == 10);
  CHECK(two.target.error_rate == Approx(10.0 / 110));
  CHECK(two.unroutable == 2);

  const migration::ReadView longer = reads.view("c", seconds(500));  // clamped to 120 s
  CHECK(longer.seconds == 120);
  CHECK(longer.target.statements == 110);

  const migration::ReadView total = reads.view("c", seconds(0));
  CHECK(total.seconds == 0);
  CHECK(total.target.statements == 110);
  CHECK(total.source.statements == 1);
  CHECK(total.unroutable == 2);

  const migration::ReadView none = reads.view("other", seconds(30));
  CHECK(none.seconds == 30);
  CHECK(none.target.statements == 0);
}

TEST_CASE("a slot reused 120 s later holds only its new second") {
  stats::RoutingStats rs(1);
  migration::ReadStats reads(&rs);
  const int64_t now = stats::steady_second();
  rs.shard(0).read("c", true, true, ms(1), now - 120);  // the same slot as `now`
  rs.shard(0).read("c", true, true, ms(1), now);
  CHECK(reads.view("c", seconds(120)).target.statements == 1);
  CHECK(reads.view("c", seconds(0)).target.statements == 2);
}

TEST_CASE("reset: a new activation starts from zero on every worker") {
  stats::RoutingStats rs(2);
  migration::ReadStats reads(&rs);
  const int64_t now = stats::steady_second();
  rs.shard(0).read("c", true, true, ms(1), now);
  rs.shard(1).read("c", true, false, ms(1), now);
  rs.shard(1).unroutable("m", "c", now);
  reads.record_shadow("c", false, "SELECT 1");
  reads.reset("c");
  // Worker 1 has not written since: its figures are the previous activation's.
  CHECK(reads.view("c", seconds(60)).target.statements == 0);
  CHECK(reads.view("c", seconds(0)).target.statements == 0);
  CHECK(reads.view("c", seconds(0)).unroutable == 0);
  CHECK(reads.view("c", seconds(0)).shadow_mismatches == 0);
  CHECK(reads.shadow_samples("c").empty());
  rs.shard(0).read("c", true, true, ms(3), now);
  const migration::ReadView v = reads.view("c", seconds(0));
  CHECK(v.target.statements == 1);
  CHECK(v.target.p50_ms == Approx(bound(3)));
  // The counters since start (/metrics) are not reset.
  CHECK(rs.totals().reads.at("c")[1].ok == 2);
  CHECK(rs.totals().reads.at("c")[1].errors == 1);
  // A reset before a worker first sees the config counts for it too.
  reads.reset("fresh");
  rs.shard(1).read("fresh", false, true, ms(1), now);
  CHECK(reads.view("fresh", seconds(0)).source.statements == 1);
}

TEST_CASE("shadow comparisons, drops and samples") {
  migration::ReadStats reads;  // no proxy: shadow figures only
  for (int i = 0; i < 25; ++i) reads.record_shadow("s", i % 5 != 0, "q" + std::to_string(i));
  reads.record_shadow_dropped("s");
  const migration::ReadView v = reads.view("s", seconds(60));
  CHECK(v.shadow_comparisons == 25);
  CHECK(v.shadow_mismatches == 5);
  CHECK(v.shadow_dropped == 1);
  CHECK(v.seconds == 60);
  CHECK(reads.view("s", seconds(0)).shadow_comparisons == 25);
  const auto samples = reads.shadow_samples("s");
  REQUIRE(samples.size() == 5);
  CHECK(samples.front() == "q0");
  CHECK(samples.back() == "q20");
  CHECK(reads.analysis().hits == 0);
}

TEST_CASE("parse-cache figures merged from every worker") {
  stats::RoutingStats rs(2);
  migration::ReadStats reads(&rs);
  rs.shard(0).analysed(true, 3000);
  rs.shard(0).analysed(true, 1000);
  rs.shard(1).analysed(false, 8000);
  rs.shard(1).analysed(true, 0);
  const auto a = reads.analysis();
  CHECK(a.hits == 3);
  CHECK(a.misses == 1);
  CHECK(a.hit_rate == Approx(0.75));
  CHECK(a.mean_us == Approx(3.0));
}

TEST_CASE("two workers record while a reader views: exact once they stop") {
  constexpr int kPerWorker = 100'000;
  stats::RoutingStats rs(2);
  migration::ReadStats reads(&rs);
  std::atomic<bool> done{false};
  uint64_t views = 0;
  bool over = false;  // a view counted more than was written (Catch asserts on the main thread)
  std::thread reader([&] {
    while (!done.load()) {
      const migration::ReadView v = reads.view("c", seconds(60));
      over = over || v.target.statements + v.source.statements > 2u * kPerWorker;
      ++views;
    }
  });
  std::vector<std::thread> writers;
  for (size_t i = 0; i < 2; ++i) {
    writers.emplace_back([&, i] {
      for (int n = 0; n < kPerWorker; ++n)
        rs.shard(i).read("c", i == 1, n % 100 != 0, ms(1 + n % 20));
    });
  }
  for (auto& t : writers) t.join();
  done = true;
  reader.join();
  CHECK_FALSE(over);
  CHECK(views > 0);
  // The writers may have crossed a second boundary: the window and the total agree regardless.
  for (const auto window : {seconds(60), seconds(0)}) {
    const migration::ReadView v = reads.view("c", window);
    CHECK(v.source.statements == kPerWorker);
    CHECK(v.target.statements == kPerWorker);
    CHECK(v.target.errors == kPerWorker / 100);
    CHECK(v.target.p99_ms <= bound(20));
  }
}
