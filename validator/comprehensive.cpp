// The comprehensive level: bucket checksums on both sides at once, bisection of the differing
// buckets, then a byte-order merge of (key, row hash) through cursors (validator.h).
#include <algorithm>
#include <boost/json.hpp>
#include <optional>
#include <set>
#include <unordered_map>

#include "validator/row_compare.h"

namespace pgphase::validator::detail {

namespace json = boost::json;

namespace {

constexpr int kFetchRows = 20000;  // (key, hash) pairs per FETCH

int64_t pow2_at_least(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// A cursor over (key text, row hash) pairs, fetched kFetchRows at a time.
struct PairCursor {
  pg::Connection* c;
  std::optional<pg::Result> batch;
  int pos = 0;
  bool done = false;
  [[nodiscard]] bool needs_rows() const { return !done && (!batch || pos >= batch->rows()); }
  [[nodiscard]] std::string key() const { return batch->str(pos, 0); }
  [[nodiscard]] std::string hash() const { return batch->str(pos, 1); }
};

void refill(PairCursor& a, PairCursor& b, int64_t& fetched) {
  const std::string fetch = "FETCH FORWARD " + std::to_string(kFetchRows) + " FROM pgphase_vrows";
  const bool na = a.needs_rows();
  const bool nb = b.needs_rows();
  if (na) a.c->send(fetch);
  if (nb) b.c->send(fetch);
  for (PairCursor* x : {&a, &b}) {
    if (!(x == &a ? na : nb)) continue;
    x->batch.emplace(x->c->receive());
    x->pos = 0;
    fetched += x->batch->rows();
    if (x->batch->rows() == 0) x->done = true;
  }
}

// How the comprehensive level splits the keys: ranges of an integer key (later passes read only
// the differing ranges, through the key's index), else buckets of a hash of the key. refine()
// splits every bucket into `factor` smaller ones, for the bisection.
struct Buckets {
  int64_t count = 0;
  bool ranges = false;
  int64_t lo = 0;
  int64_t width = 1;  // ranges
  int64_t mask = 0;   // hash: count - 1

  [[nodiscard]] std::string expr(const TablePair& p, bool s) const {
    if (ranges)
      return "((" + p.key_column(s) + "::int8 - (" + std::to_string(lo) + ")) / " +
             std::to_string(width) + ")";
    return "(" + p.key_hash(s) + " & " + std::to_string(mask) + ")";
  }
  // FROM (and WHERE) for the rows of the buckets in `which` (all when null or most of them).
  [[nodiscard]] std::string rows_of(const TablePair& p, bool s,
                                    const std::set<int64_t>* which) const {
    const std::string table = std::string(" FROM ") + (s ? p.source_sql : p.target_sql) + " a";
    if (which == nullptr || static_cast<int64_t>(which->size()) * 2 > count) return table;
    if (ranges) {
      std::string los;
      std::string his;
      for (const int64_t b : *which) {
        los += (los.empty() ? "" : ",") + std::to_string(lo + b * width);
        his += (his.empty() ? "" : ",") + std::to_string(lo + (b + 1) * width);
      }
      return table + " JOIN unnest('{" + los + "}'::int8[], '{" + his +
             "}'::int8[]) r(lo, hi) ON " + p.key_column(s) + " >= r.lo AND " + p.key_column(s) +
             " < r.hi";
    }
    std::string list;
    for (const int64_t b : *which) list += (list.empty() ? "" : ",") + std::to_string(b);
    return table + " WHERE " + expr(p, s) + " = ANY('{" + list + "}'::int8[])";
  }
  [[nodiscard]] bool can_refine() const { return ranges ? width > 1 : mask < (int64_t{1} << 40); }
  [[nodiscard]] Buckets refine(int64_t factor) const {
    Buckets b = *this;
    if (ranges) {
      b.width = std::max<int64_t>(1, width / factor);
      b.count = (count * width + b.width - 1) / b.width;
    } else {
      b.count = count * factor;
      b.mask = b.count - 1;
    }
    return b;
  }
};

Buckets plan_buckets(pg::Connection& source, pg::Connection& target, const TablePair& p,
                     int requested) {
  Buckets b;
  int64_t rows = 0;
  if (requested <= 0) {
    const pg::Result est =
        source.exec("SELECT greatest(reltuples, 0)::int8 FROM pg_class WHERE oid = to_regclass($1)",
                    {p.source_sql});
    rows = est.rows() ? est.int64(0, 0) : 0;
  }
  b.count = requested > 0 ? requested : std::clamp<int64_t>(rows / 64, 16, int64_t{1} << 20);
  auto hashed = [&] {
    b.ranges = false;
    b.count = pow2_at_least(b.count);
    b.mask = b.count - 1;
    return b;
  };
  if (!p.integer_key) return hashed();
  auto bounds = [&](bool s) {
    return "SELECT min(" + p.key_column(s) + ")::int8, max(" + p.key_column(s) + ")::int8 FROM " +
           (s ? p.source_sql : p.target_sql) + " a";
  };
  source.send(bounds(true));
  target.send(bounds(false));
  const pg::Result sr = source.receive();
  const pg::Result tr = target.receive();
  std::optional<int64_t> lo;
  std::optional<int64_t> hi;
  for (const pg::Result* r : {&sr, &tr}) {
    if (r->is_null(0, 0)) continue;
    lo = lo ? std::min(*lo, r->int64(0, 0)) : r->int64(0, 0);
    hi = hi ? std::max(*hi, r->int64(0, 1)) : r->int64(0, 1);
  }
  if (!lo) {  // both empty
    b.ranges = true;
    return b;
  }
  // Key arithmetic must stay inside int8 in SQL (k - lo, and lo + (b + 1) * width); otherwise
  // hash buckets.
  int64_t span = 0;
  if (__builtin_sub_overflow(*hi, *lo, &span) || span > INT64_MAX / 4) return hashed();
  span += 1;
  const int64_t width = std::max<int64_t>(1, (span + b.count - 1) / b.count);
  if (*hi > INT64_MAX - 2 * width) return hashed();  // the last range's bound must fit
  b.ranges = true;
  b.lo = *lo;
  b.width = width;
  b.count = (span + width - 1) / width;
  return b;
}

// Buckets whose count or checksum differ between the sides, and the rows they hold (the larger
// side's count).
struct BucketDiff {
  std::set<int64_t> differing;
  int64_t rows = 0;
  int64_t source_rows = 0;
  int64_t target_rows = 0;
};

BucketDiff compare_buckets(const pg::Result& sr, const pg::Result& tr) {
  BucketDiff d;
  std::unordered_map<int64_t, std::pair<int64_t, std::string>> sb;
  sb.reserve(static_cast<std::size_t>(sr.rows()));
  for (int i = 0; i < sr.rows(); ++i) {
    sb.emplace(sr.int64(i, 0), std::make_pair(sr.int64(i, 1), sr.str(i, 2)));
    d.source_rows += sr.int64(i, 1);
  }
  for (int i = 0; i < tr.rows(); ++i) {
    const int64_t n = tr.int64(i, 1);
    d.target_rows += n;
    const auto it = sb.find(tr.int64(i, 0));
    if (it == sb.end() || it->second.first != n || it->second.second != tr.str(i, 2)) {
      d.differing.insert(tr.int64(i, 0));
      d.rows += std::max(n, it == sb.end() ? 0 : it->second.first);
    }
    if (it != sb.end()) it->second.first = -1;  // seen
  }
  for (const auto& [b, v] : sb)
    if (v.first >= 0) {
      d.differing.insert(b);
      d.rows += v.first;
    }
  return d;
}

// Below this many rows in differing buckets, their rows are compared; above, they are split.
constexpr int64_t kRowsDirect = 20000;
constexpr int64_t kSplit = 64;

}  // namespace

void run_comprehensive(pg::Connection& source, pg::Connection& target, const TablePair& p,
                       int bucket_count, Report& r, ProgressReporter& progress) {
  progress.stage("checksums");
  Buckets buckets = plan_buckets(source, target, p, bucket_count);
  auto grouped = [&](const Buckets& b, const Buckets* parent, const std::set<int64_t>* which) {
    auto sql = [&](bool s) {
      return "SELECT " + b.expr(p, s) + " AS b, count(*), bit_xor(" + p.row_hash(s) + ")::text" +
             (parent ? parent->rows_of(p, s, which) : b.rows_of(p, s, nullptr)) + " GROUP BY 1";
    };
    source.send(sql(true));
    target.send(sql(false));
    const pg::Result sr = source.receive();
    const pg::Result tr = target.receive();
    return compare_buckets(sr, tr);
  };
  BucketDiff diff = grouped(buckets, nullptr, nullptr);
  r.source_rows = diff.source_rows;
  r.target_rows = diff.target_rows;
  r.rows_examined = r.source_rows + r.target_rows;
  progress.rows("bisection", r.rows_examined, r.rows_examined + diff.rows);
  json::array passes{json::object{{"buckets", buckets.count},
                                  {"differing", static_cast<int64_t>(diff.differing.size())},
                                  {"rows_in_differing", diff.rows}}};
  // Bisection: split the differing buckets until few rows are left in them.
  while (!diff.differing.empty() && diff.rows > kRowsDirect && buckets.can_refine()) {
    const Buckets finer = buckets.refine(kSplit);
    diff = grouped(finer, &buckets, &diff.differing);
    buckets = finer;
    passes.push_back(json::object{{"buckets", buckets.count},
                                  {"differing", static_cast<int64_t>(diff.differing.size())},
                                  {"rows_in_differing", diff.rows}});
  }
  int64_t fetched = 0;
  int64_t differing_keys = 0;
  if (!diff.differing.empty()) {
    auto declare = [&](bool s) {
      return "DECLARE pgphase_vrows NO SCROLL CURSOR FOR SELECT " + p.key_text(s) + ", " +
             p.row_hash(s) + buckets.rows_of(p, s, &diff.differing) + " ORDER BY " +
             key_order(p, s);
    };
    source.exec(declare(true));
    target.exec(declare(false));
    PairCursor sc{&source};
    PairCursor tc{&target};
    const int64_t total = r.rows_examined + diff.rows;
    progress.rows("comparing rows", r.rows_examined, total);
    std::vector<std::string> pending;
    auto flush = [&] {
      const Tally t = resolve(source, target, p, pending, [&](const Difference& d) { r.add(d); });
      differing_keys += t.differing_keys;
      r.keys_with_field_mismatch += t.keys_with_field_mismatch;
      pending.clear();
    };
    for (;;) {
      if (sc.needs_rows() || tc.needs_rows()) {
        refill(sc, tc, fetched);
        progress.rows("comparing rows", r.rows_examined + fetched, total);
      }
      if (sc.done && tc.done) break;
      if (tc.done || (!sc.done && sc.key() < tc.key())) {
        pending.push_back(sc.key());
        ++sc.pos;
      } else if (sc.done || tc.key() < sc.key()) {
        pending.push_back(tc.key());
        ++tc.pos;
      } else {
        if (sc.hash() != tc.hash()) pending.push_back(sc.key());
        ++sc.pos;
        ++tc.pos;
      }
      if (pending.size() >= kResolveBatch) flush();
    }
    flush();
    source.exec("CLOSE pgphase_vrows");
    target.exec("CLOSE pgphase_vrows");
  }
  r.keys_compared = r.source_rows + r.missing_in_source;
  r.keys_matching = r.keys_compared - differing_keys;
  r.consistency_score = r.keys_compared == 0 ? 1.0
                                             : static_cast<double>(r.keys_matching) /
                                                   static_cast<double>(r.keys_compared);
  r.method = {{"bucketing", buckets.ranges ? "key ranges" : "key hash"},
              {"passes", std::move(passes)},
              {"rows_compared_by_key", fetched},
              {"keys_fetched_in_full", differing_keys}};
}

}  // namespace pgphase::validator::detail
