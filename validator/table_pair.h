// The two tables a validation compares, as each side's catalog describes them: the compared
// column pairs (source column -> target column through the migration's column_map), the key, and
// for every column the SQL that renders it as text and hashes it. Each side is read through its
// own connection, so source and target may live in different databases.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "migration/pg_client.h"

namespace pgphase::validator {

namespace pg = migration::pg;

// What to compare: tables by name ("users" is public.users), the column map (source -> target,
// "" = dropped) and the key (empty: the source's primary key, else its first usable unique index).
struct PairSpec {
  std::string source_table;
  std::string target_table;
  std::map<std::string, std::string> column_map;
  std::vector<std::string> key_columns;
};

// One compared column. The *_hash expressions give a 64-bit hash (never NULL: NULL hashes to a
// per-column constant) that is equal on both sides exactly when the values are equal for the
// column's type: numerics with their scale, timestamptz as instants, jsonb semantically, text
// byte-wise (collation-independent), arrays and bytea by their text; different types on the two
// sides compare by text. *_text renders the value as text (the literal the fixes use).
struct ColumnPair {
  std::string source;  // column names
  std::string target;
  std::string source_hash;  // SQL over alias "a"
  std::string target_hash;
  std::string source_text;
  std::string target_text;
  bool target_generated = false;  // not written by fixes
  bool key = false;
};

struct TablePair {
  std::string source_name;  // as given (for reports)
  std::string target_name;
  std::string source_sql;  // quoted "schema"."table"
  std::string target_sql;
  std::vector<ColumnPair> columns;            // in the source's column order
  std::vector<std::size_t> key;               // indexes into columns, in key order
  std::vector<std::string> source_key_types;  // format_type of each key column, per side
  std::vector<std::string> target_key_types;
  bool target_identity_always = false;  // fixes need OVERRIDING SYSTEM VALUE
  // One key column, an integer type on both sides: buckets are key ranges (an index serves the
  // second pass) instead of key hashes.
  bool integer_key = false;
  std::vector<std::string> notes;  // columns compared on one side only, type differences

  // SQL over alias "a": the key as text (one column: its text; several: a JSON array of texts),
  // unique per row and ordered byte-wise (COLLATE "C"), the same on both sides.
  [[nodiscard]] std::string key_text(bool source) const;
  // SQL over alias "a": a 64-bit hash of the key (buckets) and of the whole row.
  [[nodiscard]] std::string key_hash(bool source) const;
  // SQL over alias "a": the first key column, quoted.
  [[nodiscard]] std::string key_column(bool source) const;
  [[nodiscard]] std::string row_hash(bool source) const;
  // "WHERE (k1, k2) IN (...$1...)": the rows whose keys are in $1, a JSON array of key texts as
  // key_text() renders them (an index on the key serves it).
  [[nodiscard]] std::string keys_filter(bool source) const;
};

// Reads both catalogs. Throws std::invalid_argument with the reason when a table is missing, has
// no usable key, or a column_map/key column is unknown.
[[nodiscard]] TablePair describe_pair(pg::Connection& source, pg::Connection& target,
                                      const PairSpec& spec);

// Key parts from a key_text() value (one part for a one-column key).
[[nodiscard]] std::vector<std::string> key_parts(const TablePair& p, const std::string& key_text);

}  // namespace pgphase::validator
