// Metric families registered from more than one place (prometheus-cpp merges a family added
// twice under the same name): their name and help, defined once.
#pragma once

namespace pgphase::metrics {

// Counted by the proxy's workers; read by the alerting signals (dual_write_success_rate).
inline constexpr const char* kDualWriteStatements = "pgphase_dual_write_statements_total";
inline constexpr const char* kDualWriteStatementsHelp =
    "Writes to a migrating table mirrored to its other table, by migration, operation and result "
    "(ok: both sides written)";

}  // namespace pgphase::metrics
