// Message-at-a-time view of one direction of a v3 connection, for sessions whose messages
// pgphase may rewrite. Like FrameScanner it validates every header and shows the caller the
// type, length and first bytes of each message; the caller then decides per message whether its
// bytes stream through unchanged (no buffering, any size), are held until complete and handed
// over whole (to be rewritten or answered differently), or are dropped. Pure: no I/O, fuzzable.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "protocol/frame_scanner.h"
#include "protocol/splice.h"

namespace pgphase::protocol {

enum class Disposition : uint8_t { kStream, kHold, kDrop };

class MessageSplitter {
 public:
  MessageSplitter(Direction dir, uint32_t max_length) noexcept
      : dir_(dir), max_length_(max_length) {}

  [[nodiscard]] bool at_boundary() const noexcept { return state_ == State::kHeader && have_ == 0; }
  // After a failed feed: the offending header's type byte and claimed length.
  [[nodiscard]] char bad_type() const noexcept { return state_ == State::kFailed ? type_ : 0; }
  [[nodiscard]] uint32_t bad_length() const noexcept {
    return state_ == State::kFailed ? length_ : 0;
  }

  // Walks `chunk`. For each message: decide(const MessageView&) -> Disposition once its header
  // and peek bytes are in; streamed bytes go to `out` as runs of `chunk` (not copied; only a
  // header that began in an earlier chunk is copied); a held message is passed whole to
  // on_held(char type, std::span<const uint8_t> body, std::string& out), which appends whatever
  // should go out instead to `out.owned()`. Stops at the first invalid header (sticky, as
  // FrameScanner): `out` then holds everything before it.
  template <class Decide, class OnHeld>
  ScanError feed(std::span<const uint8_t> chunk, Splice& out, Decide&& decide, OnHeld&& on_held);

 private:
  enum class State : uint8_t { kHeader, kPeek, kBody, kFailed };

  Direction dir_;
  uint32_t max_length_;
  State state_ = State::kHeader;
  ScanError error_ = ScanError::kNone;
  Disposition disposition_ = Disposition::kStream;
  char type_ = 0;
  uint32_t length_ = 0;
  uint32_t remaining_ = 0;  // body bytes not yet seen
  uint32_t want_peek_ = 0;
  size_t have_ = 0;  // header/peek bytes gathered in head_
  std::array<uint8_t, 5 + FrameScanner::kPeekBytes> head_{};
  std::vector<uint8_t> held_;  // body of a held message
};

template <class Decide, class OnHeld>
ScanError MessageSplitter::feed(std::span<const uint8_t> chunk, Splice& out, Decide&& decide,
                                OnHeld&& on_held) {
  const uint8_t* p = chunk.data();
  const uint8_t* const end = p + chunk.size();
  if (state_ == State::kFailed) return error_;
  // Where the current message's header starts in `chunk` (nullptr: it began in an earlier one).
  const uint8_t* head_at = nullptr;
  auto held_done = [&] {
    const size_t start = out.owned().size();
    on_held(type_, std::span<const uint8_t>(held_.data(), held_.size()), out.owned());
    out.mark_owned(start);
    held_.clear();
  };
  while (p < end) {
    switch (state_) {
      case State::kHeader: {
        if (have_ == 0) head_at = p;
        while (have_ < 5 && p < end) head_[have_++] = *p++;
        if (have_ < 5) return ScanError::kNone;
        type_ = static_cast<char>(head_[0]);
        length_ = read_u32(head_.data() + 1);
        ScanError e = ScanError::kNone;
        if (length_ < kMinMessageLength) {
          e = ScanError::kLengthTooShort;
        } else if (length_ > max_length_) {
          e = ScanError::kLengthTooLong;
        } else if (!is_known_message_type(dir_, static_cast<uint8_t>(type_))) {
          e = ScanError::kUnknownType;
        }
        if (e != ScanError::kNone) {
          state_ = State::kFailed;
          error_ = e;
          return e;
        }
        remaining_ = length_ - 4;
        want_peek_ = remaining_ < FrameScanner::kPeekBytes
                         ? remaining_
                         : static_cast<uint32_t>(FrameScanner::kPeekBytes);
        state_ = State::kPeek;
        [[fallthrough]];
      }
      case State::kPeek: {
        while (have_ < 5 + want_peek_ && p < end) head_[have_++] = *p++;
        if (have_ < 5 + want_peek_) return ScanError::kNone;
        disposition_ = decide(MessageView{type_, length_, {head_.data() + 5, want_peek_}});
        remaining_ -= want_peek_;
        if (disposition_ == Disposition::kStream) {
          if (head_at != nullptr) {
            out.forward(head_at, have_);
          } else {
            out.append_owned(head_.data(), have_);
          }
        } else if (disposition_ == Disposition::kHold) {
          held_.assign(head_.data() + 5, head_.data() + have_);
          held_.reserve(length_ - 4);
        }
        have_ = 0;
        state_ = State::kBody;
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
        if (disposition_ == Disposition::kHold) {
          held_done();
          if (held_.capacity() > (64u << 10)) held_.shrink_to_fit();
        }
        state_ = State::kHeader;
        head_at = nullptr;
        break;
      }
      case State::kFailed:
        return error_;
    }
  }
  // A message with an empty body completes without more bytes.
  if (state_ == State::kBody && remaining_ == 0) {
    if (disposition_ == Disposition::kHold) held_done();
    state_ = State::kHeader;
  }
  return ScanError::kNone;
}

}  // namespace pgphase::protocol
