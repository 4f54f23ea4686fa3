#include "migration/constraints.h"

#include <algorithm>
#include <boost/json.hpp>
#include <limits>
#include <map>

#include "migration/pg_client.h"
#include "migration/sql_text.h"

namespace pgphase::migration {
namespace {

std::string display_name(const std::string& configured) {
  const QualifiedName q = qualify(configured);
  return q.schema + "." + q.table;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

std::string column_list(const std::vector<std::string>& columns) {
  std::vector<std::string> quoted;
  for (const auto& c : columns) quoted.push_back(quote_ident(c));
  return "(" + join(quoted, ", ") + ")";
}

// column_map with its names as the catalog spells them; nullopt when a name is invalid.
std::optional<std::map<std::string, std::string>> normalized_map(const Migration& m) {
  std::map<std::string, std::string> out;
  try {
    for (const auto& [from, to] : m.column_map) {
      out[column_name(from)] = to.empty() ? "" : column_name(to);
    }
  } catch (const ModelError&) {
    return std::nullopt;
  }
  return out;
}

// The target column of source column `col` ("" when column_map drops it).
std::string target_column(const std::map<std::string, std::string>& map, const std::string& col) {
  const auto it = map.find(col);
  return it == map.end() ? col : it->second;
}

// The source column mapped to target column `col` ("" when there is none).
std::string source_column(const std::map<std::string, std::string>& map, const std::string& col) {
  for (const auto& [from, to] : map) {
    if (to == col) return from;
  }
  return map.count(col) ? "" : col;
}

// $1..$4 the tables' schemas and names, $5 the migration's database. One row per key column of
// each unique index (valid, not partial, no expressions) of each table that exists; a table that
// exists without such indexes has one row with NULL index columns; a missing one has none.
// The migration's tables as `t` (side 0 the source, 1 the target; rel their oids): $1..$4 their
// schemas and names, $5 the migration's database ('' = the control database).
constexpr const char* kTablesCte = R"SQL(
WITH t AS (
  SELECT x.side, c.oid AS rel
  FROM (VALUES (0, $1::text, $2::text), (1, $3::text, $4::text)) AS x(side, nsp, rel)
  JOIN pg_namespace n ON n.nspname = x.nsp
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = x.rel AND c.relkind IN ('r', 'p')
  WHERE $5::text = '' OR $5::text = current_database())
)SQL";

const std::string kKeyIndexesSql = std::string(kTablesCte) + R"SQL(
SELECT t.side, ic.relname, ix.indimmediate, ix.indisprimary, k.n, a.attname
FROM t
LEFT JOIN pg_index ix ON ix.indrelid = t.rel AND ix.indisunique AND ix.indisvalid
  AND ix.indpred IS NULL AND ix.indexprs IS NULL
LEFT JOIN pg_class ic ON ic.oid = ix.indexrelid
LEFT JOIN LATERAL generate_series(0, ix.indnkeyatts - 1) AS k(n) ON true
LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = ix.indkey[k.n]
ORDER BY 1, 2, 5
)SQL";

struct RawIndex {
  std::string name;
  bool immediate = true;
  bool primary = false;
  std::vector<std::string> columns;
};

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Sequences behind column defaults of both tables: $1..$4 the tables, $5 the database. A sequence
// is behind a column when it is owned by it (serial: deptype 'a', identity: 'i') or the column's
// default depends on it (nextval('...')).
const std::string kSequencesSql = std::string(kTablesCte) + R"SQL(
SELECT DISTINCT t.side, a.attnum, a.attname, s.oid, sn.nspname || '.' || s.relname,
  sq.seqincrement
FROM t
JOIN pg_attribute a ON a.attrelid = t.rel AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_class s ON s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_sequence sq ON sq.seqrelid = s.oid
WHERE EXISTS (
    SELECT 1 FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid
      AND d.refclassid = 'pg_class'::regclass AND d.refobjid = t.rel
      AND d.refobjsubid = a.attnum AND d.deptype IN ('a', 'i'))
  OR EXISTS (
    SELECT 1 FROM pg_attrdef ad
    JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
    WHERE ad.adrelid = t.rel AND ad.adnum = a.attnum
      AND d.refclassid = 'pg_class'::regclass AND d.refobjid = s.oid)
ORDER BY 1, 2, 5
)SQL";

