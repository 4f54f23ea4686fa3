// The migration the intercept/ unit tests route: users -> t_sys_users (id, name; key id).
#pragma once

#include "migration/snapshot.h"

namespace pgphase::test {

inline migration::Snapshot users_snapshot(migration::Phase phase, uint64_t generation = 3) {
  migration::Snapshot s;
  s.generation = generation;
  migration::Migration m;
  m.migration_id = "users_mig";
  m.source_table = "users";
  m.target_table = "t_sys_users";
  m.phase = phase;
  s.migrations.push_back(m);
  migration::TableShape shape;
  shape.source_columns = {{"id"}, {"name"}};
  shape.target_columns = {{"id"}, {"name"}};
  shape.key_columns = {"id"};
  shape.target_has_unique_key = true;
  shape.source_has_unique_key = true;
  s.shapes["users_mig"] = shape;
  return s;
}

// `s` with the switch users_sw of users_mig's `users` active at `percentage`.
inline migration::Snapshot with_users_switch(migration::Snapshot s, double percentage = 50) {
  migration::SwitchConfig sw;
  sw.config_id = "users_sw";
  sw.table_name = "users";
  sw.migration_id = "users_mig";
  sw.status = migration::SwitchStatus::kActive;
  sw.switch_percentage = percentage;
  s.switches.push_back(sw);
  return s;
}

}  // namespace pgphase::test
