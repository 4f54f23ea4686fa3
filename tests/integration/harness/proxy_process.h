// A real pgphase process under test.
//
// ProxyProcess runs `pgphase serve` with --listen and --admin on free ports of 127.0.0.1, waits
// (bounded) until both ports are in LISTEN state (read from /proc/net/tcp, so the wait makes no
// connection the proxy would count), and captures stdout/stderr to files in its own TempDir.
// If the process exits early or never listens, the constructor throws with the stderr tail.
// The destructor SIGKILLs and reaps it; it also dies with the test process (PR_SET_PDEATHSIG).
//
// The binary is $PGPHASE_BIN if set, else the CMake target file baked in at build time
// (PGPHASE_BINARY compile definition).
#pragma once

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <vector>

#include "harness/pg_conn.h"
#include "harness/process.h"
#include "harness/util.h"

namespace pgphase::it {

class PgCluster;

struct ProxyOptions {
  std::string backend;  // --backend: "127.0.0.1:5432" or "unix:/dir/.s.PGSQL.5432" (required)
  unsigned workers = 2;
  std::string log_level = "info";
  std::string tls_cert;     // --tls-cert (client-side TLS termination), with tls_key
  std::string tls_key;      // --tls-key
  std::string backend_tls;  // --backend-tls disable|prefer|require; empty: flag omitted
  std::optional<uint32_t> max_message_size;  // --max-message-size
  std::optional<unsigned> shutdown_timeout;  // --shutdown-timeout (seconds)
  std::string config_file;                   // --config
  std::vector<std::string> extra_args;       // appended after everything else
  std::chrono::milliseconds ready_timeout{15000};

  // Options for proxying `cluster` over TCP, or over its unix socket.
  static ProxyOptions tcp(const PgCluster& cluster);
  static ProxyOptions unix_socket(const PgCluster& cluster);
};

class ProxyProcess {
 public:
  explicit ProxyProcess(ProxyOptions options);
  ~ProxyProcess();
  ProxyProcess(const ProxyProcess&) = delete;
  ProxyProcess& operator=(const ProxyProcess&) = delete;

  // The pgphase executable the harness runs.
  [[nodiscard]] static std::string binary();
  // Runs pgphase with arbitrary arguments to completion (for command-line and config tests).
  [[nodiscard]] static RunResult run_cli(const std::vector<std::string>& args,
                                         std::chrono::milliseconds timeout = 30s);

  [[nodiscard]] uint16_t port() const noexcept { return port_; }
  [[nodiscard]] uint16_t admin_port() const noexcept { return admin_port_; }
  [[nodiscard]] pid_t pid() const noexcept { return child_.pid(); }
  [[nodiscard]] const std::vector<std::string>& argv() const noexcept { return argv_; }
  [[nodiscard]] const ProxyOptions& options() const noexcept { return options_; }

  [[nodiscard]] bool running() { return child_.running(); }
  void terminate() { child_.signal(SIGTERM); }  // graceful shutdown
  void kill() { child_.kill_and_wait(); }
  void signal(int sig) { child_.signal(sig); }
  // Waits for the exit: exit code, or -N when killed by signal N; nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) { return child_.wait(timeout); }

  [[nodiscard]] std::string stderr_path() const { return (dir_ / "stderr.log").string(); }
  [[nodiscard]] std::string stderr_text() const { return read_file(stderr_path()); }
  [[nodiscard]] std::string stderr_tail(size_t lines = 40) const;
  [[nodiscard]] std::string stdout_text() const { return read_file(dir_ / "stdout.log"); }
  // Resident set size in KiB (VmRSS in /proc/PID/status); -1 when the process is gone.
  [[nodiscard]] long rss_kb() const;

  // conninfo for a client of the proxy (host=127.0.0.1 port=port()); `extra` appended verbatim.
  [[nodiscard]] std::string conninfo(const std::string& db = "postgres",
                                     const std::string& user = "postgres",
                                     const std::string& password = "",
                                     const std::string& extra = "") const;
  [[nodiscard]] PgConn connect(const std::string& db = "postgres",
                               const std::string& user = "postgres",
                               const std::string& password = "",
                               const std::string& extra = "") const;

 private:
  void launch();
  // PGPHASE_IT_CONTROL_PLANE=1: the suites run with a control plane and a migration of an
  // unrelated table in dual_write (what users run), unless the test set --control-dsn itself.
  // Returns the --control-dsn to add ("" when off); attach_unrelated_migration() after start.
  [[nodiscard]] std::string control_plane_dsn();
  void attach_unrelated_migration(const std::string& dsn);
  ProxyOptions options_;
  TempDir dir_;
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
  std::vector<std::string> argv_;
  Child child_;
};

}  // namespace pgphase::it
