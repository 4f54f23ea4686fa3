// The client's prepared statements and portals, keyed as the server keys them, so that a
// statement prepared under other routing (before a migration entered dual write, or after it
// left) is prepared again before it is next bound or described, and a portal's answers get the
// transforms of the statement it was bound from.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
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
  // ... and the server said so (its ParseComplete came): until then a later Bind prepares it
  // again (Close, Parse), since the Parse in flight may yet be failed or skipped.
  bool alt_confirmed = false;
  // A re-preparation of pgphase's (under new routing) is not confirmed by the server yet, or was
  // failed or skipped: every use prepares it again first (Rewriter::refresh_statement).
  bool unconfirmed = false;
  // The server is known to have it: the ParseComplete of the client's Parse that made it came.
  // A client's Parse of its name is then refused (42P05), unless a re-preparation of pgphase's
  // (unconfirmed) is in flight.
  bool on_server = false;
  uint64_t batch = 0;  // the client's Sync count when its Parse was sent (Rewriter::settled)
  // Which client Parse made this entry (StatementRegistry's count): an undo puts back what a
  // request replaced only while the entry is still the one that request made.
  uint64_t version = 0;
  std::string alt_name;  // the twin's name, "__pgphase_rt_<n>" ("": none yet)
};

struct Portal {
  router::ResultTransform transform;
  PlanPtr plan;
  bool count_binary = false;
  ReadChoice read;
};

// Names of prepared statements and portals as the server keys them: cut to NAMEDATALEN - 1
// bytes (two names that share their first 63 bytes are one statement for PostgreSQL). A view of
// `name`.
[[nodiscard]] std::string_view server_key(std::string_view name) noexcept;

class StatementRegistry {
 public:
  // Lookups by server key (server_key()); nullptr: not known.
  [[nodiscard]] Statement* find(std::string_view key);
  [[nodiscard]] Portal* find_portal(std::string_view key);

  // A client's Parse of `key` sent to the server: `st` is now its statement. Returns the
  // statement it replaced if `keep`: when the server may keep that one (it refuses a Parse of a
  // named statement it has, 42P05; it skips any Parse after an error until Sync). A failed Parse
  // of the unnamed statement leaves none, so with nothing in flight before it, there is nothing
  // to keep.
  std::shared_ptr<Statement> parse(std::string_view key, Statement st, bool keep);
  // The same, filled in place: returns the entry for `key`, new or the one replaced, emptied but
  // keeping its buffers (a client that parses the unnamed statement before every execution
  // allocates nothing for its text); `previous` as parse() returns it.
  Statement& parse_in_place(std::string_view key, bool keep, std::shared_ptr<Statement>& previous);
  // A client's Close of statement `key`: returns the statement it removed (nullptr: none).
  std::shared_ptr<Statement> close(const std::string& key);
  // A Parse or Close the server failed or skipped (after an error, until Sync): `previous` (what
  // parse() or close() returned) is put back, or a parsed statement that replaced none removed.
  // `made`: the version the request's own entry had (a Parse: the entry it made; a Close or
  // Query: 0, none). When a later request of the client changed the name since (pipelined past
  // a Sync), that one's outcome decides and nothing is put back.
  void undo(bool was_parse, const std::string& key, std::shared_ptr<Statement> previous,
            uint64_t made);
  // A client's Parse of `key` that the server took after all (Expect::install): `st` is now its
  // statement, as a new entry.
  void install(std::string_view key, Statement st);
  // No statement is known to be on the server any more (a DEALLOCATE or DISCARD may have run).
  void forget_on_server() noexcept {
    for (auto& [name, st] : statements_) st.on_server = false;
  }
  // The version the entry of `key` has now (0: none).
  [[nodiscard]] uint64_t version(std::string_view key);

  void bind(std::string_view key, Portal p);
  void erase_portal(std::string_view key);
  // The transaction ended: every unnamed and named portal is gone.
  void clear_portals() noexcept {
    unnamed_portal_.reset();
    if (!portals_.empty()) portals_.clear();
  }

  // The name of a statement's target-reading twin: a counter, never derived from the client's
  // name (a prefix would push long names past the server's 63 bytes, where they collide).
  // Named once, on first use (the returned reference lives as long as `st`).
  [[nodiscard]] const std::string& alt_name(Statement& st);

  [[nodiscard]] size_t statements() const noexcept { return statements_.size(); }
  [[nodiscard]] size_t portals() const noexcept {
    return portals_.size() + (unnamed_portal_ ? 1 : 0);
  }

 private:
  // Looked up by string_view without building a string.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  template <class V>
  using ByName = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;

  ByName<Statement> statements_;
  // The unnamed portal (the one most clients use, bound and dropped every transaction) kept out
  // of the map, whose nodes would be allocated each time.
  std::optional<Portal> unnamed_portal_;
  ByName<Portal> portals_;
  uint64_t alt_ids_ = 0;   // twins named so far
  uint64_t versions_ = 0;  // entries made so far
};

}  // namespace pgphase::intercept
