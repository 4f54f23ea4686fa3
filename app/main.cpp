// pgphase command line. `pgphase serve` runs the proxy; `migration` and `switch` talk to a running
// pgphase's admin API; `validate` connects to the database itself.
#include <boost/program_options/errors.hpp>
#include <iostream>

#include "app/app_config.h"
#include "app/cli_common.h"
#include "app/serve.h"

namespace {

constexpr const char* kUsage =
    "usage: pgphase <command> [options]\n"
    "commands:\n"
    "  serve       run the proxy (pgphase serve --help for its options)\n"
    "  migration   list|status|register|set-phase|enable-dual-write|disable-dual-write|rollback\n"
    "  switch      list|register|activate|update-percentage|analytics|rollback\n"
    "  backfill    copy the existing source rows into the target (pgphase backfill --help)\n"
    "  validate    compare source and target, report and repair differences\n"
    "  alerts      status|statistics|acknowledge|resolve|rules|silence|silences|monitor\n"
    "  version     print the version\n"
    "`pgphase migration --help` and `pgphase switch --help` show their options; both talk to the\n"
    "admin API at --admin-url (default $PGPHASE_ADMIN_URL or http://127.0.0.1:8432) with the "
    "token\n"
    "in $PGPHASE_ADMIN_TOKEN. Exit codes: 0 done, 1 refused or failed, 2 usage error, 3 admin API\n"
    "unreachable.\n";

int cli(int (*command)(int, char**), int argc, char** argv) {
  namespace cli = pgphase::app::cli;
  try {
    return command(argc, argv);
  } catch (const cli::UsageError& e) {
    std::cerr << "pgphase: " << e.what() << "\n";
    return cli::kUsage;
  } catch (const boost::program_options::error& e) {
    std::cerr << "pgphase: " << e.what() << "\n";
    return cli::kUsage;
  } catch (const cli::Unreachable& e) {
    std::cerr << "pgphase: admin API unreachable: " << e.what() << "\n";
    return cli::kUnreachable;
  } catch (const std::exception& e) {
    std::cerr << "pgphase: " << e.what() << "\n";
    return cli::kFailed;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string command = argv[1];
  if (command == "migration") return cli(pgphase::app::cli::migration_command, argc - 1, argv + 1);
  if (command == "switch") return cli(pgphase::app::cli::switch_command, argc - 1, argv + 1);
  if (command == "backfill") return cli(pgphase::app::cli::backfill_command, argc - 1, argv + 1);
  if (command == "validate") return cli(pgphase::app::cli::validate_command, argc - 1, argv + 1);
  if (command == "alerts") return cli(pgphase::app::cli::alerts_command, argc - 1, argv + 1);
  try {
    if (command == "serve") return pgphase::app::serve_command(argc - 1, argv + 1);
    if (command == "version" || command == "--version") {
      std::cout << "pgphase 0.1.0\n";
      return 0;
    }
    if (command == "help" || command == "--help" || command == "-h") {
      std::cout << kUsage;
      return 0;
    }
    std::cerr << "pgphase: unknown command \"" << command << "\"\n" << kUsage;
    return 2;
  } catch (const pgphase::app::ConfigError& e) {
    std::cerr << "pgphase: configuration error: " << e.what() << "\n";
    return 2;
  } catch (const boost::program_options::error& e) {
    std::cerr << "pgphase: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pgphase: " << e.what() << "\n";
    return 1;
  }
}
