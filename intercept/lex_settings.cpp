#include "intercept/lex_settings.h"

#include <cctype>

#include "router/routing_table.h"

namespace pgphase::intercept {

bool LexSettings::apply(std::string_view name, std::string_view value) {
  if (name == "standard_conforming_strings") {
    standard_conforming_strings = value == "on";
    return true;
  }
  if (name == "client_encoding") {
    client_encoding = std::string(value);
    return true;
  }
  return false;
}

bool LexSettings::backslash_in_multibyte() const noexcept {
  // PostgreSQL's client-only encodings, whose second bytes include 0x5C.
  static constexpr std::string_view kRisky[] = {"SJIS", "SHIFT_JIS_2004", "BIG5", "GBK",
                                                "UHC",  "GB18030",        "JOHAB"};
  std::string upper;
  for (char c : client_encoding) upper.push_back(static_cast<char>(std::toupper(c)));
  for (std::string_view e : kRisky) {
    if (upper == e) return true;
  }
  return false;
}

void SettingsWatch::watch(std::string_view sql) {
  if (!touched_) {
    static constexpr std::string_view kWords[] = {"conforming", "encoding", "names",
                                                  "set_config", "reset",    "discard"};
    for (std::string_view w : kWords) {
      if (router::contains_ci(sql, w)) touched_ = true;
    }
  }
  // Once touched, a later COMMIT or ROLLBACK may revert them too: every request in flight counts.
  if (touched_) in_flight_ = true;
}

void SettingsWatch::apply(std::string_view name, std::string_view value) {
  if (settings_.apply(name, value)) touched_ = true;
}

}  // namespace pgphase::intercept
