// Text of the statements pgphase sends instead of a client's write to a migrating table.
//
// A write W to the source becomes one statement, so it runs in the client's transaction and
// under its snapshot, and nothing is half-done if any part fails:
//
//   WITH [client's CTEs,]
//        "__pgphase_w" AS (W RETURNING [client's items,] <stored row image>),
//        "__pgphase_m" AS (<apply the image to the mirrored table by key>)
//   SELECT count(*) FROM "__pgphase_w"      -- W had no RETURNING
//   SELECT * FROM "__pgphase_w"             -- W had RETURNING: the image columns are stripped
//
// The image is what PostgreSQL stored (defaults, serials, now(), BEFORE triggers included), read
// back through RETURNING, never the client's expressions replayed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "router/routing_table.h"

namespace pgphase::router {

inline constexpr std::string_view kWriteCte = "\"__pgphase_w\"";

[[nodiscard]] std::string quote_ident(std::string_view ident);
[[nodiscard]] std::string quote_table(const TableName& t);
// A literal for pgphase's own messages: a backslash is spelled as a slash, so that the text
// reads the same under any standard_conforming_strings.
[[nodiscard]] std::string quote_literal(std::string_view text);
// A literal that PostgreSQL reads back as exactly `text` whatever the session's
// standard_conforming_strings and backslash_quote say ('...', or E'...' when it has a
// backslash).
[[nodiscard]] std::string quote_literal_exact(std::string_view text);
// pg_catalog.to_regclass('<name>'): the relation `name` resolves to under the session's
// search_path when the statement runs (NULL when none); `name.schema` "" = unqualified.
[[nodiscard]] std::string resolve_call(const TableName& name);

// The image columns to RETURN from the written table (referred to as `ref`, its alias or name):
// `ref."col" AS "__pgphase_<i>"`, numbered from 1.
[[nodiscard]] std::string image_list(std::string_view ref, const std::vector<ColumnPair>& cols,
                                     bool use_from);

// INSERT ... ON CONFLICT (key) DO UPDATE of the mirrored table from the image columns
// "__pgphase_1".. of kWriteCte (in `cols` order); `guard` (a boolean SQL expression, may be
// empty) must hold for anything to be applied.
[[nodiscard]] std::string mirror_upsert(const TableName& mirror,
                                        const std::vector<ColumnPair>& cols,
                                        const std::vector<ColumnPair>& key,
                                        std::string_view guard = {});

// The name of the whole-row image column of kWriteCte (and of the old images' CTE).
inline constexpr std::string_view kRowImage = "\"__pgphase_r\"";
inline constexpr std::string_view kOldCte = "\"__pgphase_o\"";

// `public.t_sys_row(ref.*) AS "__pgphase_r"`: the written row, typed, as one column.
[[nodiscard]] std::string row_image(std::string_view ref);

// SELECT public.t_sys_mirror_rows(...): applies the typed row images of kWriteCte (and, with
// `old`, deletes the keys the old images of kOldCte had and the new ones do not) to `mirror`,
// only when `used` (the name the client's statement wrote) resolves to `written` (the table
// the route writes). `migration_id` empty: strict (errors fail the statement); else eventual
// (subtransaction, failures logged to t_sys_dual_write_logs). One row.
struct MirrorCall {
  std::string_view migration_id;  // "" = strict
  std::string_view operation;     // insert / update / delete (eventual logs)
  const TableName* used = nullptr;
  const TableName* written = nullptr;
  const TableName* mirror = nullptr;
  const std::vector<ColumnPair>* columns = nullptr;
  const std::vector<ColumnPair>* key = nullptr;
  bool is_delete = false;
  bool old = false;
};
[[nodiscard]] std::string mirror_rows_call(const MirrorCall& call);

// A statement that fails with SQLSTATE 0A000 (feature_not_supported) and the given message when
// executed, so that the server itself aborts the transaction and skips to Sync as it would for
// any error. Needs no parameters.
[[nodiscard]] std::string refusal_statement(std::string_view message, std::string_view hint);

}  // namespace pgphase::router
