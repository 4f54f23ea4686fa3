// Classifies CommandComplete tags ("SELECT 5", "INSERT 0 1", "BEGIN") into a small fixed set, so
// statement counters have bounded label cardinality.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace pgphase::protocol {

enum class Command : uint8_t {
  kSelect,
  kInsert,
  kUpdate,
  kDelete,
  kMerge,
  kCopy,
  kFetch,
  kBegin,
  kCommit,
  kRollback,
  kSet,
  kCreate,
  kAlter,
  kDrop,
  kTruncate,
  kOther,
  kCount
};

[[nodiscard]] const char* command_name(Command c) noexcept;

// `tag` is the start of a CommandComplete body (NUL-terminated tag, possibly cut short).
[[nodiscard]] Command classify_command_tag(std::span<const uint8_t> tag) noexcept;

}  // namespace pgphase::protocol
