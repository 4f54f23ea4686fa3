// Keys and constraints around phase changes (docs/control-plane.md, "Keys, sequences and foreign
// keys"): the facts the guards of phase_machine.h look at (which unique indexes make the key
// unique, which foreign keys reference the source) gathered by catalog queries, and the actions
// a phase change carries out in its own transaction (advancing sequences when the table written
// with default keys changes, moving foreign keys from the source to the target). Like the
// privileges preflight, every query runs in the caller's transaction in the catalog of the control
// database, and sees nothing (empty facts) when the tables are not there.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "migration/model.h"

namespace pgphase::migration {

namespace pg {
class Connection;
}  // namespace pg

// ---- keys -------------------------------------------------------------------------------------

// A unique index of one of the migration's tables whose key columns are all key columns of the
// migration (valid, not partial, no expressions; INCLUDE columns left out).
struct UniqueIndex {
  std::string name;
  std::vector<std::string> columns;
  bool immediate = true;  // false: DEFERRABLE (pg_index.indimmediate)
  bool operator==(const UniqueIndex&) const = default;
};

// The migration's key as one table has it.
struct TableKey {
  bool visible = false;          // the table is in the control database's catalog
  std::string table;             // public.users, as messages name it
  std::string sql;               // "public"."users"
  std::vector<std::string> key;  // the key columns as this table names them (column_map)
  std::vector<UniqueIndex> unique_indexes;
};

struct KeyFacts {
  TableKey source;
  TableKey target;
};

// The key (the migration's key_columns, else the source's primary key) and the unique indexes
// over it of both tables. nullopt when there is nothing to check: the key is not known (no
// primary key and no key_columns), a key column is dropped by column_map or its name is invalid
// (the table shape reports those), or the tables are in another database. Throws pg::PgError
// when the query fails.
[[nodiscard]] std::optional<KeyFacts> load_key_facts(pg::Connection& c, const Migration& m);

// Whether `t`'s key stays unique at the end of every statement: a non-deferrable unique index on
// some of its key columns.
[[nodiscard]] bool key_unique_per_statement(const TableKey& t);
// Whether INSERT ... ON CONFLICT (key) works on `t`: PostgreSQL infers as arbiters every unique
// index on exactly the key columns and refuses the statement (55000) when one of them is
// deferrable, so it needs a non-deferrable one and no deferrable one.
[[nodiscard]] bool key_has_arbiter(const TableKey& t);
[[nodiscard]] bool key_has_immediate_index(const TableKey& t);  // on exactly the key
[[nodiscard]] std::vector<std::string> deferrable_arbiters(const TableKey& t);
// The deferrable unique indexes of `t` over its key ("users_pkey, users_id_key").
[[nodiscard]] std::string deferrable_key_indexes(const TableKey& t);
// CREATE UNIQUE INDEX CONCURRENTLY ON "public"."users" ("id")
[[nodiscard]] std::string create_key_index_sql(const TableKey& t);
// ALTER TABLE "public"."users" DROP CONSTRAINT "users_pkey"
[[nodiscard]] std::string drop_constraint_sql(const TableKey& t, const std::string& name);

// ---- sequences --------------------------------------------------------------------------------

// How far ahead of the keys the other table's sequence may hand out a sequence is put, in steps of
// its increment: room for the inserts another pgphase that has not yet seen the phase change
// (it reloads within reload_interval_seconds, 2 s, usually at once through NOTIFY) still makes with
// the other table's sequence: 10000 is 5000 inserts per second for 2 s. Beyond that a key collides:
// a 23505 on the insert, never lost data, since both tables have the key unique.
inline constexpr int64_t kSequenceMargin = 10000;

// One sequence behind a column default (serial, identity, nextval(...)) of the table moved to.
struct SequenceMove {
  std::string table;     // public.t_sys_users
  std::string column;    // id
  std::string sequence;  // public.t_sys_users_id_seq
  // The sequence of the paired column of the other table ("" when it has none).
  std::string paired_sequence;
  std::optional<int64_t> last_value;  // what it had handed out (nullopt: nothing yet)
  std::optional<int64_t> max_key;     // max(column)
  std::optional<int64_t> paired_last_value;
  int64_t set_to = 0;  // setval(sequence, set_to): the next value is set_to + increment
  bool moved = false;  // false: already far enough ahead (or nothing to be ahead of)
  std::string note;    // why it was not moved, when that is not the reason
};

struct SequenceAdvance {
  std::vector<SequenceMove> moves;
  std::string error;  // the statement that failed and why; empty on success
};

// Advances every sequence behind a column default of the migration's target (`to_target`) or
// source that is not already ahead: to greatest(max(column), the paired column's sequence's last
// value) + kSequenceMargin * increment. Under a savepoint: a failing statement (no privilege on a
// sequence, a maximum reached) rolls back to it and is returned in `error`; a lost connection
// throws pg::PgError.
[[nodiscard]] SequenceAdvance advance_sequences(pg::Connection& c, const Migration& m,
                                                bool to_target);

// ---- foreign keys -----------------------------------------------------------------------------

// A foreign key of another table ("the child") that references the source.
struct ForeignKeyRef {
  std::string name;       // the constraint's name
  std::string child;      // public.orders
  std::string child_sql;  // "public"."orders"
  bool child_partitioned = false;
  int64_t oid = 0;  // of the constraint, to name the new one while both exist
  std::vector<std::string> child_columns;
  std::vector<std::string> source_columns;  // referenced
  std::vector<std::string> target_columns;  // the same mapped by column_map ("" = dropped)
  char on_update = 'a';                     // pg_constraint.confupdtype: a r c n d
  char on_delete = 'a';
  char match = 's';                             // f (FULL), p (PARTIAL), s (SIMPLE)
  std::vector<std::string> delete_set_columns;  // ON DELETE SET NULL (a, b), PostgreSQL 15
  bool deferrable = false;
  bool deferred = false;
  bool validated = true;
};

// The foreign keys of other tables (the source's own left out) referencing the source, by child
// and name. Empty when the source is not in the control database's catalog. Throws pg::PgError.
[[nodiscard]] std::vector<ForeignKeyRef> load_referencing_foreign_keys(pg::Connection& c,
                                                                       const Migration& m);

// "orders_user_id_fkey on public.orders (user_id) REFERENCES public.users (id) ON DELETE CASCADE"
[[nodiscard]] std::string describe(const ForeignKeyRef& fk, const std::string& source_table);
// The columns of the target `fk` cannot reference (dropped by column_map), "" when none.
[[nodiscard]] std::string unmapped_columns(const ForeignKeyRef& fk);
// The statements that move `fk` to `target_sql` with the same columns (mapped), actions, match
// type and deferrability: ADD CONSTRAINT under a temporary name NOT VALID, DROP the old one,
// VALIDATE the new (unless the old one was not validated), RENAME it to the old name. A
// partitioned child cannot take a NOT VALID foreign key: it is added validated.
[[nodiscard]] std::vector<std::string> foreign_key_move_sql(const ForeignKeyRef& fk,
                                                            const std::string& target_sql);

struct ForeignKeyMoves {
  // "orders_user_id_fkey on public.orders (user_id): REFERENCES public.users (id) ->
  // public.t_sys_users (id) ON UPDATE NO ACTION ON DELETE CASCADE NOT DEFERRABLE"
  std::vector<std::string> moved;
  std::string error;  // the statement that failed and why; empty on success
};
// Runs foreign_key_move_sql() for each of `fks`, under a savepoint with lock_timeout 10 s: a
// failure (a child row the target lacks, a lock not granted) rolls every move back and is
// returned in `error`; a lost connection throws pg::PgError.
[[nodiscard]] ForeignKeyMoves move_foreign_keys(pg::Connection& c, const Migration& m,
                                                const std::vector<ForeignKeyRef>& fks);

}  // namespace pgphase::migration
