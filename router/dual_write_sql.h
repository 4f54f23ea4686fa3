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
[[nodiscard]] std::string quote_literal(std::string_view text);

// The image columns to RETURN from the written table (referred to as `ref`, its alias or name):
// `ref."col" AS "__pgphase_<i>"`, numbered from 1.
[[nodiscard]] std::string image_list(std::string_view ref, const std::vector<ColumnPair>& cols,
                                     bool use_from);

// INSERT ... ON CONFLICT (key) DO UPDATE of the mirrored table from the image columns
// "__pgphase_1".. of kWriteCte (in `cols` order).
[[nodiscard]] std::string mirror_upsert(const TableName& mirror,
                                        const std::vector<ColumnPair>& cols,
                                        const std::vector<ColumnPair>& key);

// SELECT t_sys_mirror_delete(...): deletes from the mirrored table the rows whose key is among
// image columns "__pgphase_1".. of kWriteCte (in `key` order), one row. Through the function
// (created with the control schema) so that the DELETE takes its own snapshot: a row the backfill
// committed after the client's statement began (while it waited for the backfill's lock on the
// source row) is seen and deleted. Errors fail the statement (strict).
[[nodiscard]] std::string mirror_delete(const TableName& mirror,
                                        const std::vector<ColumnPair>& key);

// eventual consistency: SELECT t_sys_mirror_apply(...) over the image columns of kWriteCte (in
// `cols` order, keyed by the mirrored table's column names), one row. The function (created with
// the control schema) upserts or deletes by key in a subtransaction; a failure is logged to
// t_sys_dual_write_logs and does not fail the statement.
[[nodiscard]] std::string mirror_apply_call(std::string_view migration_id,
                                            std::string_view operation, const TableName& mirror,
                                            const std::vector<ColumnPair>& cols,
                                            const std::vector<ColumnPair>& key, bool is_delete);

// A statement that fails with SQLSTATE 0A000 (feature_not_supported) and the given message when
// executed, so that the server itself aborts the transaction and skips to Sync as it would for
// any error. Needs no parameters.
[[nodiscard]] std::string refusal_statement(std::string_view message, std::string_view hint);

}  // namespace pgphase::router
