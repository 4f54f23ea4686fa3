// Admin API authentication: a bearer token read once from an environment variable at start and
// compared in constant time. Without a configured token every protected request is refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "admin/http.h"

namespace pgphase::admin {

// What a token may do: a viewer reads (reports with row values included), an operator also
// changes (phases, percentages, rollbacks, backfills, validations, alerts).
enum class Role : uint8_t { kViewer, kOperator };

class AdminAuth {
 public:
  // `token` empty: no operator token configured; `viewer_token` empty: none for viewers. The
  // env names are only used in messages.
  AdminAuth(std::string token, std::string env_name, std::string viewer_token = "",
            std::string viewer_env_name = "PGPHASE_VIEWER_TOKEN");
  // Reads the tokens from the environment variables (surrounding whitespace trimmed).
  [[nodiscard]] static AdminAuth from_env(
      const std::string& env_name, const std::string& viewer_env_name = "PGPHASE_VIEWER_TOKEN");

  [[nodiscard]] bool configured() const noexcept { return !token_.empty(); }
  [[nodiscard]] bool viewer_configured() const noexcept { return !viewer_token_.empty(); }
  [[nodiscard]] const std::string& env_name() const noexcept { return env_name_; }

  // The role of the request's "Authorization: Bearer <token>", nullopt when it carries none or
  // a token that is neither.
  [[nodiscard]] std::optional<Role> role_of(const HttpRequest& request) const;
  // "operator", "viewer" or "none": role_of() as the audit log and GET /api/v1/auth name it.
  [[nodiscard]] const char* role_name(const HttpRequest& request) const;
  // nullopt when the request's token may do what `needed` may; else the 401 (no token, a wrong
  // one, none configured) or the 403 (a viewer's token where an operator's is needed).
  [[nodiscard]] std::optional<HttpResponse> check(const HttpRequest& request,
                                                  Role needed = Role::kOperator) const;

 private:
  std::string token_;  // never logged
  std::string env_name_;
  std::string viewer_token_;  // never logged
  std::string viewer_env_name_;
};

// Constant-time equality (the time depends on neither the contents nor the lengths).
[[nodiscard]] bool constant_time_equal(const std::string& a, const std::string& b) noexcept;

}  // namespace pgphase::admin
