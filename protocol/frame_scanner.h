// Streaming message-boundary tracker for one direction of a v3 connection.
//
// The relay moves bytes in whatever chunks the socket hands it; the scanner walks those chunks,
// finds every message header (type byte + int32 length), validates it, and shows the caller the
// type, the length and the first few body bytes. It never copies or buffers whole messages, so a
// 1 GiB DataRow streams through with O(1) memory. Pure: no I/O, fuzzable.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/codes.h"
#include "protocol/wire.h"

namespace pgphase::protocol {

enum class Direction : uint8_t { kFrontend, kBackend };

[[nodiscard]] bool is_known_message_type(Direction dir, uint8_t type) noexcept;

// One message as the scanner sees it: header plus a prefix of the body.
struct MessageView {
  char type = 0;
  uint32_t length = 0;            // as on the wire: counts the 4 length bytes, not the type byte
  std::span<const uint8_t> peek;  // first min(length - 4, kPeekBytes) body bytes
  [[nodiscard]] uint32_t body_length() const noexcept { return length - 4; }
};

enum class ScanError : uint8_t { kNone, kLengthTooShort, kLengthTooLong, kUnknownType };

[[nodiscard]] const char* describe(ScanError e) noexcept;

struct ScanResult {
  ScanError error = ScanError::kNone;
  // With an error: how many bytes of the chunk precede the offending header (safe to forward).
  size_t valid_bytes = 0;
  char bad_type = 0;
  uint32_t bad_length = 0;
  // With an error: true when the offending header starts in this chunk, so forwarding the first
  // valid_bytes leaves the peer exactly at a message boundary (false when part of the bad header
  // came in an earlier chunk and was forwarded with it).
  bool cut_at_boundary = false;
};

class FrameScanner {
 public:
  // Enough for CommandComplete tags ("INSERT 0 1234567890"), ReadyForQuery's status byte, the
  // SQLSTATE field of a short ErrorResponse, and the authentication code of 'R'.
  static constexpr size_t kPeekBytes = 32;

  FrameScanner(Direction dir, uint32_t max_length) noexcept : dir_(dir), max_length_(max_length) {}

  // True when no message is partially seen: the stream is between two messages.
  [[nodiscard]] bool at_boundary() const noexcept { return state_ == State::kHeader && have_ == 0; }

  // Walks `chunk`, calling on_message(const MessageView&) once per message as soon as its header
  // and peek bytes have been seen. Stops at the first invalid header; the error is sticky: later
  // calls return it again (valid_bytes 0) and at_boundary() stays false.
  template <class OnMessage>
  ScanResult scan(std::span<const uint8_t> chunk, OnMessage&& on_message);

 private:
  enum class State : uint8_t { kHeader, kPeek, kSkip, kFailed };

  [[nodiscard]] ScanError check_header(uint8_t type, uint32_t length) const noexcept {
    if (length < kMinMessageLength) return ScanError::kLengthTooShort;
    if (length > max_length_) return ScanError::kLengthTooLong;
    if (!is_known_message_type(dir_, type)) return ScanError::kUnknownType;
    return ScanError::kNone;
  }

  // The sticky error of a scanner that saw an invalid header (type_ and length_ keep it).
  [[nodiscard]] ScanResult failure() const noexcept {
    return {check_header(static_cast<uint8_t>(type_), length_), 0, type_, length_};
  }

  Direction dir_;
  uint32_t max_length_;
  State state_ = State::kHeader;
  char type_ = 0;
  uint32_t length_ = 0;
  uint32_t remaining_ = 0;  // body bytes still to skip (kSkip) or to peek at + skip (kPeek)
  uint32_t want_peek_ = 0;
  size_t have_ = 0;  // bytes gathered in buf_ (header or peek) across chunk boundaries
  std::array<uint8_t, kPeekBytes> buf_{};
};

template <class OnMessage>
ScanResult FrameScanner::scan(std::span<const uint8_t> chunk, OnMessage&& on_message) {
  const uint8_t* p = chunk.data();
  const uint8_t* const end = p + chunk.size();
  size_t header_start = 0;  // offset in chunk of the header being read (for error reporting)
  bool header_began_here = false;
  if (state_ == State::kFailed) return failure();
  while (p < end) {
    switch (state_) {
      case State::kHeader: {
        header_began_here = have_ == 0;
        if (header_began_here) header_start = static_cast<size_t>(p - chunk.data());
        if (have_ == 0 && end - p >= 5) {  // fast path: whole header in this chunk
          type_ = static_cast<char>(p[0]);
          length_ = read_u32(p + 1);
          p += 5;
        } else {
          while (have_ < 5 && p < end) buf_[have_++] = *p++;
          if (have_ < 5) return {};
          type_ = static_cast<char>(buf_[0]);
          length_ = read_u32(buf_.data() + 1);
          have_ = 0;
        }
        if (auto e = check_header(static_cast<uint8_t>(type_), length_); e != ScanError::kNone) {
          // A header split over chunks began in an earlier chunk: nothing of this one is valid.
          state_ = State::kFailed;
          return {e, header_start, type_, length_, header_began_here};
        }
        remaining_ = length_ - 4;
        want_peek_ = remaining_ < kPeekBytes ? remaining_ : static_cast<uint32_t>(kPeekBytes);
        state_ = State::kPeek;
        [[fallthrough]];
      }
      case State::kPeek: {
        if (have_ == 0 && static_cast<size_t>(end - p) >= want_peek_) {
          on_message(MessageView{type_, length_, {p, want_peek_}});
          p += want_peek_;
        } else {
          while (have_ < want_peek_ && p < end) buf_[have_++] = *p++;
          if (have_ < want_peek_) return {};
          on_message(MessageView{type_, length_, {buf_.data(), want_peek_}});
          have_ = 0;
        }
        remaining_ -= want_peek_;
        state_ = remaining_ == 0 ? State::kHeader : State::kSkip;
        break;
      }
      case State::kSkip: {
        const size_t avail = static_cast<size_t>(end - p);
        if (avail < remaining_) {
          remaining_ -= static_cast<uint32_t>(avail);
          return {};
        }
        p += remaining_;
        remaining_ = 0;
        state_ = State::kHeader;
        break;
      }
      case State::kFailed:
        return failure();
    }
  }
  return {};
}

}  // namespace pgphase::protocol
