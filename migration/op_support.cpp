#include "migration/op_support.h"

#include <boost/json.hpp>
#include <sstream>

#include "migration/schema.h"
#include "migration/snapshot.h"

namespace pgphase::migration::ops {
namespace json = boost::json;

std::string number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string phase_name(Phase p) {
  return std::string(to_string(p));
}

std::string switch_state(const SwitchConfig& s) {
  return std::string(to_string(s.status)) + " " + number(s.switch_percentage) + "%";
}

std::string actor_or_default(const std::string& actor) {
  return actor.empty() ? "unknown" : actor;
}

bool same_table(const std::string& a, const std::string& b) {
  const QualifiedName qa = qualify(a);
  const QualifiedName qb = qualify(b);
  return qa.schema == qb.schema && qa.table == qb.table;
}

void lock_mutations(pg::Connection& c) {
  c.exec("SELECT pg_advisory_xact_lock($1)", {pg::param(kMutationLockKey)});
}

void log_refusal(pg::Connection& c, pg::Transaction& tx, store::LogRow row, const Verdict& v) {
  tx.rollback();
  row.status = "refused";
  row.message = v.reason;
  json::object details;
  details["remedy"] = v.remedy;
  if (!row.details_json.empty()) {
    boost::system::error_code ec;
    json::value extra = json::parse(row.details_json, ec);
    if (!ec && extra.is_object()) {
      for (const auto& kv : extra.get_object()) details[kv.key()] = kv.value();
    }
  }
  row.details_json = json::serialize(details);
  store::insert_log(c, row);
}

void finish(pg::Connection& c, pg::Transaction& tx, const store::LogRow& row,
            const std::string& notify_payload) {
  store::insert_log(c, row);
  store::notify(c, notify_payload);
  tx.commit();
}

std::string log_id_for(const std::vector<Migration>& migrations, const SwitchConfig& s) {
  const Migration* m = migration_for(migrations, s);
  return m != nullptr ? m->migration_id : s.config_id;
}

}  // namespace pgphase::migration::ops
