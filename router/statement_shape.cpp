#include "router/statement_shape.h"

namespace pgphase::router {
namespace {

// scan.l: ident_start [A-Za-z\200-\377_], ident_cont [A-Za-z\200-\377_0-9\$].
bool ident_start(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c >= 0x80;
}
bool ident_cont(unsigned char c) {
  return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}
bool digit(unsigned char c) {
  return c >= '0' && c <= '9';
}
// dolq_start [A-Za-z\200-\377_], dolq_cont [A-Za-z\200-\377_0-9].
bool dolq_cont(unsigned char c) {
  return ident_start(c) || digit(c);
}

class Scanner {
 public:
  Scanner(std::string_view sql, std::vector<Literal>& out) : s_(sql), out_(out) {}

  bool run() {
    out_.clear();
    while (i_ < s_.size()) {
      const unsigned char c = at(i_);
      if (c == '-' && at(i_ + 1) == '-') {
        skip_line_comment();
      } else if (c == '/' && at(i_ + 1) == '*') {
        if (!skip_block_comment()) return false;
      } else if (c == '\'') {
        if (!string(i_, i_ + 1, false, Literal::Kind::kString)) return false;
      } else if (c == '"') {
        if (!quoted_identifier()) return false;
      } else if (c == '$') {
        if (!dollar()) return false;
      } else if (digit(c) || (c == '.' && digit(at(i_ + 1)))) {
        if (!number()) return false;
      } else if (ident_start(c)) {
        if (!identifier()) return false;
      } else {
        ++i_;
      }
    }
    return true;
  }

 private:
  [[nodiscard]] unsigned char at(size_t k) const {
    return k < s_.size() ? static_cast<unsigned char>(s_[k]) : '\0';
  }
  void add(size_t start, size_t end, Literal::Kind kind) {
    out_.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(end), kind});
  }

  void skip_line_comment() {
    while (i_ < s_.size() && s_[i_] != '\n' && s_[i_] != '\r') ++i_;
  }
  // Block comments nest (scan.l's xc state counts depth).
  bool skip_block_comment() {
    int depth = 0;
    while (i_ < s_.size()) {
      if (at(i_) == '/' && at(i_ + 1) == '*') {
        ++depth;
        i_ += 2;
      } else if (at(i_) == '*' && at(i_ + 1) == '/') {
        i_ += 2;
        if (--depth == 0) return true;
      } else {
        ++i_;
      }
    }
    return false;  // unterminated
  }

