// Stops a PgCluster's server and starts it again on the same port and data directory, as an
// outage of the control database. The restarted postmaster is owned here (the PgCluster's own
// child has exited): declare the ServerControl after the PgCluster so that it is destroyed first.
#pragma once

#include "harness/harness.h"

namespace pgphase::it {

class ServerControl {
 public:
  explicit ServerControl(PgCluster& pg) : pg_(pg) {}
  ~ServerControl();
  ServerControl(const ServerControl&) = delete;
  ServerControl& operator=(const ServerControl&) = delete;

  // pg_ctl stop -m fast: sessions get 57P01, then the port is closed.
  void stop();
  // postgres -D <data> -p <port> again; returns once it accepts connections.
  void start();

 private:
  PgCluster& pg_;
  Child restarted_;
};

}  // namespace pgphase::it
