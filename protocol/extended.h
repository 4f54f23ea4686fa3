// Whole-message codec for the query messages pgphase must read or rewrite: simple and extended
// query (Query, Parse, Bind, Describe/Close, Execute) and the backend replies whose columns or
// positions it adjusts (RowDescription, DataRow, ErrorResponse/NoticeResponse).
//
// Pure: no I/O, nothing thrown for bad input. "body" is a message without its type byte and
// length; decoders accept exactly the layout PostgreSQL accepts (every string NUL-terminated, all
// counts and lengths fit, no trailing bytes) and return std::nullopt otherwise. Returned views
// point into the body. Encoders return the whole message (type byte, length, body).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgphase::protocol {

// ---- Frontend ----

// Query ('Q'): the SQL text without its NUL (which must end the body).
[[nodiscard]] std::optional<std::string_view> decode_query(std::span<const uint8_t> body);
// ParameterStatus: name and value.
[[nodiscard]] std::optional<std::pair<std::string_view, std::string_view>> decode_parameter_status(
    std::span<const uint8_t> body);
// `sql` must not contain a NUL byte. append_query() appends the message to `out`.
[[nodiscard]] std::string encode_query(std::string_view sql);
void append_query(std::string& out, std::string_view sql);

// Parse ('P').
struct ParseMessage {
  std::string_view name;
  std::string_view query;
  // The raw tail: int16 count + count * int32 type OIDs, exactly as received.
  std::span<const uint8_t> param_types;
};
[[nodiscard]] std::optional<ParseMessage> decode_parse(std::span<const uint8_t> body);
// `param_types` is a tail as in ParseMessage; an empty span writes a zero count. append_parse()
// appends the message to `out`.
[[nodiscard]] std::string encode_parse(std::string_view name, std::string_view query,
                                       std::span<const uint8_t> param_types);
void append_parse(std::string& out, std::string_view name, std::string_view query,
                  std::span<const uint8_t> param_types);

// Bind ('B'). Only the layout is checked (parameter format codes, parameters with length -1 for
// NULL, result format codes); how counts match the statement is left to the server.
struct BindMessage {
  std::string_view portal;
  std::string_view statement;
  uint16_t n_result_formats = 0;
  size_t result_formats_offset = 0;  // offset in the body of the int16 count of result formats
};
[[nodiscard]] std::optional<BindMessage> decode_bind(std::span<const uint8_t> body);

// The parameters of a Bind: per-parameter format (0 text, 1 binary, after Bind's rules: none =
// all text, one = all that one) and value (nullopt = NULL). nullopt if malformed.
struct BindParams {
  std::vector<int16_t> formats;
  std::vector<std::optional<std::string_view>> values;
};
[[nodiscard]] std::optional<BindParams> decode_bind_params(std::span<const uint8_t> body);

// For a bound statement that returns `extra` more columns than the `client_columns` the client
// knows of. If the client gave one result format code per column (n_result_formats > 1, or == 1
// with client_columns == 1), returns the whole 'B' message with `extra` text (0) codes appended
// and the count fixed; otherwise (no codes, or one code for all columns) the whole message as it
// was. `m` must come from decode_bind(body); if it does not fit `body`, or the count would pass
// 65535, the message is also returned as it was.
[[nodiscard]] std::string bind_with_extra_result_columns(std::span<const uint8_t> body,
                                                         const BindMessage& m,
                                                         uint16_t client_columns, uint16_t extra);

// Result format of column `column` (0-based) under Bind's rules: no codes means text (0), one
// code applies to every column, otherwise one code per column (text for a column past the end).
[[nodiscard]] int16_t bind_result_format(std::span<const uint8_t> body, const BindMessage& m,
                                         uint16_t column);

// Describe ('D') and Close ('C') share a layout: 'S' (statement) or 'P' (portal), then a name.
struct NamedTarget {
  char kind = 0;  // 'S' or 'P'
  std::string_view name;
};
[[nodiscard]] std::optional<NamedTarget> decode_describe(std::span<const uint8_t> body);

// Execute ('E'): the portal name (the row limit is ignored).
[[nodiscard]] std::optional<std::string_view> decode_execute_portal(std::span<const uint8_t> body);

// ---- Backend ----

// RowDescription ('T'): the field count of a well-formed body.
[[nodiscard]] std::optional<uint16_t> row_description_field_count(std::span<const uint8_t> body);
// The whole 'T' message keeping only the first `keep` fields (each: name NUL + 18 bytes).
// nullopt if the body is malformed or keep > count.
[[nodiscard]] std::optional<std::string> row_description_keep(std::span<const uint8_t> body,
                                                              uint16_t keep);

// DataRow ('D'): the whole message keeping only the first `keep` columns (each: int32 length,
// -1 for NULL, then that many bytes). nullopt if the body is malformed or keep > count.
[[nodiscard]] std::optional<std::string> data_row_keep(std::span<const uint8_t> body,
                                                       uint16_t keep);
// Column 0 of a well-formed DataRow as an integer: in text format ASCII digits with an optional
// leading '-', in binary an int8 or int4 (by length 8 or 4). nullopt if NULL, absent, malformed
// or out of range.
[[nodiscard]] std::optional<int64_t> data_row_first_int(std::span<const uint8_t> body, bool binary);

[[nodiscard]] std::string encode_command_complete(std::string_view tag);
[[nodiscard]] std::string encode_no_data();

// ErrorResponse/NoticeResponse (`type` 'E' or 'N'; fields are a code byte and a NUL-terminated
// value, ended by a 0 byte): the whole message with each 'P' (1-based character position,
// decimal) field replaced by `map`'s result, or dropped when `map` returns nullopt or the value
// is not a decimal uint32. Other fields are copied as they are. nullopt if the body is malformed.
[[nodiscard]] std::optional<std::string> error_map_position(
    char type, std::span<const uint8_t> body,
    const std::function<std::optional<uint32_t>(uint32_t)>& map);

}  // namespace pgphase::protocol
