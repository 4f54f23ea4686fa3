// The answers to rewritten statements turned back into what PostgreSQL would have answered to the
// client's own statement: the command tag of a write rewritten as a count, RETURNING columns
// added by the rewrite stripped, NoData for the Describe of a write without RETURNING, and error
// positions mapped back into the client's text.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "intercept/reply_queue.h"
#include "router/query_plan.h"

namespace pgphase::intercept {

// The transform for the answer now arriving to `e` (a Query's current statement, a Describe's or
// an Execute's); nullptr: none.
[[nodiscard]] const router::ResultTransform* active_transform(const Expect& e);

// RowDescription: NoData for a write rewritten as a count, else the description without the
// columns the rewrite added. False (nothing appended): fewer columns than the rewrite added.
[[nodiscard]] bool client_row_description(const router::ResultTransform& t,
                                          std::span<const uint8_t> body, std::string& to_client);
// DataRow: a write's count row is kept in `e` (the client's statement returns no rows), else the
// row without the columns the rewrite added. False (nothing appended): fewer columns than that.
[[nodiscard]] bool client_data_row(Expect& e, const router::ResultTransform& t,
                                   std::span<const uint8_t> body, std::string& to_client);
// CommandComplete: the client-visible row count (a count row's value, or the tag's own count)
// and the client statement's tag. `body` must hold a NUL-terminated tag (terminated_tag()).
[[nodiscard]] int64_t client_rows(const Expect& e, const router::ResultTransform& t,
                                  std::span<const uint8_t> body);
[[nodiscard]] std::string client_command_complete(router::TagKind k, int64_t rows);
[[nodiscard]] bool terminated_tag(std::span<const uint8_t> body);
// ErrorResponse to `e` (which has a plan): positions in the rewritten text mapped into the
// client's (dropped where they fall in text the rewrite added).
void client_error(const Expect& e, std::span<const uint8_t> body, std::string& to_client);

}  // namespace pgphase::intercept
