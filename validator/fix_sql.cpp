#include "validator/fix_sql.h"

#include "migration/sql_text.h"

namespace pgphase::validator {

using migration::quote_ident;

std::string literal(const Value& v) {
  if (!v) return "NULL";
  std::string out = "'";
  for (char c : *v) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  return out + "'";
}

namespace {

std::string where_key(const TablePair& p, const std::vector<std::string>& key) {
  std::string out;
  for (std::size_t n = 0; n < p.key.size() && n < key.size(); ++n)
    out += (n ? " AND " : "") + quote_ident(p.columns[p.key[n]].target) + " = " + literal(key[n]);
  return out;
}

}  // namespace

std::string upsert_sql(const TablePair& p, const std::vector<Row>& rows) {
  std::string cols;
  std::string keys;
  std::string sets;
  for (const auto& c : p.columns) {
    if (c.target_generated) continue;
    cols += (cols.empty() ? "" : ", ") + quote_ident(c.target);
    if (c.key)
      keys += (keys.empty() ? "" : ", ") + quote_ident(c.target);
    else
      sets += (sets.empty() ? "" : ", ") + quote_ident(c.target) + " = EXCLUDED." +
              quote_ident(c.target);
  }
  std::string values;
  for (const auto& r : rows) {
    std::string one;
    for (std::size_t i = 0; i < p.columns.size() && i < r.size(); ++i) {
      if (p.columns[i].target_generated) continue;
      one += (one.empty() ? "" : ", ") + literal(r[i]);
    }
    values += (values.empty() ? "(" : ", (") + one + ")";
  }
  return "INSERT INTO " + p.target_sql + " (" + cols + ")" +
         (p.target_identity_always ? " OVERRIDING SYSTEM VALUE" : "") + " VALUES " + values +
         " ON CONFLICT (" + keys + ") DO " + (sets.empty() ? "NOTHING" : "UPDATE SET " + sets);
}

std::string delete_sql(const TablePair& p, const std::vector<std::vector<std::string>>& keys) {
  std::string where;
  for (const auto& k : keys) where += (where.empty() ? "(" : " OR (") + where_key(p, k) + ")";
  return "DELETE FROM " + p.target_sql + " WHERE " + where;
}

std::string update_sql(const TablePair& p, std::size_t column, const Value& v,
                       const std::vector<std::string>& key) {
  return "UPDATE " + p.target_sql + " SET " + quote_ident(p.columns[column].target) + " = " +
         literal(v) + " WHERE " + where_key(p, key);
}

}  // namespace pgphase::validator
