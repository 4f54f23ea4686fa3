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

void append_bare_bind(std::string& out, std::string_view portal, std::string_view statement) {
  const size_t start = protocol::begin_message(out, fe::kBind);
  out.append(portal);
  out.push_back('\0');
  out.append(statement);
  out.push_back('\0');
  protocol::append_u16(out, 0);
  protocol::append_u16(out, 0);
  protocol::append_u16(out, 0);
  protocol::finish_message(out, start);
}

void append_bind_renamed(std::string& out, std::span<const uint8_t> body,
                         const protocol::BindMessage& m, std::string_view statement) {
  const size_t start = protocol::begin_message(out, fe::kBind);
  out.append(m.portal);
  out.push_back('\0');
  out.append(statement);
  out.push_back('\0');
  const size_t rest = m.portal.size() + 1 + m.statement.size() + 1;
  out.append(reinterpret_cast<const char*>(body.data()) + rest, body.size() - rest);
  protocol::finish_message(out, start);
}

void append_execute_unlimited(std::string& out, std::span<const uint8_t> body) {
  const size_t start = protocol::begin_message(out, fe::kExecute);
  out.append(reinterpret_cast<const char*>(body.data()), body.size() - 4);
  protocol::append_u32(out, 0);
  protocol::finish_message(out, start);
}

void append_close_statement(std::string& out, std::string_view name) {
  const size_t start = protocol::begin_message(out, fe::kClose);
  out.push_back('S');
  out.append(name);
  out.push_back('\0');
  protocol::finish_message(out, start);
}

}  // namespace pgphase::intercept
