// Small building blocks of the integration-test harness: harness-wide initialisation, temporary
// directories, free TCP ports, waiting, and file helpers. Nothing here knows about PostgreSQL.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace pgphase::it {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Idempotent process-wide setup, called by every harness entry point: ignores SIGPIPE (raw
// sockets may write to a closed peer) and unsets the PG* environment variables (PGHOST,
// PGSSLMODE, PGPASSWORD, ...; the harness's own PGPHASE_* variables stay) so that libpq, psql
// and pgbench see only what a test passes.
void harness_init();

// A fresh directory /tmp/pgphase-it-<pid>-<tag>-XXXXXX (or under $TMPDIR), removed recursively by
// the destructor. Set PGPHASE_IT_KEEP=1 to keep every directory for post-mortem debugging
// (they are then named /tmp/pgphase-it-kept-<pid>-<tag>-XXXXXX).
// The first TempDir of a process also removes directories left behind by test processes that
// died without cleaning up (their <pid> no longer exists).
class TempDir {
 public:
  explicit TempDir(std::string_view tag = "tmp");
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::string str() const { return path_.string(); }
  [[nodiscard]] std::filesystem::path operator/(std::string_view name) const {
    return path_ / name;
  }

 private:
  std::filesystem::path path_;
};

// A TCP port on 127.0.0.1 that is free right now: random in [20000, 32000) (below Linux's
// ephemeral range, so outgoing connections never take it), checked by binding it, and never
// handed out twice by this process. Parallel test processes pick independently at random.
[[nodiscard]] uint16_t free_port();

// True when some socket is in LISTEN state on `port` (any address), read from /proc/net/tcp and
// /proc/net/tcp6. Unlike a probe connection it leaves no trace in the server's counters or logs.
[[nodiscard]] bool is_listening(uint16_t port);

// Polls `pred` every `interval` until it returns true (-> true) or `timeout` passes (-> false).
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = 20ms);

// Milliseconds elapsed since `start`.
[[nodiscard]] double elapsed_ms(Clock::time_point start);

[[nodiscard]] std::string read_file(const std::filesystem::path& path);  // "" if unreadable
void write_file(const std::filesystem::path& path, std::string_view content);
void append_file(const std::filesystem::path& path, std::string_view content);

// The last `lines` lines of `text`.
[[nodiscard]] std::string tail_lines(std::string_view text, size_t lines = 40);
// `text` without leading and trailing whitespace.
[[nodiscard]] std::string trim(std::string_view text);
[[nodiscard]] bool contains(std::string_view haystack, std::string_view needle);
// Case-insensitive substring test.
[[nodiscard]] bool icontains(std::string_view haystack, std::string_view needle);

// Directory of the PostgreSQL 15 binaries: $PG_BINDIR, else /usr/lib/postgresql/15/bin.
[[nodiscard]] std::string pg_bindir();
// pg_bindir() + "/" + tool, e.g. pg_tool("psql").
[[nodiscard]] std::string pg_tool(std::string_view tool);

// A self-signed certificate (CN=localhost, SAN localhost and 127.0.0.1) and its unencrypted RSA
// key, made with the openssl CLI as <dir>/<name>.crt and <dir>/<name>.key (mode 0600).
struct CertPair {
  std::filesystem::path cert;
  std::filesystem::path key;
};
CertPair make_self_signed_cert(const std::filesystem::path& dir, std::string_view name = "server");

}  // namespace pgphase::it
