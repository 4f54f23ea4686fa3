#include "migration/privileges.h"

#include "migration/pg_client.h"
#include "migration/sql_text.h"

namespace pgphase::migration {
namespace {

// Privileges as bits.
constexpr unsigned kInsert = 1;
constexpr unsigned kUpdate = 2;
constexpr unsigned kDelete = 4;
constexpr unsigned kTruncate = 8;
constexpr unsigned kSelect = 16;
constexpr unsigned kReturning = kInsert | kUpdate | kDelete;  // writes pgphase reads back

// Table-level privileges held.
unsigned held(const TableRights& t) {
  return (t.insert ? kInsert : 0) | (t.update ? kUpdate : 0) | (t.remove ? kDelete : 0) |
         (t.truncate ? kTruncate : 0) | (t.select ? kSelect : 0);
}

// The writes a role can make to the table itself (column-level grants included).
unsigned writes(const TableRights& t) {
  return (t.insert || t.insert_columns ? kInsert : 0) |
         (t.update || t.update_columns ? kUpdate : 0) | (t.remove ? kDelete : 0) |
         (t.truncate ? kTruncate : 0);
}

// What mirroring writes `w` to the other table needs there.
unsigned mirror_needs(unsigned w) {
  unsigned needs = 0;
  if (w & (kInsert | kUpdate)) needs |= kInsert | kUpdate | kSelect;
  // An UPDATE that moves a key (or whose BEFORE trigger may) deletes the old key there.
  if (w & (kUpdate | kDelete)) needs |= kDelete | kSelect;
  if (w & kTruncate) needs |= kTruncate;
  return needs;
}

std::string names(unsigned bits) {
  std::string out;
  for (const auto& [bit, name] :
       {std::pair{kInsert, "INSERT"}, std::pair{kUpdate, "UPDATE"}, std::pair{kDelete, "DELETE"},
        std::pair{kTruncate, "TRUNCATE"}, std::pair{kSelect, "SELECT"}}) {
    if (!(bits & bit)) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// One of the migration's tables with one role's rights on it.
struct Side {
  const TableRights& rights;
  std::string name;  // public.users
  std::string sql;   // "public"."users"
};

std::string display_name(const std::string& configured) {
  const QualifiedName q = qualify(configured);
  return q.schema + "." + q.table;
}

// `role` can do `can` on `from` but lacks `missing` on `on`, which `why` needs.
PrivilegeGap gap(const std::string& role, unsigned can, const Side& from, const Side& on,
                 unsigned missing, const std::string& why) {
  PrivilegeGap g;
  g.role = role;
  g.table = on.name;
  g.missing = names(missing);
  g.reason = "role " + role + " can " + names(can) + " " + from.name + " but lacks " + g.missing +
             " on " + (&from == &on ? std::string("it") : on.name) + " (" + why + ")";
  g.grant = "GRANT " + g.missing + " ON " + on.sql + " TO " + quote_ident(role);
  return g;
}

// Writes of `from` mirrored to `to`.
void add_mirror_gaps(const std::string& role, const Side& from, const Side& to,
                     std::vector<PrivilegeGap>& out) {
  const unsigned w = writes(from.rights);
  if (w == 0) return;
  if (const unsigned missing = mirror_needs(w) & ~held(to.rights)) {
    out.push_back(gap(role, w, from, to, missing, "pgphase mirrors its writes there"));
  }
  if ((w & kReturning) && !from.rights.select) {
    out.push_back(gap(role, w & kReturning, from, from, kSelect,
                      "pgphase reads the written rows back with RETURNING"));
  }
}

// Reads of `source` sent to `target`; nothing when a gap of this role since `first` already asks
// for SELECT on the target.
void add_read_gap(const std::string& role, const Side& source, const Side& target, size_t first,
                  std::vector<PrivilegeGap>& out) {
  if (!source.rights.select || target.rights.select) return;
  for (size_t i = first; i < out.size(); ++i) {
    if (out[i].table == target.name && out[i].missing.find("SELECT") != std::string::npos) return;
  }
  out.push_back(gap(role, kSelect, source, target, kSelect, "reads are switched to it"));
}

// Columns 2.. of a row of load_role_rights' query: one table's rights.
TableRights rights_at(const pg::Result& r, int row) {
  TableRights t;
  t.select = r.boolean(row, 2);
  t.insert = r.boolean(row, 3);
  t.update = r.boolean(row, 4);
  t.remove = r.boolean(row, 5);
  t.truncate = r.boolean(row, 6);
  t.insert_columns = r.boolean(row, 7);
  t.update_columns = r.boolean(row, 8);
  return t;
}

// $1..$4: the tables' schemas and names, $5 the migration's database ('' = the control database).
// Two rows per role, side 0 the source and 1 the target.
constexpr const char* kRoleRightsSql = R"SQL(
WITH t AS (
  SELECT (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')) AS src,
         (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = $3 AND c.relname = $4 AND c.relkind IN ('r', 'p')) AS dst
  WHERE $5 = '' OR $5 = current_database()),
rights AS (
  SELECT r.rolname, x.side,
         has_table_privilege(r.oid, x.rel, 'SELECT') AS sel,
         has_table_privilege(r.oid, x.rel, 'INSERT') AS ins,
         has_table_privilege(r.oid, x.rel, 'UPDATE') AS upd,
         has_table_privilege(r.oid, x.rel, 'DELETE') AS del,
         has_table_privilege(r.oid, x.rel, 'TRUNCATE') AS tru,
         has_any_column_privilege(r.oid, x.rel, 'INSERT') AS ins_columns,
         has_any_column_privilege(r.oid, x.rel, 'UPDATE') AS upd_columns
  FROM t CROSS JOIN LATERAL (VALUES (0, t.src), (1, t.dst)) AS x(side, rel)
  CROSS JOIN pg_roles r
  WHERE t.src IS NOT NULL AND t.dst IS NOT NULL AND NOT r.rolsuper
    AND r.rolname NOT LIKE 'pg\_%')
SELECT * FROM rights
WHERE rolname IN (SELECT rolname FROM rights WHERE sel OR del OR tru OR ins_columns OR upd_columns)
ORDER BY rolname, side
)SQL";

constexpr const char* kSavepoint = "pgphase_privileges";

}  // namespace

TableAccess access_entering(Phase p) noexcept {
  switch (p) {
    case Phase::kDualWrite:
    case Phase::kValidation:
      return {.mirror_to_target = true};
    case Phase::kReadSwitch:
      return {.mirror_to_target = true, .read_target = true};
    case Phase::kCleanup:
      return {.mirror_to_source = true, .read_target = true};
    case Phase::kPreparation:
    case Phase::kCompleted:
      break;
  }
  return {};
}

std::vector<PrivilegeGap> privilege_gaps(const std::vector<RoleRights>& roles, const Migration& m,
                                         TableAccess access) {
  std::vector<PrivilegeGap> out;
  for (const RoleRights& r : roles) {
    const Side source{r.source, display_name(m.source_table), quote_table(m.source_table)};
    const Side target{r.target, display_name(m.target_table), quote_table(m.target_table)};
    const size_t first = out.size();
    if (access.mirror_to_target) add_mirror_gaps(r.role, source, target, out);
    if (access.mirror_to_source) add_mirror_gaps(r.role, target, source, out);
    if (access.read_target) add_read_gap(r.role, source, target, first, out);
  }
  return out;
}

std::vector<RoleRights> load_role_rights(pg::Connection& c, const Migration& m) {
  const QualifiedName source = qualify(m.source_table);
  const QualifiedName target = qualify(m.target_table);
  const pg::Result r = c.exec(
      kRoleRightsSql, {source.schema, source.table, target.schema, target.table, m.database});
  std::vector<RoleRights> out;
  for (int row = 0; row + 1 < r.rows(); row += 2) {
    out.push_back(RoleRights{r.str(row, 0), rights_at(r, row), rights_at(r, row + 1)});
  }
  return out;
}

PrivilegePreflight run_privilege_preflight(pg::Connection& c, const Migration& m,
                                           TableAccess access) {
  PrivilegePreflight out;
  if (!access.any()) return out;
  c.exec(std::string("SAVEPOINT ") + kSavepoint);
  try {
    const std::vector<RoleRights> roles = load_role_rights(c, m);
    c.exec(std::string("RELEASE SAVEPOINT ") + kSavepoint);
    out.gaps = privilege_gaps(roles, m, access);
  } catch (const pg::PgError& e) {
    if (e.connection_lost()) throw;
    c.exec(std::string("ROLLBACK TO SAVEPOINT ") + kSavepoint);
    out.not_checked = e.what();
  }
  return out;
}

}  // namespace pgphase::migration
