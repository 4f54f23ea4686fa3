#include "validator/validator.h"

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "migration/sql_text.h"
#include "validator/fix_sql.h"

namespace pgphase::validator {

namespace json = boost::json;
using migration::quote_ident;

namespace {

constexpr std::size_t kResolveBatch = 1000;  // keys per full-row fetch
constexpr int kFetchRows = 20000;            // (key, hash) pairs per FETCH
constexpr std::size_t kRepairBatch = 500;    // keys per repair transaction

// Session settings that make every value's text the same whatever the server's defaults.
void prepare_session(pg::Connection& c) {
  c.exec(
      "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
      "SET extra_float_digits = 1; SET bytea_output = 'hex'; "
      "SET standard_conforming_strings = on; "
      // Both sides run at once, each on its own core: no parallel workers competing with them.
      "SET max_parallel_workers_per_gather = 0; "
      // JIT optimisation and inlining cost more than they save on these one-pass queries.
      "SET jit_optimize_above_cost = -1; SET jit_inline_above_cost = -1");
}

constexpr const char* kIsoNow =
    "to_char(transaction_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

// One full row of one side: per compared column, its text and its hash (as text).
struct FetchedRow {
  std::vector<Value> text;
  std::vector<std::string> hash;
};
using Rows = std::unordered_map<std::string, FetchedRow>;

std::string fetch_sql(const TablePair& p, bool source, bool for_share) {
  std::string sql = "SELECT " + p.key_text(source);
  for (const auto& c : p.columns)
    sql += ", " + (source ? c.source_text : c.target_text) + ", " +
           (source ? c.source_hash : c.target_hash);
  sql += " FROM " + (source ? p.source_sql : p.target_sql) + " a WHERE " + p.keys_filter(source);
  if (for_share) sql += " FOR SHARE OF a";
  return sql;
}

Rows rows_of(const pg::Result& r, std::size_t ncols) {
  Rows out;
  for (int i = 0; i < r.rows(); ++i) {
    FetchedRow row;
    for (std::size_t c = 0; c < ncols; ++c) {
      const int t = 1 + 2 * static_cast<int>(c);
      row.text.push_back(r.is_null(i, t) ? Value() : Value(r.str(i, t)));
      row.hash.push_back(r.str(i, t + 1));
    }
    out.emplace(r.str(i, 0), std::move(row));
  }
  return out;
}

std::string keys_param(const std::vector<std::string>& keys) {
  json::array a;
  for (const auto& k : keys) a.push_back(json::value(k));
  return json::serialize(a);
}

json::value value_json(const Value& v) {
  return v ? json::value(*v) : json::value();
}

json::object row_json(const TablePair& p, const FetchedRow& r, bool source) {
  json::object o;
  for (std::size_t i = 0; i < p.columns.size(); ++i)
    o[source ? p.columns[i].source : p.columns[i].target] = value_json(r.text[i]);
  return o;
}

struct Tally {
  int64_t differing_keys = 0;
  int64_t keys_with_field_mismatch = 0;
};

// Fetches `keys` from both sides (concurrently) and reports every difference to `sink`.
Tally resolve(pg::Connection& source, pg::Connection& target, const TablePair& p,
              const std::vector<std::string>& keys,
              const std::function<void(const Difference&)>& sink) {
  Tally tally;
  if (keys.empty()) return tally;
  const std::string param = keys_param(keys);
  source.send(fetch_sql(p, true, false), {param});
  target.send(fetch_sql(p, false, false), {param});
  const pg::Result sr = source.receive();
  const pg::Result tr = target.receive();
  const Rows srows = rows_of(sr, p.columns.size());
  const Rows trows = rows_of(tr, p.columns.size());
  for (const auto& k : keys) {
    const auto s = srows.find(k);
    const auto t = trows.find(k);
    const bool in_s = s != srows.end();
    const bool in_t = t != trows.end();
    if (!in_s && !in_t) continue;
    Difference d;
    d.record_id = k;
    if (in_s && !in_t) {
      d.type = DiffType::kMissingInTarget;
      d.source_value = row_json(p, s->second, true);
      d.suggested_fix = upsert_sql(p, {s->second.text});
      sink(d);
      ++tally.differing_keys;
      continue;
    }
    if (!in_s) {
      d.type = DiffType::kMissingInSource;
      d.target_value = row_json(p, t->second, false);
      d.suggested_fix = delete_sql(p, {key_parts(p, k)});
      sink(d);
      ++tally.differing_keys;
      continue;
    }
    bool any = false;
    for (std::size_t i = 0; i < p.columns.size(); ++i) {
      if (s->second.hash[i] == t->second.hash[i]) continue;
      Difference f;
      f.type = DiffType::kFieldMismatch;
      f.record_id = k;
      f.field_name = p.columns[i].source;
      f.target_field = p.columns[i].target;
      f.source_value = value_json(s->second.text[i]);
      f.target_value = value_json(t->second.text[i]);
      f.suggested_fix = update_sql(p, i, s->second.text[i], key_parts(p, k));
      sink(f);
      any = true;
    }
    if (any) {
      ++tally.differing_keys;
      ++tally.keys_with_field_mismatch;
    }
  }
  return tally;
}

// Both sides in one REPEATABLE READ READ ONLY transaction each; the target imports the source's
// snapshot when they share a database. Returns the snapshot's time.
std::string begin_snapshots(pg::Connection& source, pg::Connection& target, bool same,
                            bool& shared) {
  const char* begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
  source.exec(begin);
  std::string snapshot;
  std::string when;
  if (same) {
    try {
      const pg::Result r = source.exec(std::string("SELECT pg_export_snapshot(), ") + kIsoNow);
      snapshot = r.str(0, 0);
      when = r.str(0, 1);
    } catch (const pg::PgError& e) {
      if (e.connection_lost()) throw;
      source.exec("ROLLBACK");
      source.exec(begin);
    }
  }
  if (when.empty()) when = source.exec(std::string("SELECT ") + kIsoNow).str(0, 0);
  target.exec(begin);
  shared = false;
  if (!snapshot.empty()) {
    try {
      target.exec("SET TRANSACTION SNAPSHOT " + literal(snapshot));
      shared = true;
    } catch (const pg::PgError& e) {
      if (e.connection_lost()) throw;
      target.exec("ROLLBACK");
      target.exec(begin);
    }
  }
  target.exec("SELECT 1");  // takes the target's snapshot now
  return when;
}

bool text_like(const std::string& type) {
  return type == "text" || type.find("char") != std::string::npos || type == "name";
}

std::string key_order(const TablePair& p, bool source) {
  return p.key_text(source) + " COLLATE \"C\"";
}

void run_basic(pg::Connection& source, pg::Connection& target, const TablePair& p, Report& r) {
  auto sql = [&](bool s) {
    std::string q = "SELECT count(*)";
    for (std::size_t n = 0; n < p.key.size(); ++n) {
      const auto& c = p.columns[p.key[n]];
      const std::string col = "a." + quote_ident(s ? c.source : c.target);
      const std::string coll =
          text_like(s ? p.source_key_types[n] : p.target_key_types[n]) ? " COLLATE \"C\"" : "";
      q += ", min(" + col + coll + ")::text, max(" + col + coll + ")::text";
    }
    for (const auto& c : p.columns)
      q += ", count(*) - count(a." + quote_ident(s ? c.source : c.target) + ")";
    return q + " FROM " + (s ? p.source_sql : p.target_sql) + " a";
  };
  source.send(sql(true));
  target.send(sql(false));
  const pg::Result sr = source.receive();
  const pg::Result tr = target.receive();
  r.source_rows = sr.int64(0, 0);
  r.target_rows = tr.int64(0, 0);
  r.rows_examined = r.source_rows + r.target_rows;
  int64_t implied = 0;
  if (r.source_rows != r.target_rows) {
    const int64_t d = r.source_rows - r.target_rows;
    implied = std::max(implied, d < 0 ? -d : d);
    r.findings.push_back(
        {{"check", "row_count"},
         {"source", r.source_rows},
         {"target", r.target_rows},
         {"implies",
          d > 0 ? "at least " + std::to_string(d) + " rows are missing in the target"
                : "at least " + std::to_string(-d) + " target rows are missing in the source"}});
  }
  int col = 1;
  for (std::size_t n = 0; n < p.key.size(); ++n, col += 2) {
    const std::string name = p.columns[p.key[n]].source;
    for (int end = 0; end < 2; ++end) {
      const std::string sv = sr.str(0, col + end);
      const std::string tv = tr.str(0, col + end);
      if (sv == tv) continue;
      r.findings.push_back(
          {{"check", end == 0 ? "key_min" : "key_max"},
           {"column", name},
           {"source", sr.is_null(0, col + end) ? json::value() : json::value(sv)},
           {"target", tr.is_null(0, col + end) ? json::value() : json::value(tv)},
           {"implies", std::string("rows differ at the ") + (end == 0 ? "low" : "high") +
                           " end of the key range of " + name}});
      implied = std::max<int64_t>(implied, 1);
    }
  }
  for (std::size_t i = 0; i < p.columns.size(); ++i, ++col) {
    const int64_t sn = sr.int64(0, col);
    const int64_t tn = tr.int64(0, col);
    if (sn == tn) continue;
    const int64_t d = sn > tn ? sn - tn : tn - sn;
    implied = std::max(implied, d);
    r.findings.push_back(
        {{"check", "null_count"},
         {"column", p.columns[i].source},
         {"source", sn},
         {"target", tn},
         {"implies", "at least " + std::to_string(d) + " rows differ (FIELD_MISMATCH) in column " +
                         p.columns[i].source}});
  }
  const int64_t all = std::max<int64_t>({r.source_rows, r.target_rows, 1});
  r.keys_compared = std::max(r.source_rows, r.target_rows);
  r.keys_matching = std::max<int64_t>(0, r.keys_compared - implied);
  r.consistency_score =
      r.keys_compared == 0 ? 1.0 : 1.0 - static_cast<double>(implied) / static_cast<double>(all);
  r.method = {{"score",
               "upper bound: 1 - (smallest number of differing rows the checks imply) / "
               "rows"},
              {"implied_minimum_differing_rows", implied}};
}

void run_detailed(pg::Connection& source, pg::Connection& target, const TablePair& p,
                  const Options& o, Report& r) {
  const std::string limit = std::to_string(std::max(1, o.sample_size));
  source.send("SELECT count(*) FROM " + p.source_sql);
  target.send("SELECT count(*) FROM " + p.target_sql);
  r.source_rows = source.receive().int64(0, 0);
  r.target_rows = target.receive().int64(0, 0);
  source.send("SELECT " + p.key_text(true) + " FROM " + p.source_sql +
              " a ORDER BY random() LIMIT " + limit);
  target.send("SELECT " + p.key_text(false) + " FROM " + p.target_sql +
              " a ORDER BY random() LIMIT " + limit);
  const pg::Result sr = source.receive();
  const pg::Result tr = target.receive();
  std::set<std::string> keys;
  for (int i = 0; i < sr.rows(); ++i) keys.insert(sr.str(i, 0));
  for (int i = 0; i < tr.rows(); ++i) keys.insert(tr.str(i, 0));
  std::vector<std::string> batch;
  int64_t differing = 0;
  auto flush = [&] {
    const Tally t = resolve(source, target, p, batch, [&](const Difference& d) { r.add(d); });
    differing += t.differing_keys;
    r.keys_with_field_mismatch += t.keys_with_field_mismatch;
    batch.clear();
  };
  for (const auto& k : keys) {
    batch.push_back(k);
    if (batch.size() >= kResolveBatch) flush();
  }
  flush();
  r.rows_examined = static_cast<int64_t>(keys.size());
  r.keys_compared = static_cast<int64_t>(keys.size());
  r.keys_matching = r.keys_compared - differing;
  r.consistency_score = r.keys_compared == 0 ? 1.0
                                             : static_cast<double>(r.keys_matching) /
                                                   static_cast<double>(r.keys_compared);
  r.method = {{"sample_size", o.sample_size},
              {"sampled_from_source", sr.rows()},
              {"sampled_from_target", tr.rows()}};
}

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
                     const Options& o) {
  Buckets b;
  int64_t rows = 0;
  if (o.buckets <= 0) {
    const pg::Result est =
        source.exec("SELECT greatest(reltuples, 0)::int8 FROM pg_class WHERE oid = to_regclass($1)",
                    {p.source_sql});
    rows = est.rows() ? est.int64(0, 0) : 0;
  }
  b.count = o.buckets > 0 ? o.buckets : std::clamp<int64_t>(rows / 64, 16, int64_t{1} << 20);
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

void run_comprehensive(pg::Connection& source, pg::Connection& target, const TablePair& p,
                       const Options& o, Report& r) {
  Buckets buckets = plan_buckets(source, target, p, o);
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
    std::vector<std::string> pending;
    auto flush = [&] {
      const Tally t = resolve(source, target, p, pending, [&](const Difference& d) { r.add(d); });
      differing_keys += t.differing_keys;
      r.keys_with_field_mismatch += t.keys_with_field_mismatch;
      pending.clear();
    };
    for (;;) {
      if (sc.needs_rows() || tc.needs_rows()) refill(sc, tc, fetched);
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

std::string iso_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string new_check_id() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "chk_%Y%m%d%H%M%S_", &tm);
  std::random_device rd;
  char rnd[16];
  std::snprintf(rnd, sizeof rnd, "%06x", rd() & 0xffffffu);
  return std::string(buf) + rnd;
}

void validate(pg::Connection& source, pg::Connection& target, const PairSpec& spec,
              const Options& options, Report& report) {
  const auto t0 = std::chrono::steady_clock::now();
  if (report.check_id.empty()) report.check_id = new_check_id();
  report.migration_id = options.migration_id;
  report.source_table = spec.source_table;
  report.target_table = spec.target_table;
  report.level = options.level;
  report.started_at = iso_now();
  prepare_session(source);
  prepare_session(target);
  const TablePair p = describe_pair(source, target, spec);
  report.notes = p.notes;
  report.snapshot_time =
      begin_snapshots(source, target, options.same_database, report.shared_snapshot);
  try {
    switch (options.level) {
      case Level::kBasic:
        run_basic(source, target, p, report);
        break;
      case Level::kDetailed:
        run_detailed(source, target, p, options, report);
        break;
      case Level::kComprehensive:
        run_comprehensive(source, target, p, options, report);
        break;
    }
  } catch (...) {
    if (source.ok()) source.exec("ROLLBACK");
    if (target.ok()) target.exec("ROLLBACK");
    throw;
  }
  source.exec("COMMIT");
  target.exec("COMMIT");
  recommend(report);
  report.duration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

RepairResult repair(pg::Connection& source, pg::Connection& target, const PairSpec& spec,
                    const Report& report, bool dry_run, bool same_database) {
  RepairResult out;
  out.dry_run = dry_run;
  std::set<std::string> keys;
  report.differences.for_each([&](const Difference& d) {
    keys.insert(d.record_id);
    if (dry_run && out.statements.size() < DifferenceSpool::kShownDifferences)
      out.statements.push_back(d.suggested_fix);
  });
  out.keys = static_cast<int64_t>(keys.size());
  if (dry_run || keys.empty()) return out;
  prepare_session(source);
  prepare_session(target);
  const TablePair p = describe_pair(source, target, spec);
  // Same database: one connection, one transaction (the source rows stay locked until the target
  // has them).
  pg::Connection& writer = same_database ? source : target;
  std::vector<std::string> batch;
  auto apply = [&] {
    if (batch.empty()) return;
    source.exec("BEGIN");
    if (&writer != &source) writer.exec("BEGIN");
    try {
      const pg::Result sr = source.exec(fetch_sql(p, true, true), {keys_param(batch)});
      const Rows rows = rows_of(sr, p.columns.size());
      std::vector<Row> present;
      std::vector<std::string> absent;
      for (const auto& k : batch) {
        const auto it = rows.find(k);
        if (it == rows.end())
          absent.push_back(k);
        else
          present.push_back(it->second.text);
      }
      if (!present.empty()) out.upserted += writer.exec(upsert_sql(p, present)).affected();
      if (!absent.empty())
        out.deleted += writer
                           .exec("DELETE FROM " + p.target_sql + " a WHERE " + p.keys_filter(false),
                                 {keys_param(absent)})
                           .affected();
      if (&writer != &source) writer.exec("COMMIT");
      source.exec("COMMIT");
    } catch (...) {
      if (&writer != &source && writer.ok()) writer.exec("ROLLBACK");
      if (source.ok()) source.exec("ROLLBACK");
      throw;
    }
    batch.clear();
  };
  for (const auto& k : keys) {
    batch.push_back(k);
    if (batch.size() >= kRepairBatch) apply();
  }
  apply();
  // Re-check the repaired keys.
  std::vector<std::string> all(keys.begin(), keys.end());
  for (std::size_t i = 0; i < all.size(); i += kResolveBatch) {
    const std::vector<std::string> part(
        all.begin() + static_cast<std::ptrdiff_t>(i),
        all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), i + kResolveBatch)));
    resolve(source, target, p, part, [&](const Difference&) { ++out.remaining; });
  }
  return out;
}

bool store_report(pg::Connection& c, const Report& report) {
  if (!c.exec("SELECT to_regclass('t_sys_consistency_checks') IS NOT NULL").boolean(0, 0))
    return false;
  c.exec(
      "INSERT INTO t_sys_consistency_checks (check_id, migration_id, source_table, target_table, "
      "level, consistency_score, total_records, differences_count, report) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)",
      {report.check_id, report.migration_id.empty() ? pg::Param() : pg::Param(report.migration_id),
       report.source_table, report.target_table, std::string(to_string(report.level)),
       pg::param(report.consistency_score), pg::param(report.keys_compared),
       pg::param(report.differences_count()), json::serialize(summary_json(report))});
  return true;
}

}  // namespace pgphase::validator
