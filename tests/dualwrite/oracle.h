// The oracle of the exactness tests: the same statements run through pgphase (database
// kControlDb, where a migration is in some phase) and directly on a twin database without
// pgphase; the client must receive what the twin's client receives (command tag, column names
// and types, rows; or SQLSTATE, message and error position), and the tables must agree.
#pragma once

#include <string>

#include "dw_env.h"

namespace pgphase::dw {

enum class Protocol { kSimple, kExtended };
inline constexpr Protocol kBoth[] = {Protocol::kSimple, Protocol::kExtended};

// What the client received: command tag, the columns (name:type oid), and rows; or the error's
// SQLSTATE, message and position.
[[nodiscard]] std::string received(const it::PgResult& r);

// `sql` in the simple protocol (PQexec) or the extended one (PQexecParams, no parameters).
it::PgResult run(const it::PgConn& c, Protocol p, const std::string& sql);

// The application's connection through pgphase and its twin straight to the oracle database.
struct Twin {
  it::PgConn real;
  it::PgConn oracle;

  // Runs `sql` on both; the client must receive the same (a failed CHECK otherwise). Returns what
  // the client received.
  std::string both(Protocol p, const std::string& sql) const;
  // Session settings, on both (must succeed).
  void set(const std::string& sql) const;
};

// The oracle database `name`: dropped, created, and `setup` run in it.
it::PgConn oracle_db(Env& e, const std::string& name, const std::string& setup);

// `setup` in kControlDb (directly) and in a new oracle database `name`.
Twin twin(Env& e, const std::string& name, const std::string& setup);

// A table's rows as text under fixed settings, sorted.
[[nodiscard]] std::string rows_of(const it::PgConn& c, const std::string& table,
                                  const std::string& columns);

// The source equals the oracle's table, and source EXCEPT target is empty both ways (CHECKs).
void check_tables(Env& e, const Twin& t, const std::string& source, const std::string& target,
                  const std::string& columns);

// Registers switch `config_id` for `table` of `migration_id` (in read_switch), activates it and
// sets its percentage.
void switch_reads(Env& e, const std::string& config_id, const std::string& table,
                  const std::string& migration_id, double percentage);

// A refusal by pgphase: 0A000 with "pgphase: migration" in the message (CHECKs).
void check_refused(const it::PgResult& r);

}  // namespace pgphase::dw
