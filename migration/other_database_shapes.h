// The shapes of migrations whose tables are in another database of the same server than the
// control database: read from that database's catalog over a connection kept per database, with
// pgphase's schema ensured there once (the rewritten writes call its functions in the session's
// own database). Used by the control plane's reload, one caller at a time.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "migration/model.h"
#include "migration/pg_client.h"
#include "migration/snapshot.h"

namespace pgphase::migration {

class OtherDatabaseShapes {
 public:
  // Fills `shapes` for the migrations of `migrations` whose `database` is not the one `control`
  // is connected to (`dsn` with that dbname; `wake_fd` aborts a connection attempt). A database
  // that cannot be read keeps the published shape (`current`) of its migrations, or says why.
  void load(pg::Connection& control, const std::string& dsn, int wake_fd,
            const std::vector<Migration>& migrations, const Snapshot& current,
            std::map<std::string, TableShape>& shapes);

 private:
  std::map<std::string, pg::Connection> conns_;
  std::map<std::string, std::string> errors_;  // the last failure per database, logged once
};

}  // namespace pgphase::migration
