#include "migration/other_database_shapes.h"

#include <chrono>
#include <exception>

#include "common/log.h"
#include "migration/schema.h"
#include "migration/table_shape.h"

namespace pgphase::migration {

namespace {
constexpr auto kConnectTimeout = std::chrono::milliseconds(5000);
}  // namespace

void OtherDatabaseShapes::load(pg::Connection& control, const std::string& dsn, int wake_fd,
                               const std::vector<Migration>& migrations, const Snapshot& current,
                               std::map<std::string, TableShape>& shapes) {
  const std::string here = PQdb(control.raw()) != nullptr ? PQdb(control.raw()) : "";
  std::map<std::string, std::vector<Migration>> by_database;
  for (const Migration& m : migrations) {
    if (!m.database.empty() && m.database != here && shapes.count(m.migration_id) != 0)
      by_database[m.database].push_back(m);
  }
  for (auto it = conns_.begin(); it != conns_.end();) {
    it = by_database.count(it->first) == 0 ? conns_.erase(it) : std::next(it);
  }
  for (const auto& [database, ms] : by_database) {
    try {
      pg::Connection& dc = conns_[database];
      if (!dc.alive()) {
        dc = pg::Connection::open(dsn, kConnectTimeout, wake_fd, database);
        ensure_schema(dc);
        log::info("control plane: reading the shapes of database ", database, " on ",
                  dc.describe());
      }
      pg::Transaction tx(dc, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      for (auto& [id, shape] : load_shapes(dc, ms)) shapes[id] = std::move(shape);
      tx.commit();
      errors_.erase(database);
    } catch (const std::exception& e) {
      conns_.erase(database);
      const std::string why = std::string("cannot read database ") + database + ": " + e.what();
      if (errors_[database] != why) log::warn("control plane: ", why);
      errors_[database] = why;
      for (const Migration& m : ms) {
        const TableShape* published = current.shape_for(m.migration_id);
        if (published != nullptr && published->problem.empty()) {
          shapes[m.migration_id] = *published;
        } else {
          shapes[m.migration_id] = TableShape{};
          shapes[m.migration_id].problem = why;
        }
      }
    }
  }
}

}  // namespace pgphase::migration
