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

AdminAuth::AdminAuth(std::string token, std::string env_name)
    : token_(std::move(token)), env_name_(std::move(env_name)) {}

AdminAuth AdminAuth::from_env(const std::string& env_name) {
  const char* value = env_name.empty() ? nullptr : std::getenv(env_name.c_str());
  return AdminAuth(value ? trim(value) : std::string(), env_name);
}

std::optional<HttpResponse> AdminAuth::check(const HttpRequest& request) const {
  if (token_.empty())
    return unauthorized("no admin token configured: set " +
                        (env_name_.empty() ? std::string("PGPHASE_ADMIN_TOKEN") : env_name_));
  const std::string header = trim(request.authorization);
  if (header.empty()) return unauthorized("missing \"Authorization: Bearer <token>\" header");
  const auto space = header.find(' ');
  if (space == std::string::npos || !iequals(std::string_view(header).substr(0, space), "Bearer"))
    return unauthorized("the Authorization header must be \"Bearer <token>\"");
  if (!constant_time_equal(trim(header.substr(space + 1)), token_))
    return unauthorized("wrong admin token");
  return std::nullopt;
}

}  // namespace pgphase::admin
