// Shared pieces of the control-plane operations (migration_ops.cpp, switch_ops.cpp): result
// helpers, the mutation lock, and how changes and refusals are logged. Internal to migration/.
#pragma once

#include <string>
#include <vector>

#include "migration/control_plane.h"
#include "migration/pg_client.h"
#include "migration/phase_machine.h"
#include "migration/store.h"

namespace pgphase::migration::ops {

using Kind = OpError::Kind;

template <class T>
OpResult<T> fail(Kind kind, std::string message, std::string detail = {}) {
  return OpResult<T>::failure(kind, std::move(message), std::move(detail));
}

[[nodiscard]] std::string number(double v);  // "25", "0.995"
[[nodiscard]] std::string phase_name(Phase p);
// "active 25%": the state of a switch config as the logs record it.
[[nodiscard]] std::string switch_state(const SwitchConfig& s);
[[nodiscard]] std::string actor_or_default(const std::string& actor);
[[nodiscard]] bool same_table(const std::string& a, const std::string& b);

// Takes the lock that serialises every mutation from every pgphase on this database.
void lock_mutations(pg::Connection& c);

// Ends `tx` without changes and records the refusal (status "refused", the reason, the remedy in
// details) in its own transaction.
void log_refusal(pg::Connection& c, pg::Transaction& tx, store::LogRow row, const Verdict& v);

template <class T>
OpResult<T> refuse(pg::Connection& c, pg::Transaction& tx, store::LogRow row, const Verdict& v) {
  log_refusal(c, tx, std::move(row), v);
  return fail<T>(Kind::kConflict, v.reason, v.remedy);
}

// Writes the success log row, NOTIFYs `notify_payload` and commits.
void finish(pg::Connection& c, pg::Transaction& tx, const store::LogRow& row,
            const std::string& notify_payload);

// The id a switch config's log rows carry: its migration's, or its own when it has none.
[[nodiscard]] std::string log_id_for(const std::vector<Migration>& migrations,
                                     const SwitchConfig& s);

}  // namespace pgphase::migration::ops
