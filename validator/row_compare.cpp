#include "validator/row_compare.h"

#include <boost/json.hpp>

#include "migration/sql_text.h"

namespace pgphase::validator::detail {

namespace json = boost::json;
using migration::quote_ident;

namespace {

json::value value_json(const Value& v) {
  return v ? json::value(*v) : json::value();
}

json::object row_json(const TablePair& p, const FetchedRow& r, bool source) {
  json::object o;
  for (std::size_t i = 0; i < p.columns.size(); ++i)
    o[source ? p.columns[i].source : p.columns[i].target] = value_json(r.text[i]);
  return o;
}

}  // namespace

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

std::string key_order(const TablePair& p, bool source) {
  return p.key_text(source) + " COLLATE \"C\"";
}

}  // namespace pgphase::validator::detail
