// libpg_query, called through its C API: the parse tree (protobuf-c structs, decoded once per
// analysed text) and the token stream (byte offsets of every token, comments left out). Internal
// to router/; nothing outside sees libpg_query's types.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct PgQuery__ParseResult;
struct PgQuery__Node;
struct ProtobufCMessage;

namespace pgphase::router {

class ParseTree {
 public:
  // nullptr when PostgreSQL's grammar rejects the text (the server will say why).
  static std::unique_ptr<ParseTree> parse(std::string_view sql);
  ~ParseTree();
  ParseTree(const ParseTree&) = delete;
  ParseTree& operator=(const ParseTree&) = delete;
  [[nodiscard]] const PgQuery__ParseResult& result() const noexcept { return *result_; }

 private:
  ParseTree() = default;
  PgQuery__ParseResult* result_ = nullptr;
};

struct Token {
  int32_t start = 0;  // byte offsets into the text, end exclusive
  int32_t end = 0;
  int32_t kind = 0;  // PgQuery__Token
};

// Every token of `sql` except comments; empty when the scanner fails.
[[nodiscard]] std::vector<Token> scan_tokens(std::string_view sql);

// Calls visit(const ProtobufCMessage&) for `root` and every message below it (depth first).
// Returning false from visit skips that message's children.
template <class Visit>
void walk(const ProtobufCMessage* root, Visit&& visit);
void walk_impl(const ProtobufCMessage* root, bool (*visit)(const ProtobufCMessage&, void*),
               void* ctx);

template <class Visit>
void walk(const ProtobufCMessage* root, Visit&& visit) {
  walk_impl(
      root,
      [](const ProtobufCMessage& m, void* ctx) -> bool { return (*static_cast<Visit*>(ctx))(m); },
      &visit);
}

}  // namespace pgphase::router
