// The shape of a statement text: the text with its literal constants taken out. Applications
// that inline literals (psycopg2, Django, Rails in the simple protocol, many ORMs) send a new
// text for every write, but few shapes; plans are cached by shape (plan_lookup.h) and the
// literals put back exactly as the client wrote them (text_template.h). ProxySQL's digest and
// Readyset's proposal key their caches the same way.
//
// The scanner follows PostgreSQL 15's lexer (src/backend/parser/scan.l) for the context plans
// are cached in: standard_conforming_strings on and a client_encoding in which no multibyte
// character holds a backslash byte (router::PlanContext::is_default). Whatever it does not read
// exactly as the server does makes the text shapeless, and such a text is planned on its own:
// U&'' and U&"" (their UESCAPE changes how the body reads), B'' and X'' strings, strings
// continued over a newline, a number followed by letters (an error in PostgreSQL 15), an
// unterminated literal, quoted identifier or comment.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgphase::router {

struct Literal {
  enum class Kind : char {
    kString = 'S',   // '...' (also the body of N'...')
    kEscape = 'E',   // E'...'
    kDollar = 'D',   // $tag$...$tag$
    kInteger = 'I',  // 123 (within int32)
    kNumeric = 'F',  // 1.5, .5, 1e10, 2147483648
  };
  uint32_t start = 0;  // byte offsets into the text, end exclusive
  uint32_t end = 0;
  Kind kind = Kind::kString;
  [[nodiscard]] uint32_t length() const noexcept { return end - start; }
  bool operator==(const Literal&) const = default;
};

// The literals of `sql` in order, into `out` (cleared first). False when the text is shapeless
// (see above); `out` is then unspecified.
[[nodiscard]] bool scan_literals(std::string_view sql, std::vector<Literal>& out);

// The shape key of `sql`: the text with each literal replaced by a NUL byte and its kind (a NUL
// cannot occur in a Query or Parse string). Equal keys mean equal texts but for the literals'
// values. Written into `key` (cleared first).
void shape_key(std::string_view sql, const std::vector<Literal>& literals, std::string& key);

}  // namespace pgphase::router
