// The message-level half of a session whose statements pgphase may rewrite (sessions of a
// pgphase with a control plane). Pure: no I/O, no Asio; the session feeds it whole or streamed
// messages of both directions and writes what it appends.
//
// Client -> server: Query and Parse texts go through the router (router/planner.h); rewritten
// ones are sent instead. Prepared statements are remembered by name with their text
// (statement_registry.h), so that a statement prepared before a migration entered dual write (or
// after it left) is prepared again with the current plan before it is next bound or described.
//
// Server -> client: every request that the server answers is queued in order (reply_queue.h:
// Query, Parse, Bind, Describe, Execute, Close, Sync, FunctionCall, and pgphase's own injected
// requests); each answer is matched to its request, so that the answers to rewritten statements
// are turned back into what PostgreSQL would have answered to the client's own statement
// (result_transforms.h) and the answers to injected requests are swallowed. Reads of a switching
// migration go to the side read_choice.h picks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "intercept/lex_settings.h"
#include "intercept/observer.h"
#include "intercept/read_choice.h"
#include "intercept/reply_queue.h"
#include "intercept/statement_registry.h"
#include "protocol/message_splitter.h"
#include "router/plan_cache.h"
#include "router/plan_lookup.h"
#include "router/planner.h"
#include "router/query_plan.h"
#include "router/routing_table.h"

namespace pgphase::intercept {

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
  [[nodiscard]] bool desynchronised() const noexcept { return queue_.desynchronised(); }
  [[nodiscard]] const std::string& desync_reason() const noexcept { return queue_.desync_reason(); }

 private:
  PlanPtr plan(std::string_view sql);
  // What plans of this session depend on (PlanContext), now.
  [[nodiscard]] router::PlanContext context() const noexcept;
  // A client text that may change the settings of LexSettings (SET, set_config, RESET, DISCARD):
  // until every request in flight is answered, they are uncertain.
  void watch_settings(std::string_view sql);
  router::TableRef table();
  // Re-prepares `name` when the routing changed since it was prepared and its plan differs.
  void refresh_statement(std::string_view name, std::string& to_server);
  [[nodiscard]] const router::ResultTransform* current_transform() const;
  void on_error();
  void complete(const Expect& e, const router::ResultTransform& t, std::span<const uint8_t> body,
                std::string& to_client);
  void report_flags(const router::QueryPlan& p, std::string_view sql);
  void read_done(const Expect& e, bool ok);
  // A request the server failed or skipped (after an error, until Sync): its effect on the
  // statement registry is undone.
  void undo(Expect& e, size_t later, bool failed);
  // Whether the server has `st` as the registry has it whenever a request sent now runs: its
  // Parse was confirmed, or is in this request's batch (if it fails, the request is skipped).
  // Otherwise a Parse in flight in an earlier batch may yet fail and leave another statement
  // under the name: pgphase then adds nothing of its own (no twin, no re-preparation).
  [[nodiscard]] bool settled(const Statement& st) const noexcept {
    return st.on_server || st.batch == batches_;
  }
  // The server's ParseComplete to Parse `e` (the oldest request in flight).
  void on_parse_complete(Expect& e);
  // The entry a Parse (the client's, a re-preparation or a twin) was made for (Expect::made):
  // the registry's, or the undo of the next change of its name in flight from queue position
  // `later` that replaced it; nullptr: neither (the name changed for good since).
  Statement* made_for(const Expect& e, size_t later);
  // A Describe of a statement whose plan is `plan` (nullptr: none, or not planned): its answer's
  // transform (Expect::plan, transform); describe_answered makes it that of the statement the
  // server describes when the answer comes.
  static void describe_as(Expect& e, const PlanPtr& plan);
  void describe_answered(Expect& e);
  // The plan of statement `key` as the server has it when the oldest request's answer comes:
  // the registry's, rolled back over the changes of it still in flight (nullptr: none, or not
  // planned).
  PlanPtr server_plan(std::string_view key);
  // The BindComplete of a Bind sent while its statement was not settled: its portal's transform,
  // in the registry and in the requests on it in flight, becomes that of the statement the server
  // bound.
  void bind_answered(Expect& e);
  // A simple Query or Parse about to be sent that may run DEALLOCATE or DISCARD: no statement is
  // known to be on the server any more (Statement::on_server).
  void watch_deallocation(std::string_view sql);
  // A simple Query about to be sent: PostgreSQL drops the unnamed statement when it runs one, so
  // it leaves the registry, kept in the Query's undo for when the server skips the Query.
  void drop_unnamed_statement(Expect& e);
  // What the session does with an answer the reply queue matched.
  [[nodiscard]] protocol::Disposition relay(ReplyQueue::Fit f) const noexcept;

  // One client message each (frontend_held).
  void on_query(std::span<const uint8_t> body, std::string& to_server);
  void on_parse(std::span<const uint8_t> body, std::string& to_server);
  void on_bind(std::span<const uint8_t> body, std::string& to_server);
  void on_describe(std::span<const uint8_t> body, std::string& to_server);
  void on_execute(std::span<const uint8_t> body, std::string& to_server);
  void on_close(std::span<const uint8_t> body, std::string& to_server);

  TableSource tables_;
  router::PlanCache& cache_;
  router::LookupScratch scratch_;  // reused by every lookup
  RewriteObserver& observer_;
  router::TableRef table_;  // as of the last table(); valid until the next
  StatementRegistry registry_;
  ReplyQueue queue_;
  ReadChooser chooser_;
  SettingsWatch settings_;
  // Syncs the client sent: the requests between two are one batch, which the server runs in
  // full or up to its first error, skipping the rest.
  uint64_t batches_ = 0;
  // The last ReadyForQuery said the transaction failed (exact while nothing is in flight).
  bool failed_transaction_ = false;
  bool names_shadowed_ = false;  // PlanContext::names_shadowed
  bool planned_ = false;         // some text of this session had a plan (sticky)
  // No migration applies to the session now and nothing was ever planned: requests other than
  // Parse and Close need no look.
  [[nodiscard]] bool quiet();
};

}  // namespace pgphase::intercept
