// Shadow reads (strategy "shadow"): clients are always answered from the source; for a share of
// reads (the switch percentage) pgphase runs the same statement, with the same parameters,
// against the source and against the target inside one REPEATABLE READ READ ONLY transaction on
// its own connection (control credentials), off the client's path, so that concurrent writes
// cannot cause false mismatches. Results are compared as text, order-insensitive unless the query
// has a top-level ORDER BY; mismatches are counted per switch with a bounded sample of the
// queries (ReadStats). The queue is bounded: when pgphase is busy shadow work is dropped and
// counted, never queued without limit.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pgphase::migration {

class ReadStats;

struct ShadowJob {
  std::string config_id;
  std::string source_sql;
  std::string target_sql;
  std::vector<uint32_t> param_types;  // 0: let the server infer
  std::vector<std::optional<std::string>> params;
  std::vector<int> param_formats;  // 0 text, 1 binary
  bool ordered = false;            // compare in order (top-level ORDER BY)
};

class ShadowRunner {
 public:
  ShadowRunner(std::string dsn, ReadStats& stats, size_t queue_limit = 256);
  ~ShadowRunner();
  ShadowRunner(const ShadowRunner&) = delete;
  ShadowRunner& operator=(const ShadowRunner&) = delete;

  void start();
  void stop();
  // Never blocks; false (and counted as dropped) when the queue is full.
  bool submit(ShadowJob job);

 private:
  void loop();
  void run(const ShadowJob& job);

  std::string dsn_;
  ReadStats& stats_;
  size_t limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ShadowJob> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace pgphase::migration
