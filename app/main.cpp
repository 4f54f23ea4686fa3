// pgphase command line. `pgphase serve` runs the proxy; later subcommands (migration, switch,
// validate, backfill, alerts) talk to a running pgphase's admin API.
#include <boost/program_options.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/log.h"
#include "proxy/config.h"
#include "proxy/server.h"

namespace po = boost::program_options;
using pgphase::proxy::ConfigError;
using pgphase::proxy::ProxyConfig;

namespace {

constexpr const char* kUsage =
    "usage: pgphase <command> [options]\n"
    "commands:\n"
    "  serve     run the proxy (pgphase serve --help for its options)\n"
    "  version   print the version\n";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read config file \"" + path + "\"");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int serve(int argc, char** argv) {
  po::options_description opts("pgphase serve options");
  opts.add_options()("help,h", "show this help")(
      "config", po::value<std::string>(),
      "JSON config file (e.g. conf/pgphase.json); flags override it")(
      "listen", po::value<std::string>(),
      "client listen address host:port (default 127.0.0.1:6432)")(
      "backend", po::value<std::string>(),
      "PostgreSQL address host:port or unix:/path/.s.PGSQL.5432 (default 127.0.0.1:5432)")(
      "admin", po::value<std::string>(), "admin HTTP address host:port (default 127.0.0.1:8432)")(
      "workers", po::value<unsigned>(), "worker threads (default: one per core)")(
      "tls-cert", po::value<std::string>(), "certificate chain (PEM) for client TLS")(
      "tls-key", po::value<std::string>(), "private key (PEM) for client TLS")(
      "backend-tls", po::value<std::string>(), "disable | prefer | require (default disable)")(
      "max-message-size", po::value<uint32_t>(),
      "largest protocol message accepted, bytes (default 1 GiB)")(
      "shutdown-timeout", po::value<unsigned>(),
      "seconds sessions get to finish on SIGTERM (default 30)")(
      "connect-timeout-ms", po::value<unsigned>(), "backend connect timeout (default 5000)")(
      "max-client-connections", po::value<unsigned>(), "client connection limit (default 10000)")(
      "log-level", po::value<std::string>(), "debug | info | warn | error (default info)");
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(opts).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return 0;
  }
  ProxyConfig config;
  if (vm.count("config"))
    pgphase::proxy::apply_json(config, read_file(vm["config"].as<std::string>()));
  using pgphase::proxy::parse_endpoint;
  if (vm.count("listen"))
    config.listen = parse_endpoint(vm["listen"].as<std::string>(), "--listen");
  if (vm.count("backend"))
    config.backend = parse_endpoint(vm["backend"].as<std::string>(), "--backend");
  if (vm.count("admin")) config.admin = parse_endpoint(vm["admin"].as<std::string>(), "--admin");
  if (vm.count("workers")) config.workers = vm["workers"].as<unsigned>();
  if (vm.count("tls-cert")) config.tls_cert = vm["tls-cert"].as<std::string>();
  if (vm.count("tls-key")) config.tls_key = vm["tls-key"].as<std::string>();
  if (vm.count("backend-tls"))
    config.backend_tls = pgphase::proxy::parse_backend_tls(vm["backend-tls"].as<std::string>());
  if (vm.count("max-message-size")) config.max_message_size = vm["max-message-size"].as<uint32_t>();
  if (vm.count("shutdown-timeout"))
    config.shutdown_timeout_seconds = vm["shutdown-timeout"].as<unsigned>();
  if (vm.count("connect-timeout-ms"))
    config.connect_timeout_ms = vm["connect-timeout-ms"].as<unsigned>();
  if (vm.count("max-client-connections"))
    config.max_client_connections = vm["max-client-connections"].as<unsigned>();
  if (vm.count("log-level")) config.log_level = vm["log-level"].as<std::string>();
  pgphase::proxy::validate(config);
  pgphase::log::Level level{};
  (void)pgphase::log::parse_level(config.log_level, level);
  pgphase::log::set_level(level);

  pgphase::proxy::Server server(std::move(config));
  return server.run();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string command = argv[1];
  try {
    if (command == "serve") return serve(argc - 1, argv + 1);
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
  } catch (const ConfigError& e) {
    std::cerr << "pgphase: configuration error: " << e.what() << "\n";
    return 2;
  } catch (const po::error& e) {
    std::cerr << "pgphase: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pgphase: " << e.what() << "\n";
    return 1;
  }
}
