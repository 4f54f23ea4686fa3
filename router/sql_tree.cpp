#include "router/sql_tree.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

namespace pgphase::router {

std::unique_ptr<ParseTree> ParseTree::parse(std::string_view sql) {
  const std::string text(sql);  // libpg_query wants a NUL-terminated string
  PgQueryProtobufParseResult r = pg_query_parse_protobuf(text.c_str());
  std::unique_ptr<ParseTree> tree;
  if (r.error == nullptr) {
    PgQuery__ParseResult* unpacked = pg_query__parse_result__unpack(
        nullptr, r.parse_tree.len, reinterpret_cast<const uint8_t*>(r.parse_tree.data));
    if (unpacked != nullptr) {
      tree.reset(new ParseTree());  // private constructor: make_unique cannot reach it
      tree->result_ = unpacked;
    }
  }
  pg_query_free_protobuf_parse_result(r);
  return tree;
}

ParseTree::~ParseTree() {
  if (result_ != nullptr) pg_query__parse_result__free_unpacked(result_, nullptr);
}

std::vector<Token> scan_tokens(std::string_view sql) {
  const std::string text(sql);
  PgQueryScanResult r = pg_query_scan(text.c_str());
  std::vector<Token> out;
  if (r.error == nullptr) {
    PgQuery__ScanResult* s = pg_query__scan_result__unpack(
        nullptr, r.pbuf.len, reinterpret_cast<const uint8_t*>(r.pbuf.data));
    if (s != nullptr) {
      out.reserve(s->n_tokens);
      for (size_t i = 0; i < s->n_tokens; ++i) {
        const PgQuery__ScanToken* t = s->tokens[i];
        if (t->token == PG_QUERY__TOKEN__SQL_COMMENT || t->token == PG_QUERY__TOKEN__C_COMMENT)
          continue;
        out.push_back({t->start, t->end, static_cast<int32_t>(t->token)});
      }
      pg_query__scan_result__free_unpacked(s, nullptr);
    }
  }
  pg_query_free_scan_result(r);
  return out;
}

void walk_impl(const ProtobufCMessage* root, bool (*visit)(const ProtobufCMessage&, void*),
               void* ctx) {
  if (root == nullptr) return;
  if (!visit(*root, ctx)) return;
  const ProtobufCMessageDescriptor* d = root->descriptor;
  const auto* base = reinterpret_cast<const uint8_t*>(root);
  for (unsigned i = 0; i < d->n_fields; ++i) {
    const ProtobufCFieldDescriptor& f = d->fields[i];
    if (f.type != PROTOBUF_C_TYPE_MESSAGE) continue;
    if ((f.flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
      // A oneof (PgQuery__Node): only the member named by the case field is set.
      const auto which = *reinterpret_cast<const uint32_t*>(base + f.quantifier_offset);
      if (which != f.id) continue;
    }
    if (f.label == PROTOBUF_C_LABEL_REPEATED) {
      const size_t n = *reinterpret_cast<const size_t*>(base + f.quantifier_offset);
      const auto* items = *reinterpret_cast<ProtobufCMessage* const* const*>(base + f.offset);
      for (size_t k = 0; k < n; ++k) walk_impl(items[k], visit, ctx);
    } else {
      walk_impl(*reinterpret_cast<ProtobufCMessage* const*>(base + f.offset), visit, ctx);
    }
  }
}

}  // namespace pgphase::router
