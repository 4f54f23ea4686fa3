// Quoting of identifiers for SQL that migration/ builds from catalog and config names
// (repair, backfill). Internal to migration/.
#pragma once

#include <string>
#include <string_view>

#include "migration/model.h"

// A timestamptz column as ISO 8601 UTC with milliseconds ("2026-11-25T21:30:00.123Z"), in SQL
// text built at compile time.
#define PGPHASE_ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

namespace pgphase::migration {

[[nodiscard]] inline std::string quote_ident(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

// A column name as a string literal (for jsonb_build_object keys).
[[nodiscard]] inline std::string quote_literal_key(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  return out + "'";
}

// "schema"."table" for a configured name ("users" means public.users).
[[nodiscard]] inline std::string quote_table(std::string_view name) {
  const QualifiedName q = qualify(name);
  return quote_ident(q.schema) + "." + quote_ident(q.table);
}

}  // namespace pgphase::migration
