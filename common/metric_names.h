// Metric families referred to by name elsewhere (the docs, the alerting signals): their name and
// help, defined once.
#pragma once

namespace pgphase::metrics {

// Counted by the proxy's workers (stats/routing_stats.h), rendered by admin/routing_metrics.cpp;
// the alerting signals read the same figures (dual_write_success_rate).
inline constexpr const char* kDualWriteStatements = "pgphase_dual_write_statements_total";
inline constexpr const char* kDualWriteStatementsHelp =
    "Writes to a migrating table mirrored to its other table, by migration, operation and result "
    "(ok: both sides written)";

}  // namespace pgphase::metrics
