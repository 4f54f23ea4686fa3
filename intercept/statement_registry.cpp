#include "intercept/statement_registry.h"

namespace pgphase::intercept {

std::string server_key(std::string_view name) {
  constexpr size_t kNameDataLen = 64;
  return std::string(name.substr(0, kNameDataLen - 1));
}

Statement* StatementRegistry::find(const std::string& key) {
  const auto it = statements_.find(key);
  return it == statements_.end() ? nullptr : &it->second;
}

Portal* StatementRegistry::find_portal(const std::string& key) {
  const auto it = portals_.find(key);
  return it == portals_.end() ? nullptr : &it->second;
}

std::shared_ptr<Statement> StatementRegistry::parse(const std::string& key, Statement st,
                                                    bool named) {
  const auto it = statements_.find(key);
  if (it == statements_.end()) {
    statements_.emplace(key, std::move(st));
    return nullptr;
  }
  std::shared_ptr<Statement> previous;
  if (named) previous = std::make_shared<Statement>(std::move(it->second));
  it->second = std::move(st);
  return previous;
}

std::shared_ptr<Statement> StatementRegistry::close(const std::string& key) {
  const auto it = statements_.find(key);
  if (it == statements_.end()) return nullptr;
  auto removed = std::make_shared<Statement>(std::move(it->second));
  statements_.erase(it);
  return removed;
}

void StatementRegistry::undo(bool was_parse, const std::string& key,
                             std::shared_ptr<Statement> previous) {
  if (previous) {
    Statement restored = std::move(*previous);
    restored.alt_prepared = false;  // its twin was closed when it was replaced
    statements_[key] = std::move(restored);
  } else if (was_parse) {
    statements_.erase(key);
  }
}

std::string StatementRegistry::alt_name(Statement& st) {
  if (st.alt_id == 0) st.alt_id = ++alt_ids_;
  return "__pgphase_rt_" + std::to_string(st.alt_id);
}

}  // namespace pgphase::intercept
