#include "router/dual_write_sql.h"

namespace pgphase::router {

std::string quote_ident(std::string_view ident) {
  std::string out;
  out.reserve(ident.size() + 2);
  out.push_back('"');
  for (char c : ident) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string quote_table(const TableName& t) {
  return quote_ident(t.schema) + "." + quote_ident(t.table);
}

std::string quote_literal(std::string_view text) {
  // Standard-conforming literal: only quotes are doubled; a backslash would change meaning
  // under standard_conforming_strings=off, so it is spelled as a slash (messages only).
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c == '\\' ? '/' : c);
  }
  out.push_back('\'');
  return out;
}

namespace {
std::string image_name(size_t i) {
  return "\"__pgphase_" + std::to_string(i + 1) + "\"";
}
}  // namespace

std::string image_list(std::string_view ref, const std::vector<ColumnPair>& cols, bool use_from) {
  std::string out;
  for (size_t i = 0; i < cols.size(); ++i) {
    if (i > 0) out += ", ";
    out += ref;
    out += '.';
    out += quote_ident(use_from ? cols[i].from : cols[i].to);
    out += " AS ";
    out += image_name(i);
  }
  return out;
}

std::string mirror_upsert(const TableName& mirror, const std::vector<ColumnPair>& cols,
                          const std::vector<ColumnPair>& key) {
  std::string out = "INSERT INTO " + quote_table(mirror) + " (";
  for (size_t i = 0; i < cols.size(); ++i) {
    if (i > 0) out += ", ";
    out += quote_ident(cols[i].to);
  }
  out += ") OVERRIDING SYSTEM VALUE SELECT ";
  for (size_t i = 0; i < cols.size(); ++i) {
    if (i > 0) out += ", ";
    out += image_name(i);
  }
  out += " FROM ";
  out += kWriteCte;
  out += " ON CONFLICT (";
  for (size_t i = 0; i < key.size(); ++i) {
    if (i > 0) out += ", ";
    out += quote_ident(key[i].to);
  }
  out += ") DO ";
  std::string sets;
  for (const auto& c : cols) {
    bool is_key = false;
    for (const auto& k : key) is_key = is_key || k.to == c.to;
    if (is_key) continue;
    if (!sets.empty()) sets += ", ";
    sets += quote_ident(c.to) + " = EXCLUDED." + quote_ident(c.to);
  }
  out += sets.empty() ? std::string("NOTHING") : "UPDATE SET " + sets;
  return out;
}

namespace {

std::string name_array(const std::vector<ColumnPair>& v) {
  std::string a = "ARRAY[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) a += ", ";
    a += quote_literal(v[i].to);
  }
  return a + "]::text[]";
}

// The image columns of kWriteCte (in `cols` order) as a JSON array of objects keyed by the
// mirrored table's column names.
std::string image_rows_json(const std::vector<ColumnPair>& cols) {
  std::string out = "(SELECT jsonb_agg(to_jsonb(\"__pgphase_x\")) FROM (SELECT ";
  for (size_t i = 0; i < cols.size(); ++i) {
    if (i > 0) out += ", ";
    out += image_name(i) + " AS " + quote_ident(cols[i].to);
  }
  out += " FROM ";
  out += kWriteCte;
  return out + ") \"__pgphase_x\")";
}

}  // namespace

std::string mirror_delete(const TableName& mirror, const std::vector<ColumnPair>& key) {
  return "SELECT public.t_sys_mirror_delete(" + quote_literal(quote_table(mirror)) + ", " +
         name_array(key) + ", " + image_rows_json(key) + ") AS \"__pgphase_n\"";
}

std::string mirror_apply_call(std::string_view migration_id, std::string_view operation,
                              const TableName& mirror, const std::vector<ColumnPair>& cols,
                              const std::vector<ColumnPair>& key, bool is_delete) {
  return "SELECT public.t_sys_mirror_apply(" + quote_literal(migration_id) + ", " +
         quote_literal(operation) + ", " + quote_literal(quote_table(mirror)) + ", " +
         name_array(cols) + ", " + name_array(key) + ", " + (is_delete ? "true" : "false") + ", " +
         image_rows_json(cols) + ") AS \"__pgphase_n\"";
}

std::string refusal_statement(std::string_view message, std::string_view hint) {
  std::string body =
      "BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = " + quote_literal(message) +
      ", HINT = " + quote_literal(hint) + "; END";
  // The dollar quote must not occur in the body; messages are ours, but names come from users.
  std::string tag = "$pgphase$";
  while (body.find(tag) != std::string::npos) tag.insert(tag.size() - 1, "_");
  return "DO " + tag + body + tag;
}

}  // namespace pgphase::router
