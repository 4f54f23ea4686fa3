#include "dw_env.h"

#include <catch2/catch.hpp>

namespace pgphase::dw {

it::PgConn Env::proxied() const {
  it::PgConn c = it::PgConn::connect(proxied_conninfo());
  INFO(c.error_message());
  REQUIRE(c.ok());
  return c;
}

std::string Env::proxied_conninfo(const std::string& extra) const {
  return stack.proxy->conninfo(kControlDb, "postgres", "", extra);
}

Env& env() {
  static Env e = [] {
    Env x;
    x.stack.pg = start_cluster();
    x.stack.proxy = start_pgphase(serve_on(*x.stack.pg));
    x.stack.api = api_for(*x.stack.proxy);
    x.direct = control_conn(*x.stack.pg);
    x.direct.exec_ok(kSchema);
    register_migration(x.stack.api, "users_mig", "users", "t_sys_users");
    set_phase(x.stack.api, "users_mig", "dual_write");
    return x;
  }();
  return e;
}

long differences(const it::PgConn& c, const std::string& a, const std::string& b,
                 const std::string& columns) {
  const std::string sql = "SELECT (SELECT count(*) FROM (SELECT " + columns + " FROM " + a +
                          " EXCEPT SELECT " + columns + " FROM " + b +
                          ") x) + (SELECT count(*) FROM (SELECT " + columns + " FROM " + b +
                          " EXCEPT SELECT " + columns + " FROM " + a + ") y)";
  return std::stol(c.scalar(sql));
}

void reset_tables(const it::PgConn& c) {
  c.exec_ok("TRUNCATE users, t_sys_users, orders RESTART IDENTITY");
}

}  // namespace pgphase::dw
