#include "harness/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "harness/process.h"

namespace pgphase::it {
namespace fs = std::filesystem;

void harness_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::string> names;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view entry(*e);
      if (entry.starts_with("PG") && !entry.starts_with("PGPHASE")) {
        names.emplace_back(entry.substr(0, entry.find('=')));
      }
    }
    for (const auto& n : names) unsetenv(n.c_str());
  });
}

namespace {

fs::path temp_root() {
  const char* t = std::getenv("TMPDIR");
  return (t != nullptr && *t != '\0') ? fs::path(t) : fs::path("/tmp");
}

// Removes pgphase-it-<pid>-* directories whose process is gone (a test that was SIGKILLed).
void sweep_stale_dirs() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(temp_root(), ec)) {
      const std::string name = entry.path().filename().string();
      if (!name.starts_with("pgphase-it-")) continue;
      const long pid = std::strtol(name.c_str() + 11, nullptr, 10);
      if (pid <= 0 || fs::exists("/proc/" + std::to_string(pid))) continue;
      fs::remove_all(entry.path(), ec);
    }
  });
}

bool keep_dirs() {
  const char* k = std::getenv("PGPHASE_IT_KEEP");
  return k != nullptr && std::string_view(k) == "1";
}

}  // namespace

TempDir::TempDir(std::string_view tag) {
  harness_init();
  sweep_stale_dirs();
  // Kept directories are named so that the stale-directory sweep never touches them.
  const std::string prefix = keep_dirs() ? "pgphase-it-kept-" : "pgphase-it-";
  std::string pattern =
      (temp_root() / (prefix + std::to_string(getpid()) + "-" + std::string(tag) + "-XXXXXX"))
          .string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  if (path_.empty() || keep_dirs()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) {
  other.path_.clear();
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    std::error_code ec;
    if (!path_.empty() && !keep_dirs()) fs::remove_all(path_, ec);
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

uint16_t free_port() {
  static std::mutex mu;
  static std::set<uint16_t> handed_out;
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(getpid()));
  std::lock_guard lock(mu);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const auto port = static_cast<uint16_t>(std::uniform_int_distribution<int>(20000, 31999)(rng));
    if (handed_out.contains(port) || is_listening(port)) continue;
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (!ok) continue;
    handed_out.insert(port);
    return port;
  }
  throw std::runtime_error("free_port: no free port found in [20000, 32000)");
}

bool is_listening(uint16_t port) {
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      const auto colon = local.rfind(':');
      if (colon == std::string::npos || state != "0A") continue;  // 0A: TCP_LISTEN
      if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) return true;
    }
  }
  return false;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

double elapsed_ms(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

void append_file(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) throw std::runtime_error("cannot append to " + path.string());
}

std::string tail_lines(std::string_view text, size_t lines) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (size_t seen = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++seen == lines) break;
  }
  return std::string(text.substr(pos));
}

std::string trim(std::string_view text) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return std::string(text);
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

bool icontains(std::string_view haystack, std::string_view needle) {
  const auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                              [](char a, char b) {
                                return std::tolower(static_cast<unsigned char>(a)) ==
                                       std::tolower(static_cast<unsigned char>(b));
                              });
  return it != haystack.end() || needle.empty();
}

std::string pg_bindir() {
  const char* dir = std::getenv("PG_BINDIR");
  return (dir != nullptr && *dir != '\0') ? dir : "/usr/lib/postgresql/15/bin";
}

std::string pg_tool(std::string_view tool) {
  return pg_bindir() + "/" + std::string(tool);
}

CertPair make_self_signed_cert(const fs::path& dir, std::string_view name) {
  CertPair pair{dir / (std::string(name) + ".crt"), dir / (std::string(name) + ".key")};
  run_checked({"openssl", "req", "-new", "-x509", "-days", "3", "-nodes", "-subj", "/CN=localhost",
               "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-newkey", "rsa:2048",
               "-keyout", pair.key.string(), "-out", pair.cert.string()},
              {.timeout = 60s});
  fs::permissions(pair.key, fs::perms::owner_read | fs::perms::owner_write);
  return pair;
}

}  // namespace pgphase::it
