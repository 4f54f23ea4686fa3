#include "app/cli_common.h"

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>

#include "common/http_client.h"

#include <pwd.h>
#include <unistd.h>

namespace pgphase::app::cli {

namespace json = boost::json;

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(5);
// Changes wait on the control database; the server bounds that itself.
constexpr auto kAnswerTimeout = std::chrono::seconds(60);

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

}  // namespace

AdminClient::AdminClient(const std::string& admin_url, std::string token, std::string actor,
                         std::string ca_file)
    : token_(trim(std::move(token))), actor_(std::move(actor)), ca_file_(std::move(ca_file)) {
  const auto url = boost::urls::parse_uri(admin_url);
  if (!url) throw UsageError("--admin-url: \"" + admin_url + "\" is not a URL");
  if (url->scheme() != "http" && url->scheme() != "https")
    throw UsageError("--admin-url: give http:// or https:// (an admin port with --admin-tls-cert)");
  scheme_ = url->scheme();
  if (!url->has_authority() || url->host_address().empty())
    throw UsageError("--admin-url: \"" + admin_url + "\" has no host");
  if (url->has_query() || url->has_fragment() || url->has_userinfo())
    throw UsageError("--admin-url: give only http(s)://host[:port][/prefix]");
  host_ = url->host_address();
  port_ = url->has_port() ? std::string(url->port()) : (scheme_ == "https" ? "443" : "80");
  host_header_ = url->encoded_host_and_port();
  prefix_ = url->encoded_path();
  while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
}

Answer AdminClient::get(std::initializer_list<std::string_view> segments,
                        const std::string& query) const {
  return request(false, segments, {}, query);
}

Answer AdminClient::post(std::initializer_list<std::string_view> segments,
                         const json::value& body) const {
  return request(true, segments, json::serialize(body));
}

Answer AdminClient::request(bool post, std::initializer_list<std::string_view> segments,
                            const std::string& body, const std::string& query) const {
  std::string target = prefix_ + "/api/v1";
  for (const auto s : segments)
    target += "/" + boost::urls::encode(s, boost::urls::unreserved_chars);
  if (!query.empty()) target += "?" + query;
  http_client::Request req;
  req.method = post ? "POST" : "GET";
  req.url = scheme_ + "://" + host_header_ + target;
  req.ca_file = ca_file_;
  req.headers = {{"Accept", "application/json"}, {"User-Agent", "pgphase-cli"}};
  if (!token_.empty()) req.headers.emplace_back("Authorization", "Bearer " + token_);
  if (!actor_.empty()) req.headers.emplace_back("X-PGPhase-Actor", actor_);
  if (post) {
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = body;
  }
  req.connect_timeout = kConnectTimeout;
  req.answer_timeout = kAnswerTimeout;
  http_client::Response res = http_client::send(req);
  if (!res.answered()) throw Unreachable(res.failure);

  Answer a;
  a.status = res.status;
  a.body = std::move(res.body);
  json::error_code ec;
  a.json = json::parse(a.body, ec);
  if (ec) a.json = nullptr;
  return a;
}

ProgressPrinter::ProgressPrinter(bool json)
    : style_(json                           ? Style::kJson
             : ::isatty(STDERR_FILENO) != 0 ? Style::kBar
                                            : Style::kLines) {}

void ProgressPrinter::update(const std::string& stage, double percent, const std::string& text,
                             const json::object& fields) {
  const auto now = std::chrono::steady_clock::now();
  const bool new_stage = stage != last_stage_;
  switch (style_) {
    case Style::kBar: {
      constexpr int kWidth = 30;
      const int filled = std::clamp(static_cast<int>(percent / 100.0 * kWidth + 0.5), 0, kWidth);
      std::cerr << "\r[" << std::string(static_cast<size_t>(filled), '#')
                << std::string(static_cast<size_t>(kWidth - filled), '.') << "] " << text << "   "
                << std::flush;
      drawn_ = true;
      break;
    }
    case Style::kLines:
      if (new_stage || now - last_line_ >= std::chrono::seconds(5)) {
        std::cerr << text << "\n" << std::flush;
        last_line_ = now;
      }
      break;
    case Style::kJson:
      if (new_stage || now - last_line_ >= std::chrono::seconds(1)) {
        std::cerr << json::serialize(fields) << "\n" << std::flush;
        last_line_ = now;
      }
      break;
  }
  last_stage_ = stage;
}

void ProgressPrinter::finish() {
  if (drawn_) std::cerr << "\n" << std::flush;
  drawn_ = false;
}

