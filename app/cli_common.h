// Shared parts of the `pgphase migration` and `pgphase switch` commands: a synchronous HTTP client
// for the admin API (Beast over a Boost.URL-parsed --admin-url, bearer token from
// $PGPHASE_ADMIN_TOKEN, actor from --user), the common options, the manual's `--action X` form,
// printing (--json or human-readable) and exit codes: 0 done, 1 refused or failed, 2 usage error,
// 3 admin API unreachable.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pgphase::app::cli {

namespace po = boost::program_options;

enum Exit { kOk = 0, kFailed = 1, kUsage = 2, kUnreachable = 3 };

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct Unreachable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Answer {
  unsigned status = 0;
  std::string body;
  boost::json::value json;  // null when the body is not JSON
  [[nodiscard]] bool ok() const noexcept { return status >= 200 && status < 300; }
};

class AdminClient {
 public:
  // Throws UsageError for a URL that is not http(s)://host[:port][/prefix].
  // `ca_file`: for an https:// URL, the PEM file of the CA that signed the admin port's
  // certificate (empty: the system's trust store).
  AdminClient(const std::string& admin_url, std::string token, std::string actor,
              std::string ca_file = {});

  // `segments` are percent-encoded here: ids may hold any character.
  // `query`: "days=7" (already encoded), appended after "?".
  Answer get(std::initializer_list<std::string_view> segments, const std::string& query = {}) const;
  Answer post(std::initializer_list<std::string_view> segments,
              const boost::json::value& body) const;
  [[nodiscard]] bool has_token() const noexcept { return !token_.empty(); }

 private:
  Answer request(bool post, std::initializer_list<std::string_view> segments,
                 const std::string& body, const std::string& query = {}) const;
  std::string scheme_, host_, port_, host_header_, prefix_, token_, actor_, ca_file_;
};

// Options every subcommand takes (--action, --json, --user, --admin-url, --config-file, ...).
void add_common_options(po::options_description& opts);
// Parses argv (after the command word): one optional positional subcommand.
// `uses_db_url`: the subcommand connects to --db-url itself (no "ignored" note).
po::variables_map parse(int argc, char** argv, const po::options_description& opts,
                        bool uses_db_url = false);
// The subcommand: the positional word or --action (the manual's form); UsageError if neither,
// or if they disagree.
std::string action_of(const po::variables_map& vm);
AdminClient make_client(const po::variables_map& vm);
// A required option's value, or UsageError naming it and the action.
std::string need(const po::variables_map& vm, const char* option, const std::string& action);

// Prints an answer (raw JSON with --json, else `human`), and returns the exit code; on failure a
// one-line reason goes to stderr.
int report(const Answer& a, bool json, const AdminClient& client,
           const std::function<void(const boost::json::value&)>& human);
// The one-line reason of a failed answer.
std::string reason_of(const Answer& a, const AdminClient& client);

// Registers every entry of the manual's JSON file (its `collection` array, e.g. "migrations") by
// POSTing it to `endpoint`; reports created / already existing / failed per entry.
int register_from_file(const AdminClient& client, const std::string& path,
                       std::string_view collection, std::string_view id_key,
                       std::string_view endpoint, bool json);

// Progress of a long operation (backfill, validation) on stderr, so stdout keeps only the result:
// on a terminal one line redrawn with a bar; otherwise a plain line at each new stage and at most
// every few seconds; with --json one JSON object per line.
class ProgressPrinter {
 public:
  enum class Style { kBar, kLines, kJson };
  explicit ProgressPrinter(bool json);
  [[nodiscard]] Style style() const noexcept { return style_; }
  // `stage` groups updates (a new stage always prints); `percent` in 0-100; `fields` the JSON form.
  void update(const std::string& stage, double percent, const std::string& text,
              const boost::json::object& fields);
  void finish();  // ends the bar's line

 private:
  Style style_;
  std::string last_stage_;
  std::chrono::steady_clock::time_point last_line_{};
  bool drawn_ = false;
};

// Human-readable output.
std::string text_of(const boost::json::value& v);  // strings unquoted, arrays comma-joined
void print_fields(const boost::json::object& o, const std::vector<std::string>& skip = {});
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);

int migration_command(int argc, char** argv);
int switch_command(int argc, char** argv);
int backfill_command(int argc, char** argv);
int validate_command(int argc, char** argv);
int alerts_command(int argc, char** argv);

}  // namespace pgphase::app::cli
