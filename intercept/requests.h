// The messages pgphase writes to the server in place of, or beside, the client's own: a Bind of a
// refused statement, a Bind of a statement's twin, an Execute run to completion, a Close of a
// statement about to be prepared again.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "protocol/extended.h"

namespace pgphase::intercept {

// Appends message `type` with `body` as it came.
void append_raw(std::string& out, char type, std::span<const uint8_t> body);

// Bind of a refused statement: no parameters, no formats (it takes none).
[[nodiscard]] std::string bare_bind(std::string_view portal, std::string_view statement);
// The same Bind (`m` decoded from `body`) with another statement name.
[[nodiscard]] std::string bind_renamed(std::span<const uint8_t> body,
                                       const protocol::BindMessage& m, std::string_view statement);
// The same Execute (`body` at least the row limit long) with no row limit.
[[nodiscard]] std::string execute_unlimited(std::span<const uint8_t> body);
// Close of prepared statement `name`.
[[nodiscard]] std::string close_statement(std::string_view name);

}  // namespace pgphase::intercept
