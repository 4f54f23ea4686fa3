// Building blocks of the dual-write tests: one PostgreSQL cluster and one pgphase with its
// control plane, the application's tables in the control database (where pgphase reads their
// shapes), and helpers comparing source and target.
#pragma once

#include <string>

#include "ctl_env.h"

namespace pgphase::dw {

using namespace pgphase::ctl;

// The source table of the main migration: serial key, defaults that differ on every evaluation
// (random(), clock_timestamp(), gen_random_uuid()) and a BEFORE trigger that sets a column.
inline constexpr const char* kSchema = R"SQL(
CREATE TABLE users (
  id serial PRIMARY KEY,
  name text NOT NULL DEFAULT 'anon',
  email text UNIQUE,
  score double precision DEFAULT random(),
  created_at timestamptz DEFAULT clock_timestamp(),
  token uuid DEFAULT gen_random_uuid(),
  touched_by text,
  amount numeric(12,3) DEFAULT 0
);
CREATE FUNCTION users_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.touched_by := 'trigger ' || clock_timestamp()::text; RETURN NEW; END $$;
CREATE TRIGGER users_touch BEFORE INSERT OR UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION users_touch();
CREATE TABLE t_sys_users (
  id integer PRIMARY KEY,
  name text NOT NULL,
  email text,
  score double precision,
  created_at timestamptz,
  token uuid,
  touched_by text,
  amount numeric(12,3),
  migrated_at timestamptz DEFAULT now()
);
CREATE TABLE orders (id serial PRIMARY KEY, user_id int, total int);
CREATE TABLE t_sys_orders (id int PRIMARY KEY, user_id int, total int);
)SQL";

// Columns compared between users and t_sys_users.
inline constexpr const char* kColumns =
    "id, name, email, score, created_at, token, touched_by, amount";

struct Env {
  Stack stack;
  it::PgConn direct;                         // straight to PostgreSQL, database kControlDb
  [[nodiscard]] it::PgConn proxied() const;  // through pgphase, database kControlDb
  [[nodiscard]] std::string proxied_conninfo(const std::string& extra = "") const;
};

// The shared environment: cluster, pgphase, kSchema, and migration "users_mig" (users ->
// t_sys_users) in dual_write.
Env& env();

// Rows of `a` not in `b` plus rows of `b` not in `a`, over `columns` (0: equal).
[[nodiscard]] long differences(const it::PgConn& c, const std::string& a, const std::string& b,
                               const std::string& columns = kColumns);
// Empties both tables directly (not through pgphase).
void reset_tables(const it::PgConn& c);

}  // namespace pgphase::dw
