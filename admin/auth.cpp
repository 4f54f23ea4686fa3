#include "admin/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>
#include <cstdlib>

#include "admin/responses.h"

namespace pgphase::admin {

namespace {

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

HttpResponse unauthorized(std::string_view detail) {
  auto r = json_error(401, "unauthorized", detail);
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"pgphase\"");
  return r;
}

}  // namespace

bool constant_time_equal(const std::string& a, const std::string& b) noexcept {
  // Hash both sides so the comparison covers a fixed length whatever the inputs' lengths.
  std::array<unsigned char, SHA256_DIGEST_LENGTH> ha{};
  std::array<unsigned char, SHA256_DIGEST_LENGTH> hb{};
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), ha.data());
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), hb.data());
  return CRYPTO_memcmp(ha.data(), hb.data(), ha.size()) == 0;
}

AdminAuth::AdminAuth(std::string token, std::string env_name, std::string viewer_token,
                     std::string viewer_env_name)
    : token_(std::move(token)),
      env_name_(std::move(env_name)),
      viewer_token_(std::move(viewer_token)),
      viewer_env_name_(std::move(viewer_env_name)) {}

AdminAuth AdminAuth::from_env(const std::string& env_name, const std::string& viewer_env_name) {
  const auto read = [](const std::string& name) {
    const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
    return value ? trim(value) : std::string();
  };
  return AdminAuth(read(env_name), env_name, read(viewer_env_name), viewer_env_name);
}

namespace {
// The bearer token of the request, nullopt when the header is missing or not "Bearer <token>".
std::optional<std::string> bearer(const HttpRequest& request) {
  const std::string header = trim(request.authorization);
  const auto space = header.find(' ');
  if (header.empty() || space == std::string::npos ||
      !iequals(std::string_view(header).substr(0, space), "Bearer"))
    return std::nullopt;
  return trim(header.substr(space + 1));
}
}  // namespace

std::optional<Role> AdminAuth::role_of(const HttpRequest& request) const {
  const std::optional<std::string> token = bearer(request);
  if (!token) return std::nullopt;
  // Both compared whatever the first gives, so the time does not tell which one matched.
  const bool op = !token_.empty() && constant_time_equal(*token, token_);
  const bool viewer = !viewer_token_.empty() && constant_time_equal(*token, viewer_token_);
  if (op) return Role::kOperator;
  if (viewer) return Role::kViewer;
  return std::nullopt;
}

const char* AdminAuth::role_name(const HttpRequest& request) const {
  const std::optional<Role> role = role_of(request);
  if (!role) return "none";
  return *role == Role::kOperator ? "operator" : "viewer";
}

std::optional<HttpResponse> AdminAuth::check(const HttpRequest& request, Role needed) const {
  const std::string env = env_name_.empty() ? std::string("PGPHASE_ADMIN_TOKEN") : env_name_;
  if (token_.empty() && (needed == Role::kOperator || viewer_token_.empty()))
    return unauthorized("no admin token configured: set " + env);
  const std::string header = trim(request.authorization);
  if (header.empty()) return unauthorized("missing \"Authorization: Bearer <token>\" header");
  if (!bearer(request)) return unauthorized("the Authorization header must be \"Bearer <token>\"");
  const std::optional<Role> role = role_of(request);
  if (!role) return unauthorized("wrong admin token");
  if (needed == Role::kOperator && *role != Role::kOperator) {
    return json_error(403, "forbidden",
                      "the viewer token ($" + viewer_env_name_ +
                          ") may only read; changes need the operator token ($" + env + ")");
  }
  return std::nullopt;
}

}  // namespace pgphase::admin
