// Startup half of a session: first-packet negotiation, backend connection, and the
// authentication exchange relayed message by message (pgphase holds no credentials).
#include <boost/asio/ssl/context.hpp>

#include "common/log.h"
#include "protocol/codes.h"
#include "protocol/extended.h"
#include "protocol/messages.h"
#include "protocol/wire.h"
#include "proxy/backend_connector.h"
#include "proxy/config.h"
#include "proxy/session_impl.h"

namespace pgphase::proxy {

namespace sqlstate = protocol::sqlstate;

namespace {
// Authentication messages are small: PostgreSQL caps SASL/GSS tokens at PG_MAX_AUTH_TOKEN_LENGTH
// (65535) and the startup exchange (ParameterStatus, notices, errors) stays far below this.
constexpr uint32_t kMaxStartupPhaseMessage = 1u << 20;

bool needs_client_response(int32_t auth_code) {
  using namespace protocol::auth;
  return auth_code == kCleartextPassword || auth_code == kMD5Password || auth_code == kGSS ||
         auth_code == kGSSContinue || auth_code == kSSPI || auth_code == kSASL ||
         auth_code == kSASLContinue;
}
}  // namespace

asio::awaitable<std::optional<std::vector<uint8_t>>> Session::read_first_packet() {
  std::vector<uint8_t> packet(4);
  if (auto [ec, n] = co_await client_.read_exact(asio::buffer(packet)); ec) co_return std::nullopt;
  const auto len = protocol::startup_packet_length(packet);
  if (!len.valid) {
    count_protocol_error(stats::ProtocolError::kBadStartupPacket);
    co_await send_fatal(sqlstate::kProtocolViolation, "invalid length of startup packet");
    co_return std::nullopt;
  }
  packet.resize(len.length);
  if (auto [ec, n] = co_await client_.read_exact(asio::buffer(packet.data() + 4, len.length - 4));
      ec) {
    co_return std::nullopt;  // the client went away mid-packet: nothing to answer
  }
  co_return packet;
}

asio::awaitable<Session::StartupOutcome> Session::negotiate() {
  // At most one SSLRequest and one GSSENCRequest may precede the StartupMessage.
  bool ssl_done = false;
  bool gss_done = false;
  for (;;) {
    auto packet = co_await read_first_packet();
    if (!packet) co_return StartupOutcome::kDone;
    auto decoded = protocol::decode_startup_packet(*packet);
    if (auto* err = std::get_if<protocol::StartupError>(&decoded)) {
      count_protocol_error(stats::ProtocolError::kBadStartupPacket);
      co_await send_fatal(sqlstate::kProtocolViolation, err->message);
      co_return StartupOutcome::kDone;
    }
    if (std::holds_alternative<protocol::SslRequest>(decoded)) {
      if (ssl_done || client_.is_tls()) {
        count_protocol_error(stats::ProtocolError::kBadStartupPacket);
        co_await send_fatal(sqlstate::kProtocolViolation, "SSLRequest sent twice");
        co_return StartupOutcome::kDone;
      }
      ssl_done = true;
      if (env_.client_tls == nullptr) {
        const char no = 'N';
        if (auto [ec, n] = co_await client_.write_all(asio::buffer(&no, 1)); ec)
          co_return StartupOutcome::kDone;
        continue;
      }
      // Bytes already sent behind the SSLRequest would be taken as plaintext after the
      // handshake (CVE-2021-23214); PostgreSQL refuses them, and so does pgphase.
      if (client_.available() > 0) {
        count_protocol_error(stats::ProtocolError::kUnencryptedAfterSsl);
        log::warn("session: received unencrypted data after SSL request; closing");
        co_await send_fatal(sqlstate::kProtocolViolation,
                            "received unencrypted data after SSL request");
        co_return StartupOutcome::kDone;
      }
      const char yes = 'S';
      if (auto [ec, n] = co_await client_.write_all(asio::buffer(&yes, 1)); ec)
        co_return StartupOutcome::kDone;
      tls_stream& tls = client_.upgrade_to_tls(*env_.client_tls);
      if (auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, use_nothrow);
          ec) {
        count_protocol_error(stats::ProtocolError::kTlsHandshake);
        log::info("session: TLS handshake with client failed: ", ec.message());
        co_return StartupOutcome::kDone;
      }
      continue;
    }
    if (std::holds_alternative<protocol::GssEncRequest>(decoded)) {
      if (gss_done || client_.is_tls()) {
        count_protocol_error(stats::ProtocolError::kBadStartupPacket);
        co_await send_fatal(sqlstate::kProtocolViolation, "unexpected GSSENCRequest");
        co_return StartupOutcome::kDone;
      }
      gss_done = true;
      const char no = 'N';  // pgphase does not terminate GSSAPI encryption
      if (auto [ec, n] = co_await client_.write_all(asio::buffer(&no, 1)); ec)
        co_return StartupOutcome::kDone;
      continue;
    }
    if (auto* cancel = std::get_if<protocol::CancelRequest>(&decoded))
      co_return co_await handle_cancel(*cancel);

    auto& startup = std::get<protocol::StartupMessage>(decoded);
    if (protocol::wants_replication(startup)) {
      co_await send_fatal(
          sqlstate::kFeatureNotSupported,
          "pgphase does not proxy replication connections; connect to PostgreSQL directly");
      co_return StartupOutcome::kDone;
    }
    if (env_.tracker.draining()) {
      // As PostgreSQL during a smart shutdown: no new sessions, but cancels still work.
      co_await send_fatal(sqlstate::kCannotConnectNow, "pgphase is shutting down");
      co_return StartupOutcome::kDone;
    }
    startup_packet_ = std::move(*packet);
    const std::string* user = startup.find("user");
    const std::string* db = startup.find("database");
    database_ = db != nullptr ? *db : *user;
    identity_.user = *user;
    if (const std::string* app = startup.find("application_name"))
      identity_.application_name = *app;
    log::debug("session: startup user=", *user, " database=", database_);
    co_return StartupOutcome::kProceed;
  }
}

