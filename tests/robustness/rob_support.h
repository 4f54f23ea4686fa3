// Small helpers shared by the robustness tests, on top of the integration-test harness
// (tests/integration/harness). Everything here talks to real processes: a PostgreSQL cluster
// queried directly (never through pgphase), pgphase's admin port, and raw TCP sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "harness/harness.h"

namespace pgphase::rob {

using namespace std::chrono_literals;

// Client backends in pg_stat_activity whose application_name is `app`, counted on a direct
// connection to the cluster (the connection asking is never counted).
int count_backends(const it::PgConn& direct, const std::string& app);
// Client backends other than the asking connection and those named in `except`.
int count_other_backends(const it::PgConn& direct, const std::vector<std::string>& except);
// Polls count_backends() until it is 0; true when it got there within `timeout`.
bool wait_backends_gone(const it::PgConn& direct, const std::string& app,
                        std::chrono::milliseconds timeout = 3s);
// The pid of the single client backend named `app` in the state `state` (e.g. "active",
// "idle in transaction"), waiting up to `timeout` for it to appear; 0 when it never did.
int wait_backend_pid(const it::PgConn& direct, const std::string& app, const std::string& state,
                     std::chrono::milliseconds timeout = 10s);

// A libpq notice receiver (PQsetNoticeReceiver) that appends each SQLSTATE to the
// std::vector<std::string> at `arg`. libpq hands ErrorResponses that arrive while a connection is
// idle (e.g. a FATAL before a close) to the notice receiver, like notices.
void record_sqlstate(void* arg, const PGresult* r);

// The first error result among `results` (a default, null PgResult when there is none).
it::PgResult first_error(const std::vector<it::PgResult>& results);

// Connects a RawClient, sends `bytes` in one write, and reads until the peer closes or
// `timeout` passes. `shut_write` half-closes the socket after the write.
struct Exchange {
  std::string received;  // every byte pgphase sent
  bool closed = false;   // the peer closed within the timeout
};
Exchange exchange(uint16_t port, const std::string& bytes, bool shut_write = false,
                  std::chrono::milliseconds timeout = 5s);

// Splits `bytes` into complete backend messages; throws if a message is truncated.
std::vector<it::BackendMessage> split_messages(const std::string& bytes);

// Hex of the first bytes of `s`, for failure messages.
std::string hex(const std::string& s, size_t max = 48);

}  // namespace pgphase::rob
