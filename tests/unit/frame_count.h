// For protocol unit tests that check encoders: each encoded message is a valid frame.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "protocol/message_splitter.h"

namespace pgphase::test {

// How many messages a MessageSplitter finds in `stream`, fed as one chunk with every message
// streamed; -1 unless `stream` is whole valid messages of `dir` and goes out unchanged.
inline int count_frames(protocol::Direction dir, std::string_view stream) {
  protocol::MessageSplitter split(dir, protocol::kDefaultMaxMessageLength);
  protocol::Splice out;
  int seen = 0;
  const protocol::ScanError e = split.feed(
      {reinterpret_cast<const uint8_t*>(stream.data()), stream.size()}, out,
      [&](const protocol::MessageView&) {
        ++seen;
        return protocol::Disposition::kStream;
      },
      [](char, std::span<const uint8_t>, std::string&) {});
  const bool ok = e == protocol::ScanError::kNone && split.at_boundary() && out.joined() == stream;
  return ok ? seen : -1;
}

}  // namespace pgphase::test
