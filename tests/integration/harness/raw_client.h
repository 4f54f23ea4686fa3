// A raw PostgreSQL v3 wire client for tests that libpq cannot express: arbitrary or malformed
// bytes, Execute with a row limit, GSSENCRequest, hand-made CancelRequests. The message builders
// in `wire` produce exact frontend bytes, written from the protocol docs (not from pgphase code).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgphase::it {

namespace wire {
inline constexpr int32_t kProtocolV3 = 196608;
std::string i32(int32_t v);
std::string i16(int16_t v);
std::string cstr(std::string_view s);  // s + '\0'
// A typed message: type byte, int32 length (counting itself), body.
std::string message(char type, std::string_view body);

// Untyped first packets.
std::string startup(const std::vector<std::pair<std::string, std::string>>& params,
                    int32_t version = kProtocolV3);
std::string ssl_request();
std::string gssenc_request();
std::string cancel_request(int32_t pid, int32_t secret);

// Frontend messages.
std::string query(std::string_view sql);
std::string parse(std::string_view statement, std::string_view sql,
                  const std::vector<uint32_t>& param_types = {});
// Text-format parameters (nullopt = NULL) unless `param_formats` says otherwise.
std::string bind(std::string_view portal, std::string_view statement,
                 const std::vector<std::optional<std::string>>& values = {},
                 const std::vector<int16_t>& param_formats = {},
                 const std::vector<int16_t>& result_formats = {});
std::string describe(char kind, std::string_view name);  // kind 'S' or 'P'
std::string execute(std::string_view portal, int32_t max_rows = 0);
std::string close(char kind, std::string_view name);  // kind 'S' or 'P'
std::string sync();
std::string flush();
std::string terminate();
std::string password(std::string_view pw);
std::string copy_data(std::string_view data);
std::string copy_done();
std::string copy_fail(std::string_view why);
}  // namespace wire

// One backend message.
struct BackendMessage {
  char type = 0;
  std::string body;
  // For 'E'/'N': field code -> value ('C' SQLSTATE, 'M' message, 'S' severity, ...).
  [[nodiscard]] std::map<char, std::string> fields() const;
  // For 'D': the column values (nullopt = NULL).
  [[nodiscard]] std::vector<std::optional<std::string>> columns() const;
  // For 'C': the command tag ("SELECT 3").
  [[nodiscard]] std::string tag() const;
  // For 'R': the authentication request code (0 = AuthenticationOk).
  [[nodiscard]] int32_t auth_code() const;
};

// The type bytes of `messages` as a string ("12DDsZ"), handy for REQUIRE(types(m) == "...").
[[nodiscard]] std::string types(const std::vector<BackendMessage>& messages);

class RawClient {
 public:
  // Connects or throws.
  static RawClient tcp(uint16_t port, const std::string& host = "127.0.0.1");
  static RawClient unix_socket(const std::string& path);
  RawClient(RawClient&& other) noexcept;
  RawClient& operator=(RawClient&& other) noexcept;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  ~RawClient();

  // Writes all of `bytes`; returns false if the peer has gone (EPIPE/ECONNRESET).
  bool send(std::string_view bytes);
  // Exactly `n` bytes; throws on timeout or EOF.
  std::string read_exact(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Whatever arrives first (at least one byte); "" on EOF; throws on timeout.
  std::string read_some(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // One typed message; throws on timeout or EOF (with what was read so far).
  BackendMessage read_message(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Messages up to and including the first of type `last`.
  std::vector<BackendMessage> read_until(
      char last, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  std::vector<BackendMessage> read_until_ready(
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return read_until('Z', timeout);
  }
  // Reads and discards until the peer closes (-> true) or `timeout` passes (-> false).
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // StartupMessage for a trust role, then reads to ReadyForQuery. Throws on an ErrorResponse
  // or any authentication request other than AuthenticationOk. Records BackendKeyData.
  std::vector<BackendMessage> startup(
      const std::string& user = "postgres", const std::string& db = "postgres",
      const std::vector<std::pair<std::string, std::string>>& extra = {});
  [[nodiscard]] int32_t backend_pid() const noexcept { return pid_; }
  [[nodiscard]] int32_t secret_key() const noexcept { return secret_; }

  void shutdown_write();
  void close();
  [[nodiscard]] int fd() const noexcept { return fd_; }

 private:
  explicit RawClient(int fd) : fd_(fd) {}
  // Fills buffer_ until it holds `n` bytes; false on EOF.
  bool fill(size_t n, std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buffer_;
  int32_t pid_ = 0;
  int32_t secret_ = 0;
};

}  // namespace pgphase::it
