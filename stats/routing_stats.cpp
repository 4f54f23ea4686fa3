#include "stats/routing_stats.h"

#include <algorithm>

namespace pgphase::stats {

const char* write_op_name(WriteOp op) noexcept {
  switch (op) {
    case WriteOp::kInsert:
      return "insert";
    case WriteOp::kUpdate:
      return "update";
    case WriteOp::kDelete:
      return "delete";
  }
  return "other";
}

// ---- the worker's side ----------------------------------------------------------------------

void RoutingShard::mirrored(std::string_view migration_id, WriteOp op, bool ok, int64_t rows) {
  DualWrite& d = dual_writes_.get({migration_id});
  const auto o = static_cast<size_t>(op);
  bump(d.statements[o][ok ? 1 : 0]);
  if (ok && rows > 0) bump(d.rows[o], static_cast<uint64_t>(rows));
}

void RoutingShard::refused(std::string_view migration_id) {
  bump(dual_writes_.get({migration_id}).refused);
}

void RoutingShard::flagged(std::string_view migration_id) {
  bump(dual_writes_.get({migration_id}).flagged);
}

void RoutingShard::analysed(bool cache_hit, uint64_t nanoseconds) noexcept {
  bump(cache_hit ? hits_ : misses_);
  bump(analysis_ns_, nanoseconds);
}

RoutingShard::Read& RoutingShard::read_entry(std::string_view config_id) {
  // The epoch is looked up (under the owner's lock) only when this worker first sees the config.
  return reads_.get({config_id},
                    [&]() -> const std::atomic<uint32_t>& { return owner_.epoch(config_id); });
}

ReadWindow& RoutingShard::Read::current() noexcept {
  // A relaxed load of a line written only by a reset: no lock, no read-modify-write.
  const uint32_t e = epoch.load(std::memory_order_relaxed);
  if (window.epoch() != e) window.restart(e);
  return window;
}

void RoutingShard::read(std::string_view config_id, bool target, bool ok, uint64_t nanoseconds,
                        int64_t second) {
  Read& r = read_entry(config_id);
  ReadSide& s = r.side[target ? 1 : 0];
  bump(ok ? s.ok : s.errors);
  const double seconds = static_cast<double>(nanoseconds) / 1e9;
  const auto it = std::lower_bound(kReadLatencyBuckets.begin(), kReadLatencyBuckets.end(), seconds);
  bump(s.latency[static_cast<size_t>(it - kReadLatencyBuckets.begin())]);
  bump(s.latency_ns, nanoseconds);
  r.current().record(second, target, ok, nanoseconds);
}

void RoutingShard::unroutable(std::string_view migration_id, std::string_view config_id,
                              int64_t second) {
  bump(unroutable_.get({migration_id, config_id}));
  if (!config_id.empty()) read_entry(config_id).current().record_unroutable(second);
}

// ---- readers --------------------------------------------------------------------------------

RoutingStats::RoutingStats(size_t shards) {
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<RoutingShard>(*this));
}

RoutingStats::~RoutingStats() = default;

std::atomic<uint32_t>& RoutingStats::epoch_locked(std::string_view config_id) {
  auto it = epochs_.find(config_id);
  if (it == epochs_.end())
    it = epochs_.emplace(std::string(config_id), std::make_unique<std::atomic<uint32_t>>(0)).first;
  return *it->second;
}

const std::atomic<uint32_t>& RoutingStats::epoch(std::string_view config_id) {
  const std::lock_guard lock(epochs_mu_);
  return epoch_locked(config_id);
}

void RoutingStats::reset(std::string_view config_id) {
  const std::lock_guard lock(epochs_mu_);
  epoch_locked(config_id).fetch_add(1, std::memory_order_release);
}

RoutingTotals RoutingStats::totals() const {
  RoutingTotals t;
  for (const auto& shard : shards_) {
    shard->dual_writes_.for_each([&](const Key<1>& key, const RoutingShard::DualWrite& d) {
      auto it = t.dual_writes.find(key[0]);
      if (it == t.dual_writes.end()) it = t.dual_writes.emplace(key[0], DualWriteTotals{}).first;
      DualWriteTotals& out = it->second;
      for (size_t o = 0; o < kWriteOps; ++o) {
        out.statements[o][0] += load(d.statements[o][0]);
        out.statements[o][1] += load(d.statements[o][1]);
        out.rows[o] += load(d.rows[o]);
      }
      out.refused += load(d.refused);
      out.flagged += load(d.flagged);
    });
    shard->reads_.for_each([&](const Key<1>& key, const RoutingShard::Read& r) {
      auto it = t.reads.find(key[0]);
      if (it == t.reads.end()) it = t.reads.emplace(key[0], std::array<ReadSideTotals, 2>{}).first;
      for (int side = 0; side < 2; ++side) {
        const RoutingShard::ReadSide& in = r.side[side];
        ReadSideTotals& out = it->second[static_cast<size_t>(side)];
        out.ok += load(in.ok);
        out.errors += load(in.errors);
        for (size_t b = 0; b < out.latency.size(); ++b) out.latency[b] += load(in.latency[b]);
        out.latency_ns += load(in.latency_ns);
      }
    });
    shard->unroutable_.for_each([&](const Key<2>& key, const Counter& n) {
      t.unroutable[{key[0], key[1]}] += load(n);
    });
  }
  t.analysis = analysis();
  return t;
}

AnalysisTotals RoutingStats::analysis() const noexcept {
  AnalysisTotals a;
  for (const auto& shard : shards_) {
    a.hits += load(shard->hits_);
    a.misses += load(shard->misses_);
    a.nanoseconds += load(shard->analysis_ns_);
  }
  return a;
}

void RoutingStats::for_each_window(std::string_view config_id,
                                   const std::function<void(const ReadWindow&)>& f) const {
  const std::atomic<uint32_t>* epoch = nullptr;
  {
    const std::lock_guard lock(epochs_mu_);
    const auto it = epochs_.find(config_id);
    if (it == epochs_.end()) return;  // no worker has seen it
    epoch = it->second.get();
  }
  const uint32_t current = epoch->load(std::memory_order_acquire);
  for (const auto& shard : shards_) {
    shard->reads_.for_each([&](const Key<1>& key, const RoutingShard::Read& r) {
      // A window not written since the reset still holds the previous activation's figures.
      if (key[0] == config_id && r.window.epoch() == current) f(r.window);
    });
  }
}

}  // namespace pgphase::stats
