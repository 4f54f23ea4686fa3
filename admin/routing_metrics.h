// The prometheus families of the migration routing (dual writes, unsupported writes, statement
// analysis, read switch reads), built at scrape time from the workers' merged figures.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

namespace pgphase::stats {
struct RoutingTotals;
}

namespace pgphase::admin {

[[nodiscard]] std::vector<prometheus::MetricFamily> routing_families(
    const stats::RoutingTotals& totals);

}  // namespace pgphase::admin
