// The framer of one direction of a v3 connection: it validates every message header and shows
// the caller the type, length and first bytes of each message (a MessageView, protocol/framing.h);
// the caller then decides per message whether its bytes stream through unchanged (no buffering,
// any size, forwarded from the input chunk in place), are held until complete and handed over
// whole (to be rewritten or answered differently), or are dropped. Pure: no I/O, fuzzable.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "protocol/framing.h"
#include "protocol/splice.h"

namespace pgphase::protocol {

enum class Disposition : uint8_t { kStream, kHold, kDrop };

class MessageSplitter {
 public:
  MessageSplitter(Direction dir, uint32_t max_length) noexcept
      : dir_(dir), max_length_(max_length) {}

  // True when no message is partially seen: the stream is between two messages.
  [[nodiscard]] bool at_boundary() const noexcept { return state_ == State::kHeader && have_ == 0; }
  // After a failed feed: the offending header's type byte and claimed length.
  [[nodiscard]] char bad_type() const noexcept { return state_ == State::kFailed ? type_ : 0; }
  [[nodiscard]] uint32_t bad_length() const noexcept {
    return state_ == State::kFailed ? length_ : 0;
  }

  // Walks `chunk`. For each message: decide(const MessageView&) -> Disposition once its header
  // and peek bytes are in; streamed bytes go to `out` as runs of `chunk` (not copied; only a
  // header or peek that began in an earlier chunk is copied); a held message is passed whole to
  // on_held(char type, std::span<const uint8_t> body, std::string& out), which appends whatever
  // should go out instead to `out.owned()`. Stops at the first invalid header: `out` then holds
  // everything before it (nothing of the bad header, even when it began in an earlier chunk).
  // The error is sticky: later calls return it again, add nothing to `out`, and at_boundary()
  // stays false.
  template <class Decide, class OnHeld>
  ScanError feed(std::span<const uint8_t> chunk, Splice& out, Decide&& decide, OnHeld&& on_held);

 private:
  enum class State : uint8_t { kHeader, kPeek, kBody, kFailed };

  // Takes the header at `h` (5 bytes); false (and failed) when it is invalid.
  bool start_message(const uint8_t* h) noexcept {
    type_ = static_cast<char>(h[0]);
    length_ = read_u32(h + 1);
    error_ = check_header(dir_, max_length_, h[0], length_);
    if (error_ != ScanError::kNone) {
      state_ = State::kFailed;
      return false;
    }
    remaining_ = length_ - 4;
    want_peek_ = remaining_ < kPeekBytes ? remaining_ : static_cast<uint32_t>(kPeekBytes);
    return true;
  }

  // Header and peek are in: `head` holds them (5 + want_peek_ bytes), inside the input chunk when
  // `in_chunk`, else in head_.
  template <class Decide>
  void decide_message(const uint8_t* head, bool in_chunk, Splice& out, Decide& decide) {
    const size_t n = 5 + want_peek_;
    disposition_ = decide(MessageView{type_, length_, {head + 5, want_peek_}});
    remaining_ -= want_peek_;
    if (disposition_ == Disposition::kStream) {
      if (in_chunk) {
        out.forward(head, n);
      } else {
        out.append_owned(head, n);
      }
    } else if (disposition_ == Disposition::kHold) {
      held_.assign(head + 5, head + n);
      held_.reserve(std::min<size_t>(length_ - 4, 64u << 10));  // grows with what arrives
    }
    state_ = State::kBody;
  }

  // The body is complete (remaining_ == 0).
  template <class OnHeld>
  void finish_message(Splice& out, OnHeld& on_held) {
    if (disposition_ == Disposition::kHold) {
      const size_t start = out.owned().size();
      on_held(type_, std::span<const uint8_t>(held_.data(), held_.size()), out.owned());
      out.mark_owned(start);
      held_.clear();
      if (held_.capacity() > (64u << 10)) held_.shrink_to_fit();
    }
    state_ = State::kHeader;
  }

  Direction dir_;
  uint32_t max_length_;
  State state_ = State::kHeader;
  ScanError error_ = ScanError::kNone;
  Disposition disposition_ = Disposition::kStream;
  char type_ = 0;
  uint32_t length_ = 0;
  uint32_t remaining_ = 0;  // body bytes not yet seen
  uint32_t want_peek_ = 0;
  size_t have_ = 0;  // header/peek bytes gathered in head_ across chunk boundaries
  std::array<uint8_t, 5 + kPeekBytes> head_{};
  std::vector<uint8_t> held_;  // body of a held message
};

template <class Decide, class OnHeld>
ScanError MessageSplitter::feed(std::span<const uint8_t> chunk, Splice& out, Decide&& decide,
                                OnHeld&& on_held) {
  const uint8_t* p = chunk.data();
  const uint8_t* const end = p + chunk.size();
  if (state_ == State::kFailed) return error_;
  // Copies up to `want` - have_ bytes of the chunk into head_; true when head_ has `want`.
  auto gather = [&](size_t want) {
    const size_t n = std::min(want - have_, static_cast<size_t>(end - p));
    std::memcpy(head_.data() + have_, p, n);
    have_ += n;
    p += n;
    return have_ == want;
  };
  while (p < end) {
    switch (state_) {
      case State::kHeader: {
        if (have_ == 0 && end - p >= 5) {
          // Fast path: the header is in this chunk, and usually its peek too; then decide sees
          // the chunk itself and nothing is copied.
          if (!start_message(p)) return error_;
          if (static_cast<size_t>(end - p) - 5 >= want_peek_) {
            const uint8_t* const head = p;
            p += 5 + want_peek_;
            decide_message(head, true, out, decide);
            break;  // on to the body (or, at the chunk's end, the check after the loop)
          }
          state_ = State::kPeek;  // the peek goes on in the next chunk: keep what there is
          gather(5 + want_peek_);
          return ScanError::kNone;
        }
        if (!gather(5)) return ScanError::kNone;
        if (!start_message(head_.data())) return error_;
        state_ = State::kPeek;
        [[fallthrough]];
      }
      case State::kPeek: {
        if (!gather(5 + want_peek_)) return ScanError::kNone;
        decide_message(head_.data(), false, out, decide);
        have_ = 0;
        [[fallthrough]];
      }
      case State::kBody: {
        const size_t take = std::min<size_t>(remaining_, static_cast<size_t>(end - p));
        if (disposition_ == Disposition::kStream) {
          out.forward(p, take);
        } else if (disposition_ == Disposition::kHold) {
          held_.insert(held_.end(), p, p + take);
        }
        p += take;
        remaining_ -= static_cast<uint32_t>(take);
        if (remaining_ > 0) return ScanError::kNone;
        finish_message(out, on_held);
        break;
      }
      case State::kFailed:
        return error_;
    }
  }
  // A message whose body is empty (or was all peeked) completes without more bytes.
  if (state_ == State::kBody && remaining_ == 0) finish_message(out, on_held);
  return ScanError::kNone;
}

}  // namespace pgphase::protocol
