#include "protocol/command_tag.h"

#include <string_view>

namespace pgphase::protocol {
namespace {
struct Entry {
  std::string_view word;
  Command command;
};
// Tags as PostgreSQL writes them (src/include/tcop/cmdtaglist.h); first word only.
constexpr Entry kEntries[] = {
    {"SELECT", Command::kSelect},     {"INSERT", Command::kInsert},
    {"UPDATE", Command::kUpdate},     {"DELETE", Command::kDelete},
    {"MERGE", Command::kMerge},       {"COPY", Command::kCopy},
    {"FETCH", Command::kFetch},       {"BEGIN", Command::kBegin},
    {"START", Command::kBegin},       {"COMMIT", Command::kCommit},
    {"ROLLBACK", Command::kRollback}, {"SET", Command::kSet},
    {"CREATE", Command::kCreate},     {"ALTER", Command::kAlter},
    {"DROP", Command::kDrop},         {"TRUNCATE", Command::kTruncate},
};
}  // namespace

const char* command_name(Command c) noexcept {
  switch (c) {
    case Command::kSelect:
      return "SELECT";
    case Command::kInsert:
      return "INSERT";
    case Command::kUpdate:
      return "UPDATE";
    case Command::kDelete:
      return "DELETE";
    case Command::kMerge:
      return "MERGE";
    case Command::kCopy:
      return "COPY";
    case Command::kFetch:
      return "FETCH";
    case Command::kBegin:
      return "BEGIN";
    case Command::kCommit:
      return "COMMIT";
    case Command::kRollback:
      return "ROLLBACK";
    case Command::kSet:
      return "SET";
    case Command::kCreate:
      return "CREATE";
    case Command::kAlter:
      return "ALTER";
    case Command::kDrop:
      return "DROP";
    case Command::kTruncate:
      return "TRUNCATE";
    case Command::kOther:
      return "OTHER";
    case Command::kCount:
      break;
  }
  return "OTHER";
}

Command classify_command_tag(std::span<const uint8_t> tag) noexcept {
  size_t n = 0;
  while (n < tag.size() && tag[n] != ' ' && tag[n] != '\0') ++n;
  const std::string_view word(reinterpret_cast<const char*>(tag.data()), n);
  for (const auto& e : kEntries) {
    if (e.word == word) return e.command;
  }
  return Command::kOther;
}

}  // namespace pgphase::protocol
