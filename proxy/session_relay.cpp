// Relay half of a session: two pumps move bytes client->backend and backend->client, one
// pipeline for every session. A MessageSplitter per direction validates each header, feeds the
// metrics, and forwards the byte ranges of messages nobody needs to look at straight from the
// read buffer (PgBouncer's sbuf model); with a control plane the Rewriter decides per message, and
// holds (copies) only those of statements that may touch a migrating table.
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <cstring>

#include "common/log.h"
#include "protocol/codes.h"
#include "protocol/command_tag.h"
#include "protocol/messages.h"
#include "proxy/buffer_pool.h"
#include "proxy/config.h"
#include "proxy/session_impl.h"
#include "proxy/worker_routing.h"

namespace pgphase::proxy {

using namespace asio::experimental::awaitable_operators;
namespace sqlstate = protocol::sqlstate;

namespace {
uint64_t now_ns() noexcept {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

stats::ProtocolError to_metric(protocol::ScanError e) {
  switch (e) {
    case protocol::ScanError::kLengthTooShort:
      return stats::ProtocolError::kLengthTooShort;
    case protocol::ScanError::kLengthTooLong:
      return stats::ProtocolError::kLengthTooLong;
    case protocol::ScanError::kUnknownType:
    case protocol::ScanError::kNone:
      break;
  }
  return stats::ProtocolError::kUnknownType;
}

// Reads whatever the source has. The read that waits for the peer lands in the direction's small
// landing buffer, so an idle session holds no pool buffer; it is a speculative read in Asio's
// reactor, which costs one recv per message on a quiet socket. (Waiting for readiness instead,
// async_wait, costs the same: Asio's epoll reactor re-arms the descriptor with an epoll_ctl for
// every non-speculative wait; measured with bench/syscalls.sh.) When the landing buffer fills, or
// the previous chunk filled a pool buffer, the rest is read without blocking into a pool buffer
// and relayed in one write.
struct Chunk {
  BufferPool::Buffer pooled;  // set when the bytes live in a pool buffer
  const uint8_t* data = nullptr;
  size_t size = 0;
  error_code ec;
  [[nodiscard]] bool filled_pool_buffer() const noexcept {
    return pooled && size == BufferPool::kBufferSize;
  }
};

bool drained(const error_code& ec) {
  return ec == asio::error::would_block || ec == asio::error::try_again;
}

asio::awaitable<Chunk> read_chunk(Stream& src, std::span<uint8_t> landing, bool more) {
  Chunk c;
  if (!src.supports_nonblocking_read()) {  // TLS: decrypted bytes may wait inside the stream; read
                                           // it directly
    c.pooled = BufferPool::local().acquire();
    std::tie(c.ec, c.size) =
        co_await src.read_some(asio::buffer(c.pooled.get(), BufferPool::kBufferSize));
    c.data = c.pooled.get();
    co_return c;
  }
  if (more) {
    c.pooled = BufferPool::local().acquire();
    c.size = src.read_nonblocking(asio::buffer(c.pooled.get(), BufferPool::kBufferSize), c.ec);
    if (!drained(c.ec)) {
      c.data = c.pooled.get();
      co_return c;
    }
    c.pooled.reset();
    c.ec = {};
  }
  std::tie(c.ec, c.size) = co_await src.read_some(asio::buffer(landing.data(), landing.size()));
  c.data = landing.data();
  if (c.ec || c.size < landing.size()) co_return c;
  // The landing buffer is full: gather what else is there into one pool buffer.
  c.pooled = BufferPool::local().acquire();
  std::memcpy(c.pooled.get(), landing.data(), c.size);
  error_code ec;
  const size_t extra = src.read_nonblocking(
      asio::buffer(c.pooled.get() + c.size, BufferPool::kBufferSize - c.size), ec);
  if (!ec) c.size += extra;  // an error here shows again on the next read
  c.data = c.pooled.get();
  co_return c;
}

// Drops the first n bytes of a gather list (after a short write).
void consume(std::vector<asio::const_buffer>& bufs, size_t n) {
  size_t i = 0;
  while (i < bufs.size() && n >= bufs[i].size()) n -= bufs[i++].size();
  bufs.erase(bufs.begin(), bufs.begin() + static_cast<std::ptrdiff_t>(i));
  if (n > 0 && !bufs.empty()) bufs.front() += n;
}
}  // namespace

bool Session::idle() const noexcept {
  return tx_status_ == protocol::kTxIdle && !awaiting_ready_ && pending_.empty() &&
         c2b_split_.at_boundary() && b2c_split_.at_boundary();
}

protocol::ScanError Session::split_frontend(std::span<const uint8_t> chunk) {
  c2b_out_.clear();
  return c2b_split_.feed(
      chunk, c2b_out_,
      [this](const protocol::MessageView& m) {
        on_frontend_message(m);
        return rewriter_ ? rewriter_->frontend_disposition(m) : protocol::Disposition::kStream;
      },
      [this](char type, std::span<const uint8_t> body, std::string& out) {
        rewriter_->frontend_held(type, body, out);
      });
}

protocol::ScanError Session::split_backend(std::span<const uint8_t> chunk) {
  b2c_out_.clear();
  return b2c_split_.feed(
      chunk, b2c_out_,
      [this](const protocol::MessageView& m) {
        on_backend_message(m);
        return rewriter_ ? rewriter_->backend_disposition(m) : protocol::Disposition::kStream;
      },
      [this](char type, std::span<const uint8_t> body, std::string& out) {
        rewriter_->backend_held(type, body, out);
      });
}

asio::awaitable<error_code> Session::write_splice(Stream& to, const protocol::Splice& s,
                                                  std::vector<asio::const_buffer>& gather) {
  gather.clear();
  for (size_t i = 0; i < s.runs(); ++i) {
    const auto r = s.run(i);
    gather.emplace_back(r.data(), r.size());
  }
  if (to.supports_nonblocking_read()) {
    // Most writes fit the socket buffer: written at once, without a trip through the reactor's
    // queue (Asio's async_write would also send at once, then resume the coroutine by posting).
    error_code ec;
    const size_t n = to.write_nonblocking(gather, ec);
    if (ec && !drained(ec)) co_return ec;
    if (n == s.size()) co_return error_code{};
    consume(gather, n);
  }
  auto [ec, n] = co_await to.write_all(gather);
  co_return ec;
}

void Session::on_frontend_message(const protocol::MessageView& m) {
  stats::bump(env_.stats.frontend_messages[static_cast<uint8_t>(m.type)]);
  awaiting_ready_ = true;
  switch (m.type) {
    case protocol::fe::kQuery:
    case protocol::fe::kSync:
    case protocol::fe::kFunctionCall:
      pending_.push(now_ns());  // answered by one ReadyForQuery each
      break;
    default:
      break;
  }
}

void Session::on_backend_message(const protocol::MessageView& m) {
  stats::bump(env_.stats.backend_messages[static_cast<uint8_t>(m.type)]);
  last_was_fatal_error_ = false;
  switch (m.type) {
    case protocol::be::kReadyForQuery: {
      ++ready_count_;
      if (!m.peek.empty()) tx_status_ = static_cast<char>(m.peek[0]);
      if (const uint64_t start = pending_.pop(); start != 0)
        env_.stats.observe_latency_ns(now_ns() - start);
      awaiting_ready_ = !pending_.empty();
      break;
    }
    case protocol::be::kCommandComplete:
      stats::bump(
          env_.stats.statements[static_cast<size_t>(protocol::classify_command_tag(m.peek))]);
      break;
    case protocol::be::kErrorResponse: {
      // PostgreSQL always sends the severity ('S') field first.
      const std::string_view body(reinterpret_cast<const char*>(m.peek.data()), m.peek.size());
      last_was_fatal_error_ = body.starts_with("SFATAL") || body.starts_with("SPANIC");
      break;
    }
    default:
      break;
  }
}

asio::awaitable<void> Session::relay() {
  relaying_ = true;
  if (env_.routing != nullptr) {
    WorkerRouting& routing = *env_.routing;
    rewriter_.emplace([this, &routing] { return routing.table_for(database_); }, routing.cache(),
                      routing, identity_, lex_settings_);
  }
  co_await (pump_client_to_backend() && pump_backend_to_client());
}

asio::awaitable<void> Session::pump_client_to_backend() {
  bool more = false;
  for (;;) {
    Chunk c = co_await read_chunk(client_, c2b_landing_, more);
    if (c.ec) break;  // client closed (or we were told to stop): the backend goes too
    ++client_reads_;
    more = c.filled_pool_buffer();
    const auto data = std::span<const uint8_t>(c.data, c.size);
    const protocol::ScanError error = split_frontend(data);
    stats::bump(env_.stats.bytes_client_to_backend, c2b_out_.size());
    if (!c2b_out_.empty() && co_await write_splice(*backend_, c2b_out_, c2b_gather_))
      co_return;  // the backend is gone: the other pump sees it and tells the client
    if (error != protocol::ScanError::kNone) {
      count_protocol_error(to_metric(error));
      log::warn("session: protocol violation from client: ", protocol::describe(error), " (type 0x",
                std::hex, static_cast<unsigned>(static_cast<uint8_t>(c2b_split_.bad_type())),
                std::dec, ", length ", c2b_split_.bad_length(), "); closing");
      std::string message = std::string("invalid frontend message: ") + protocol::describe(error);
      if (!fatal_for_client_)
        fatal_for_client_ = Fatal{sqlstate::kProtocolViolation, std::move(message)};
      break;
    }
  }
  // Closing the backend ends a transaction the client left open (the server rolls it back) and
  // wakes the other pump.
  close_backend();
}

asio::awaitable<void> Session::pump_backend_to_client() {
  bool backend_lost = false;
  auto forward = [&](std::span<const uint8_t> data) -> asio::awaitable<bool> {
    const protocol::ScanError error = split_backend(data);
    stats::bump(env_.stats.bytes_backend_to_client, b2c_out_.size());
    if (!b2c_out_.empty() && co_await write_splice(client_, b2c_out_, b2c_gather_)) co_return false;
    if (rewriter_ && rewriter_->desynchronised()) {
      // What was relayed ends before the answer that did not fit (dropped with all after it):
      // the client gets an error instead of an answer pgphase cannot vouch for.
      count_protocol_error(stats::ProtocolError::kReplyMismatch);
      log::error("session: ", rewriter_->desync_reason(), "; closing the session");
      b2c_cut_clean_ = true;
      if (!fatal_for_client_) {
        fatal_for_client_ =
            Fatal{sqlstate::kProtocolViolation,
                  "pgphase could not match the server's answer to the client's "
                  "requests; the session is closed rather than risk a wrong answer"};
      }
      co_return false;
    }
    if (error != protocol::ScanError::kNone) {
      b2c_cut_clean_ = true;  // what went out ends at the last message before the bad header
      log::error("session: invalid message from the server: ", protocol::describe(error),
                 "; closing");
      if (!fatal_for_client_) {
        fatal_for_client_ = Fatal{sqlstate::kProtocolViolation,
                                  "pgphase received an invalid message from the server"};
      }
      co_return false;
    }
    co_return true;
  };

  bool ok = true;
  if (!backend_leftover_.empty()) {
    ok = co_await forward(backend_leftover_);
    backend_leftover_.clear();
    backend_leftover_.shrink_to_fit();
  }
  bool more = false;
  while (ok) {
    if (drain_ && idle()) {
      if (!fatal_for_client_) {
        fatal_for_client_ = Fatal{sqlstate::kAdminShutdown,
                                  "terminating connection because pgphase is shutting down"};
      }
      break;
    }
    Chunk c = co_await read_chunk(*backend_, b2c_landing_, more);
    if (c.ec) {
      // Closed by the other pump or by shutdown (operation_aborted / bad_descriptor), or lost.
      backend_lost = c.ec != asio::error::operation_aborted && c.ec != asio::error::bad_descriptor;
      break;
    }
    more = c.filled_pool_buffer();
    ok = co_await forward(std::span<const uint8_t>(c.data, c.size));
  }
  co_await finish_client(backend_lost);
}

asio::awaitable<void> Session::finish_client(bool backend_lost) {
  close_backend();
  // Anything pgphase says must start at a message boundary, or the client would misparse it.
  if (client_.is_open() && (b2c_split_.at_boundary() || b2c_cut_clean_)) {
    if (fatal_for_client_) {
      co_await send_fatal(fatal_for_client_->sqlstate, fatal_for_client_->message);
    } else if (backend_lost && !last_was_fatal_error_) {
      co_await send_fatal(
          sqlstate::kConnectionFailure,
          "server closed the connection unexpectedly (pgphase lost its backend connection)");
    }
  }
  client_.close();  // wakes the client->backend pump
}

}  // namespace pgphase::proxy
