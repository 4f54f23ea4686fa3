// A real headless Chromium (Debian's `chromium`) driven over the Chrome DevTools Protocol with
// Boost.Beast's WebSocket client, for the console tests: load a page, evaluate JavaScript in it
// (clicks included), wait for conditions, save screenshots. Every call has a deadline, so a
// browser that stops answering fails the test instead of hanging it.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace pgphase::ctl {

class CdpBrowser {
 public:
  // Starts chromium (PGPHASE_CHROMIUM or /usr/bin/chromium) headless with a fresh profile in a
  // temporary directory and attaches to its first page. Throws with the reason when it cannot.
  CdpBrowser();
  ~CdpBrowser();
  CdpBrowser(const CdpBrowser&) = delete;
  CdpBrowser& operator=(const CdpBrowser&) = delete;

  // True when a chromium binary exists (the test says so and fails without one).
  [[nodiscard]] static std::optional<std::string> binary();

  // Navigates and waits for the load event.
  void navigate(const std::string& url);
  // Evaluates `expression` in the page (promises awaited) and returns its value (JSON);
  // throws with the exception's text when the expression throws.
  boost::json::value eval(const std::string& expression);
  // Evaluates `expression` until it returns true; false after `timeout`.
  bool wait_for(const std::string& expression,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Saves a PNG screenshot of the viewport to `path`.
  void screenshot(const std::string& path);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgphase::ctl
