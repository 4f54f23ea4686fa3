// The Session class behind run_session(), shared by session*.cpp. Internal to proxy/.
//
// Lifecycle: negotiate (SSLRequest/GSSENCRequest/CancelRequest/StartupMessage) -> connect the
// backend -> relay authentication message by message until ReadyForQuery -> relay both directions
// through one pipeline: a MessageSplitter per direction validates every header and forwards the
// byte ranges of messages nobody needs to look at straight from the read buffer (never copied);
// only with a control plane does a Rewriter see messages, and it holds only those of statements
// that may touch a migrating table -> close.
// Everything runs on the session's worker thread; the two relay coroutines end each other by
// closing the socket the other one waits on.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "intercept/rewriter.h"
#include "protocol/message_splitter.h"
#include "protocol/startup.h"
#include "proxy/latency_queue.h"
#include "proxy/session.h"
#include "proxy/session_tracker.h"
#include "proxy/stream.h"
#include "stats/relay_stats.h"

namespace pgphase::proxy {

class Session final : public SessionTracker::Entry {
 public:
  Session(tcp::socket client, SessionEnv env);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  asio::awaitable<void> run();
  void shutdown(bool force) override;
  void sweep() override;

 private:
  struct Fatal {
    std::string sqlstate;
    std::string message;
  };
  enum class StartupOutcome { kProceed, kDone };

  // session_startup.cpp
  asio::awaitable<StartupOutcome> negotiate();
  asio::awaitable<std::optional<std::vector<uint8_t>>> read_first_packet();
  asio::awaitable<StartupOutcome> handle_cancel(const protocol::CancelRequest& req);
  asio::awaitable<bool> connect_backend();
  asio::awaitable<bool> authenticate();
  asio::awaitable<bool> relay_client_auth_response();

  // session_relay.cpp
  asio::awaitable<void> relay();
  asio::awaitable<void> pump_client_to_backend();
  asio::awaitable<void> pump_backend_to_client();
  // Splits a chunk into messages (and, with a rewriter, rewrites what must be); the bytes to send
  // on are c2b_out_ / b2c_out_ (runs of the chunk, forwarded in place, and pgphase's own bytes).
  protocol::ScanError split_frontend(std::span<const uint8_t> chunk);
  protocol::ScanError split_backend(std::span<const uint8_t> chunk);
  // Writes a splice to `to` in one gather write: at once when the socket takes it all (plain
  // sockets), the rest through the reactor.
  static asio::awaitable<error_code> write_splice(Stream& to, const protocol::Splice& s,
                                                  std::vector<asio::const_buffer>& gather);
  void on_frontend_message(const protocol::MessageView& m);
  void on_backend_message(const protocol::MessageView& m);
  [[nodiscard]] bool idle() const noexcept;
  asio::awaitable<void> finish_client(bool backend_lost);

  // session.cpp
  asio::awaitable<void> send_fatal(std::string_view sqlstate, std::string_view message);
  void count_protocol_error(stats::ProtocolError e) noexcept;
  void close_backend() noexcept;

  SessionEnv env_;
  intercept::SessionIdentity identity_;  // user, application_name, client address (read switches)
  intercept::LexSettings lex_settings_;  // as the server reported them at startup (rewriter)
  Stream client_;
  std::optional<Stream> backend_;
  std::vector<uint8_t> startup_packet_;    // as the client sent it, forwarded unchanged
  std::vector<uint8_t> backend_leftover_;  // backend bytes read past the first ReadyForQuery
  std::string database_;  // the session's database (startup "database", else "user")
  // Set once authentication succeeded when the worker has migration routing.
  std::optional<intercept::Rewriter> rewriter_;
  protocol::MessageSplitter c2b_split_;
  protocol::MessageSplitter b2c_split_;
  protocol::Splice c2b_out_;
  protocol::Splice b2c_out_;
  std::vector<asio::const_buffer> c2b_gather_;  // write_splice's buffers, per direction
  std::vector<asio::const_buffer> b2c_gather_;
  LatencyQueue pending_;
  // Where each direction's waiting read lands; big enough for most OLTP requests and replies.
  static constexpr size_t kLandingBytes = 1536;
  std::array<uint8_t, kLandingBytes> c2b_landing_;
  std::array<uint8_t, kLandingBytes> b2c_landing_;
  std::optional<Fatal> fatal_for_client_;  // sent at the next message boundary, then close
  char tx_status_ = 'I';
  bool last_was_fatal_error_ = false;  // the backend's last message was a FATAL/PANIC error
  bool drain_ = false;                 // close at the next idle point
  // The client sent something since the last ReadyForQuery that answered all it asked (covers
  // Flush-driven pipelines, which get no ReadyForQuery until their Sync).
  bool awaiting_ready_ = false;
  bool b2c_cut_clean_ = false;  // the server sent garbage, forwarded up to a message boundary
  bool relaying_ = false;
  // Session timeouts (proxy/config.h), counted in sweeps (one a second) rather than timed on the
  // relay path: what moved since the last sweep, and for how many sweeps it has not.
  uint64_t ready_count_ = 0;   // ReadyForQuery messages from the server
  uint64_t client_reads_ = 0;  // reads from the client
  uint64_t swept_ready_ = 0;
  uint64_t swept_reads_ = 0;
  unsigned unanswered_sweeps_ = 0;
  unsigned idle_sweeps_ = 0;
};

}  // namespace pgphase::proxy
