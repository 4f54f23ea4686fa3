// The control database schema (t_sys_* tables, docs/control-plane.md), created idempotently.
#pragma once

#include <stdexcept>
#include <string>

#include "migration/pg_client.h"

namespace pgphase::migration {

// 1: the manual's tables. 2: t_sys_migrations.unsupported_write_policy. 3: eventual dual writes.
// 4: backfills. 5: alerting. 6: t_sys_mirror_delete.
inline constexpr int kSchemaVersion = 8;

// The control database holds tables pgphase cannot use (a newer schema version, or t_sys_* tables
// made by another tool without the columns pgphase needs).
struct SchemaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Creates the tables and indexes that do not exist yet (CREATE ... IF NOT EXISTS) and records
// schema version 1, then applies the later versions' changes (ALTER ... IF NOT EXISTS) and records
// each, in one transaction under pg_advisory_xact_lock, so several pgphase starting at once do not
// race; a database at version 1 is upgraded in place. Then checks that every table has the columns
// pgphase uses. Returns the schema version found. Throws pg::PgError (database) or SchemaError.
int ensure_schema(pg::Connection& c);

// The advisory lock key every control-plane mutation takes (pg_advisory_xact_lock), so that
// changes from several pgphase processes are serialised; schema creation uses kSchemaLockKey.
inline constexpr int64_t kSchemaLockKey = 0x70677068'61736501;    // "pgphase" 01
inline constexpr int64_t kMutationLockKey = 0x70677068'61736502;  // "pgphase" 02

}  // namespace pgphase::migration