struct SeqColumn {
  std::string column;
  std::string seq_oid;
  std::string seq_name;
  int64_t increment = 1;
};

std::optional<int64_t> opt_int(const pg::Result& r, int row, int col) {
  if (r.is_null(row, col)) return std::nullopt;
  return r.int64(row, col);
}

std::optional<int64_t> last_value_of(pg::Connection& c, const std::string& seq_oid) {
  const pg::Result r = c.exec("SELECT pg_sequence_last_value($1::oid::regclass)", {seq_oid});
  return opt_int(r, 0, 0);
}

// Runs `body` under a savepoint; a failure other than a lost connection rolls back to it and is
// returned as text ("" on success).
template <class F>
std::string under_savepoint(pg::Connection& c, const char* name, F&& body) {
  c.exec(std::string("SAVEPOINT ") + name);
  try {
    body();
    c.exec(std::string("RELEASE SAVEPOINT ") + name);
    return "";
  } catch (const pg::PgError& e) {
    if (e.connection_lost()) throw;
    c.exec(std::string("ROLLBACK TO SAVEPOINT ") + name);
    return e.what();
  }
}

// Foreign keys referencing the source: $1, $2 its schema and name, $3 the database. Column lists
// as JSON arrays; confdelsetcols (PostgreSQL 15) read through to_jsonb so that older servers,
// which lack it, answer too.
constexpr const char* kForeignKeysSql = R"SQL(
WITH src AS (
  SELECT c.oid AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1::text AND c.relname = $2::text AND c.relkind IN ('r', 'p')
    AND ($3::text = '' OR $3::text = current_database()))
SELECT con.oid, con.conname, cn.nspname, cc.relname, cc.relkind = 'p',
  (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY AS k(n, ord)
   JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n)::text,
  (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY AS k(n, ord)
   JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n)::text,
  con.confupdtype::text, con.confdeltype::text, con.confmatchtype::text, con.condeferrable,
  con.condeferred, con.convalidated,
  coalesce((SELECT json_agg(a.attname ORDER BY k.ord)
   FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(to_jsonb(con) -> 'confdelsetcols') =
     'array' THEN to_jsonb(con) -> 'confdelsetcols' ELSE '[]' END) WITH ORDINALITY AS k(n, ord)
   JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n::int2), '[]')::text
FROM src
JOIN pg_constraint con ON con.confrelid = src.rel AND con.contype = 'f'
  AND con.conrelid <> src.rel AND con.conparentid = 0
JOIN pg_class cc ON cc.oid = con.conrelid
JOIN pg_namespace cn ON cn.oid = cc.relnamespace
ORDER BY cn.nspname, cc.relname, con.conname
)SQL";

std::vector<std::string> names_of(const std::string& json_text) {
  std::vector<std::string> out;
  const boost::json::value v = boost::json::parse(json_text);
  if (!v.is_array()) return out;
  for (const auto& e : v.as_array()) {
    if (e.is_string()) out.emplace_back(e.as_string());
  }
  return out;
}

std::string action_sql(char code, const std::vector<std::string>& set_columns) {
  switch (code) {
    case 'r':
      return "RESTRICT";
    case 'c':
      return "CASCADE";
    case 'n':
      return "SET NULL" + (set_columns.empty() ? "" : " " + column_list(set_columns));
    case 'd':
      return "SET DEFAULT" + (set_columns.empty() ? "" : " " + column_list(set_columns));
    default:
      return "NO ACTION";
  }
}

// MATCH ... ON UPDATE ... ON DELETE ... [NOT] DEFERRABLE [INITIALLY DEFERRED]
std::string options_sql(const ForeignKeyRef& fk) {
  std::string out = fk.match == 'f' ? "MATCH FULL" : fk.match == 'p' ? "MATCH PARTIAL" : "";
  out += (out.empty() ? "" : " ") + std::string("ON UPDATE ") + action_sql(fk.on_update, {});
  out += " ON DELETE " + action_sql(fk.on_delete, fk.delete_set_columns);
  out += fk.deferrable ? (fk.deferred ? " DEFERRABLE INITIALLY DEFERRED" : " DEFERRABLE")
                       : " NOT DEFERRABLE";
  return out;
}

}  // namespace

