#include "intercept/requests.h"

#include "protocol/codes.h"
#include "protocol/wire.h"

namespace pgphase::intercept {

namespace fe = protocol::fe;

void append_raw(std::string& out, char type, std::span<const uint8_t> body) {
  out.push_back(type);
  protocol::append_u32(out, static_cast<uint32_t>(body.size() + 4));
  out.append(reinterpret_cast<const char*>(body.data()), body.size());
}

std::string bare_bind(std::string_view portal, std::string_view statement) {
  std::string out = protocol::begin_message(fe::kBind);
  out.append(portal);
  out.push_back('\0');
  out.append(statement);
  out.push_back('\0');
  protocol::append_u16(out, 0);
  protocol::append_u16(out, 0);
  protocol::append_u16(out, 0);
  protocol::finish_message(out);
  return out;
}

std::string bind_renamed(std::span<const uint8_t> body, const protocol::BindMessage& m,
                         std::string_view statement) {
  std::string out = protocol::begin_message(fe::kBind);
  out.append(m.portal);
  out.push_back('\0');
  out.append(statement);
  out.push_back('\0');
  const size_t rest = m.portal.size() + 1 + m.statement.size() + 1;
  out.append(reinterpret_cast<const char*>(body.data()) + rest, body.size() - rest);
  protocol::finish_message(out);
  return out;
}

std::string execute_unlimited(std::span<const uint8_t> body) {
  std::string out = protocol::begin_message(fe::kExecute);
  out.append(reinterpret_cast<const char*>(body.data()), body.size() - 4);
  protocol::append_u32(out, 0);
  protocol::finish_message(out);
  return out;
}

std::string close_statement(std::string_view name) {
  std::string out = protocol::begin_message(fe::kClose);
  out.push_back('S');
  out.append(name);
  out.push_back('\0');
  protocol::finish_message(out);
  return out;
}

}  // namespace pgphase::intercept
