// `pgphase serve`: parses the options into an AppConfig and runs the proxy, the migration control
// plane (when a control database is configured) and the admin API on its own thread.
#pragma once

namespace pgphase::app {

int serve_command(int argc, char** argv);

}  // namespace pgphase::app
