// The router's decision for one query text: parse it (only when the pre-filter says it may name
// a migrating table), find every write to a migrating source table, and rewrite each one so that
// the same statement also mirrors the rows PostgreSQL stored (see dual_write_sql.h), or refuse
// it when it cannot be mirrored correctly (unsupported_write_policy).
#pragma once

#include <string_view>

#include "router/query_plan.h"
#include "router/routing_table.h"

namespace pgphase::router {

// `extended` is true for the text of a Parse message (one statement; a refusal then must not
// need parameters, see QueryPlan).
[[nodiscard]] QueryPlan plan_query(const RoutingTable& table, std::string_view sql);

}  // namespace pgphase::router