void add_common_options(po::options_description& opts) {
  opts.add_options()("help,h", "show this help")(
      "action", po::value<std::string>(), "the subcommand, in the manual's form (--action status)")(
      "json", "print the admin API's raw JSON answer")(
      "user", po::value<std::string>(), "who acts, recorded in the logs (default $USER)")(
      "admin-url", po::value<std::string>(),
      "admin API (default $PGPHASE_ADMIN_URL, else http://127.0.0.1:8432); https:// is verified")(
      "admin-ca", po::value<std::string>(),
      "CA certificate (PEM) to verify an https:// admin API with (default $PGPHASE_ADMIN_CA, else "
      "the system's trust store)")("config-file", po::value<std::string>(),
                                   "register: every entry of the manual's JSON file")(
      "db-url", po::value<std::string>(),
      "accepted for the manual's commands and ignored: the CLI talks to the admin API");
}

po::variables_map parse(int argc, char** argv, const po::options_description& opts,
                        bool uses_db_url) {
  po::options_description all(opts);
  all.add_options()("subcommand", po::value<std::vector<std::string>>());
  po::positional_options_description pos;
  pos.add("subcommand", -1);
  po::variables_map vm;
  po::store(
      po::command_line_parser(argc, argv)
          .options(all)
          .positional(pos)
          .style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing)
          .run(),
      vm);
  po::notify(vm);
  if (vm.count("subcommand") && vm["subcommand"].as<std::vector<std::string>>().size() > 1)
    throw UsageError("unexpected argument \"" + vm["subcommand"].as<std::vector<std::string>>()[1] +
                     "\"");
  if (vm.count("db-url") && !uses_db_url)
    std::cerr
        << "pgphase: note: --db-url is ignored; the CLI talks to the admin API (--admin-url)\n";
  return vm;
}

std::string action_of(const po::variables_map& vm) {
  const std::string word =
      vm.count("subcommand") ? vm["subcommand"].as<std::vector<std::string>>()[0] : "";
  const std::string action = vm.count("action") ? vm["action"].as<std::string>() : "";
  if (!word.empty() && !action.empty() && word != action)
    throw UsageError("subcommand \"" + word + "\" and --action \"" + action + "\" disagree");
  if (word.empty() && action.empty()) throw UsageError("which subcommand? (see --help)");
  return word.empty() ? action : word;
}

AdminClient make_client(const po::variables_map& vm) {
  std::string url = vm.count("admin-url") ? vm["admin-url"].as<std::string>() : "";
  if (url.empty()) url = env("PGPHASE_ADMIN_URL");
  if (url.empty()) url = "http://127.0.0.1:8432";
  std::string user = vm.count("user") ? vm["user"].as<std::string>() : env("USER");
  if (user.empty() && !vm.count("user")) {
    if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_name) user = pw->pw_name;
  }
  std::string ca = vm.count("admin-ca") ? vm["admin-ca"].as<std::string>() : "";
  if (ca.empty()) ca = env("PGPHASE_ADMIN_CA");
  return AdminClient(url, env("PGPHASE_ADMIN_TOKEN"), std::move(user), std::move(ca));
}

std::string need(const po::variables_map& vm, const char* option, const std::string& action) {
  if (!vm.count(option) || vm[option].as<std::string>().empty())
    throw UsageError(action + " needs --" + option);
  return vm[option].as<std::string>();
}

std::string reason_of(const Answer& a, const AdminClient& client) {
  std::string line = "HTTP " + std::to_string(a.status);
  if (a.json.is_object()) {
    const auto& o = a.json.get_object();
    if (const auto* e = o.if_contains("error"); e && e->is_string())
      line += ": " + std::string(e->get_string());
    if (const auto* d = o.if_contains("detail"); d && d->is_string() && !d->get_string().empty())
      line += ": " + std::string(d->get_string());
  } else if (!a.body.empty()) {
    line += ": " + trim(a.body.substr(0, 200));
  }
  if (a.status == 401 && !client.has_token()) line += " (PGPHASE_ADMIN_TOKEN is not set here)";
  for (auto& c : line)
    if (c == '\n' || c == '\r') c = ' ';
  return line;
}

int report(const Answer& a, bool json, const AdminClient& client,
           const std::function<void(const json::value&)>& human) {
  if (json) std::cout << a.body << "\n";
  if (!a.ok()) {
    std::cerr << "pgphase: " << reason_of(a, client) << "\n";
    return kFailed;
  }
  if (!json) human(a.json);
  return kOk;
}

}  // namespace pgphase::app::cli
