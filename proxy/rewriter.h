// The message-level half of a session whose statements pgphase may rewrite (sessions of a
// pgphase with a control plane). Pure: no I/O, no Asio; the session feeds it whole or streamed
// messages of both directions and writes what it appends.
//
// Client -> server: Query and Parse texts go through the router (router/planner.h); rewritten
// ones are sent instead. Prepared statements are remembered by name with their text, so that a
// statement prepared before a migration entered dual write (or after it left) is prepared again
// with the current plan before it is next bound or described.
//
// Server -> client: every request that the server answers is queued in order (Query, Parse,
// Bind, Describe, Execute, Close, Sync, FunctionCall, and pgphase's own injected requests); each
// answer is matched to its request, so that the answers to rewritten statements are turned back
// into what PostgreSQL would have answered to the client's own statement (command tags, RETURNING
// columns, NoData, error positions) and the answers to injected requests are swallowed.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "migration/shadow.h"
#include "protocol/framing.h"
#include "protocol/message_splitter.h"
#include "proxy/lex_settings.h"
#include "router/plan_cache.h"
#include "router/planner.h"
#include "router/query_plan.h"
#include "router/routing_table.h"

namespace pgphase::proxy {

// What the rewriter reports (metrics, logs, the migration log). Called on the session's thread.
class RewriteObserver {
 public:
  virtual ~RewriteObserver() = default;
  // A rewritten write completed (ok) or failed; `rows` is the client-visible row count.
  virtual void mirrored(std::string_view migration_id, router::TagKind op, bool ok,
                        int64_t rows) = 0;
  // A write pgphase cannot mirror was refused (reject) or passed and flagged (allow_and_flag).
  virtual void refused(std::string_view migration_id) = 0;
  virtual void flagged(std::string_view migration_id, std::string_view reason,
                       std::string_view sql) = 0;
  // The analysis of one text (parse-cache hit or miss).
  virtual void analysed(bool cache_hit, uint64_t nanoseconds) = 0;
  // A routed read completed (ok) or failed on the source or the target side of a read switch;
  // `nanoseconds` from forwarding it to its completion.
  virtual void read(std::string_view config_id, bool target, bool ok, uint64_t nanoseconds) = 0;
  // A read of a switching migration stayed on the source because pgphase cannot redirect it.
  virtual void unroutable(std::string_view migration_id, std::string_view config_id,
                          std::string_view reason) = 0;
  // A read to compare on both tables off the client's path (strategy shadow).
  virtual void shadow(migration::ShadowJob job) = 0;
};

// An observer that reports nothing (benchmarks, unit tests).
class NullRewriteObserver final : public RewriteObserver {
 public:
  void mirrored(std::string_view, router::TagKind, bool, int64_t) override {}
  void refused(std::string_view) override {}
  void flagged(std::string_view, std::string_view, std::string_view) override {}
  void analysed(bool, uint64_t) override {}
  void read(std::string_view, bool, bool, uint64_t) override {}
  void unroutable(std::string_view, std::string_view, std::string_view) override {}
  void shadow(migration::ShadowJob) override {}
};

// Who the session is, for sticky and canary read switches.
struct SessionIdentity {
  std::string user;
  std::string application_name;
  std::string client_address;
};

class Rewriter {
 public:
  using TableSource = std::function<router::TableRef()>;  // what is in force now

  Rewriter(TableSource tables, router::PlanCache& cache, RewriteObserver& observer,
           SessionIdentity identity = {}, LexSettings settings = {});

  // Client -> server.
  [[nodiscard]] protocol::Disposition frontend_disposition(const protocol::MessageView& m);
  void frontend_held(char type, std::span<const uint8_t> body, std::string& to_server);

  // Server -> client.
  [[nodiscard]] protocol::Disposition backend_disposition(const protocol::MessageView& m);
  void backend_held(char type, std::span<const uint8_t> body, std::string& to_client);

  // Requests sent and not answered yet (for tests and for idle checks).
  [[nodiscard]] size_t pending() const noexcept { return queue_.size(); }
  // A server answer did not fit the requests in flight (a bug, or a server out of protocol):
  // from that answer on nothing more is relayed to the client (a rewritten statement's raw
  // answer must never reach it); the session reports it and closes.
  [[nodiscard]] bool desynchronised() const noexcept { return desync_; }
  [[nodiscard]] const std::string& desync_reason() const noexcept { return desync_reason_; }