// ---- keys -------------------------------------------------------------------------------------

std::optional<KeyFacts> load_key_facts(pg::Connection& c, const Migration& m) {
  QualifiedName source;
  QualifiedName target;
  std::vector<std::string> key;
  try {
    source = qualify(m.source_table);
    target = qualify(m.target_table);
    for (const auto& k : m.key_columns) key.push_back(column_name(k));
  } catch (const ModelError&) {
    return std::nullopt;
  }
  const auto map = normalized_map(m);
  if (!map) return std::nullopt;
  const pg::Result r = c.exec(
      kKeyIndexesSql, {source.schema, source.table, target.schema, target.table, m.database});
  if (r.rows() == 0) return std::nullopt;  // neither table there (or another database)
  std::vector<RawIndex> indexes[2];
  bool visible[2] = {false, false};
  for (int row = 0; row < r.rows(); ++row) {
    const int side = r.str(row, 0) == "1" ? 1 : 0;
    visible[side] = true;
    if (r.is_null(row, 1)) continue;
    auto& list = indexes[side];
    if (list.empty() || list.back().name != r.str(row, 1)) {
      list.push_back(RawIndex{r.str(row, 1), r.boolean(row, 2), r.boolean(row, 3), {}});
    }
    list.back().columns.push_back(r.str(row, 5));
  }
  if (key.empty()) {
    for (const RawIndex& i : indexes[0]) {
      if (i.primary) key = i.columns;
    }
  }
  if (key.empty()) return std::nullopt;
  std::vector<std::string> target_key;
  for (const auto& k : key) {
    const std::string t = target_column(*map, k);
    if (t.empty()) return std::nullopt;
    target_key.push_back(t);
  }
  KeyFacts out;
  const auto fill = [&](TableKey& t, int side, const std::string& configured,
                        std::vector<std::string> k) {
    t.visible = visible[side];
    t.table = display_name(configured);
    t.sql = quote_table(configured);
    t.key = std::move(k);
    for (const RawIndex& i : indexes[side]) {
      if (std::all_of(i.columns.begin(), i.columns.end(),
                      [&](const std::string& col) { return contains(t.key, col); })) {
        t.unique_indexes.push_back(UniqueIndex{i.name, i.columns, i.immediate});
      }
    }
  };
  fill(out.source, 0, m.source_table, key);
  fill(out.target, 1, m.target_table, target_key);
  return out;
}

bool key_unique_per_statement(const TableKey& t) {
  return std::any_of(t.unique_indexes.begin(), t.unique_indexes.end(),
                     [](const UniqueIndex& i) { return i.immediate; });
}

bool key_has_immediate_index(const TableKey& t) {
  const std::vector<std::string> key = sorted(t.key);
  return std::any_of(t.unique_indexes.begin(), t.unique_indexes.end(),
                     [&](const UniqueIndex& i) { return i.immediate && sorted(i.columns) == key; });
}

std::vector<std::string> deferrable_arbiters(const TableKey& t) {
  const std::vector<std::string> key = sorted(t.key);
  std::vector<std::string> out;
  for (const UniqueIndex& i : t.unique_indexes) {
    if (!i.immediate && sorted(i.columns) == key) out.push_back(i.name);
  }
  return out;
}

bool key_has_arbiter(const TableKey& t) {
  return key_has_immediate_index(t) && deferrable_arbiters(t).empty();
}

std::string deferrable_key_indexes(const TableKey& t) {
  std::vector<std::string> names;
  for (const UniqueIndex& i : t.unique_indexes) {
    if (!i.immediate) names.push_back(i.name);
  }
  return join(names, ", ");
}

std::string create_key_index_sql(const TableKey& t) {
  return "CREATE UNIQUE INDEX CONCURRENTLY ON " + t.sql + " " + column_list(t.key);
}