  // A string whose body starts at `body` (after the opening quote) and whose literal starts at
  // `start` (its prefix included). With `escapes` (E''), a backslash takes the next byte.
  bool string(size_t start, size_t body, bool escapes, Literal::Kind kind) {
    size_t k = body;
    while (true) {
      if (k >= s_.size()) return false;  // unterminated
      const char c = s_[k];
      if (escapes && c == '\\') {
        k += 2;
      } else if (c == '\'') {
        if (at(k + 1) == '\'') {
          k += 2;  // xqdouble
        } else {
          ++k;
          break;
        }
      } else {
        ++k;
      }
    }
    // scan.l's quotecontinue: a quote after whitespace holding a newline continues the literal
    // (and after other whitespace it is a syntax error); either way, not a text to shape.
    size_t n = k;
    while (n < s_.size()) {
      const char c = s_[n];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        ++n;
      } else if (c == '-' && at(n + 1) == '-') {
        while (n < s_.size() && s_[n] != '\n' && s_[n] != '\r') ++n;
      } else {
        break;
      }
    }
    if (at(n) == '\'') return false;
    add(start, k, kind);
    i_ = k;
    return true;
  }

  bool quoted_identifier() {
    size_t k = i_ + 1;
    while (true) {
      if (k >= s_.size()) return false;
      if (s_[k] == '"') {
        if (at(k + 1) != '"') break;
        k += 2;
      } else {
        ++k;
      }
    }
    i_ = k + 1;
    return true;
  }

  // $1 (a parameter, part of the shape), or a dollar-quoted string: $tag$ ... $tag$.
  bool dollar() {
    size_t k = i_ + 1;
    if (digit(at(k))) {
      while (digit(at(k))) ++k;
      if (ident_cont(at(k))) return false;  // param_junk
      i_ = k;
      return true;
    }
    if (at(k) != '$') {
      if (!ident_start(at(k)) || digit(at(k))) return false;
      while (dolq_cont(at(k))) ++k;
      if (at(k) != '$') return false;
    }
    const std::string_view tag = s_.substr(i_, k + 1 - i_);
    const size_t close = s_.find(tag, k + 1);
    if (close == std::string_view::npos) return false;
    add(i_, close + tag.size(), Literal::Kind::kDollar);
    i_ = close + tag.size();
    return true;
  }

  // integer [0-9]+, decimal ([0-9]*\.[0-9]+)|([0-9]+\.[0-9]*), real ({integer}|{decimal})
  // [Ee][-+]?[0-9]+; "1..2" is the integer 1 followed by "..". Letters right after a number
  // are an error in PostgreSQL 15 (integer_junk, realfail): shapeless.
  bool number() {
    const size_t start = i_;
    size_t k = i_;
    bool integer = true;
    while (digit(at(k))) ++k;
    if (at(k) == '.' && at(k + 1) != '.') {
      integer = false;
      ++k;
      while (digit(at(k))) ++k;
    }
    if (at(k) == 'e' || at(k) == 'E') {
      size_t e = k + 1;
      if (at(e) == '+' || at(e) == '-') ++e;
      if (!digit(at(e))) return false;
      while (digit(at(e))) ++e;
      k = e;
      integer = false;
    }
    if (ident_cont(at(k)) || at(k) == '.') return false;
    // An integer beyond int32 is a numeric constant to the grammar (scan.l's
    // process_integer_literal), where some rules take integers only (e.g. varchar(n)).
    if (integer) {
      size_t first = start;
      while (first + 1 < k && s_[first] == '0') ++first;
      const std::string_view v = s_.substr(first, k - first);
      integer = v.size() < 10 || (v.size() == 10 && v <= "2147483647");
    }
    add(start, k, integer ? Literal::Kind::kInteger : Literal::Kind::kNumeric);
    i_ = k;
    return true;
  }

  // A word; one letter right before a quote is a string prefix (scan.l: xestart, xnstart,
  // xbstart, xhstart, xusstart, xuistart).
  bool identifier() {
    const unsigned char c = at(i_);
    const unsigned char next = at(i_ + 1);
    if (next == '\'') {
      switch (c) {
        case 'e':
        case 'E':
          return string(i_, i_ + 2, true, Literal::Kind::kEscape);
        case 'n':
        case 'N':
          ++i_;  // NATIONAL CHARACTER: the letter is a keyword, the string a plain one
          return string(i_, i_ + 1, false, Literal::Kind::kString);
        case 'b':
        case 'B':
        case 'x':
        case 'X':
          return false;
        default:
          break;
      }
    }
    if ((c == 'u' || c == 'U') && next == '&' && (at(i_ + 2) == '\'' || at(i_ + 2) == '"'))
      return false;
    while (ident_cont(at(i_))) ++i_;
    return true;
  }

  std::string_view s_;
  std::vector<Literal>& out_;
  size_t i_ = 0;
};

}  // namespace

bool scan_literals(std::string_view sql, std::vector<Literal>& out) {
  return Scanner(sql, out).run();
}

void shape_key(std::string_view sql, const std::vector<Literal>& literals, std::string& key) {
  key.clear();
  key.reserve(sql.size());
  size_t at = 0;
  for (const Literal& l : literals) {
    key.append(sql.substr(at, l.start - at));
    key.push_back('\0');
    key.push_back(static_cast<char>(l.kind));
    at = l.end;
  }
  key.append(sql.substr(at));
}

}  // namespace pgphase::router
