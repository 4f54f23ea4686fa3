// Shared helpers of the control_store tests (one executable): a cluster per process, a fresh
// database per test case, ControlPlane construction, and OpResult checks.
#pragma once

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "harness/harness.h"
#include "migration/config_files.h"
#include "migration/control_plane.h"

namespace mig = pgphase::migration;
using namespace pgphase::it;
using Kind = mig::OpError::Kind;

namespace store_test {

inline const std::string kConf = std::string(PGPHASE_SOURCE_DIR) + "/conf/";

// One cluster for the test cases that do not stop it; each test case uses its own database.
inline PgCluster& cluster() {
  static const std::unique_ptr<PgCluster> pg = PgCluster::start();
  return *pg;
}

inline std::string fresh_db(PgCluster& pg, const std::string& name) {
  pg.psql("CREATE DATABASE " + name);
  return pg.conninfo(name);
}

inline std::string sql(PgCluster& pg, const std::string& db, const std::string& query) {
  return trim(pg.psql(query, db));
}

inline mig::ControlConfig config(const std::string& dsn, double reload_seconds = 2.0) {
  mig::ControlConfig c;
  c.dsn = dsn;
  c.reload_interval_seconds = reload_seconds;
  return c;
}

inline std::unique_ptr<mig::ControlPlane> started(mig::ControlConfig c) {
  auto cp = std::make_unique<mig::ControlPlane>(std::move(c));
  cp->start();
  return cp;
}

inline mig::Migration manual_migration() {
  return mig::load_config_file(kConf + "migration_configs.json").migrations.at(0);
}
inline mig::SwitchConfig manual_switch() {
  return mig::load_config_file(kConf + "read_switch_configs.json").switches.at(0);
}

// By value: the results are usually temporaries.
template <class T>
T ok(const mig::OpResult<T>& r) {
  INFO((r.error ? r.error->message + " / " + r.error->detail : std::string("no error")));
  REQUIRE(r.ok());
  return *r.value;
}

template <class T>
mig::OpError err(const mig::OpResult<T>& r, Kind kind) {
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.error.has_value());
  INFO(r.error->message << " / " << r.error->detail);
  REQUIRE(r.error->kind == kind);
  return *r.error;
}

inline const mig::Migration* find(const mig::ControlPlane& cp, const std::string& id) {
  return cp.snapshot()->find_migration(id);
}

inline bool sees_phase(const mig::ControlPlane& cp, const std::string& id, mig::Phase p) {
  const mig::SnapshotPtr s = cp.snapshot();
  const mig::Migration* m = s->find_migration(id);
  return m != nullptr && m->phase == p;
}

}  // namespace store_test

using namespace store_test;
