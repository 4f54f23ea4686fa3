#include "alerting/notifier.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdlib>

#include "alerting/smtp.h"
#include "common/http_client.h"
#include "common/log.h"

namespace pgphase::alerting {

namespace json = boost::json;

std::vector<std::string> Notification::alert_ids() const {
  std::vector<std::string> ids;
  for (const auto& a : alerts)
    if (const auto* id = a.if_contains("alert_id"); id && id->is_string())
      ids.emplace_back(id->as_string());
  return ids;
}

json::object Notification::to_json() const {
  json::array list;
  for (const auto& a : alerts) list.push_back(a);
  return {{"source", "pgphase"},          {"event", event},           {"rule_id", rule_id},
          {"rule_name", rule_name},       {"alert_type", alert_type}, {"severity", severity},
          {"migration_id", migration_id}, {"alerts", std::move(list)}};
}

std::string Notification::summary() const {
  std::string s = "[pgphase] " + std::string(event == "resolved" ? "RESOLVED" : "ALERT") + " " +
                  severity + ": " + rule_name;
  if (!migration_id.empty()) s += " (" + migration_id + ")";
  return s;
}

std::string Notification::text() const {
  std::string t =
      summary() + "\n\nrule " + rule_id + ", type " + alert_type + ", event " + event + "\n";
  for (const auto& a : alerts) t += "\n" + json::serialize(a);
  return t + "\n";
}

Notifier::Notifier(std::vector<ChannelConfig> channels, prometheus::Registry* registry,
                   Recorder recorder, std::chrono::milliseconds retry_base)
    : channels_(std::move(channels)), recorder_(std::move(recorder)), retry_base_(retry_base) {
  if (registry != nullptr)
    counter_ = &prometheus::BuildCounter()
                    .Name("pgphase_alert_notifications_total")
                    .Help(
                        "Alert notifications by channel and result (sent, failed after every "
                        "retry, retried, dropped because the queue was full)")
                    .Register(*registry);
  worker_ = std::thread([this] { run(); });
}

Notifier::~Notifier() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Notifier::count(const std::string& channel, const char* result) {
  if (counter_ != nullptr) counter_->Add({{"channel", channel}, {"result", result}}).Increment();
}

void Notifier::set_channels(std::vector<ChannelConfig> channels) {
  std::lock_guard lock(mu_);
  channels_ = std::move(channels);
}

std::vector<ChannelConfig> Notifier::channels() const {
  std::lock_guard lock(mu_);
  return channels_;
}

void Notifier::notify(const Notification& n) {
  std::vector<std::pair<std::string, std::string>> refused;  // channel, why
  {
    std::lock_guard lock(mu_);
    for (const auto& name : n.channels) {
      const auto it = std::find_if(channels_.begin(), channels_.end(),
                                   [&](const ChannelConfig& c) { return c.name == name; });
      if (it == channels_.end()) {
        refused.emplace_back(name, "no notification config for channel " + name);
        continue;
      }
      if (!it->enabled) continue;
      if (queue_.size() >= kMaxQueued) {
        refused.emplace_back(name, "notification queue full");
        continue;
      }
      queue_.push_back(Job{n, *it, 0, std::chrono::steady_clock::now(), {}});
    }
  }
  cv_.notify_all();
  for (const auto& [channel, why] : refused) {
    count(channel, why == "notification queue full" ? "dropped" : "failed");
    log::warn("alert notification to ", channel, " not sent: ", why);
    if (recorder_) recorder_(n.alert_ids(), channel, n.event, false, 0, why);
  }
}

bool Notifier::drain(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return queue_.empty() && !busy_; });
}

void Notifier::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (stop_) return;
    if (queue_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto next = std::min_element(queue_.begin(), queue_.end(),
                                 [](const Job& a, const Job& b) { return a.due < b.due; });
    if (next->due > std::chrono::steady_clock::now()) {
      cv_.wait_until(lock, next->due);
      continue;
    }
    Job job = std::move(*next);
    queue_.erase(next);
    busy_ = true;
    lock.unlock();
    ++job.attempts;
    std::string error;
    try {
      error = deliver(job);
    } catch (const std::exception& e) {
      error = e.what();
    }
    lock.lock();
    busy_ = false;
    if (!error.empty() && job.attempts < kAttempts && !stop_) {
      job.last_error = error;
      job.due = std::chrono::steady_clock::now() + retry_base_ * (1 << (job.attempts - 1));
      count(job.channel.name, "retried");
      queue_.push_back(std::move(job));
      continue;
    }
    lock.unlock();
    count(job.channel.name, error.empty() ? "sent" : "failed");
    if (!error.empty())
      log::warn("alert notification to ", job.channel.name, " failed after ", job.attempts,
                " attempts: ", error);
    if (recorder_) {
      try {
        recorder_(job.n.alert_ids(), job.channel.name, job.n.event, error.empty(), job.attempts,
                  error);
      } catch (const std::exception& e) {
        log::warn("cannot record an alert notification: ", e.what());
      }
    }
    lock.lock();
    cv_.notify_all();  // drain()
  }
}

std::string Notifier::deliver(const Job& j) {
  const ChannelConfig& c = j.channel;
  const Notification& n = j.n;
  if (c.type == "log") {
    log::warn("alert ", n.event, ": ", n.summary(), " ", json::serialize(n.to_json()));
    return {};
  }
  if (c.type == "webhook" || c.type == "slack") {
    http_client::Request r;
    r.method = "POST";
    r.url = c.url;
    r.headers = {{"Content-Type", "application/json"}};
    for (const auto& [k, v] : c.headers) r.headers.emplace_back(k, v);
    r.body = c.type == "slack"
                 ? json::serialize(json::object{{"text", n.summary() + "\n" + n.text()}})
                 : json::serialize(n.to_json());
    r.connect_timeout = std::chrono::seconds(c.timeout_seconds);
    r.answer_timeout = std::chrono::seconds(c.timeout_seconds);
    const http_client::Response res = http_client::send(r);
    if (!res.answered()) return res.failure;
    if (res.status < 200 || res.status >= 300)
      return "HTTP " + std::to_string(res.status) + ": " + res.body.substr(0, 200);
    return {};
  }
  smtp::Mail m;
  m.server = c.smtp_server;
  m.port = c.smtp_port;
  m.starttls = c.use_tls;
  m.username = c.username;
  if (!c.username.empty()) {
    const char* pw = std::getenv(c.password_env.c_str());
    if (pw == nullptr)
      return "environment variable " + c.password_env + " (SMTP password) is not set";
    m.password = pw;
  }
  m.from = c.from_email;
  m.to = c.to_emails;
  m.subject = n.summary();
  m.body = n.text();
  m.timeout = std::chrono::seconds(c.timeout_seconds);
  return smtp::send(m);
}

}  // namespace pgphase::alerting
