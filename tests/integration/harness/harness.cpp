#include "harness/harness.h"

namespace pgphase::it {

ProxiedCluster& shared_env() {
  static ProxiedCluster env = [] {
    ProxiedCluster e;
    e.pg = PgCluster::start();
    e.proxy = std::make_unique<ProxyProcess>(ProxyOptions::tcp(*e.pg));
    return e;
  }();
  return env;
}

}  // namespace pgphase::it
