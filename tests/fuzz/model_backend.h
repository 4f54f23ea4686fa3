// A model PostgreSQL backend for the interception fuzz target (intercept_fuzz.cpp): it answers
// whole frontend messages as PostgreSQL 15 would, from what the texts it receives do over the
// model database (model_sql.h). Answers are deterministic, so that a run through pgphase and a
// run without it can be compared message by message.
//
// Requests arrive in groups (one group per client message: what the rewriter sent for it, the
// client's own request last); faults make the server fail a group's own request (optionally
// after some rows, or at a statement of a simple Query) or the first request pgphase injected.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/model_sql.h"

namespace pgphase::fuzz {

class ModelBackend {
 public:
  struct Fault {
    uint16_t statement = 0;  // simple Query: the statement that fails
    uint8_t after_rows = 0;  // rows sent before the error (Execute, Query)
  };

  // `known_issues`: a request whose answer through pgphase differs for a known reason (see
  // known_unsettled() and its kin) marks the divergence instead of failing the comparison.
  ModelBackend(int64_t rows, bool known_issues) : rows_(rows), known_issues_(known_issues) {}

  // Fails group `group`'s own request.
  void fail(uint32_t group, Fault f) { faults_[group] = f; }
  // Fails the first request pgphase injected in group `group`.
  void fail_injected(uint32_t group) { injected_faults_.insert(group); }

  // Whole frontend messages sent on for client message `group` (`client_request`: that message
  // as the client sent it, when pgphase may have changed it).
  void receive(uint32_t group, std::string_view bytes, std::string_view client_request = {});
  // Answers everything received so far.
  [[nodiscard]] std::string answer();

  // The first group from which this run's answers may differ from the client's own exchange: a
  // refused text (pgphase's error) or a fault in an injected request. Unset: none.
  [[nodiscard]] std::optional<uint32_t> diverged() const noexcept { return diverged_; }
  // Requests of each group (types, in order), for the oracle.
  [[nodiscard]] const std::map<uint32_t, std::string>& groups() const noexcept { return groups_; }

 private:
  struct Message {
    uint32_t group;
    bool own;  // the last message of its group: the client's own request
    char type;
    std::string body;
    // An own Bind or Describe of a statement: the statement the client named (pgphase may have
    // renamed it to a twin of its own), for known_unsettled() and its kin.
    std::string client_statement;
  };
  struct Prepared {
    Text text;
    std::vector<uint32_t> param_types;
  };
  struct Portal {
    Statement st;
    bool empty = false;  // the empty statement
    bool raise = false;
    std::vector<int16_t> formats;  // as Bind gave them
    int64_t sent = 0;              // rows sent so far
    bool done = false;
  };

  void process(const Message& m, std::string& out);
  void query(const Message& m, std::string& out);
  void parse(const Message& m, std::string& out);
  void bind(const Message& m, std::string& out);
  void describe(const Message& m, std::string& out);
  void execute(const Message& m, std::string& out);
  void close(const Message& m, std::string& out);
  void sync(std::string& out);
  // Runs one request (not Sync) as PostgreSQL would.
  void dispatch(const Message& m, std::string& out);
  // An error: in the extended protocol the server then skips to Sync; in a transaction block
  // the transaction is failed.
  void error(std::string_view sqlstate, std::string_view text, bool extended, std::string& out);
  // A statement's completion: transaction state, ParameterStatus, tag.
  void complete(const Statement& st, int64_t rows, std::string& out);
  [[nodiscard]] std::optional<Fault> fault_for(const Message& m);
  void end_transaction();
  // Known differences of pgphase's StatementRegistry from PostgreSQL: a statement the client
  // parsed but the server does not have (the Parse failed, or was skipped, in a pipeline the
  // rewriter had already acted on): pgphase may prepare it again (its twin for a target read, or
  // a re-preparation under new routing), so a Bind or Describe that PostgreSQL answers 26000 may
  // succeed through pgphase.
  void known_missing(const Message& m, std::string_view statement);
  // The same root: a client's Parse of a name the server already has is refused (42P05), but
  // pgphase replaced its record when it sent the Parse; a Bind of that name sent before the
  // refusal came back uses pgphase's idea of the statement (its transforms), not the server's.
  // (A Describe's transform is chosen when its answer comes: exact, not tolerated.)
  void known_refused(const Message& m, std::string_view statement);
  // A client's Parse or Close of the name (or, for the unnamed statement, a simple Query) failed
  // or was skipped, and this Bind of it was sent before that answer came back (the same round),
  // behind a Sync: pgphase acted on the
  // statement the client meant to have, not knowing yet which one the server keeps (it adds no
  // twin or re-preparation of its own then, Rewriter::settled, but the answers' transforms are
  // those of the statement it expected).
  void known_unsettled(const Message& m, std::string_view statement);

  int64_t rows_;
  std::map<uint32_t, Fault> faults_;
  std::set<uint32_t> injected_faults_;
  std::vector<Message> inbox_;
  std::map<uint32_t, std::string> groups_;
  std::map<std::string, Prepared, std::less<>> statements_;
  std::map<std::string, Portal, std::less<>> portals_;
  bool skipping_ = false;  // after an extended-protocol error, until Sync
  char tx_ = 'I';
  std::optional<uint32_t> diverged_;
  bool known_issues_;
  std::set<std::string, std::less<>> parsed_;   // every name a client Parse gave
  std::set<std::string, std::less<>> refused_;  // names whose client Parse got 42P05
  uint64_t round_ = 0;                          // answer() calls so far
  // Names whose last client Parse or Close failed or was skipped: the round it happened in.
  std::map<std::string, uint64_t, std::less<>> unsettled_;
};

}  // namespace pgphase::fuzz
