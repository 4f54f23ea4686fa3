#include "intercept/statement_registry.h"

namespace pgphase::intercept {

std::string_view server_key(std::string_view name) noexcept {
  constexpr size_t kNameDataLen = 64;
  return name.substr(0, kNameDataLen - 1);
}

Statement* StatementRegistry::find(std::string_view key) {
  const auto it = statements_.find(key);
  return it == statements_.end() ? nullptr : &it->second;
}

Portal* StatementRegistry::find_portal(std::string_view key) {
  if (key.empty()) return unnamed_portal_ ? &*unnamed_portal_ : nullptr;
  const auto it = portals_.find(key);
  return it == portals_.end() ? nullptr : &it->second;
}

void StatementRegistry::bind(std::string_view key, Portal p) {
  if (key.empty()) {
    unnamed_portal_ = std::move(p);
  } else if (const auto it = portals_.find(key); it != portals_.end()) {
    it->second = std::move(p);
  } else {
    portals_.emplace(std::string(key), std::move(p));
  }
}

void StatementRegistry::erase_portal(std::string_view key) {
  if (key.empty()) {
    unnamed_portal_.reset();
  } else if (const auto it = portals_.find(key); it != portals_.end()) {
    portals_.erase(it);
  }
}

std::shared_ptr<Statement> StatementRegistry::parse(std::string_view key, Statement st, bool keep) {
  std::shared_ptr<Statement> previous;
  parse_in_place(key, keep, previous) = std::move(st);
  return previous;
}

Statement& StatementRegistry::parse_in_place(std::string_view key, bool keep,
                                             std::shared_ptr<Statement>& previous) {
  previous = nullptr;
  const auto it = statements_.find(key);
  if (it == statements_.end()) {
    Statement& fresh = statements_.emplace(std::string(key), Statement{}).first->second;
    fresh.version = ++versions_;
    return fresh;
  }
  Statement& st = it->second;
  if (keep) previous = std::make_shared<Statement>(std::move(st));
  st.text.clear();
  st.param_types.clear();
  st.plan = nullptr;
  st.generation = 0;
  st.alt_prepared = false;
  st.alt_name.clear();
  st.alt_confirmed = false;
  st.unconfirmed = false;
  st.on_server = false;
  st.version = ++versions_;
  return st;
}

std::shared_ptr<Statement> StatementRegistry::close(const std::string& key) {
  const auto it = statements_.find(key);
  if (it == statements_.end()) return nullptr;
  auto removed = std::make_shared<Statement>(std::move(it->second));
  statements_.erase(it);
  return removed;
}

void StatementRegistry::install(std::string_view key, Statement st) {
  std::shared_ptr<Statement> replaced;  // stays empty: not named, nothing kept for an undo
  Statement& slot = parse_in_place(key, false, replaced);
  const uint64_t version = slot.version;
  slot = std::move(st);
  slot.version = version;
  slot.on_server = true;
}

uint64_t StatementRegistry::version(std::string_view key) {
  const Statement* st = find(key);
  return st == nullptr ? 0 : st->version;
}

void StatementRegistry::undo(bool was_parse, const std::string& key,
                             std::shared_ptr<Statement> previous, uint64_t made) {
  if (version(key) != made) return;  // changed since by a later request of the client
  if (previous) {
    Statement restored = std::move(*previous);
    restored.alt_prepared = false;  // its twin was closed when it was replaced
    statements_[key] = std::move(restored);
  } else if (was_parse) {
    statements_.erase(key);
  }
}

const std::string& StatementRegistry::alt_name(Statement& st) {
  if (st.alt_name.empty()) st.alt_name = "__pgphase_rt_" + std::to_string(++alt_ids_);
  return st.alt_name;
}

}  // namespace pgphase::intercept
