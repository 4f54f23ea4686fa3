// What the interception layer reports (metrics, logs, the migration log): the session's worker
// implements it (proxy/worker_routing.h); tests and benchmarks pass NullRewriteObserver.
#pragma once

#include <cstdint>
#include <string_view>

#include "migration/shadow.h"
#include "router/query_plan.h"

namespace pgphase::intercept {

// Called on the session's thread.
class RewriteObserver {
 public:
  virtual ~RewriteObserver() = default;
  // A rewritten write completed (ok) or failed; `rows` is the client-visible row count.
  virtual void mirrored(std::string_view migration_id, router::TagKind op, bool ok,
                        int64_t rows) = 0;
  // A write pgphase cannot mirror was refused (reject) or passed and flagged (allow_and_flag).
  virtual void refused(std::string_view migration_id) = 0;
  virtual void flagged(std::string_view migration_id, std::string_view reason,
                       std::string_view sql) = 0;
  // The analysis of one text (parse-cache hit or miss).
  virtual void analysed(bool cache_hit, uint64_t nanoseconds) = 0;
  // A routed read completed (ok) or failed on the source or the target side of a read switch;
  // `nanoseconds` from forwarding it to its completion.
  virtual void read(std::string_view config_id, bool target, bool ok, uint64_t nanoseconds) = 0;
  // A read of a switching migration stayed on the source because pgphase cannot redirect it.
  virtual void unroutable(std::string_view migration_id, std::string_view config_id,
                          std::string_view reason) = 0;
  // A read to compare on both tables off the client's path (strategy shadow).
  virtual void shadow(migration::ShadowJob job) = 0;
};

// An observer that reports nothing (benchmarks, unit tests).
class NullRewriteObserver final : public RewriteObserver {
 public:
  void mirrored(std::string_view, router::TagKind, bool, int64_t) override {}
  void refused(std::string_view) override {}
  void flagged(std::string_view, std::string_view, std::string_view) override {}
  void analysed(bool, uint64_t) override {}
  void read(std::string_view, bool, bool, uint64_t) override {}
  void unroutable(std::string_view, std::string_view, std::string_view) override {}
  void shadow(migration::ShadowJob) override {}
};

}  // namespace pgphase::intercept
