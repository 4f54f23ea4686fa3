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

std::string quote_literal_exact(std::string_view text) {
  const bool escape = text.find('\\') != std::string_view::npos;
  std::string out = escape ? "E'" : "'";
  for (char c : text) {
    if (c == '\'' || (escape && c == '\\')) out.push_back(c);
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string resolve_call(const TableName& name) {
  return "pg_catalog.to_regclass(" +
         quote_literal_exact(name.schema.empty() ? quote_ident(name.table) : quote_table(name)) +
         ")";
}

std::string row_image(std::string_view ref) {
  return "public.t_sys_row(" + std::string(ref) + ".*) AS " + std::string(kRowImage);
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
                          const std::vector<ColumnPair>& key, std::string_view guard) {
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
  if (!guard.empty()) {
    out += " WHERE ";
    out += guard;
  }
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

// ARRAY['a', 'b']::text[] of the mirrored table's column names (`to`), or of the written
// table's (`from`).
std::string name_array(const std::vector<ColumnPair>& v, bool from = false) {
  std::string a = "ARRAY[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) a += ", ";
    a += quote_literal_exact(from ? v[i].from : v[i].to);
  }
  return a + "]::text[]";
}

}  // namespace

std::string mirror_rows_call(const MirrorCall& c) {
  std::string out = "SELECT public.t_sys_mirror_rows(";
  out += c.migration_id.empty() ? std::string("NULL") : quote_literal_exact(c.migration_id);
  out += ", " + quote_literal_exact(c.operation) + ", " + resolve_call(*c.written) + ", " +
         resolve_call(*c.used) + ", " + quote_literal_exact(quote_table(*c.mirror)) + ", ";
  out += name_array(*c.columns, true) + ", " + name_array(*c.columns) + ", " +
         name_array(*c.key, true) + ", " + name_array(*c.key) + ", " +
         (c.is_delete ? "true" : "false");
  out +=
      ", (SELECT array_agg(" + std::string(kRowImage) + ") FROM " + std::string(kWriteCte) + "), ";
  out +=
      c.old ? "(SELECT array_agg(" + std::string(kRowImage) + ") FROM " + std::string(kOldCte) + ")"
            : std::string("NULL");
  return out + ") AS \"__pgphase_n\"";
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
