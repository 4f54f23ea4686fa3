#include "intercept/result_transforms.h"

#include <optional>
#include <string_view>

#include "intercept/requests.h"
#include "protocol/codes.h"
#include "protocol/extended.h"
#include "protocol/wire.h"

namespace pgphase::intercept {

using router::ResultTransform;

namespace {

std::string tag_text(router::TagKind k, int64_t rows) {
  switch (k) {
    case router::TagKind::kInsert:
      return "INSERT 0 " + std::to_string(rows);
    case router::TagKind::kUpdate:
      return "UPDATE " + std::to_string(rows);
    case router::TagKind::kDelete:
      return "DELETE " + std::to_string(rows);
  }
  return {};
}

// The row count of a "SELECT n" command tag.
int64_t tag_rows(std::span<const uint8_t> body) {
  std::string_view tag(reinterpret_cast<const char*>(body.data()), body.size());
  if (const auto nul = tag.find('\0'); nul != std::string_view::npos) tag = tag.substr(0, nul);
  const auto sp = tag.rfind(' ');
  int64_t n = 0;
  for (size_t i = sp == std::string_view::npos ? tag.size() : sp + 1; i < tag.size(); ++i) {
    if (tag[i] < '0' || tag[i] > '9') return 0;
    n = n * 10 + (tag[i] - '0');
  }
  return n;
}

}  // namespace

const ResultTransform* active_transform(const Expect& e) {
  if (e.kind == Request::kQuery) {
    if (!e.plan || e.statement >= e.plan->statements.size()) return nullptr;
    return &e.plan->statements[e.statement];
  }
  if (e.kind == Request::kExecute || e.kind == Request::kDescribe) return &e.transform;
  return nullptr;
}

bool client_row_description(const ResultTransform& t, std::span<const uint8_t> body,
                            std::string& to_client) {
  if (t.kind == ResultTransform::Kind::kCountToTag) {
    to_client += protocol::encode_no_data();  // Describe of a write without RETURNING
    return true;
  }
  const auto n = protocol::row_description_field_count(body);
  std::optional<std::string> kept;
  if (n && *n >= t.strip)
    kept = protocol::row_description_keep(body, static_cast<uint16_t>(*n - t.strip));
  if (!kept) return false;
  to_client += *kept;
  return true;
}

bool client_data_row(Expect& e, const ResultTransform& t, std::span<const uint8_t> body,
                     std::string& to_client) {
  if (t.kind == ResultTransform::Kind::kCountToTag) {
    e.count = protocol::data_row_first_int(body, e.count_binary).value_or(0);
    return true;  // the client's statement returns no rows
  }
  const uint16_t n = body.size() >= 2 ? protocol::read_u16(body.data()) : 0;
  std::optional<std::string> kept;
  if (n >= t.strip) kept = protocol::data_row_keep(body, static_cast<uint16_t>(n - t.strip));
  if (!kept) return false;
  to_client += *kept;
  return true;
}

int64_t client_rows(const Expect& e, const ResultTransform& t, std::span<const uint8_t> body) {
  return t.kind == ResultTransform::Kind::kCountToTag ? e.count : tag_rows(body);
}

std::string client_command_complete(router::TagKind k, int64_t rows) {
  return protocol::encode_command_complete(tag_text(k, rows));
}

bool terminated_tag(std::span<const uint8_t> body) {
  return !body.empty() && body.back() == 0;
}

void client_error(const Expect& e, std::span<const uint8_t> body, std::string& to_client) {
  const router::QueryPlan* p = e.plan.get();
  const bool target = e.read.target;
  auto mapped = protocol::error_map_position(
      protocol::be::kErrorResponse, body,
      [p, target](uint32_t pos) { return p->original_position(pos, target); });
  if (mapped) {
    to_client += *mapped;
  } else {
    append_raw(to_client, protocol::be::kErrorResponse, body);
  }
}

}  // namespace pgphase::intercept
