#include "harness/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "harness/util.h"

extern char** environ;

namespace pgphase::it {
namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

std::string join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

// The environment for a child: ours without libpq's PG* variables (PGPHASE* stay), then `extra`
// applied on top.
std::vector<std::string> child_env(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (entry.starts_with("PG") && !entry.starts_with("PGPHASE")) continue;
    env.emplace_back(entry);
  }
  for (const auto& add : extra) {
    const auto name = add.substr(0, add.find('=') + 1);
    std::erase_if(env, [&](const std::string& e) { return e.starts_with(name); });
    env.push_back(add);
  }
  return env;
}

std::vector<char*> c_array(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

struct Fds {
  int in = -1;
  int out = -1;
  int err = -1;
};

// fork + exec with only async-signal-safe calls in the child. Throws when exec fails.
pid_t spawn(std::vector<std::string> argv, const std::vector<std::string>& extra_env,
            bool as_postgres, std::string cwd, Fds fds, int pdeathsig) {
  if (argv.empty()) throw std::invalid_argument("spawn: empty argv");
  harness_init();
  std::vector<std::string> env = child_env(extra_env);
  std::vector<char*> c_argv = c_array(argv);
  std::vector<char*> c_envp = c_array(env);
  const bool switch_user = as_postgres && running_as_root();
  const OsUser user = switch_user ? postgres_os_user() : OsUser{};
  if (cwd.empty() && switch_user) cwd = "/";
  const pid_t parent = getpid();

  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const pid_t pid = fork();
  if (pid < 0) {
    close(err_pipe[0]);
    close(err_pipe[1]);
    throw std::runtime_error("fork failed: " + std::string(strerror(errno)));
  }
  if (pid == 0) {
    const auto fail = [&](int code) {
      const int e = errno;
      (void)!write(err_pipe[1], &e, sizeof e);
      _exit(code);
    };
    if (switch_user) {
      const gid_t groups[1] = {user.gid};
      if (setgroups(1, groups) != 0 || setgid(user.gid) != 0 || setuid(user.uid) != 0) fail(126);
    }
    // After any credential change: changing the uid clears the parent-death signal.
    if (pdeathsig != 0) {
      prctl(PR_SET_PDEATHSIG, pdeathsig);
      if (getppid() != parent) _exit(125);
    }
    const int null_fd = open("/dev/null", O_RDWR);
    dup2(fds.in >= 0 ? fds.in : null_fd, 0);
    dup2(fds.out >= 0 ? fds.out : null_fd, 1);
    dup2(fds.err >= 0 ? fds.err : null_fd, 2);
    // Every other descriptor (libpq sockets, other children's pipes) closes on exec.
    syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) fail(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    execvpe(c_argv[0], c_argv.data(), c_envp.data());
    fail(127);
  }
  close(err_pipe[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(err_pipe[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  close(err_pipe[0]);
  if (n == sizeof child_errno) {
    int status = 0;
    waitpid(pid, &status, 0);
    throw std::runtime_error("cannot run " + argv[0] + ": " + strerror(child_errno));
  }
  return pid;
}

int open_output(const std::string& path) {
  if (path.empty()) return -1;
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + strerror(errno));
  return fd;
}

}  // namespace

bool running_as_root() {
  return geteuid() == 0;
}

const OsUser& postgres_os_user() {
  static const OsUser user = [] {
    if (!running_as_root()) {
      const passwd* pw = getpwuid(geteuid());
      return OsUser{geteuid(), getegid(), pw != nullptr ? pw->pw_name : "self"};
    }
    if (getpwnam("postgres") == nullptr) {
      run_checked({"useradd", "--system", "--home", "/var/lib/postgresql", "postgres"});
    }
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("the postgres OS user does not exist");
    return OsUser{pw->pw_uid, pw->pw_gid, "postgres"};
  }();
  return user;
}

Child::Child(const std::vector<std::string>& argv, const SpawnOptions& options) {
  Fds fds;
  fds.out = open_output(options.stdout_path);
  try {
    fds.err = open_output(options.stderr_path);
    pid_ = spawn(argv, options.env, options.as_postgres_user, options.cwd, fds, options.pdeathsig);
  } catch (...) {
    if (fds.out >= 0) close(fds.out);
    if (fds.err >= 0) close(fds.err);
    throw;
  }
  if (fds.out >= 0) close(fds.out);
  if (fds.err >= 0) close(fds.err);
}

Child::~Child() {
  kill_and_wait();
}

Child::Child(Child&& other) noexcept : pid_(other.pid_), exit_code_(other.exit_code_) {
  other.pid_ = -1;
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    kill_and_wait();
    pid_ = other.pid_;
    exit_code_ = other.exit_code_;
    other.pid_ = -1;
  }
  return *this;
}

void Child::reap(int status) {
  exit_code_ = decode_status(status);
  pid_ = -pid_;  // keep the number for messages, but never signal a reused pid
}

bool Child::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) reap(status);
  return pid_ > 0;
}

std::optional<int> Child::wait(std::chrono::milliseconds timeout) {
  wait_until([&] { return !running(); }, timeout, 5ms);
  return exit_code_;
}

void Child::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

void Child::kill_and_wait() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reap(status);
}

std::string RunResult::describe() const {
  std::string out = command + " exited with " + std::to_string(exit_code);
  if (timed_out) out += " (timed out, killed)";
  return out + "\n--- stdout:\n" + tail_lines(this->out) + "\n--- stderr:\n" + tail_lines(err);
}

RunResult run(const std::vector<std::string>& argv, const RunOptions& options) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe2 failed");
  }
  pid_t pid = -1;
  try {
    pid = spawn(argv, options.env, options.as_postgres_user, options.cwd,
                Fds{in[0], out[1], err[1]}, SIGKILL);
  } catch (...) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    throw;
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  RunResult result;
  result.command = join(argv);
  std::string_view to_write = options.stdin_data;
  int in_fd = in[1];
  fcntl(in_fd, F_SETFL, O_NONBLOCK);
  if (to_write.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  const auto deadline = Clock::now() + options.timeout;
  int open_outputs = 2;
  char buf[65536];
  while (open_outputs > 0 || in_fd >= 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd pfds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in_fd, POLLOUT, 0}};
    if (poll(pfds, 3, static_cast<int>(std::min<long>(left.count(), 1000))) < 0 && errno != EINTR) {
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (pfds[i].fd < 0 || (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = read(pfds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(pfds[i].fd);
        (i == 0 ? out[0] : err[0]) = -1;
        --open_outputs;
      }
    }
    if (in_fd >= 0 && (pfds[2].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      const ssize_t n = write(in_fd, to_write.data(), to_write.size());
      if (n > 0) to_write.remove_prefix(static_cast<size_t>(n));
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || to_write.empty()) {
        close(in_fd);
        in_fd = -1;
      }
    }
  }
  for (int fd : {in_fd, out[0], err[0]}) {
    if (fd >= 0) close(fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = decode_status(status);
  return result;
}

RunResult run_checked(const std::vector<std::string>& argv, const RunOptions& options) {
  RunResult r = run(argv, options);
  if (!r.ok()) throw std::runtime_error(r.describe());
  return r;
}

}  // namespace pgphase::it