std::string drop_constraint_sql(const TableKey& t, const std::string& name) {
  return "ALTER TABLE " + t.sql + " DROP CONSTRAINT " + quote_ident(name);
}

// ---- sequences --------------------------------------------------------------------------------

SequenceAdvance advance_sequences(pg::Connection& c, const Migration& m, bool to_target) {
  SequenceAdvance out;
  const auto map = normalized_map(m);
  QualifiedName source;
  QualifiedName target;
  try {
    source = qualify(m.source_table);
    target = qualify(m.target_table);
  } catch (const ModelError&) {
    return out;
  }
  if (!map) return out;
  const std::string moved_sql = quote_table(to_target ? m.target_table : m.source_table);
  const std::string moved_name = display_name(to_target ? m.target_table : m.source_table);
  out.error = under_savepoint(c, "pgphase_sequences", [&] {
    const pg::Result r = c.exec(
        kSequencesSql, {source.schema, source.table, target.schema, target.table, m.database});
    const std::string moved_side = to_target ? "1" : "0";
    std::vector<SeqColumn> moved;
    std::map<std::string, SeqColumn> other;  // by column (the first sequence of each)
    for (int row = 0; row < r.rows(); ++row) {
      SeqColumn s{r.str(row, 2), r.str(row, 3), r.str(row, 4), r.int64(row, 5)};
      if (r.str(row, 0) == moved_side) {
        moved.push_back(std::move(s));
      } else {
        other.emplace(s.column, std::move(s));
      }
    }
    for (const SeqColumn& s : moved) {
      SequenceMove mv;
      mv.table = moved_name;
      mv.column = s.column;
      mv.sequence = s.seq_name;
      mv.last_value = last_value_of(c, s.seq_oid);
      mv.max_key = opt_int(
          c.exec("SELECT max(" + quote_ident(s.column) + ")::bigint FROM " + moved_sql), 0, 0);
      const std::string paired =
          to_target ? source_column(*map, s.column) : target_column(*map, s.column);
      if (const auto it = other.find(paired); !paired.empty() && it != other.end()) {
        mv.paired_sequence = it->second.seq_name;
        mv.paired_last_value = last_value_of(c, it->second.seq_oid);
      }
      if (s.increment <= 0) {
        mv.note = "descending sequence: not moved";
        out.moves.push_back(std::move(mv));
        continue;
      }
      std::optional<int64_t> floor = mv.max_key;
      if (mv.paired_last_value && (!floor || *mv.paired_last_value > *floor)) {
        floor = mv.paired_last_value;
      }
      if (!floor) {
        mv.note = "no keys yet: nothing to be ahead of";
        out.moves.push_back(std::move(mv));
        continue;
      }
      constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
      const int64_t step =
          s.increment > kMax / kSequenceMargin ? kMax : kSequenceMargin * s.increment;
      const int64_t need = *floor > kMax - step ? kMax : *floor + step;
      if (mv.last_value && *mv.last_value >= need) {
        mv.set_to = *mv.last_value;
        mv.note = "already ahead";
        out.moves.push_back(std::move(mv));
        continue;
      }
      c.exec("SELECT setval($1::oid::regclass, $2::bigint, true)",
             {s.seq_oid, std::to_string(need)});
      mv.set_to = need;
      mv.moved = true;
      out.moves.push_back(std::move(mv));
    }
  });
  if (!out.error.empty()) out.moves.clear();
  return out;
}

// ---- foreign keys -----------------------------------------------------------------------------

