// The session settings that decide how PostgreSQL reads a statement's text.
#pragma once

#include <string>
#include <string_view>

namespace pgphase::proxy {

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

}  // namespace pgphase::proxy
