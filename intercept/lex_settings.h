// The session settings that decide how PostgreSQL reads a statement's text, and how sure the
// rewriter can be of them while the client's own statements may be changing them.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace pgphase::intercept {

// The session's settings that change how PostgreSQL reads a statement's text, as the server
// reports them (ParameterStatus, at startup and whenever they change).
struct LexSettings {
  bool standard_conforming_strings = true;
  std::string client_encoding = "UTF8";
  // Applies one ParameterStatus; true when it was one of these settings.
  bool apply(std::string_view name, std::string_view value);
  // client_encoding lets a multibyte character end in a backslash byte.
  [[nodiscard]] bool backslash_in_multibyte() const noexcept;
};

// LexSettings as the server last reported them, and whether requests in flight may still change
// them: a SET the server has not answered yet makes the text that follows it uncertain.
class SettingsWatch {
 public:
  explicit SettingsWatch(LexSettings settings = {}) : settings_(std::move(settings)) {}

  // A client text (Query, Parse) sent while a migration applies: one that may change the
  // settings (SET, set_config, RESET, DISCARD) makes them uncertain until every request in
  // flight is answered.
  void watch(std::string_view sql);
  // A ParameterStatus from the server.
  void apply(std::string_view name, std::string_view value);
  // Every request in flight is answered (their ParameterStatus came before).
  void settled() noexcept { in_flight_ = false; }

  // Whether the planner must treat string literals, or backslash bytes, as uncertain.
  [[nodiscard]] bool literals_uncertain() const noexcept {
    return !settings_.standard_conforming_strings || in_flight_;
  }
  [[nodiscard]] bool backslash_bytes_uncertain() const noexcept {
    return settings_.backslash_in_multibyte() || in_flight_;
  }
  [[nodiscard]] const LexSettings& settings() const noexcept { return settings_; }

 private:
  LexSettings settings_;
  bool touched_ = false;    // the session has sent text that may change them
  bool in_flight_ = false;  // ... and its requests are not all answered yet
};

}  // namespace pgphase::intercept
