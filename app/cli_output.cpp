// Human-readable output of the CLI and registration from the manual's JSON files.
#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "app/cli_common.h"

namespace pgphase::app::cli {

namespace json = boost::json;

std::string text_of(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return std::string(v.get_string());
    case json::kind::null:
      return "";
    case json::kind::bool_:
      return v.get_bool() ? "true" : "false";
    case json::kind::array: {
      std::string out;
      for (const auto& e : v.get_array()) out += (out.empty() ? "" : ",") + text_of(e);
      return out;
    }
    case json::kind::double_: {
      std::ostringstream s;
      s << v.get_double();
      return s.str();
    }
    case json::kind::object: {
      std::string out;
      for (const auto& [key, e] : v.get_object())
        out += (out.empty() ? "" : ", ") + std::string(key) + "=" + text_of(e);
      return out;
    }
    default:
      return json::serialize(v);
  }
}

void print_fields(const json::object& o, const std::vector<std::string>& skip) {
  size_t width = 0;
  for (const auto& [key, v] : o) width = std::max(width, key.size());
  for (const auto& [key, v] : o) {
    if (std::find(skip.begin(), skip.end(), std::string(key)) != skip.end()) continue;
    std::cout << std::left << std::setw(static_cast<int>(width + 2)) << (std::string(key) + ":")
              << text_of(v) << "\n";
  }
}

void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    std::cout << out << "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
}

int register_from_file(const AdminClient& client, const std::string& path,
                       std::string_view collection, std::string_view id_key,
                       std::string_view endpoint, bool as_json) {
  std::ifstream in(path);
  if (!in) throw UsageError("--config-file: cannot read \"" + path + "\"");
  std::ostringstream text;
  text << in.rdbuf();
  json::error_code ec;
  const json::value root = json::parse(text.str(), ec);
  if (ec) throw UsageError("--config-file: " + path + ": invalid JSON: " + ec.message());
  const json::value* entries =
      root.is_object() ? root.get_object().if_contains(collection) : nullptr;
  if (!entries || !entries->is_array())
    throw UsageError("--config-file: " + path + " has no \"" + std::string(collection) +
                     "\" array");

  json::array results;
  std::vector<std::vector<std::string>> rows;
  int failed = 0;
  for (const auto& entry : entries->get_array()) {
    std::string id = "?";
    if (entry.is_object())
      if (const auto* v = entry.get_object().if_contains(id_key); v && v->is_string())
        id = std::string(v->get_string());
    const Answer a = client.post({endpoint}, entry);
    std::string result = a.status == 201   ? "created"
                         : a.status == 409 ? "exists"
                         : a.status == 200 ? "updated"
                                           : "failed";
    std::string why = result == "failed" ? reason_of(a, client) : "";
    if (result == "exists") why = "already registered; left unchanged";
    if (result == "failed") {
      ++failed;
      std::cerr << "pgphase: " << id << ": " << why << "\n";
    }
    rows.push_back({id, result, why});
    json::object r{{std::string(id_key), id}, {"result", result}, {"status", a.status}};
    r["answer"] = a.json;
    results.push_back(std::move(r));
  }
  if (as_json)
    std::cout << json::serialize(json::object{{"results", std::move(results)}}) << "\n";
  else if (rows.empty())
    std::cout << path << ": no entries\n";
  else
    print_table({std::string(id_key), "result", "note"}, rows);
  return failed ? kFailed : kOk;
}

}  // namespace pgphase::app::cli
