#include "cdp_browser.h"

#include <openssl/evp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/http_client.h"
#include "harness/process.h"
#include "harness/util.h"

namespace pgphase::ctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

// Each socket read waits at most this long (SO_RCVTIMEO), so a silent browser fails the call.
constexpr int kReadTimeoutSeconds = 20;

void set_timeouts(tcp::socket& s) {
  timeval tv{kReadTimeoutSeconds, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

std::string http_get(uint16_t port, const std::string& target) {
  http_client::Request r;
  r.url = "http://127.0.0.1:" + std::to_string(port) + target;
  r.answer_timeout = std::chrono::seconds(kReadTimeoutSeconds);
  const http_client::Response res = http_client::send(r);
  if (!res.answered()) throw std::runtime_error("cdp: GET " + target + ": " + res.failure);
  return res.body;
}

std::string base64_decode(const std::string& in) {
  std::string out(in.size() / 4 * 3 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) throw std::runtime_error("cdp: screenshot data is not base64");
  size_t size = static_cast<size_t>(n);
  // EVP_DecodeBlock counts the padding's zero bytes too.
  if (in.size() >= 1 && in[in.size() - 1] == '=') --size;
  if (in.size() >= 2 && in[in.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

}  // namespace

struct CdpBrowser::Impl {
  it::TempDir profile{"chromium"};
  it::Child chromium;
  asio::io_context ctx;
  std::optional<websocket::stream<tcp::socket>> ws;
  int64_t next_id = 1;

  // Sends a command and reads messages until its answer (events in between are dropped).
  json::object call(const std::string& method, json::object params = {}) {
    const int64_t id = next_id++;
    const std::string text =
        json::serialize(json::object{{"id", id}, {"method", method}, {"params", params}});
    ws->write(asio::buffer(text));
    for (;;) {
      beast::flat_buffer buf;
      read_message(buf);
      json::value v = json::parse(beast::buffers_to_string(buf.data()));
      const json::object& o = v.as_object();
      const auto it = o.find("id");
      if (it == o.end() || it->value().to_number<int64_t>() != id) continue;
      if (const auto e = o.find("error"); e != o.end())
        throw std::runtime_error("cdp: " + method + " failed: " + json::serialize(e->value()));
      const auto r = o.find("result");
      return r == o.end() ? json::object{} : r->value().as_object();
    }
  }

  // Reads one message; a read timeout (SO_RCVTIMEO) surfaces as an exception.
  void read_message(beast::flat_buffer& buf) {
    beast::error_code ec;
    ws->read(buf, ec);
    if (ec) throw std::runtime_error("cdp: reading from chromium failed: " + ec.message());
  }
};

std::optional<std::string> CdpBrowser::binary() {
  if (const char* env = std::getenv("PGPHASE_CHROMIUM"); env != nullptr && *env != '\0')
    return std::string(env);
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (std::filesystem::exists(p)) return std::string(p);
  }
  return std::nullopt;
}

CdpBrowser::CdpBrowser() : impl_(std::make_unique<Impl>()) {
  const auto bin = binary();
  if (!bin) throw std::runtime_error("chromium not found (apt-get install chromium)");
  // The flags of a closed network: no background connections, no updates, no sync.
  const std::vector<std::string> argv = {*bin,
                                         "--headless=new",
                                         "--no-sandbox",
                                         "--disable-gpu",
                                         "--disable-quic",
                                         "--no-first-run",
                                         "--no-default-browser-check",
                                         "--disable-background-networking",
                                         "--disable-component-update",
                                         "--disable-sync",
                                         "--disable-extensions",
                                         "--window-size=1280,900",
                                         "--remote-debugging-address=127.0.0.1",
                                         "--remote-debugging-port=0",
                                         "--user-data-dir=" + impl_->profile.str(),
                                         "about:blank"};
  it::SpawnOptions so;
  so.stderr_path = (impl_->profile / "chromium.log").string();
  impl_->chromium = it::Child(argv, so);
  // Chromium writes its DevTools port into the profile once it listens.
  const auto port_file = impl_->profile / "DevToolsActivePort";
  uint16_t port = 0;
  const bool up = it::wait_until(
      [&] {
        std::ifstream f(port_file);
        int p = 0;
        if (f >> p && p > 0) port = static_cast<uint16_t>(p);
        return port != 0;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(50));
  if (!up) {
    std::ifstream log(impl_->profile / "chromium.log");
    std::stringstream ss;
    ss << log.rdbuf();
    throw std::runtime_error("chromium did not open its DevTools port within 30 s: " + ss.str());
  }
  // The first page target.
  std::string ws_url;
  const bool listed = it::wait_until(
      [&] {
        try {
          const json::value list = json::parse(http_get(port, "/json/list"));
          for (const auto& t : list.as_array()) {
            const auto& o = t.as_object();
            if (o.at("type").as_string() == "page") {
              ws_url = std::string(o.at("webSocketDebuggerUrl").as_string());
              return true;
            }
          }
        } catch (const std::exception&) {
        }
        return false;
      },
      std::chrono::seconds(15), std::chrono::milliseconds(100));
  if (!listed) throw std::runtime_error("chromium listed no page target");
  const auto url = boost::urls::parse_uri(ws_url);
  if (!url) throw std::runtime_error("cdp: bad WebSocket URL " + ws_url);
  impl_->ws.emplace(impl_->ctx);
  tcp::socket& s = impl_->ws->next_layer();
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  set_timeouts(s);
  impl_->ws->read_message_max(64 * 1024 * 1024);  // screenshots
  impl_->ws->handshake("127.0.0.1:" + std::to_string(port), std::string(url->encoded_path()));
  impl_->call("Page.enable");
  impl_->call("Runtime.enable");
}

CdpBrowser::~CdpBrowser() {
  try {
    if (impl_->ws) {
      beast::error_code ec;
      impl_->ws->next_layer().close(ec);
    }
  } catch (...) {
  }
  impl_->chromium.signal(15);
  if (!impl_->chromium.wait(std::chrono::seconds(5))) impl_->chromium.kill_and_wait();
}

void CdpBrowser::navigate(const std::string& url) {
  impl_->call("Page.navigate", {{"url", url}});
  if (!wait_for("document.readyState === 'complete'"))
    throw std::runtime_error("cdp: " + url + " did not finish loading");
}

json::value CdpBrowser::eval(const std::string& expression) {
  json::object r =
      impl_->call("Runtime.evaluate",
                  {{"expression", expression}, {"awaitPromise", true}, {"returnByValue", true}});
  if (const auto e = r.find("exceptionDetails"); e != r.end())
    throw std::runtime_error("cdp: " + expression + " threw: " + json::serialize(e->value()));
  const json::object& result = r.at("result").as_object();
  const auto v = result.find("value");
  return v == result.end() ? json::value() : v->value();
}

bool CdpBrowser::wait_for(const std::string& expression, std::chrono::milliseconds timeout) {
  return it::wait_until(
      [&] {
        const json::value v = eval(expression);
        return v.is_bool() && v.as_bool();
      },
      timeout, std::chrono::milliseconds(100));
}

void CdpBrowser::screenshot(const std::string& path) {
  const json::object r = impl_->call("Page.captureScreenshot", {{"format", "png"}});
  std::ofstream f(path, std::ios::binary);
  const std::string png = base64_decode(std::string(r.at("data").as_string()));
  f.write(png.data(), static_cast<std::streamsize>(png.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

}  // namespace pgphase::ctl
