// The messages pgphase writes to the server in place of, or beside, the client's own: a Bind of a
// refused statement, a Bind of a statement's twin, an Execute run to completion, a Close of a
// statement about to be prepared again. Each is appended to `out` (the bytes going to the server).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "protocol/extended.h"

namespace pgphase::intercept {

// Message `type` with `body` as it came.
void append_raw(std::string& out, char type, std::span<const uint8_t> body);

// Bind of a refused statement: no parameters, no formats (it takes none).
void append_bare_bind(std::string& out, std::string_view portal, std::string_view statement);
// The same Bind (`m` decoded from `body`) with another statement name.
void append_bind_renamed(std::string& out, std::span<const uint8_t> body,
                         const protocol::BindMessage& m, std::string_view statement);
// The same Execute (`body` at least the row limit long) with no row limit.
void append_execute_unlimited(std::string& out, std::span<const uint8_t> body);
// Close of prepared statement `name`.
void append_close_statement(std::string& out, std::string_view name);

}  // namespace pgphase::intercept
