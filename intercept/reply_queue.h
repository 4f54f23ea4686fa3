// The requests sent to the server and not answered yet, in order, so that every answer is matched
// to the request it answers: answers to pgphase's own (injected) requests are swallowed, the
// answers to rewritten statements get their transforms (result_transforms.h), and an answer that
// fits no request in flight is a mismatch the session reports and closes on, never relayed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "intercept/read_choice.h"
#include "intercept/ring.h"
#include "intercept/statement_registry.h"
#include "router/query_plan.h"

namespace pgphase::intercept {

// The requests the server answers.
enum class Request : uint8_t {
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
  Request kind;
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
  // A simple Query (kQuery) removes the unnamed statement, as PostgreSQL's does when it runs.
  std::string statement_key;
  std::shared_ptr<Statement> undo;
  // This request changed what the registry holds for statement_key when it was sent: a client's
  // Parse (unless predicted refused, install) or Close of a statement, or a simple Query (the
  // unnamed statement). Not a Close of a portal, nor a request of pgphase's.
  bool changes = false;
  // The registry version of the entry this Parse made (the client's) or was sent for (a twin, a
  // re-preparation): its answer marks that entry, and an undo puts back what it replaced only
  // while the entry is still that one.
  uint64_t made = 0;
  // A client's Parse of a name the registry already has (kParse): PostgreSQL refuses it (42P05)
  // if it still has that statement when the Parse comes, so the registry was left as it is; this
  // is the statement to record if the server takes the Parse after all (the one before it was
  // failed or skipped, so the name was free).
  std::shared_ptr<Statement> install;
  // pgphase's own Parse of a statement's target-reading twin (injected): statement_key is the
  // client's statement, whose twin is not prepared after all when the server fails or skips it.
  bool twin = false;
  // pgphase's own re-preparation of the client's statement statement_key under new routing
  // (injected Parse): confirmed by its ParseComplete; failed or skipped, it is made again. Its
  // undo holds the plan and generation the statement had before it (what the server has until
  // it goes through).
  bool refresh = false;
  // Its transform is chosen again when its answer comes, from the statement the server has then:
  // a Describe of statement statement_key (at its RowDescription, Rewriter::describe_answered),
  // or a Bind of it sent while a change of it in an earlier batch was in flight (at its
  // BindComplete, Rewriter::bind_answered).
  bool resolve = false;
  // A Bind, Execute, Describe or Close of a portal: its name as the server keys it.
  std::optional<std::string> portal;
};

class ReplyQueue {
 public:
  // What an answer does.
  enum class Fit : uint8_t {
    kForward,   // answers the client's request: relay it
    kSwallow,   // answers pgphase's own request: the client never sees it
    kMismatch,  // fits no request in flight: desynchronised() from now on
  };

  // A request sent to the server. Dropped while the server skips requests after an error (until
  // Sync): no answer will come.
  void push(Expect e);
  // A Sync sent to the server. While the server is in COPY FROM STDIN it ignores Sync (libpq
  // sends one right after the COPY's Execute, and another after CopyDone): none is expected.
  void push_sync();
  // The client ended COPY FROM STDIN (CopyDone, CopyFail).
  void copy_ended() noexcept { copy_in_ = false; }

  // A server message that answers (part of) the oldest request: ReadyForQuery, ParseComplete,
  // BindComplete, CloseComplete, NoData, RowDescription, CommandComplete, EmptyQueryResponse,
  // PortalSuspended, CopyInResponse, CopyBothResponse. Pops or advances the requests it ends.
  // Any other type: kForward, no effect.
  [[nodiscard]] Fit answer(char type);
  // The oldest request's current result ended (a transformed CommandComplete): a Query moves on to
  // its next statement, anything else is answered.
  void finish_front();
  // An ErrorResponse to the oldest request (not empty()). A simple Query or FunctionCall ends with
  // its ReadyForQuery; in the extended protocol the server skips everything up to the next Sync:
  // those requests are dropped, `undo` called on each, newest first (so that a statement parsed
  // or closed more than once among them gets back what it was before the first), with the index
  // of the first request past that Sync (the ones still in flight after them) and whether it is
  // the request that failed (the oldest) rather than one skipped.
  template <class Undo>
  void failed(Undo&& undo);
  // The first request at index `from` or later that changed statement `key` when it was sent
  // (Expect::changes; nullptr: none): the next change of that name still in flight.
  [[nodiscard]] Expect* next_change(size_t from, std::string_view key);
  // The first re-preparation of pgphase's (Expect::refresh) at index `from` or later of
  // statement `key` in its registry version `made` (nullptr: none).
  [[nodiscard]] Expect* next_refresh(size_t from, std::string_view key, uint64_t made);

  // The session cannot trust the answers any more (a transform found an answer it cannot
  // rewrite, or answer() a mismatch): the first reason is kept.
  void lose_track(char type, const char* why);
  [[nodiscard]] bool desynchronised() const noexcept { return desync_; }
  [[nodiscard]] const std::string& desync_reason() const noexcept { return desync_reason_; }

  [[nodiscard]] bool empty() const noexcept { return queue_.empty(); }
  [[nodiscard]] size_t size() const noexcept { return queue_.size(); }
  [[nodiscard]] Expect& front() { return queue_.front(); }
  [[nodiscard]] Expect& at(size_t i) { return queue_[i]; }  // 0: the oldest (i < size())
  [[nodiscard]] const Expect& front() const { return queue_.front(); }
  // Whether the server skips requests until the next Sync.
  [[nodiscard]] bool discarding() const noexcept { return discard_until_sync_; }

 private:
  Fit mismatch(char type);

  Ring<Expect> queue_;
  bool discard_until_sync_ = false;  // the server skips requests after an error until Sync
  bool copy_in_ = false;             // the server is in COPY FROM STDIN (CopyInResponse seen)
  bool desync_ = false;
  std::string desync_reason_;
};

template <class Undo>
void ReplyQueue::failed(Undo&& undo) {
  const Request k = queue_.front().kind;
  if (k == Request::kQuery || k == Request::kFunctionCall) return;  // ReadyForQuery ends it
  size_t skipped = 0;  // the requests up to the next Sync
  while (skipped < queue_.size() && queue_[skipped].kind != Request::kSync) ++skipped;
  for (size_t i = skipped; i-- > 0;) undo(queue_[i], skipped, i == 0);
  for (size_t i = 0; i < skipped; ++i) queue_.pop_front();
  if (queue_.empty()) discard_until_sync_ = true;
}

}  // namespace pgphase::intercept
