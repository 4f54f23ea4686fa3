// One line per event on stderr: "2026-11-25T21:30:00.123Z INFO  message". Thread-safe; the level
// check is a relaxed atomic load so disabled levels cost nothing on the relay path.
// Never pass secrets (passwords, tokens, startup packets) to the logger.
#pragma once

#include <sstream>
#include <string_view>
#include <utility>

namespace pgphase::log {

enum class Level : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void set_level(Level level) noexcept;
[[nodiscard]] bool enabled(Level level) noexcept;
// Parses "debug", "info", "warn", "error"; returns false for anything else.
[[nodiscard]] bool parse_level(std::string_view text, Level& out) noexcept;
void write(Level level, std::string_view line);

template <class... Args>
void emit(Level level, Args&&... args) {
  if (!enabled(level)) return;
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  write(level, out.str());
}
template <class... Args>
void debug(Args&&... args) {
  emit(Level::kDebug, std::forward<Args>(args)...);
}
template <class... Args>
void info(Args&&... args) {
  emit(Level::kInfo, std::forward<Args>(args)...);
}
template <class... Args>
void warn(Args&&... args) {
  emit(Level::kWarn, std::forward<Args>(args)...);
}
template <class... Args>
void error(Args&&... args) {
  emit(Level::kError, std::forward<Args>(args)...);
}

}  // namespace pgphase::log
