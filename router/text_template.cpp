#include "router/text_template.h"

#include <algorithm>

namespace pgphase::router {
namespace {

// Characters (UTF-8 lead bytes) of `s`: error positions count characters.
uint32_t chars(std::string_view s) {
  uint32_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

bool ascii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

}  // namespace

uint32_t OffsetShift::operator()(uint32_t offset) const noexcept {
  if (from_ == nullptr) return offset;
  // Literals of the planned text that end at or before `offset` moved it by their change of
  // length.
  const auto end = std::upper_bound(from_->begin(), from_->end(), offset,
                                    [](uint32_t o, const Literal& l) { return o < l.end; });
  int64_t shifted = offset;
  for (auto it = from_->begin(); it != end; ++it) {
    const Literal& other = (*to_)[static_cast<size_t>(it - from_->begin())];
    shifted += static_cast<int64_t>(other.length()) - static_cast<int64_t>(it->length());
  }
  return static_cast<uint32_t>(shifted);
}

void TextTemplate::own(std::string_view text) {
  if (text.empty()) return;
  if (!parts_.empty() && parts_.back().kind == Part::Kind::kOwn &&
      parts_.back().from + parts_.back().length == own_.size()) {
    parts_.back().length += static_cast<uint32_t>(text.size());
    parts_.back().chars += chars(text);
  } else {
    parts_.push_back({Part::Kind::kOwn, static_cast<uint32_t>(own_.size()),
                      static_cast<uint32_t>(text.size()), chars(text)});
  }
  own_ += text;
}

void TextTemplate::client(size_t from, size_t length) {
  if (length == 0) return;
  parts_.push_back(
      {Part::Kind::kClient, static_cast<uint32_t>(from), static_cast<uint32_t>(length)});
}

void TextTemplate::statement_start(size_t at) {
  parts_.push_back({Part::Kind::kStatementStart, static_cast<uint32_t>(at), 0});
}

void TextTemplate::render(std::string_view client, const OffsetShift& shift, std::string& out,
                          std::vector<TextSegment>& segments) const {
  out.clear();
  segments.clear();
  const bool one_byte_chars = ascii(client);
  const auto client_chars = [&](uint32_t upto) {
    return one_byte_chars ? upto : chars(client.substr(0, upto));
  };
  uint32_t out_chars = 0;
  for (const Part& p : parts_) {
    switch (p.kind) {
      case Part::Kind::kOwn: {
        out += std::string_view(own_).substr(p.from, p.length);
        out_chars += p.chars;
        break;
      }
      case Part::Kind::kClient: {
        const uint32_t from = shift(p.from);
        const uint32_t to = shift(p.from + p.length);
        const std::string_view text = client.substr(from, to - from);
        const uint32_t n = one_byte_chars ? static_cast<uint32_t>(text.size()) : chars(text);
        segments.push_back({out_chars, client_chars(from), n});
        out += text;
        out_chars += n;
        break;
      }
      case Part::Kind::kStatementStart:
        segments.push_back({out_chars, client_chars(shift(p.from)), 0});
        break;
    }
  }
}

bool TextTemplate::keeps_literals_whole(const std::vector<Literal>& literals) const {
  for (const Part& p : parts_) {
    if (p.kind == Part::Kind::kOwn) continue;
    const uint32_t lo = p.from;
    const uint32_t hi = p.from + p.length;
    for (const Literal& l : literals) {
      const bool straddles_lo = l.start < lo && lo < l.end;
      const bool straddles_hi = p.kind == Part::Kind::kClient && l.start < hi && hi < l.end;
      if (straddles_lo || straddles_hi) return false;
    }
  }
  return true;
}

}  // namespace pgphase::router
