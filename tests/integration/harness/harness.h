// pgphase integration-test harness: one include for test executables.
//
//   PgCluster      a real PostgreSQL 15 cluster (initdb in a temp dir, free port, test roles)
//   ProxyProcess   a real pgphase process in front of it (free listen/admin ports, stderr file)
//   PgConn         libpq connection/result wrappers
//   RawClient      raw v3 wire client + `wire::` message builders, for what libpq cannot send
//   http_get / scrape_metrics / Metrics   admin endpoint and Prometheus text parsing
//   run / Child    commands (psql, pgbench, openssl) and long-running children
//   TempDir, free_port, wait_until, ...   small utilities
//
// Typical test:
//   auto& env = it::shared_env();                  // cluster + proxy, shared per executable
//   it::PgConn c = env.proxy->connect("postgres", "u_scram", it::kScramRole.password);
//   REQUIRE(c.ok());
//   CHECK(c.scalar("SELECT 1") == "1");
// Tests needing special setups build their own PgCluster/ProxyProcess (RAII, any number).
#pragma once

#include <memory>

#include "harness/http.h"
#include "harness/pg_cluster.h"
#include "harness/pg_conn.h"
#include "harness/process.h"
#include "harness/proxy_process.h"
#include "harness/raw_client.h"
#include "harness/util.h"

namespace pgphase::it {

struct ProxiedCluster {
  std::unique_ptr<PgCluster> pg;
  std::unique_ptr<ProxyProcess> proxy;
};

// A default PgCluster with a default pgphase (TCP backend) in front of it, started on first use
// and shared by all test cases of the executable; stopped and deleted at exit.
ProxiedCluster& shared_env();

}  // namespace pgphase::it
