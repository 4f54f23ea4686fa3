// Child processes for the integration tests: spawning long-running servers (Child) and running
// short commands to completion with captured output (run). Every child gets PR_SET_PDEATHSIG,
// so a test process that dies (crash, ctest timeout SIGKILL) takes its children with it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pgphase::it {

// The OS account PostgreSQL runs as. PostgreSQL refuses to run as root, so when the tests run as
// root, initdb, postgres and pg_ctl are started as the `postgres` user, which is created
// (useradd --system) on first use if missing. When not root, the current user is used.
struct OsUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};
[[nodiscard]] bool running_as_root();
// The account to run PostgreSQL's server binaries as (see above).
[[nodiscard]] const OsUser& postgres_os_user();

struct SpawnOptions {
  std::vector<std::string> env;   // "NAME=value" entries added to (or replacing in) the environment
  bool as_postgres_user = false;  // run as postgres_os_user() (only changes anything when root)
  std::string cwd;                // working directory; empty: inherit
  std::string stdout_path;        // file to write stdout to (truncated); empty: /dev/null
  std::string stderr_path;        // file to write stderr to (truncated); empty: /dev/null
  int pdeathsig = 9;              // signal the child gets when the spawning thread dies (SIGKILL)
};

// A spawned process. The destructor SIGKILLs and reaps it if it is still running.
class Child {
 public:
  Child() = default;
  Child(const std::vector<std::string>& argv, const SpawnOptions& options);
  ~Child();
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  // True until the process has exited (reaps it when it has).
  [[nodiscard]] bool running();
  // Waits up to `timeout` for the exit; returns exit_code() when it exited.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Exit status once exited: the exit code, or -N when killed by signal N.
  [[nodiscard]] std::optional<int> exit_code() const noexcept { return exit_code_; }
  void signal(int sig);
  // SIGKILL and reap (no-op when already exited).
  void kill_and_wait();

 private:
  void reap(int status);
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

struct RunOptions {
  std::vector<std::string> env;
  bool as_postgres_user = false;
  std::string cwd;
  std::string stdin_data;                     // written to the child's stdin, which is then closed
  std::chrono::milliseconds timeout{120000};  // SIGKILL after this
};

struct RunResult {
  int exit_code = -1;  // exit code, -N for signal N
  bool timed_out = false;
  std::string out;  // stdout
  std::string err;  // stderr
  [[nodiscard]] bool ok() const noexcept { return exit_code == 0 && !timed_out; }
  // "cmd exited with N (timed out)\nstdout: ...\nstderr: ..." for failure messages.
  [[nodiscard]] std::string describe() const;
  std::string command;  // the argv joined with spaces
};

// Runs argv[0] (a path or a name looked up in PATH) to completion, capturing stdout and stderr.
[[nodiscard]] RunResult run(const std::vector<std::string>& argv, const RunOptions& options = {});
// As run(), but throws std::runtime_error(describe()) unless the command exited 0.
RunResult run_checked(const std::vector<std::string>& argv, const RunOptions& options = {});

}  // namespace pgphase::it
