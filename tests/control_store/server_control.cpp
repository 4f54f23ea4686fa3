#include "server_control.h"

#include <csignal>
#include <stdexcept>

namespace pgphase::it {

ServerControl::~ServerControl() {
  if (!restarted_.running()) return;
  (void)run({pg_tool("pg_ctl"), "stop", "-D", pg_.data_dir(), "-m", "immediate", "-w", "-t", "30"},
            {.as_postgres_user = true, .timeout = 40s});
  restarted_.wait(10s);
  restarted_.kill_and_wait();
}

void ServerControl::stop() {
  run_checked({pg_tool("pg_ctl"), "stop", "-D", pg_.data_dir(), "-m", "fast", "-w", "-t", "30"},
              {.as_postgres_user = true, .timeout = 40s});
  if (restarted_.pid() > 0) restarted_.wait(10s);
  if (!wait_until([&] { return !is_listening(pg_.port()); }, 10s)) {
    throw std::runtime_error("PostgreSQL still listens on its port after pg_ctl stop");
  }
}

void ServerControl::start() {
  SpawnOptions spawn;
  spawn.as_postgres_user = true;
  spawn.stderr_path = pg_.socket_dir() + "/postgres-restarted.log";
  spawn.pdeathsig = SIGQUIT;
  restarted_ =
      Child({pg_tool("postgres"), "-D", pg_.data_dir(), "-p", std::to_string(pg_.port())}, spawn);
  const std::string ping = pg_.conninfo("postgres", "postgres", "", "connect_timeout=2");
  if (!wait_until([&] { return !restarted_.running() || PQping(ping.c_str()) == PQPING_OK; }, 60s,
                  50ms) ||
      !restarted_.running()) {
    throw std::runtime_error("PostgreSQL did not restart: " +
                             tail_lines(read_file(spawn.stderr_path)));
  }
}

}  // namespace pgphase::it