std::vector<ForeignKeyRef> load_referencing_foreign_keys(pg::Connection& c, const Migration& m) {
  QualifiedName source;
  try {
    source = qualify(m.source_table);
  } catch (const ModelError&) {
    return {};
  }
  const auto map = normalized_map(m).value_or(std::map<std::string, std::string>{});
  const pg::Result r = c.exec(kForeignKeysSql, {source.schema, source.table, m.database});
  std::vector<ForeignKeyRef> out;
  for (int row = 0; row < r.rows(); ++row) {
    ForeignKeyRef fk;
    fk.oid = r.int64(row, 0);
    fk.name = r.str(row, 1);
    fk.child = r.str(row, 2) + "." + r.str(row, 3);
    fk.child_sql = quote_ident(r.str(row, 2)) + "." + quote_ident(r.str(row, 3));
    fk.child_partitioned = r.boolean(row, 4);
    fk.child_columns = names_of(r.str(row, 5));
    fk.source_columns = names_of(r.str(row, 6));
    for (const auto& col : fk.source_columns) fk.target_columns.push_back(target_column(map, col));
    fk.on_update = r.str(row, 7).empty() ? 'a' : r.str(row, 7)[0];
    fk.on_delete = r.str(row, 8).empty() ? 'a' : r.str(row, 8)[0];
    fk.match = r.str(row, 9).empty() ? 's' : r.str(row, 9)[0];
    fk.deferrable = r.boolean(row, 10);
    fk.deferred = r.boolean(row, 11);
    fk.validated = r.boolean(row, 12);
    fk.delete_set_columns = names_of(r.str(row, 13));
    out.push_back(std::move(fk));
  }
  return out;
}

std::string describe(const ForeignKeyRef& fk, const std::string& source_table) {
  return fk.name + " on " + fk.child + " " + column_list(fk.child_columns) + " REFERENCES " +
         display_name(source_table) + " " + column_list(fk.source_columns) + " " + options_sql(fk);
}

std::string unmapped_columns(const ForeignKeyRef& fk) {
  std::vector<std::string> out;
  for (size_t i = 0; i < fk.source_columns.size(); ++i) {
    if (i >= fk.target_columns.size() || fk.target_columns[i].empty()) {
      out.push_back(fk.source_columns[i]);
    }
  }
  return join(out, ", ");
}

std::vector<std::string> foreign_key_move_sql(const ForeignKeyRef& fk,
                                              const std::string& target_sql) {
  const std::string alter = "ALTER TABLE " + fk.child_sql + " ";
  const std::string temporary = quote_ident("pgphase_fk_" + std::to_string(fk.oid));
  const bool not_valid = !fk.child_partitioned;  // not supported on partitioned tables
  std::vector<std::string> out;
  out.push_back(alter + "ADD CONSTRAINT " + temporary + " FOREIGN KEY " +
                column_list(fk.child_columns) + " REFERENCES " + target_sql + " " +
                column_list(fk.target_columns) + " " + options_sql(fk) +
                (not_valid ? " NOT VALID" : ""));
  out.push_back(alter + "DROP CONSTRAINT " + quote_ident(fk.name));
  if (not_valid && fk.validated) out.push_back(alter + "VALIDATE CONSTRAINT " + temporary);
  out.push_back(alter + "RENAME CONSTRAINT " + temporary + " TO " + quote_ident(fk.name));
  return out;
}

ForeignKeyMoves move_foreign_keys(pg::Connection& c, const Migration& m,
                                  const std::vector<ForeignKeyRef>& fks) {
  ForeignKeyMoves out;
  if (fks.empty()) return out;
  const std::string target_sql = quote_table(m.target_table);
  std::string statement;
  out.error = under_savepoint(c, "pgphase_foreign_keys", [&] {
    const std::string previous = c.exec("SELECT current_setting('lock_timeout')").str(0, 0);
    c.exec("SELECT set_config('lock_timeout', '10s', true)");
    for (const ForeignKeyRef& fk : fks) {
      for (const std::string& sql : foreign_key_move_sql(fk, target_sql)) {
        statement = sql;
        c.exec(sql);
      }
      out.moved.push_back(fk.name + " on " + fk.child + " " + column_list(fk.child_columns) +
                          ": REFERENCES " + display_name(m.source_table) + " " +
                          column_list(fk.source_columns) + " -> " + display_name(m.target_table) +
                          " " + column_list(fk.target_columns) + " " + options_sql(fk));
    }
    statement.clear();
    c.exec("SELECT set_config('lock_timeout', $1, true)", {previous});
  });
  if (!out.error.empty()) {
    out.moved.clear();
    if (!statement.empty()) out.error = statement + ": " + out.error;
  }
  return out;
}

}  // namespace pgphase::migration
