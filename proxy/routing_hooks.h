// What the proxy needs from the migration side, as plain functions (the proxy knows nothing
// else of migrations): the state in force, and where to report writes passed but flagged.
#pragma once

#include <functional>
#include <string>

#include "migration/snapshot.h"

namespace pgphase::proxy {

// Where the control plane publishes the state; null means no control plane (plain pass-through).
// Workers check its generation per statement and load a snapshot only when it changed.
using MigrationSnapshotSource = const migration::SnapshotCell*;

// An unsupported write passed under allow_and_flag: recorded in the migration log. Called on a
// worker thread; must not block.
using FlagSink = std::function<void(std::string migration_id, std::string reason, std::string sql)>;

}  // namespace pgphase::proxy
