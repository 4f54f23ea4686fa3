// Admin API authentication: a bearer token read once from an environment variable at start and
// compared in constant time. Without a configured token every protected request is refused.
#pragma once

#include <optional>
#include <string>

#include "admin/http.h"

namespace pgphase::admin {

class AdminAuth {
 public:
  // `token` empty: none configured. `env_name` is only used in messages.
  AdminAuth(std::string token, std::string env_name);
  // Reads the token from the environment variable `env_name` (surrounding whitespace trimmed).
  [[nodiscard]] static AdminAuth from_env(const std::string& env_name);

  [[nodiscard]] bool configured() const noexcept { return !token_.empty(); }
  [[nodiscard]] const std::string& env_name() const noexcept { return env_name_; }

  // nullopt when the request carries the right "Authorization: Bearer <token>"; else the 401.
  [[nodiscard]] std::optional<HttpResponse> check(const HttpRequest& request) const;

 private:
  std::string token_;  // never logged
  std::string env_name_;
};

// Constant-time equality (the time depends on neither the contents nor the lengths).
[[nodiscard]] bool constant_time_equal(const std::string& a, const std::string& b) noexcept;

}  // namespace pgphase::admin
