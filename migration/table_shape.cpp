#include "migration/table_shape.h"

#include <algorithm>
#include <boost/json.hpp>
#include <optional>
#include <set>
#include <utility>

namespace pgphase::migration {
namespace json = boost::json;
namespace {

bool needs_shape(const Migration& m) {
  return m.phase != Phase::kPreparation;
}

// One table as the catalog describes it.
struct Relation {
  bool exists = false;
  char relkind = 0;
  std::vector<ColumnShape> columns;
  std::vector<std::string> primary_key;            // index order
  std::set<std::vector<std::string>> unique_keys;  // key column names of usable indexes, sorted
  std::string homonyms;                            // other schemas with a relation of this name
  bool update_trigger = false;                     // an enabled BEFORE UPDATE row trigger
  std::string rls;  // "" when row-level security is off; else its settings and policies
};

using Name = std::pair<std::string, std::string>;  // schema, table

std::string display(const Name& n) {
  return n.first + "." + n.second;
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

const char* kind_name(char relkind) {
  switch (relkind) {
    case 'v':
      return "a view";
    case 'm':
      return "a materialized view";
    case 'f':
      return "a foreign table";
    case 'S':
      return "a sequence";
    case 'c':
      return "a composite type";
    case 'i':
    case 'I':
      return "an index";
    default:
      return "not a table";
  }
}

// One round trip for every table involved. Names come as a JSON array of [schema, table] pairs
// (nothing is spliced into the SQL); `ord` numbers them from 1. Rows with index 0: the columns
// of each table that exists, in attnum order, not dropped, with their types (spelled so that a
// cast reads the same under any search_path: schema-qualified outside pg_catalog) (a table
// without columns has one row with a NULL attname). Other rows: the key columns, in index order, of
// each unique index INSERT ... ON CONFLICT can use (valid, not deferrable, not partial, no
// expressions; INCLUDE columns left out).
constexpr const char* kShapesQuery =
    "WITH rel AS MATERIALIZED ("
    "  SELECT e.ord, c.oid, c.relkind "
    "  FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(name, ord) "
    "  JOIN pg_namespace n ON n.nspname = e.name->>0 "
    "  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = e.name->>1) "
    "SELECT r.ord, r.relkind, 0::oid AS idx, false, a.attnum::int AS pos, a.attname, "
    "  coalesce(a.attgenerated <> '', false), coalesce(a.attidentity = 'a', false), "
    "  (SELECT CASE WHEN ty.typnamespace = 'pg_catalog'::regnamespace OR a.atttypmod <> -1 "
    "   THEN format_type(a.atttypid, a.atttypmod) "
    "   ELSE quote_ident(tn.nspname) || '.' || quote_ident(ty.typname) END "
    "   FROM pg_type ty JOIN pg_namespace tn ON tn.oid = ty.typnamespace "
    "   WHERE ty.oid = a.atttypid), a.atttypid "
    "FROM rel r "
    "LEFT JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "UNION ALL "
    "SELECT r.ord, r.relkind, i.indexrelid, i.indisprimary, k.n, a.attname, false, false, "
    "  NULL, NULL "
    "FROM rel r "
    "JOIN pg_index i ON i.indrelid = r.oid "
    "CROSS JOIN LATERAL generate_series(0, i.indnkeyatts - 1) AS k(n) "
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n] "
    "WHERE i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL "
    "  AND i.indexprs IS NULL "
    "ORDER BY 1, 3, 5";

// What else decides how statements on each table behave, one row per table that exists: the
// other schemas with a relation of the same name (an unqualified name depends on search_path
// then), whether an enabled BEFORE UPDATE row trigger may change the key (tgtype bits: ROW 1,
// BEFORE 2, UPDATE 16), and row-level security (off: ""; on: forced, owner and every policy).
constexpr const char* kBehaviourQuery =
    "SELECT e.ord, "
    "  (SELECT string_agg(DISTINCT n2.nspname, ', ' ORDER BY n2.nspname) FROM pg_class c2 "
    "   JOIN pg_namespace n2 ON n2.oid = c2.relnamespace WHERE c2.relname = c.relname "
    "   AND c2.oid <> c.oid AND c2.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')), "
    "  EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal "
    "   AND t.tgenabled <> 'D' AND (t.tgtype & 19) = 19), "
    "  CASE WHEN c.relrowsecurity THEN concat_ws(E'\\n', 'force=' || c.relforcerowsecurity, "
    "   'owner=' || c.relowner::regrole::text, (SELECT string_agg(concat_ws(' | ', p.polname, "
    "   p.polcmd, p.polpermissive, p.polroles::regrole[]::text, pg_get_expr(p.polqual, "
    "   p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)), E'\\n' ORDER BY p.polname) "
    "   FROM pg_policy p WHERE p.polrelid = c.oid)) ELSE '' END "
    "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(name, ord) "
    "JOIN pg_namespace n ON n.nspname = e.name->>0 "
    "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = e.name->>1";

// A name as column_name() reads it; an invalid one is reported and kept as given.
std::string column_or_problem(const std::string& raw, const char* what,
                              std::vector<std::string>& problems) {
  try {
    return column_name(raw);
  } catch (const ModelError& e) {
    problems.push_back(std::string(what) + ": " + e.what());
    return raw;
  }
}

const ColumnShape* find_column(const Relation& r, const std::string& name) {
  for (const auto& col : r.columns) {
    if (col.name == name) return &col;
  }
  return nullptr;
}

TableShape shape_of(const Migration& m, const Name& source_name, const Relation& source,
                    const Name& target_name, const Relation& target) {
  TableShape shape;
  std::vector<std::string> problems;
  const std::string src = "source table " + display(source_name);
  const std::string dst = "target table " + display(target_name);
  const auto check_table = [&](const std::string& name, const Relation& rel) {
    if (!rel.exists) {
      problems.push_back(name + " does not exist");
    } else if (rel.relkind != 'r' && rel.relkind != 'p') {
      problems.push_back(name + " is " + kind_name(rel.relkind) + ", not a table");
    }
  };
  check_table(src, source);
  check_table(dst, target);
  shape.source_columns = source.columns;
  shape.target_columns = target.columns;

  // column_map, by catalog names: source column -> target column ("" = not written).
  std::map<std::string, std::string> mapping;
  for (const auto& [from_raw, to_raw] : m.column_map) {
    const std::string from = column_or_problem(from_raw, "column_map", problems);
    const std::string to = to_raw.empty() ? "" : column_or_problem(to_raw, "column_map", problems);
    if (!mapping.emplace(from, to).second) {
      problems.push_back("column_map names source column " + from + " twice");
      continue;
    }
    if (source.exists && find_column(source, from) == nullptr) {
      problems.push_back("column_map names " + from + ", which is not a column of " + src);
    }
    if (!to.empty() && target.exists && find_column(target, to) == nullptr) {
      problems.push_back("column_map maps " + from + " to " + to + ", which is not a column of " +
                         dst);
    }
  }
  const auto mapped = [&](const std::string& col) {
    const auto it = mapping.find(col);
    return it == mapping.end() ? col : it->second;
  };

  // Every written source column needs its own target column. Generated source columns are not
  // written (the database computes them); unknown column_map entries were reported above.
  if (source.exists && target.exists) {
    std::map<std::string, std::string> written;  // target column -> source column
    for (const auto& col : source.columns) {
      const std::string to = mapped(col.name);
      if (to.empty()) continue;
      const bool explicit_entry = mapping.count(col.name) != 0;
      if (find_column(target, to) == nullptr) {
        if (!col.generated && !explicit_entry) {
          problems.push_back("source column " + col.name + " has no column " + to + " in " + dst +
                             " (map it with column_map, or drop it with \"\")");
        }
        continue;
      }
      if (const auto [it, fresh] = written.emplace(to, col.name); !fresh) {
        problems.push_back("source columns " + it->second + " and " + col.name +
                           " both map to target column " + to);
      }
    }
  }

  // The key: the migration's key_columns, else the source's primary key.
  if (!m.key_columns.empty()) {
    for (const auto& k : m.key_columns) {
      shape.key_columns.push_back(column_or_problem(k, "key_columns", problems));
    }
  } else if (source.exists) {
    shape.key_columns = source.primary_key;
    if (shape.key_columns.empty()) {
      problems.push_back("no key: " + src +
                         " has no primary key and the migration names no key_columns");
    }
  }
  bool key_ok = !shape.key_columns.empty();
  std::vector<std::string> target_key;
  for (const auto& k : shape.key_columns) {
    if (source.exists && find_column(source, k) == nullptr) {
      problems.push_back("key column " + k + " is not a column of " + src);
      key_ok = false;
      continue;
    }
    const std::string to = mapped(k);
    if (to.empty()) {
      problems.push_back("key column " + k + " is dropped by column_map");
      key_ok = false;
      continue;
    }
    target_key.push_back(to);
  }
  if (key_ok) {
    std::vector<std::string> source_set = shape.key_columns;
    std::sort(source_set.begin(), source_set.end());
    std::sort(target_key.begin(), target_key.end());
    shape.source_has_unique_key = source.unique_keys.count(source_set) != 0;
    shape.target_has_unique_key = target.unique_keys.count(target_key) != 0;
  }
  shape.problem = join(problems, "; ");
  shape.source_homonyms = source.homonyms;
  shape.target_homonyms = target.homonyms;
  shape.source_update_trigger = source.update_trigger;
  shape.target_update_trigger = target.update_trigger;
  if (source.rls != target.rls) {
    shape.rls_difference = "row-level security differs between " + display(source_name) + " and " +
                           display(target_name) + " (enabled, forced, owner or policies)";
  }
  return shape;
}

}  // namespace

std::map<std::string, TableShape> unresolved_shapes(const std::vector<Migration>& migrations,
                                                    const std::string& why) {
  std::map<std::string, TableShape> out;
  for (const auto& m : migrations) {
    if (needs_shape(m)) out[m.migration_id].problem = why;
  }
  return out;
}

std::map<std::string, TableShape> load_shapes(pg::Connection& c,
                                              const std::vector<Migration>& migrations) {
  std::map<std::string, TableShape> out;
  const std::string here = PQdb(c.raw()) != nullptr ? PQdb(c.raw()) : "";

  // The tables to look up, each once.
  struct Wanted {
    const Migration* m;
    std::optional<Name> source;
    std::optional<Name> target;
  };
  std::vector<Wanted> wanted;
  std::map<Name, Relation> relations;
  std::vector<Name> order;  // relations' names in query order (ord - 1)
  for (const auto& m : migrations) {
    if (!needs_shape(m)) continue;
    if (!m.database.empty() && m.database != here) {
      out[m.migration_id].problem = "its tables are in database " + m.database +
                                    ", not in the control database " + here +
                                    ", whose catalog describes the shapes";
      continue;
    }
    std::vector<std::string> problems;
    const auto resolve = [&](const std::string& table, const char* what) -> std::optional<Name> {
      try {
        const QualifiedName q = qualify(table);
        Name name{q.schema, q.table};
        if (relations.emplace(name, Relation{}).second) order.push_back(name);
        return name;
      } catch (const ModelError& e) {
        problems.push_back(std::string(what) + ": " + e.what());
        return std::nullopt;
      }
    };
    Wanted w{&m, resolve(m.source_table, "source_table"), resolve(m.target_table, "target_table")};
    if (!problems.empty()) {
      out[m.migration_id].problem = join(problems, "; ");
      continue;
    }
    wanted.push_back(std::move(w));
  }
  if (wanted.empty()) return out;

  json::array names;
  for (const auto& n : order) names.push_back(json::array{n.first, n.second});
  const pg::Result r = c.exec(kShapesQuery, {json::serialize(names)});
  // Index rows come grouped by index, in key order.
  Relation* index_of = nullptr;
  std::string index;
  std::vector<std::string> key;
  bool primary = false;
  const auto flush = [&] {
    if (index_of == nullptr || key.empty()) return;
    if (primary) index_of->primary_key = key;
    std::sort(key.begin(), key.end());
    index_of->unique_keys.insert(std::move(key));
  };
  for (int i = 0; i < r.rows(); ++i) {
    const int64_t ord = r.int64(i, 0);
    if (ord < 1 || ord > static_cast<int64_t>(order.size())) continue;
    Relation& rel = relations[order[static_cast<size_t>(ord - 1)]];
    if (!rel.exists) {
      rel.exists = true;
      const std::string kind = r.str(i, 1);
      rel.relkind = kind.empty() ? '?' : kind[0];
    }
    const std::string idx = r.str(i, 2);
    if (idx == "0") {
      if (!r.is_null(i, 5)) {
        rel.columns.push_back(ColumnShape{r.str(i, 5), r.boolean(i, 6), r.boolean(i, 7),
                                          r.str(i, 8), static_cast<uint32_t>(r.int64(i, 9))});
      }
      continue;
    }
    if (idx != index || index_of != &rel) {
      flush();
      index_of = &rel;
      index = idx;
      key.clear();
      primary = r.boolean(i, 3);
    }
    key.push_back(r.str(i, 5));
  }
  flush();
  const pg::Result b = c.exec(kBehaviourQuery, {json::serialize(names)});
  for (int i = 0; i < b.rows(); ++i) {
    const int64_t ord = b.int64(i, 0);
    if (ord < 1 || ord > static_cast<int64_t>(order.size())) continue;
    Relation& rel = relations[order[static_cast<size_t>(ord - 1)]];
    rel.homonyms = b.is_null(i, 1) ? "" : b.str(i, 1);
    rel.update_trigger = b.boolean(i, 2);
    rel.rls = b.str(i, 3);
  }

  for (const auto& w : wanted) {
    out[w.m->migration_id] =
        shape_of(*w.m, *w.source, relations.at(*w.source), *w.target, relations.at(*w.target));
  }
  return out;
}

}  // namespace pgphase::migration
