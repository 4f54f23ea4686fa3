#include "oracle.h"

#include <catch2/catch.hpp>

namespace pgphase::dw {

std::string received(const it::PgResult& r) {
  if (!r.ok()) {
    const std::string pos = r.field(PG_DIAG_STATEMENT_POSITION);
    return "ERROR " + r.sqlstate() + " " + r.field(PG_DIAG_MESSAGE_PRIMARY) +
           (pos.empty() ? "" : " at " + pos);
  }
  std::string out = r.cmd_status();
  if (r.cols() > 0) {
    out += "\n";
    for (int j = 0; j < r.cols(); ++j) {
      if (j > 0) out += ",";
      out += std::string(PQfname(r.get(), j)) + ":" + std::to_string(PQftype(r.get(), j));
    }
  }
  for (int i = 0; i < r.rows(); ++i) {
    out += "\n";
    for (int j = 0; j < r.cols(); ++j) {
      if (j > 0) out += "|";
      out += r.is_null(i, j) ? "<null>" : r.value(i, j);
    }
  }
  return out;
}

it::PgResult run(const it::PgConn& c, Protocol p, const std::string& sql) {
  return p == Protocol::kSimple ? c.exec(sql) : c.exec_params(sql, {});
}

std::string Twin::both(Protocol p, const std::string& sql) const {
  const std::string got = received(run(real, p, sql));
  const std::string want = received(run(oracle, p, sql));
  INFO(sql << (p == Protocol::kSimple ? " (simple protocol)" : " (extended protocol)"));
  CHECK(got == want);
  return got;
}

void Twin::set(const std::string& sql) const {
  real.exec_ok(sql);
  oracle.exec_ok(sql);
}

it::PgConn oracle_db(Env& e, const std::string& name, const std::string& setup) {
  e.direct.exec_ok("DROP DATABASE IF EXISTS " + name);
  e.direct.exec_ok("CREATE DATABASE " + name);
  it::PgConn o = it::PgConn::connect(e.stack.pg->conninfo(name));
  REQUIRE(o.ok());
  o.exec_ok(setup);
  return o;
}

Twin twin(Env& e, const std::string& name, const std::string& setup) {
  e.direct.exec_ok(setup);
  return Twin{e.proxied(), oracle_db(e, name, setup)};
}

std::string rows_of(const it::PgConn& c, const std::string& table, const std::string& columns) {
  c.exec_ok(
      "SET extra_float_digits = 3; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = "
      "'postgres'; SET TimeZone = 'UTC'; SET bytea_output = 'hex'");
  return c.scalar("SELECT coalesce(string_agg(x, E'\\n' ORDER BY x), '') FROM (SELECT ROW(" +
                  columns + ")::text AS x FROM " + table + ") s");
}

void check_tables(Env& e, const Twin& t, const std::string& source, const std::string& target,
                  const std::string& columns) {
  INFO(source << " -> " << target);
  CHECK(rows_of(e.direct, source, columns) == rows_of(t.oracle, source, columns));
  CHECK(differences(e.direct, source, target, columns) == 0);
}

void switch_reads(Env& e, const std::string& config_id, const std::string& table,
                  const std::string& migration_id, double percentage) {
  register_switch(e.stack.api, config_id, table, migration_id);
  REQUIRE(e.stack.api.post("/api/v1/switches/" + config_id + "/activate", "{}").status == 200);
  set_percentage(e.stack.api, config_id, percentage);
}

void check_refused(const it::PgResult& r) {
  INFO(r.describe());
  CHECK(r.sqlstate() == "0A000");
  CHECK_THAT(r.error_message(), Catch::Contains("pgphase: migration"));
}

}  // namespace pgphase::dw
