// A text the router sends instead of the client's: runs of pgphase's own text and runs copied
// from the client's text, with the marks that map an error position in it back to the client's
// text (QueryPlan::segments). The planner describes every text it builds this way and renders
// it for the text it planned; the shape cache (plan_lookup.h) renders the same description for
// another text of the same shape, whose literals sit at other offsets: one description serves
// both, so a text rendered from the cache is the text the planner would have built.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "router/query_plan.h"
#include "router/statement_shape.h"

namespace pgphase::router {

// Where the offsets of the planned text fall in another text of its shape: each literal of the
// planned text (`from`) has the same-numbered literal of the other (`to`) in its place.
class OffsetShift {
 public:
  OffsetShift() = default;  // the identity
  OffsetShift(const std::vector<Literal>& from, const std::vector<Literal>& to)
      : from_(&from), to_(&to) {}
  // `offset` (not inside a literal of `from`) in the other text.
  [[nodiscard]] uint32_t operator()(uint32_t offset) const noexcept;

 private:
  const std::vector<Literal>* from_ = nullptr;
  const std::vector<Literal>* to_ = nullptr;
};

class TextTemplate {
 public:
  // pgphase's own text.
  void own(std::string_view text);
  // `length` bytes of the client's text from `from`.
  void client(size_t from, size_t length);
  // The start of a client statement that the text replaces: an error position in what follows
  // that is not in a copied run maps to it.
  void statement_start(size_t at);

  // The text for `client` (the planned text when `shift` is the identity) into `out`, and its
  // error-position segments into `segments` (both cleared first).
  void render(std::string_view client, const OffsetShift& shift, std::string& out,
              std::vector<TextSegment>& segments) const;
  // Whether no literal straddles the edge of a copied run (then every text of the shape
  // renders with its own literals in place of the planned ones).
  [[nodiscard]] bool keeps_literals_whole(const std::vector<Literal>& literals) const;
  [[nodiscard]] bool empty() const noexcept { return parts_.empty(); }
  [[nodiscard]] size_t bytes() const noexcept {
    return own_.capacity() + parts_.capacity() * sizeof(Part);
  }

 private:
  struct Part {
    enum class Kind : uint8_t { kOwn, kClient, kStatementStart };
    Kind kind;
    uint32_t from;  // kOwn: into own_; kClient, kStatementStart: into the client's text
    uint32_t length;
    uint32_t chars = 0;  // kOwn: its characters, counted once
  };
  std::string own_;
  std::vector<Part> parts_;
};

}  // namespace pgphase::router
