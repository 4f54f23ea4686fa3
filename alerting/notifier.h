// Delivers alert notifications asynchronously: one job per (notification, channel) in a bounded
// queue served by a background thread, each retried with exponential backoff (4 attempts), so
// neither the evaluator nor the proxy ever waits on a webhook or an SMTP server. Every outcome is
// counted (pgphase_alert_notifications_total{channel,result}), logged when it fails, and passed
// to the recorder (t_sys_alert_notifications).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>

#include "alerting/channels.h"

namespace prometheus {
class Registry;
class Counter;
template <typename T>
class Family;
}  // namespace prometheus

namespace pgphase::alerting {

struct Notification {
  std::string event;  // firing | repeat | resolved
  std::string rule_id;
  std::string rule_name;
  std::string alert_type;
  std::string severity;
  std::string migration_id;
  std::vector<boost::json::object> alerts;  // alert_id, scope, value, threshold, message, ...
  std::vector<std::string> channels;        // channel names
  [[nodiscard]] std::vector<std::string> alert_ids() const;
  [[nodiscard]] boost::json::object to_json() const;  // the webhook payload
  [[nodiscard]] std::string summary() const;          // one line (Slack text, email subject)
  [[nodiscard]] std::string text() const;             // the email body
};

class Notifier {
 public:
  // (alert ids, channel, event, delivered, attempts, error)
  using Recorder = std::function<void(const std::vector<std::string>&, const std::string&,
                                      const std::string&, bool, int, const std::string&)>;
  Notifier(std::vector<ChannelConfig> channels, prometheus::Registry* registry, Recorder recorder,
           std::chrono::milliseconds retry_base = std::chrono::milliseconds(1000));
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Queues one delivery per channel of `n` (unknown or disabled channels are recorded as
  // failed); never blocks. Beyond kMaxQueued pending deliveries new ones are dropped (counted).
  void notify(const Notification& n);
  void set_channels(std::vector<ChannelConfig> channels);
  [[nodiscard]] std::vector<ChannelConfig> channels() const;
  // Waits until the queue is empty (tests, shutdown of the CLI monitor), at most `timeout`.
  bool drain(std::chrono::milliseconds timeout);

  static constexpr std::size_t kMaxQueued = 1000;
  static constexpr int kAttempts = 4;

 private:
  struct Job {
    Notification n;
    ChannelConfig channel;
    int attempts = 0;
    std::chrono::steady_clock::time_point due;
    std::string last_error;
  };
  void run();
  std::string deliver(const Job& j);  // "" on success
  void count(const std::string& channel, const char* result);

  std::vector<ChannelConfig> channels_;
  Recorder recorder_;
  std::chrono::milliseconds retry_base_;
  prometheus::Family<prometheus::Counter>* counter_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace pgphase::alerting
