// Backpressure: a client reads a ~1 GB result at ~50 MB/s, slower than PostgreSQL produces it.
// pgphase must hold the backend back (PostgreSQL waits in ClientWrite) instead of buffering:
// its resident memory stays under 64 MiB while every row arrives intact.
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "rob_support.h"

using namespace pgphase;
using namespace pgphase::rob;
namespace wire = it::wire;

namespace {

constexpr int kRows = 1000000;
constexpr int kWidth = 1000;
constexpr double kReadRate = 50e6;  // bytes per second
constexpr long kMaxRssKb = 64 * 1024;

// Streaming checker of the backend messages of one simple Query, fed in arbitrary pieces.
class ResultChecker {
 public:
  void feed(const char* data, size_t n) {
    buf_.append(data, n);
    size_t pos = 0;
    while (buf_.size() - pos >= 5) {
      const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos + 1);
      const uint32_t len =
          (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
      if (len < 4) throw std::runtime_error("bad message length in the result stream");
      if (buf_.size() - pos < 1 + size_t{len}) break;
      on_message(buf_[pos], std::string_view(buf_).substr(pos + 5, len - 4));
      pos += 1 + len;
    }
    buf_.erase(0, pos);
  }
  [[nodiscard]] bool done() const { return ready_; }

  std::string types_seen;  // the type byte of every message other than DataRow
  long rows = 0;
  long bad_rows = 0;
  std::string tag;

 private:
  void on_message(char type, std::string_view body) {
    if (type == 'D') {
      ++rows;
      // One column of kWidth bytes, all 'x': int16 count, int32 length, value.
      const bool good = body.size() == 6 + kWidth && body[0] == 0 && body[1] == 1 &&
                        std::all_of(body.begin() + 6, body.end(), [](char c) { return c == 'x'; });
      if (!good) ++bad_rows;
      return;
    }
    types_seen += type;
    if (type == 'C') tag = std::string(body.substr(0, body.find('\0')));
    if (type == 'Z') ready_ = true;
  }
  std::string buf_;
  bool ready_ = false;
};

}  // namespace

TEST_CASE("a slow reader of a 1 GB result keeps pgphase's memory bounded", "[backpressure]") {
  const auto pg = it::PgCluster::start();
  it::ProxyProcess proxy(it::ProxyOptions::tcp(*pg));
  const it::PgConn direct = pg->connect();
  REQUIRE(direct.ok());
  const long rss_start = proxy.rss_kb();
  REQUIRE(rss_start > 0);

  it::RawClient client = it::RawClient::tcp(proxy.port());
  client.startup("postgres", "postgres", {{"application_name", "rob_slow_reader"}});
  const int rcvbuf = 64 * 1024;  // keep the kernel from absorbing much of the result either
  setsockopt(client.fd(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

  std::atomic<bool> stop{false};
  std::atomic<long> max_rss{rss_start};
  std::atomic<int> rss_samples{0};
  std::atomic<int> client_write_waits{0};
  std::thread sampler([&] {
    int tick = 0;
    while (!stop.load()) {
      const long kb = proxy.rss_kb();
      if (kb > 0) {
        max_rss = std::max(max_rss.load(), kb);
        ++rss_samples;
      }
      // Every 500 ms: is PostgreSQL blocked writing to pgphase (backpressure reached it)?
      if (++tick % 5 == 0 &&
          direct.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                        "'rob_slow_reader' AND wait_event = 'ClientWrite'") == "1") {
        ++client_write_waits;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  REQUIRE(client.send(wire::query("SELECT repeat('x', " + std::to_string(kWidth) +
                                  ") FROM generate_series(1, " + std::to_string(kRows) + ")")));
  ResultChecker checker;
  const auto start = it::Clock::now();
  size_t total = 0;
  char piece[16 * 1024];
  std::string failure;
  while (!checker.done()) {
    pollfd p{client.fd(), POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) {
      failure = "no data from pgphase for 30 s";
      break;
    }
    const ssize_t n = recv(client.fd(), piece, sizeof piece, 0);
    if (n <= 0) {
      failure = "connection closed after " + std::to_string(total) + " bytes";
      break;
    }
    total += static_cast<size_t>(n);
    checker.feed(piece, static_cast<size_t>(n));
    // Pace the reads: never ahead of kReadRate.
    const double due_ms = static_cast<double>(total) / kReadRate * 1000.0;
    const double ahead_ms = due_ms - it::elapsed_ms(start);
    if (ahead_ms > 1) std::this_thread::sleep_for(std::chrono::microseconds(long(ahead_ms * 1000)));
  }
  const double seconds = it::elapsed_ms(start) / 1000.0;
  stop = true;
  sampler.join();

  INFO("read " << total << " bytes in " << seconds << " s; pgphase RSS " << rss_start
               << " KiB at start, max " << max_rss.load() << " KiB over " << rss_samples.load()
               << " samples; PostgreSQL seen in ClientWrite " << client_write_waits.load()
               << " times\npgphase stderr:\n"
               << proxy.stderr_tail(20));
  REQUIRE(failure.empty());
  CHECK(checker.types_seen == "TCZ");
  CHECK(checker.rows == kRows);
  CHECK(checker.bad_rows == 0);
  CHECK(checker.tag == "SELECT " + std::to_string(kRows));
  CHECK(total > size_t{kRows} * kWidth);
  CHECK(rss_samples.load() >= 50);
  CHECK(max_rss.load() < kMaxRssKb);
  CHECK(client_write_waits.load() > 0);

  // The session is still usable afterwards.
  client.send(wire::query("SELECT 'after'"));
  const auto msgs = client.read_until_ready();
  REQUIRE(it::types(msgs) == "TDCZ");
  CHECK(msgs[1].columns()[0] == "after");
  CHECK(proxy.running());
}
