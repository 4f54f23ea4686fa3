// Table shapes (snapshot.h's TableShape) read from the control database's catalog, so that the
// proxy can build dual-write SQL without catalog access of its own.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "migration/model.h"
#include "migration/pg_client.h"
#include "migration/snapshot.h"

namespace pgphase::migration {

// The TableShape of every migration whose phase is not preparation, by migration_id, resolved in
// the catalog of the database `c` is connected to (the control database), in the caller's
// transaction. Names are resolved as qualify() reads them ("users" is public.users); key_columns
// and column_map entries as column_name() reads them. One catalog query (the columns and usable
// unique indexes of every table involved), none when no migration needs a shape. What prevents dual
// write (a missing table, no key, a column_map naming an unknown column, tables in another database
// than the control database, ...) is the shape's `problem`, not an exception; throws pg::PgError
// only when a query fails.
[[nodiscard]] std::map<std::string, TableShape> load_shapes(
    pg::Connection& c, const std::vector<Migration>& migrations);

// The entries load_shapes() would return, each empty but for `problem` = `why` (for when the
// catalog could not be read).
[[nodiscard]] std::map<std::string, TableShape> unresolved_shapes(
    const std::vector<Migration>& migrations, const std::string& why);

}  // namespace pgphase::migration
