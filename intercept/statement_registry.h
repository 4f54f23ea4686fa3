// The client's prepared statements and portals, keyed as the server keys them, so that a
// statement prepared under other routing (before a migration entered dual write, or after it
// left) is prepared again before it is next bound or described, and a portal's answers get the
// transforms of the statement it was bound from.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "intercept/read_choice.h"
#include "router/query_plan.h"

namespace pgphase::intercept {

using PlanPtr = std::shared_ptr<const router::QueryPlan>;

struct Statement {
  std::string text;
  std::string param_types;  // Parse's raw tail
  PlanPtr plan;             // nullptr: sent unchanged
  uint64_t generation = 0;
  bool alt_prepared = false;  // its target-reading twin is prepared (plan->sql_target)
  uint64_t alt_id = 0;        // the twin's name: "__pgphase_rt_<alt_id>" (0: none yet)
};

struct Portal {
  router::ResultTransform transform;
  PlanPtr plan;
  bool count_binary = false;
  ReadChoice read;
};

// Names of prepared statements and portals as the server keys them: cut to NAMEDATALEN - 1
// bytes (two names that share their first 63 bytes are one statement for PostgreSQL).
[[nodiscard]] std::string server_key(std::string_view name);

class StatementRegistry {
 public:
  // Lookups by server key (server_key()); nullptr: not known.
  [[nodiscard]] Statement* find(const std::string& key);
  [[nodiscard]] Portal* find_portal(const std::string& key);

  // A client's Parse of `key` (named: not the unnamed statement) sent to the server: `st` is now
  // its statement. Returns the statement it replaced when the server may refuse the Parse and
  // keep that one (a named statement answers 42P05; the unnamed one is replaced always).
  std::shared_ptr<Statement> parse(const std::string& key, Statement st, bool named);
  // A client's Close of statement `key`: returns the statement it removed (nullptr: none).
  std::shared_ptr<Statement> close(const std::string& key);
  // A Parse or Close the server failed or skipped (after an error, until Sync): `previous` (what
  // parse() or close() returned) is put back, or a parsed statement that replaced none removed.
  void undo(bool was_parse, const std::string& key, std::shared_ptr<Statement> previous);

  void bind(const std::string& key, Portal p) { portals_[key] = std::move(p); }
  void erase_portal(const std::string& key) { portals_.erase(key); }
  // The transaction ended: every unnamed and named portal is gone.
  void clear_portals() noexcept { portals_.clear(); }

  // The name of a statement's target-reading twin: a counter, never derived from the client's
  // name (a prefix would push long names past the server's 63 bytes, where they collide).
  [[nodiscard]] std::string alt_name(Statement& st);

  [[nodiscard]] size_t statements() const noexcept { return statements_.size(); }
  [[nodiscard]] size_t portals() const noexcept { return portals_.size(); }

 private:
  std::unordered_map<std::string, Statement> statements_;
  std::unordered_map<std::string, Portal> portals_;
  uint64_t alt_ids_ = 0;  // twins named so far
};

}  // namespace pgphase::intercept
