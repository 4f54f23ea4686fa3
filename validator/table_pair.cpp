#include "validator/table_pair.h"

#include <boost/json.hpp>
#include <set>
#include <stdexcept>

#include "migration/sql_text.h"

namespace pgphase::validator {

namespace json = boost::json;
using migration::quote_ident;
using migration::quote_table;

namespace {

struct CatalogColumn {
  std::string name;
  std::string type;  // format_type
  std::string base;  // typname of the base type (domains resolved)
  bool generated = false;
  bool identity_always = false;
};

struct Catalog {
  std::vector<CatalogColumn> columns;
  std::vector<std::string> key;  // primary key, else the first usable unique index
};

Catalog read_catalog(pg::Connection& c, const std::string& name) {
  const std::string rel = quote_table(name);
  const pg::Result exists = c.exec("SELECT to_regclass($1) IS NOT NULL", {rel});
  if (!exists.boolean(0, 0))
    throw std::invalid_argument("table " + name + " does not exist in " + c.describe());
  const pg::Result cols = c.exec(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
      "       coalesce(bt.typname, t.typname), a.attgenerated <> '', a.attidentity = 'a' "
      "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
      "LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype "
      "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
      "ORDER BY a.attnum",
      {rel});
  Catalog cat;
  for (int i = 0; i < cols.rows(); ++i)
    cat.columns.push_back(
        {cols.str(i, 0), cols.str(i, 1), cols.str(i, 2), cols.boolean(i, 3), cols.boolean(i, 4)});
  // Primary key first, then unique, non-partial, expression-free indexes on NOT NULL columns.
  const pg::Result keys = c.exec(
      "SELECT i.indexrelid, a.attname FROM pg_index i "
      "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) "
      "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
      "WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indisvalid "
      "  AND i.indpred IS NULL AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts "
      "  AND NOT EXISTS (SELECT FROM unnest(i.indkey) x(n) JOIN pg_attribute xa ON "
      "      xa.attrelid = i.indrelid AND xa.attnum = x.n WHERE NOT xa.attnotnull) "
      "ORDER BY i.indisprimary DESC, i.indexrelid, k.ord",
      {rel});
  for (int i = 0; i < keys.rows() && keys.str(i, 0) == keys.str(0, 0); ++i)
    cat.key.push_back(keys.str(i, 1));
  return cat;
}

const CatalogColumn* find(const Catalog& c, const std::string& name) {
  for (const auto& col : c.columns)
    if (col.name == name) return &col;
  return nullptr;
}

enum class Kind { kInteger, kText, kNumeric, kTimestamptz, kTimestamp, kJson, kUuid, kOther };

Kind kind_of(const std::string& base) {
  static const std::map<std::string, Kind> kinds{
      {"int2", Kind::kInteger},        {"int4", Kind::kInteger},
      {"int8", Kind::kInteger},        {"oid", Kind::kInteger},
      {"text", Kind::kText},           {"varchar", Kind::kText},
      {"bpchar", Kind::kText},         {"name", Kind::kText},
      {"numeric", Kind::kNumeric},     {"timestamptz", Kind::kTimestamptz},
      {"timestamp", Kind::kTimestamp}, {"jsonb", Kind::kJson},
      {"json", Kind::kJson},           {"uuid", Kind::kUuid}};
  const auto it = kinds.find(base);
  return it == kinds.end() ? Kind::kOther : it->second;
}

// The hash of `col` (a quoted column over alias a) as a non-NULL bigint, seeded per column.
std::string hash_expr(const std::string& col, Kind k, bool same_type, int seed) {
  const std::string s = std::to_string(seed);
  std::string h;
  if (!same_type && k != Kind::kInteger && k != Kind::kText && k != Kind::kJson) k = Kind::kOther;
  switch (k) {
    case Kind::kInteger:
      h = "hashint8extended(" + col + "::int8, " + s + ")";
      break;
    case Kind::kText:
      h = "hashtextextended(" + col + "::text COLLATE \"C\", " + s + ")";
      break;
    case Kind::kNumeric:  // the hash ignores trailing zeros; the scale makes 1.0 <> 1.00
      h = "(hash_numeric_extended(" + col + ", " + s + ") # coalesce(scale(" + col + "), -1))";
      break;
    case Kind::kTimestamptz:
      h = "timestamp_hash_extended(" + col + " AT TIME ZONE 'UTC', " + s + ")";
      break;
    case Kind::kTimestamp:
      h = "timestamp_hash_extended(" + col + ", " + s + ")";
      break;
    case Kind::kJson:
      h = "jsonb_hash_extended(" + col + "::jsonb, " + s + ")";
      break;
    case Kind::kUuid:
      h = "uuid_hash_extended(" + col + ", " + s + ")";
      break;
    case Kind::kOther:
      h = "hashtextextended(" + col + "::text COLLATE \"C\", " + s + ")";
      break;
  }
  // NULL is a value of its own (never the hash of '' or 0).
  return "coalesce(" + h + ", " + std::to_string(-1000003LL * (seed + 1)) + ")";
}

std::string text_expr(const std::string& col, Kind k) {
  return k == Kind::kJson ? col + "::jsonb::text" : col + "::text";
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

TablePair describe_pair(pg::Connection& source, pg::Connection& target, const PairSpec& spec) {
  const Catalog sc = read_catalog(source, spec.source_table);
  const Catalog tc = read_catalog(target, spec.target_table);
  TablePair p;
  p.source_name = spec.source_table;
  p.target_name = spec.target_table;
  p.source_sql = quote_table(spec.source_table);
  p.target_sql = quote_table(spec.target_table);
  for (const auto& [from, to] : spec.column_map) {
    if (find(sc, from) == nullptr)
      throw std::invalid_argument("column_map names " + from + ", which " + spec.source_table +
                                  " does not have");
    if (!to.empty() && find(tc, to) == nullptr)
      throw std::invalid_argument("column_map maps " + from + " to " + to + ", which " +
                                  spec.target_table + " does not have");
  }
  const std::vector<std::string> key = spec.key_columns.empty() ? sc.key : spec.key_columns;
  if (key.empty())
    throw std::invalid_argument(spec.source_table +
                                " has no primary key or unique NOT NULL index; name the key");
  std::set<std::string> used_target;
  int seed = 0;
  for (const auto& sccol : sc.columns) {
    const auto m = spec.column_map.find(sccol.name);
    const std::string tname = m == spec.column_map.end() ? sccol.name : m->second;
    const CatalogColumn* tcol = tname.empty() ? nullptr : find(tc, tname);
    if (tcol == nullptr) {
      p.notes.push_back("column " + sccol.name + " is not compared: " + spec.target_table +
                        (tname.empty() ? " drops it (column_map)" : " has no column " + tname));
      continue;
    }
    used_target.insert(tname);
    const Kind sk = kind_of(sccol.base);
    const Kind tk = kind_of(tcol->base);
    const bool same = sccol.base == tcol->base;
    const Kind k = same ? sk : (sk == tk ? sk : Kind::kOther);
    if (!same)
      p.notes.push_back("column " + sccol.name + " is " + sccol.type + " in the source and " +
                        tcol->type + " in the target" +
                        (sk == tk && k != Kind::kOther ? "" : ": compared as text"));
    ColumnPair c;
    c.source = sccol.name;
    c.target = tname;
    const std::string sq = "a." + quote_ident(sccol.name);
    const std::string tq = "a." + quote_ident(tname);
    c.source_hash = hash_expr(sq, k, same || sk == tk, seed);
    c.target_hash = hash_expr(tq, k, same || sk == tk, seed);
    c.source_text = text_expr(sq, k);
    c.target_text = text_expr(tq, k);
    c.target_generated = tcol->generated;
    p.target_identity_always = p.target_identity_always || tcol->identity_always;
    ++seed;
    p.columns.push_back(std::move(c));
  }
  for (const auto& tcol : tc.columns)
    if (!used_target.count(tcol.name))
      p.notes.push_back("column " + tcol.name + " of " + spec.target_table +
                        " is not compared: the source has no column mapped to it");
  for (const auto& k : key) {
    std::size_t i = 0;
    while (i < p.columns.size() && p.columns[i].source != k) ++i;
    if (i == p.columns.size())
      throw std::invalid_argument("key column " + k + " is not a compared column of " +
                                  spec.source_table);
    p.columns[i].key = true;
    p.key.push_back(i);
    p.integer_key = key.size() == 1 && kind_of(find(sc, k)->base) == Kind::kInteger &&
                    kind_of(find(tc, p.columns[i].target)->base) == Kind::kInteger;
    p.source_key_types.push_back(find(sc, k)->type);
    p.target_key_types.push_back(find(tc, p.columns[i].target)->type);
  }
  return p;
}

std::string TablePair::key_text(bool source) const {
  std::vector<std::string> parts;
  for (const std::size_t i : key)
    parts.push_back("a." + quote_ident(source ? columns[i].source : columns[i].target) + "::text");
  if (parts.size() == 1) return parts[0];
  return "jsonb_build_array(" + join(parts, ", ") + ")::text";
}

std::string TablePair::key_hash(bool source) const {
  if (integer_key) return "hashint8extended(" + key_column(source) + "::int8, 0)";
  return "hashtextextended(" + key_text(source) + ", 0)";
}

std::string TablePair::key_column(bool source) const {
  const auto& c = columns[key.at(0)];
  return "a." + quote_ident(source ? c.source : c.target);
}

std::string TablePair::row_hash(bool source) const {
  std::vector<std::string> parts;
  for (const auto& c : columns) parts.push_back(source ? c.source_hash : c.target_hash);
  // The final mix makes the sum over rows non-linear (values swapped between rows differ).
  return "hashint8extended(" + join(parts, " # ") + ", 0)";
}

std::string TablePair::keys_filter(bool source) const {
  std::vector<std::string> cols;
  std::vector<std::string> vals;
  const auto& types = source ? source_key_types : target_key_types;
  for (std::size_t n = 0; n < key.size(); ++n) {
    const auto& c = columns[key[n]];
    cols.push_back("a." + quote_ident(source ? c.source : c.target));
    vals.push_back(key.size() == 1 ? "(x #>> '{}')::" + types[n]
                                   : "(x ->> " + std::to_string(n) + ")::" + types[n]);
  }
  // One key: $1 holds the key texts; several: JSON arrays of the key's texts, as text.
  const std::string elems = key.size() == 1
                                ? "jsonb_array_elements($1::jsonb) x"
                                : "jsonb_array_elements($1::jsonb) e CROSS JOIN LATERAL "
                                  "(SELECT (e #>> '{}')::jsonb) y(x)";
  return "(" + join(cols, ", ") + ") IN (SELECT " + join(vals, ", ") + " FROM " + elems + ")";
}

std::vector<std::string> key_parts(const TablePair& p, const std::string& key_text) {
  if (p.key.size() == 1) return {key_text};
  std::vector<std::string> out;
  const json::value v = json::parse(key_text);
  for (const auto& e : v.as_array()) out.emplace_back(e.is_string() ? e.as_string().c_str() : "");
  return out;
}

}  // namespace pgphase::validator
