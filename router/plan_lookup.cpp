#include "router/plan_lookup.h"

#include <pg_query/pg_query.pb-c.h>

namespace pgphase::router {
namespace {

// Whether libpg_query's constants are exactly the shape scanner's literals.
bool same_literals(const std::vector<Token>& tokens, const std::vector<Literal>& literals) {
  size_t k = 0;
  for (const Token& t : tokens) {
    Literal::Kind kind{};
    switch (t.kind) {
      case PG_QUERY__TOKEN__SCONST:
        kind = Literal::Kind::kString;  // or kEscape / kDollar: compared below
        break;
      case PG_QUERY__TOKEN__ICONST:
        kind = Literal::Kind::kInteger;
        break;
      case PG_QUERY__TOKEN__FCONST:
        kind = Literal::Kind::kNumeric;
        break;
      case PG_QUERY__TOKEN__USCONST:
      case PG_QUERY__TOKEN__BCONST:
      case PG_QUERY__TOKEN__XCONST:
        return false;
      default:
        continue;
    }
    if (k >= literals.size()) return false;
    const Literal& l = literals[k++];
    const bool string = l.kind == Literal::Kind::kString || l.kind == Literal::Kind::kEscape ||
                        l.kind == Literal::Kind::kDollar;
    const bool kinds = kind == Literal::Kind::kString ? string : kind == l.kind;
    if (!kinds || static_cast<uint32_t>(t.start) != l.start ||
        static_cast<uint32_t>(t.end) != l.end)
      return false;
  }
  return k == literals.size();
}

// The plan of `sql`, and the shape template to cache for it (null: nothing to cache).
std::shared_ptr<const ShapePlan> plan_shape(const RoutingTable& table, std::string_view sql,
                                            const std::vector<Literal>& literals,
                                            std::shared_ptr<const QueryPlan>& plan) {
  PlanTexts texts;
  plan = std::make_shared<const QueryPlan>(plan_query(table, sql, {}, &texts));
  if (!texts.parsed) return nullptr;  // a literal may be what libpg_query rejected
  if (!texts.scanned) texts.tokens = scan_tokens(sql);
  if (!same_literals(texts.tokens, literals)) return nullptr;
  if (!texts.sql.keeps_literals_whole(literals) || !texts.sql_target.keeps_literals_whole(literals))
    return nullptr;
  auto shape = std::make_shared<ShapePlan>();
  shape->plan = plan;
  shape->literals = literals;
  shape->sql = std::move(texts.sql);
  shape->sql_target = std::move(texts.sql_target);
  return shape;
}

}  // namespace

std::shared_ptr<const QueryPlan> render_shape(const ShapePlan& shape, std::string_view sql,
                                              const std::vector<Literal>& literals) {
  auto plan = std::make_shared<QueryPlan>(*shape.plan);
  const OffsetShift shift(shape.literals, literals);
  if (plan->rewritten) shape.sql.render(sql, shift, plan->sql, plan->segments);
  if (plan->routes_reads()) {
    shape.sql_target.render(sql, shift, plan->sql_target, plan->segments_target);
  }
  return plan;
}

Lookup find_or_plan(PlanCache& cache, const RoutingTable& table, std::string_view sql,
                    const PlanContext& context, LookupScratch& scratch) {
  if (!context.is_default()) {
    return {std::make_shared<const QueryPlan>(plan_query(table, sql, context)), false};
  }
  const uint64_t generation = table.generation();
  if (const CachedPlan* c = cache.find(generation, sql); c != nullptr) return {c->plan, true};
  const bool shaped = scan_literals(sql, scratch.literals) && !scratch.literals.empty();
  if (!shaped) {
    // No literal (a miss of the text itself), or a text the scanner does not read exactly.
    auto plan = std::make_shared<const QueryPlan>(plan_query(table, sql));
    cache.insert(generation, sql, {plan, nullptr});
    return {std::move(plan), false};
  }
  shape_key(sql, scratch.literals, scratch.key);
  if (const CachedPlan* c = cache.find(generation, scratch.key); c != nullptr) {
    if (c->shape == nullptr) return {c->plan, true};
    // Not cached by its text: texts with inlined literals are mostly new, and caching each one
    // filled the cache with entries used once (measured: the cache's hash lookups and evictions
    // were the largest user-space cost of a read switch in -M simple).
    return {render_shape(*c->shape, sql, scratch.literals), true};
  }
  std::shared_ptr<const QueryPlan> plan;
  std::shared_ptr<const ShapePlan> shape = plan_shape(table, sql, scratch.literals, plan);
  if (shape == nullptr) {
    cache.insert(generation, sql, {plan, nullptr});  // by its text only
  } else {
    // A plan that sends the client's own text needs no template: it is every text's plan.
    const bool own_text = !plan->rewritten && !plan->routes_reads();
    cache.insert(generation, scratch.key, {plan, own_text ? nullptr : std::move(shape)});
  }
  return {std::move(plan), false};
}

}  // namespace pgphase::router
