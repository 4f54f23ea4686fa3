#include "intercept/reply_queue.h"

#include "protocol/codes.h"

namespace pgphase::intercept {

namespace be = protocol::be;

void ReplyQueue::push(Expect e) {
  if (e.kind == Request::kSync) {
    discard_until_sync_ = false;
  } else if (discard_until_sync_) {
    return;  // the server skips it: no answer will come
  }
  queue_.push_back(std::move(e));
}

void ReplyQueue::push_sync() {
  if (!copy_in_) push({Request::kSync});
}

void ReplyQueue::lose_track(char type, const char* why) {
  if (desync_) return;
  desync_ = true;
  desync_reason_ = std::string("server message '") + type + "' " + why + " (" +
                   std::to_string(queue_.size()) + " requests in flight)";
}

ReplyQueue::Fit ReplyQueue::mismatch(char type) {
  lose_track(type, queue_.empty() ? "arrived with no request in flight"
                                  : "does not answer the oldest request in flight");
  return Fit::kMismatch;
}

void ReplyQueue::finish_front() {
  if (queue_.front().kind == Request::kQuery) {
    ++queue_.front().statement;
  } else {
    queue_.pop_front();
  }
}

ReplyQueue::Fit ReplyQueue::answer(char type) {
  switch (type) {
    case be::kReadyForQuery: {
      if (queue_.empty()) return mismatch(type);
      const Request k = queue_.front().kind;
      if (k != Request::kQuery && k != Request::kSync && k != Request::kFunctionCall)
        return mismatch(type);
      queue_.pop_front();
      return Fit::kForward;
    }
    case be::kParseComplete:
    case be::kBindComplete:
    case be::kCloseComplete: {
      if (queue_.empty()) return mismatch(type);
      const Request want = type == be::kParseComplete  ? Request::kParse
                           : type == be::kBindComplete ? Request::kBind
                                                       : Request::kClose;
      if (queue_.front().kind != want) return mismatch(type);
      const bool injected = queue_.front().injected;
      queue_.pop_front();
      return injected ? Fit::kSwallow : Fit::kForward;
    }
    case be::kNoData:
      if (queue_.empty() || queue_.front().kind != Request::kDescribe) return mismatch(type);
      queue_.pop_front();
      return Fit::kForward;
    case be::kRowDescription:
      // Answers a Describe; within a Query or an Execute it only begins the rows.
      if (queue_.empty()) return mismatch(type);
      if (queue_.front().kind == Request::kDescribe) queue_.pop_front();
      return Fit::kForward;
    case be::kCommandComplete:
    case be::kEmptyQueryResponse:
    case be::kPortalSuspended: {
      if (queue_.empty()) return mismatch(type);
      const Request k = queue_.front().kind;
      if (k != Request::kQuery && k != Request::kExecute) return mismatch(type);
      finish_front();
      return Fit::kForward;
    }
    case be::kCopyInResponse:
    case be::kCopyBothResponse:
      if (queue_.empty()) return mismatch(type);
      // The Syncs the client sent after this COPY's request, before it saw this answer, are
      // ignored by the server (it reads only copy data, Flush and Sync until CopyDone/CopyFail).
      copy_in_ = true;
      queue_.erase_if([first = &queue_.front()](const Expect& e) {
        return &e != first && e.kind == Request::kSync;
      });
      return Fit::kForward;
    default:
      return Fit::kForward;
  }
}

Expect* ReplyQueue::next_refresh(size_t from, std::string_view key, uint64_t made) {
  for (size_t i = from; i < queue_.size(); ++i) {
    Expect& e = queue_[i];
    if (e.refresh && e.made == made && e.statement_key == key) return &e;
  }
  return nullptr;
}

Expect* ReplyQueue::next_change(size_t from, std::string_view key) {
  for (size_t i = from; i < queue_.size(); ++i) {
    Expect& e = queue_[i];
    if (e.changes && e.statement_key == key) return &e;
  }
  return nullptr;
}

}  // namespace pgphase::intercept
