#include "val_env.h"

#include <catch2/catch.hpp>

namespace pgphase::val {

std::string db_url(const std::string& db) {
  return env().stack.pg->conninfo(db);
}

json::object validate_json(const std::vector<std::string>& args, int* exit_code) {
  std::vector<std::string> argv{"validate", "--db-url", db_url()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.emplace_back("--json");
  const it::RunResult r = ctl::cli(argv);
  INFO(r.describe());
  REQUIRE((r.exit_code == 0 || r.exit_code == 1));
  if (exit_code != nullptr) *exit_code = r.exit_code;
  const json::value v = json::parse(r.out);
  REQUIRE(v.is_object());
  return v.as_object();
}

std::set<DiffKey> diff_keys(const json::object& report) {
  std::set<DiffKey> out;
  for (const auto& d : report.at("differences").as_array()) {
    const auto& o = d.as_object();
    const auto& f = o.at("field_name");
    out.emplace(std::string(o.at("difference_type").as_string()),
                std::string(o.at("record_id").as_string()),
                f.is_string() ? std::string(f.as_string()) : std::string());
  }
  return out;
}

}  // namespace pgphase::val
