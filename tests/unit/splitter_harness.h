// The harness of the message splitter's tests (message_splitter_test.cpp,
// message_splitter_errors_test.cpp): feeds a stream cut into chunks and records what decide saw
// and what was sent on, checking on every pass that forwarded runs point into the chunk; and
// realistic frontend and backend traffic to feed.
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/message_splitter.h"

namespace pgphase::protocol::splitter_test {

// Which disposition the n-th message (from 0) of a feed gets.
using Policy = std::function<Disposition(size_t n)>;

// A MessageView copied out of decide (its peek span only lives during the call).
struct Seen {
  char type = 0;
  uint32_t length = 0;
  std::string peek;
  bool operator==(const Seen&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Seen& s);

Disposition stream_all(size_t);
// Stream, hold, drop, stream, hold, drop, ...
Disposition cycle(size_t n);

struct Fed {
  std::vector<Seen> views;
  std::vector<bool> boundary_after_chunk;  // at_boundary() after each chunk
  std::string output;                      // what every chunk's pass sent on, joined in order
  size_t copied = 0;          // bytes sent on that were neither forwarded nor made by on_held
  size_t peeks_in_chunk = 0;  // views whose peek pointed into the chunk being fed
  ScanError error = ScanError::kNone;  // first error, if any
  char bad_type = 0;
  uint32_t bad_length = 0;
  size_t error_chunk_start = 0;    // offset in the stream of the chunk that failed
  std::string error_chunk_output;  // what that chunk's pass sent on
  // Where in that chunk its last forwarded run ends (none: nothing of it was forwarded).
  std::optional<size_t> error_forwarded_end;
};

// Feeds `data` cut at the ascending positions `cuts` (empty chunks allowed) to one splitter;
// a held message goes out again unchanged.
Fed feed(MessageSplitter& s, std::string_view data, const std::vector<size_t>& cuts,
         const Policy& policy = stream_all);
Fed feed_whole(Direction dir, std::string_view data, uint32_t max = kDefaultMaxMessageLength,
               const Policy& policy = stream_all);
Fed feed_cut(Direction dir, std::string_view data, const std::vector<size_t>& cuts,
             const Policy& policy = stream_all);
Fed feed_bytewise(Direction dir, std::string_view data, const Policy& policy = stream_all);
// An on_held that fails the test: no message is held.
void no_held(char, std::span<const uint8_t>, std::string&);

// Realistic traffic: SELECT id, name FROM t over the extended protocol, as a server answers it.
std::string row_description();
std::string data_row(int id, const std::string& name);

struct Stream {
  std::string bytes;
  std::vector<std::string> messages;
  std::set<size_t> boundaries{0};  // offsets where one message ends and the next begins
  void add(const std::string& m) {
    bytes += m;
    messages.push_back(m);
    boundaries.insert(bytes.size());
  }
  // What a splitter sends on under `policy` (held messages go out unchanged).
  [[nodiscard]] std::string expected(const Policy& policy) const {
    std::string out;
    for (size_t n = 0; n < messages.size(); ++n) {
      if (policy(n) != Disposition::kDrop) out += messages[n];
    }
    return out;
  }
};

Stream backend_stream();
Stream frontend_stream();

// The message types of each direction.
inline const std::set<char> kFrontendTypes = {
    fe::kBind,     fe::kClose,    fe::kDescribe, fe::kExecute, fe::kFunctionCall,
    fe::kFlush,    fe::kParse,    fe::kQuery,    fe::kSync,    fe::kTerminate,
    fe::kCopyData, fe::kCopyDone, fe::kCopyFail, fe::kPassword};
inline const std::set<char> kBackendTypes = {be::kParseComplete,
                                             be::kBindComplete,
                                             be::kCloseComplete,
                                             be::kNotificationResponse,
                                             be::kCommandComplete,
                                             be::kDataRow,
                                             be::kErrorResponse,
                                             be::kCopyInResponse,
                                             be::kCopyOutResponse,
                                             be::kEmptyQueryResponse,
                                             be::kBackendKeyData,
                                             be::kNoticeResponse,
                                             be::kAuthentication,
                                             be::kParameterStatus,
                                             be::kRowDescription,
                                             be::kFunctionCallResponse,
                                             be::kCopyBothResponse,
                                             be::kReadyForQuery,
                                             be::kNoData,
                                             be::kPortalSuspended,
                                             be::kParameterDescription,
                                             be::kNegotiateProtocolVersion,
                                             be::kCopyData,
                                             be::kCopyDone};

}  // namespace pgphase::protocol::splitter_test