 private:
  using PlanPtr = std::shared_ptr<const router::QueryPlan>;
  struct Statement {
    std::string text;
    std::string param_types;  // Parse's raw tail
    PlanPtr plan;             // nullptr: sent unchanged
    uint64_t generation = 0;
    bool alt_prepared = false;  // its target-reading twin is prepared (plan->sql_target)
    uint64_t alt_id = 0;        // the twin's name: "__pgphase_rt_<alt_id>" (0: none yet)
  };
  // Where a read goes, chosen per execution.
  struct ReadChoice {
    bool read = false;
    bool target = false;
    bool shadow = false;    // also compare this read on both tables (strategy shadow)
    std::string config_id;  // empty: not counted (cleanup/completed read the target always)
  };
  struct Portal {
    router::ResultTransform transform;
    PlanPtr plan;
    bool count_binary = false;
    ReadChoice read;
  };
  enum class Kind : uint8_t {
    kQuery,
    kParse,
    kBind,
    kDescribe,
    kExecute,
    kClose,
    kSync,
    kFunctionCall,
  };
  struct Expect {
    Kind kind;
    bool injected = false;              // pgphase's own request: its success answer is swallowed
    PlanPtr plan;                       // the plan whose transforms apply (rewritten ones only)
    router::ResultTransform transform;  // Describe / Execute
    bool count_binary = false;
    uint16_t statement = 0;  // kQuery: which statement of the text is being answered
    int64_t count = 0;       // kCountToTag: the value of the one DataRow
    ReadChoice read;         // kQuery (for its read statements), kExecute
    uint64_t started_ns = 0;
    // A client's Parse or Close of a prepared statement (kParse, kClose): its name as the server
    // keys it, and the entry it replaced or removed, put back when the server fails or skips the
    // request (a failed Parse leaves a named statement as it was, a skipped Close removes none).
    std::string statement_key;
    std::shared_ptr<Statement> undo;
  };

  PlanPtr plan(std::string_view sql);
  // What plans of this session depend on (PlanContext), now.
  [[nodiscard]] router::PlanContext context() const noexcept;
  // A client text that may change the settings of LexSettings (SET, set_config, RESET, DISCARD):
  // until every request in flight is answered, they are uncertain.
  void watch_settings(std::string_view sql);
  router::TableRef table();
  void push(Expect e);
  // Re-prepares `name` when the routing changed since it was prepared and its plan differs.
  void refresh_statement(const std::string& name, std::string& to_server);
  [[nodiscard]] const router::ResultTransform* current_transform() const;
  void on_error(std::span<const uint8_t> body, std::string& to_client);
  void complete(const Expect& e, const router::ResultTransform& t, std::span<const uint8_t> body,
                std::string& to_client);
  void report_flags(const router::QueryPlan& p, std::string_view sql);
  // Picks the side for a plan's reads under the current routing.
  ReadChoice choose(const router::QueryPlan& p);
  [[nodiscard]] bool sticky_target(const router::ReadSwitch& s) const;
  void read_done(const Expect& e, bool ok);
  // The name of a statement's target-reading twin: a counter, never derived from the client's
  // name (a prefix would push long names past the server's 63 bytes, where they collide).
  std::string alt_name(Statement& st);
  // A request the server failed or skipped (after an error, until Sync): its effect on the
  // statement registry is undone.
  void undo(Expect& e);

  TableSource tables_;
  router::PlanCache& cache_;
  RewriteObserver& observer_;
  router::TableRef table_;  // as of the last table()
  std::unordered_map<std::string, Statement> statements_;
  std::unordered_map<std::string, Portal> portals_;
  std::deque<Expect> queue_;
  bool discard_until_sync_ = false;  // the server skips requests after an error until Sync
  bool desync_ = false;
  std::string desync_reason_;
  void lose_track(char type, const char* why);
  char held_type_ = 0;  // the backend message being held, to know why
  SessionIdentity identity_;
  LexSettings settings_;
  bool settings_touched_ = false;    // the session has sent text that may change them
  bool settings_in_flight_ = false;  // ... and its requests are not all answered yet
  bool names_shadowed_ = false;      // PlanContext::names_shadowed
  uint64_t rng_;                     // xorshift state for gradual reads
  uint64_t alt_ids_ = 0;             // twins named so far
  bool planned_ = false;             // some text of this session had a plan (sticky)
  bool copy_in_ = false;             // the server is in COPY FROM STDIN (CopyInResponse seen)
  // No migration applies to the session now and nothing was ever planned: requests other than
  // Parse and Close need no look.
  [[nodiscard]] bool quiet();
};

}  // namespace pgphase::proxy