asio::awaitable<Session::StartupOutcome> Session::handle_cancel(
    const protocol::CancelRequest& req) {
  stats::bump(env_.stats.cancel_requests);
  // Clients hold the backend's own BackendKeyData (relayed unchanged, so it also matches the pid
  // in NotificationResponse and pg_backend_pid()); the request goes to the backend as it came.
  // This also serves a client of another pgphase in front of the same server.
  co_await env_.backend.cancel(BackendKey{req.process_id, req.secret_key});
  co_return StartupOutcome::kDone;  // the protocol sends no reply to a CancelRequest
}

asio::awaitable<bool> Session::connect_backend() {
  BackendConnection c = co_await env_.backend.connect();
  if (!c.stream) {
    stats::bump(env_.stats.backend_connect_failures);
    log::warn("session: backend connection failed: ", c.error);
    co_await send_fatal(sqlstate::kConnectionFailure,
                        "pgphase could not connect to the server: " + c.error);
    co_return false;
  }
  backend_ = std::move(c.stream);
  stats::bump(env_.stats.backend_connections_opened);
  if (auto [ec, n] = co_await backend_->write_all(asio::buffer(startup_packet_)); ec) {
    co_await send_fatal(sqlstate::kConnectionFailure,
                        "pgphase lost the server connection: " + ec.message());
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> Session::relay_client_auth_response() {
  uint8_t header[5];
  if (auto [ec, n] = co_await client_.read_exact(asio::buffer(header)); ec) co_return false;
  const uint32_t len = protocol::read_u32(header + 1);
  if (header[0] != protocol::fe::kPassword || len < protocol::kMinMessageLength ||
      len > kMaxStartupPhaseMessage) {
    if (header[0] != protocol::fe::kTerminate) {
      count_protocol_error(stats::ProtocolError::kUnknownType);
      co_await send_fatal(sqlstate::kProtocolViolation,
                          "expected an authentication response message, got type 0x" +
                              std::to_string(static_cast<unsigned>(header[0])));
    }
    co_return false;
  }
  std::vector<uint8_t> msg(1 + size_t{len});
  std::copy(header, header + 5, msg.begin());
  if (auto [ec, n] = co_await client_.read_exact(asio::buffer(msg.data() + 5, len - 4)); ec)
    co_return false;
  stats::bump(env_.stats.frontend_messages[protocol::fe::kPassword]);
  if (auto [ec, n] = co_await backend_->write_all(asio::buffer(msg)); ec) {
    co_await send_fatal(sqlstate::kConnectionFailure,
                        "pgphase lost the server connection during authentication");
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> Session::authenticate() {
  std::vector<uint8_t> in;
  size_t start = 0;
  std::string out;  // bytes for the client, sent before waiting on it and at ReadyForQuery
  const auto flush = [&]() -> asio::awaitable<bool> {
    if (out.empty()) co_return true;
    auto [ec, n] = co_await client_.write_all(asio::buffer(out));
    out.clear();
    co_return !ec;
  };
  for (;;) {
    const auto m = protocol::decode_message(std::span(in).subspan(start), kMaxStartupPhaseMessage);
    if (m.status == protocol::DecodeStatus::kBadLength) {
      co_await flush();
      co_await send_fatal(sqlstate::kProtocolViolation,
                          "pgphase received an invalid message from the server");
      co_return false;
    }
    if (m.status == protocol::DecodeStatus::kNeedMore) {
      in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(start));
      start = 0;
      const size_t have = in.size();
      in.resize(have + 8192);
      auto [ec, n] = co_await backend_->read_some(asio::buffer(in.data() + have, 8192));
      in.resize(have + n);
      if (ec) {
        co_await flush();
        co_await send_fatal(sqlstate::kConnectionFailure,
                            "the server closed the connection during startup");
        co_return false;
      }
      continue;
    }
    const auto raw = std::span(in).subspan(start, m.total);
    start += m.total;
    stats::bump(env_.stats.backend_messages[static_cast<uint8_t>(m.type)]);
    switch (m.type) {
      case protocol::be::kAuthentication: {
        const int32_t code = m.body.size() >= 4 ? protocol::read_i32(m.body.data()) : -1;
        std::string stripped =
            code == protocol::auth::kSASL ? protocol::strip_channel_binding_mechanisms(m.body) : "";
        if (!stripped.empty())
          out += stripped;
        else
          out.append(reinterpret_cast<const char*>(raw.data()), raw.size());
        if (needs_client_response(code)) {
          if (!co_await flush()) co_return false;
          if (!co_await relay_client_auth_response()) co_return false;
        }
        break;
      }
      case protocol::be::kErrorResponse:
        out.append(reinterpret_cast<const char*>(raw.data()), raw.size());
        co_await flush();
        co_return false;  // authentication or startup failed: the server closes too
      case protocol::be::kReadyForQuery:
        out.append(reinterpret_cast<const char*>(raw.data()), raw.size());
        tx_status_ = m.body.empty() ? protocol::kTxIdle : static_cast<char>(m.body[0]);
        backend_leftover_.assign(in.begin() + static_cast<std::ptrdiff_t>(start), in.end());
        co_return co_await flush();
      case protocol::be::kParameterStatus:
        if (const auto ps = protocol::decode_parameter_status(m.body))
          (void)lex_settings_.apply(ps->first, ps->second);
        out.append(reinterpret_cast<const char*>(raw.data()), raw.size());
        break;
      default:  // NoticeResponse, NegotiateProtocolVersion, ...
        out.append(reinterpret_cast<const char*>(raw.data()), raw.size());
        break;
    }
  }
}

}  // namespace pgphase::proxy
