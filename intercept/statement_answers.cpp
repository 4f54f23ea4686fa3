// Rewriter, its answers' side of the statement registry: what a request failed or skipped by the
// server undoes, what a ParseComplete confirms, and the transforms chosen when an answer comes
// from the statement the server has then (the registry rolled back over the changes in flight).
#include "intercept/rewriter.h"

namespace pgphase::intercept {

using router::ResultTransform;

void Rewriter::undo(Expect& e, size_t later, bool failed) {
  if (e.twin) {  // the twin's Parse failed or was skipped: the next target read prepares it
    if (Statement* st = made_for(e, later); st != nullptr) st->alt_prepared = false;
    return;
  }
  if (e.refresh) {
    // The re-preparation failed or was skipped: the server has the statement as it was (or, if
    // only its Close went through, none). A later one of the same statement still in flight
    // decides, as for a client's changes; otherwise the entry gets back the plan the server has,
    // and the next use prepares it again.
    if (Expect* next = queue_.next_refresh(later, e.statement_key, e.made); next != nullptr) {
      next->undo = std::move(e.undo);
      return;
    }
    if (Statement* st = made_for(e, later); st != nullptr) {
      if (e.undo) {
        st->plan = e.undo->plan;
        st->generation = e.undo->generation;
      }
      st->unconfirmed = true;
      st->alt_prepared = false;
    }
    return;
  }
  if (!e.changes) return;
  // PostgreSQL drops the unnamed statement before it parses a new one: a Parse of it that failed
  // (not one skipped) leaves none.
  if (failed && e.kind == Request::kParse && e.statement_key.empty()) e.undo.reset();
  // A later change of the same name still in flight (pipelined past the Sync) replaced what this
  // request made: the name was, before that one, what it was before this one. That one's undo
  // gets this one's, and its outcome decides.
  if (Expect* next = queue_.next_change(later, e.statement_key); next != nullptr) {
    next->undo = std::move(e.undo);
    return;
  }
  registry_.undo(e.kind == Request::kParse, e.statement_key, std::move(e.undo), e.made);
}

Statement* Rewriter::made_for(const Expect& e, size_t later) {
  if (Statement* st = registry_.find(e.statement_key); st != nullptr && st->version == e.made)
    return st;
  // Replaced since by a client's change of the name still in flight: what an undo of that change
  // puts back.
  Expect* next = queue_.next_change(later, e.statement_key);
  return next != nullptr && next->undo && next->undo->version == e.made ? next->undo.get()
                                                                        : nullptr;
}

void Rewriter::on_parse_complete(Expect& e) {
  if (!e.install) {
    Statement* st = made_for(e, 1);
    if (st == nullptr) return;
    if (e.twin) {  // a Parse of pgphase's went through: later uses need not prepare again
      st->alt_confirmed = st->alt_prepared;
    } else if (e.refresh) {
      st->unconfirmed = false;
    } else {
      st->on_server = true;
    }
    return;
  }
  // The server took a Parse the registry expected it to refuse: the statement the name had was
  // not on the server after all (its Parse failed or was skipped). What the name is now is this
  // Parse's statement, unless a later change of it is in flight: then that one replaced this.
  if (Expect* next = queue_.next_change(1, e.statement_key); next != nullptr) {
    next->undo = std::move(e.install);
  } else {
    registry_.install(e.statement_key, std::move(*e.install));
  }
}

PlanPtr Rewriter::server_plan(std::string_view key) {
  // The name as the requests before the oldest in flight left it: the registry's entry rolled
  // back over the changes still in flight behind it. A change of the name by the client: its
  // undo holds what the name was before it (and a change before that was refused or skipped
  // handed it its own).
  Expect* next = queue_.next_change(1, key);
  const Statement* st = next != nullptr ? next->undo.get() : registry_.find(key);
  if (st == nullptr) return nullptr;
  // A re-preparation of that statement under new routing: the server has the plan before it.
  if (const Expect* r = queue_.next_refresh(1, key, st->version); r != nullptr && r->undo)
    return r->undo->plan;
  return st->plan;
}

void Rewriter::bind_answered(Expect& e) {
  e.resolve = false;
  const PlanPtr plan = server_plan(e.statement_key);
  const bool rewritten = plan && plan->rewritten && !plan->statements.empty();
  const ResultTransform t = rewritten ? plan->statements.front() : ResultTransform{};
  // The requests on this portal sent behind the Bind, up to its next Bind or Close.
  for (size_t i = 1; i < queue_.size(); ++i) {
    Expect& x = queue_.at(i);
    if (!x.portal || *x.portal != *e.portal || x.injected) continue;
    if (x.kind == Request::kBind || x.kind == Request::kClose) return;  // the registry's is later
    if (x.kind == Request::kExecute || x.kind == Request::kDescribe) {
      x.transform = t;
      x.plan = rewritten ? plan : nullptr;
    }
  }
  if (Portal* p = registry_.find_portal(*e.portal); p != nullptr) {
    p->transform = t;
    if (rewritten) p->plan = plan;
  } else if (rewritten) {
    Portal bound;
    bound.transform = t;
    bound.plan = plan;
    registry_.bind(*e.portal, std::move(bound));
  }
}

void Rewriter::describe_as(Expect& e, const PlanPtr& plan) {
  if (plan && plan->rewritten && !plan->statements.empty()) {
    e.plan = plan;
    e.transform = plan->statements.front();
  } else {
    e.plan.reset();
    e.transform = {};
  }
}

void Rewriter::describe_answered(Expect& e) {
  e.resolve = false;
  describe_as(e, server_plan(e.statement_key));  // the statement the server describes
}

}  // namespace pgphase::intercept
