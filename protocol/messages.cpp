#include "protocol/messages.h"

#include <algorithm>

#include "protocol/codes.h"
#include "protocol/wire.h"

namespace pgphase::protocol {

DecodedMessage decode_message(std::span<const uint8_t> data, uint32_t max_length) {
  DecodedMessage m;
  if (data.size() < 5) return m;
  m.type = static_cast<char>(data[0]);
  m.length = read_u32(data.data() + 1);
  if (m.length < kMinMessageLength || m.length > max_length) {
    m.status = DecodeStatus::kBadLength;
    return m;
  }
  if (data.size() < size_t{m.length} + 1) return m;
  m.status = DecodeStatus::kComplete;
  m.body = data.subspan(5, m.length - 4);
  m.total = size_t{m.length} + 1;
  return m;
}

namespace {
void add_field(std::string& out, char code, std::string_view value) {
  if (value.empty()) return;
  out.push_back(code);
  out.append(value);
  out.push_back('\0');
}
}  // namespace

std::string encode_error_response(const ErrorFields& f) {
  std::string out = begin_message(be::kErrorResponse);
  add_field(out, 'S', f.severity);
  add_field(out, 'V', f.severity);
  add_field(out, 'C', f.sqlstate);
  add_field(out, 'M', f.message);
  add_field(out, 'D', f.detail);
  add_field(out, 'H', f.hint);
  out.push_back('\0');
  finish_message(out);
  return out;
}

std::string encode_ready_for_query(char tx_status) {
  std::string out = begin_message(be::kReadyForQuery);
  out.push_back(tx_status);
  finish_message(out);
  return out;
}

std::string encode_backend_key_data(int32_t process_id, int32_t secret_key) {
  std::string out = begin_message(be::kBackendKeyData);
  append_i32(out, process_id);
  append_i32(out, secret_key);
  finish_message(out);
  return out;
}

std::string encode_cancel_request(int32_t process_id, int32_t secret_key) {
  std::string out;
  append_u32(out, 16);
  append_i32(out, kCancelRequestCode);
  append_i32(out, process_id);
  append_i32(out, secret_key);
  return out;
}

std::string encode_ssl_request() {
  std::string out;
  append_u32(out, 8);
  append_i32(out, kSSLRequestCode);
  return out;
}

std::string encode_terminate() {
  std::string out = begin_message(fe::kTerminate);
  finish_message(out);
  return out;
}

std::string_view error_sqlstate(std::span<const uint8_t> body) {
  const auto* p = reinterpret_cast<const char*>(body.data());
  const auto* const end = p + body.size();
  while (p < end && *p != '\0') {
    const char code = *p++;
    const char* nul = std::find(p, end, '\0');
    if (nul == end) return {};
    if (code == 'C') return {p, static_cast<size_t>(nul - p)};
    p = nul + 1;
  }
  return {};
}

std::string strip_channel_binding_mechanisms(std::span<const uint8_t> body) {
  if (body.size() < 4 || read_i32(body.data()) != auth::kSASL) return {};
  std::string out = begin_message(be::kAuthentication);
  append_i32(out, auth::kSASL);
  const auto* p = reinterpret_cast<const char*>(body.data()) + 4;
  const auto* const end = reinterpret_cast<const char*>(body.data()) + body.size();
  while (p < end && *p != '\0') {
    const char* nul = std::find(p, end, '\0');
    if (nul == end) return {};
    std::string_view mech(p, static_cast<size_t>(nul - p));
    if (!mech.ends_with("-PLUS")) {
      out.append(mech);
      out.push_back('\0');
    }
    p = nul + 1;
  }
  out.push_back('\0');
  finish_message(out);
  return out;
}

}  // namespace pgphase::protocol
