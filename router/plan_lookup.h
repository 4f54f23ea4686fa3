// The plan of one text, through the worker's plan cache: by the text itself (texts without
// literals, prepared statements' texts), else by its shape (statement_shape.h), rendering the
// shape's cached template with the text's own literals, else planned and cached.
//
// A shape's template is cached only when it is certain to be right for every text of the shape:
// libpg_query parsed the text and read exactly the literals the shape scanner found (same
// offsets, same kinds), and each literal is copied whole into the rewritten texts. The planner
// never looks at a literal's value (literals are opaque to it: it reads names, clauses and
// columns), so texts that differ only in their literals get the same decisions; the template
// puts each literal back byte for byte.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "router/plan_cache.h"
#include "router/planner.h"

namespace pgphase::router {

// A worker's reusable buffers for lookups (no allocation once they have grown).
struct LookupScratch {
  std::vector<Literal> literals;
  std::string key;
};

struct Lookup {
  std::shared_ptr<const QueryPlan> plan;
  bool cached = false;  // found by text or rendered from its shape
};

// Plans for the default context only are cached (router::PlanContext); any other is planned
// afresh.
[[nodiscard]] Lookup find_or_plan(PlanCache& cache, const RoutingTable& table, std::string_view sql,
                                  const PlanContext& context, LookupScratch& scratch);

// The plan of `sql` from a template of its shape (`literals` are the text's own, as many and of
// the same kinds as the template's).
[[nodiscard]] std::shared_ptr<const QueryPlan> render_shape(const ShapePlan& shape,
                                                            std::string_view sql,
                                                            const std::vector<Literal>& literals);

}  // namespace pgphase::router
