// The privileges preflight of a phase change (docs/control-plane.md, "Phases"). pgphase's mirror
// writes are part of the client's statement, so they run with the client's role: a role that can
// write the source but not the target would get 42501 on every write once dual write starts.
// The rules are pure (unit-tested without a database); one catalog query gathers the facts.
#pragma once

#include <string>
#include <vector>

#include "migration/model.h"

namespace pgphase::migration {

namespace pg {
class Connection;
}  // namespace pg

// What one role may do on one table. The plain flags are table-level privileges (what a mirror
// statement, which writes and reads every column, needs); insert_columns and update_columns also
// count column-level grants, with which the role can write the table itself.
struct TableRights {
  bool select = false;
  bool insert = false;
  bool update = false;
  bool remove = false;  // DELETE
  bool truncate = false;
  bool insert_columns = false;
  bool update_columns = false;
  bool operator==(const TableRights&) const = default;
};

struct RoleRights {
  std::string role;
  TableRights source;
  TableRights target;
};

// What entering a phase does with the migration's two tables.
struct TableAccess {
  bool mirror_to_target = false;  // writes of the source are mirrored to the target
  bool mirror_to_source = false;  // writes redirected to the target are mirrored to the source
  bool read_target = false;       // reads of the source go (partly) to the target
  [[nodiscard]] bool any() const noexcept {
    return mirror_to_target || mirror_to_source || read_target;
  }
};
// dual_write and validation mirror to the target; read_switch also reads it; cleanup mirrors to
// the source and reads the target; preparation and completed need nothing.
[[nodiscard]] TableAccess access_entering(Phase p) noexcept;

// One role's missing privileges on one table, with why it needs them.
struct PrivilegeGap {
  std::string role;
  std::string table;    // as messages name it: public.t_sys_users
  std::string missing;  // "INSERT, UPDATE, SELECT"
  // "role app_writer can INSERT public.users but lacks INSERT, UPDATE, SELECT on
  // public.t_sys_users (pgphase mirrors its writes there)"
  std::string reason;
  std::string grant;  // GRANT INSERT, UPDATE, SELECT ON "public"."t_sys_users" TO "app_writer"
};

// The gaps of every role in `roles` for `access`, in role order. Writers of a table (INSERT,
// UPDATE, DELETE or TRUNCATE on it) whose writes are mirrored need on the other table INSERT,
// UPDATE and SELECT when they insert or update (the mirror is INSERT ... ON CONFLICT DO UPDATE),
// DELETE and SELECT when they delete, TRUNCATE when they truncate; and SELECT on the table they
// write when they insert, update or delete (pgphase reads the stored rows back with RETURNING).
// With read_target, readers of the source (SELECT) need SELECT on the target.
[[nodiscard]] std::vector<PrivilegeGap> privilege_gaps(const std::vector<RoleRights>& roles,
                                                       const Migration& m, TableAccess access);

// Every role's rights on `m`'s tables, read in the catalog of the database `c` is connected to
// (the control database), in the caller's transaction: superusers (they bypass privileges) and
// the predefined pg_* roles are left out, and so are roles with no privilege on either table.
// Empty when either table is not found there (not a table, or `m.database` names another
// database): the table shapes report that. Throws pg::PgError when the query fails.
[[nodiscard]] std::vector<RoleRights> load_role_rights(pg::Connection& c, const Migration& m);

// The preflight as the operations run it: load_role_rights() under a savepoint, then
// privilege_gaps(). A query that fails (other than by losing the connection, which throws) rolls
// back to the savepoint and leaves `not_checked` saying why, so the phase change goes on.
struct PrivilegePreflight {
  std::vector<PrivilegeGap> gaps;
  std::string not_checked;
};
[[nodiscard]] PrivilegePreflight run_privilege_preflight(pg::Connection& c, const Migration& m,
                                                         TableAccess access);

}  // namespace pgphase::migration
