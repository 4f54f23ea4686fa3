// Local receivers the alerting tests deliver to: an HTTP server recording every request body
// (webhook and Slack payloads) and an SMTP server recording every message, each on a free
// loopback port, served by a thread until destroyed. Plain sockets: nothing is mocked on
// pgphase's side, its real webhook and SMTP clients talk to these.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pgphase::alert_test {

class HttpReceiver {
 public:
  HttpReceiver();
  ~HttpReceiver();
  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] std::string url(const std::string& path = "/hook") const;
  // Requests received so far: "<path> <body>".
  [[nodiscard]] std::vector<std::string> requests() const;
  void set_status(int status) { status_ = status; }  // the answer to every request (default 200)

 private:
  void serve();
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> status_{200};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

class SmtpReceiver {
 public:
  // With `cert` and `key` (PEM files) it offers STARTTLS and takes AUTH PLAIN.
  explicit SmtpReceiver(std::string cert = {}, std::string key = {});
  ~SmtpReceiver();
  [[nodiscard]] int port() const noexcept { return port_; }
  // Every message: "MAIL FROM ... RCPT TO ...\n<data>" ("[tls] " first when it came after
  // STARTTLS, "[auth user:password] " when the client authenticated).
  [[nodiscard]] std::vector<std::string> messages() const;

 private:
  void serve();
  std::string cert_, key_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<std::string> messages_;
  std::thread thread_;
};

}  // namespace pgphase::alert_test
