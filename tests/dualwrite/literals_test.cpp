// Inlined literals (the SQL-layer issue's shape cache): an application that writes its values
// into the text (psycopg2, Django, Rails in the simple protocol) sends a new text per write, of
// few shapes; the second text of a shape is rendered from the first's template. Through pgphase
// and on a twin database without it, in both protocols: the client receives the same (rows,
// tags, errors with their positions), the source equals the twin's table and the target the
// source, for literals of every lexical kind and of lengths that move what follows them.
#include <catch2/catch.hpp>

#include "oracle.h"

using namespace pgphase;
using namespace pgphase::dw;

TEST_CASE("writes with inlined literals, rendered from their shape, are exact") {
  Env& e = env();
  Twin t = twin(e, "oracle_lx",
                "CREATE TABLE lx (id int PRIMARY KEY, s text, n numeric, d date);"
                "CREATE TABLE t_sys_lx (id int PRIMARY KEY, s text, n numeric, d date)");
  register_migration(e.stack.api, "lx_mig", "lx", "t_sys_lx");
  set_phase(e.stack.api, "lx_mig", "dual_write");
  const char* strings[] = {"'a'",
                           "'it''s'",
                           "E'tab\\there \\'q\\''",
                           "$$dollar'$$",
                           "$q$ $$ 'x' $q$",
                           "'héllo wörld ✓'",
                           "''",
                           "'a much longer value than the first one'",
                           "'--not a comment'",
                           "'/* nor this */'",
                           "E'\\\\'"};
  const char* numbers[] = {"1.5", "-2", "1e3", "0.000001", "12345678901234567890"};
  int id = 0;
  for (Protocol p : kBoth) {
    for (const char* s : strings) {
      for (const char* n : {numbers[id % 5], numbers[(id + 2) % 5]}) {
        const std::string k = std::to_string(++id);
        t.both(p, "INSERT INTO lx (id, s, n, d) VALUES (" + k + ", " + s + ", " + n +
                      ", '2024-01-0" + std::to_string(1 + id % 9) + "'::date) RETURNING s, n");
        t.both(p,
               "UPDATE lx SET s = s || " + std::string(s) + ", n = n * " + n + " WHERE id = " + k);
      }
    }
    // IN lists of different lengths (distinct shapes), a LIMIT in a subquery, casts.
    t.both(p, "DELETE FROM lx WHERE id IN (1, 2) RETURNING id");
    t.both(p, "DELETE FROM lx WHERE id IN (3, 4, 5) RETURNING id");
    t.both(p,
           "UPDATE lx SET n = 7::numeric(4,1) WHERE id IN (SELECT id FROM lx ORDER BY 1 "
           "LIMIT 2)");
    t.both(p,
           "UPDATE lx SET n = 8::numeric(4,1) WHERE id IN (SELECT id FROM lx ORDER BY 1 "
           "LIMIT 3)");
    // Errors at a literal: the position maps back to the client's text whatever the lengths of
    // the literals before it.
    t.both(p, "INSERT INTO lx (id, s, n) VALUES (900, 'short', 'x'::numeric)");
    t.both(p,
           "INSERT INTO lx (id, s, n) VALUES (900, 'a far longer literal here', "
           "'not a number'::numeric)");
    t.both(p, "UPDATE lx SET d = '2024-13-45' WHERE id = 6");
    t.both(p, "UPDATE lx SET d = 'not a date at all' WHERE id = 7");
  }
  check_tables(e, t, "lx", "t_sys_lx", "id, s, n, d");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_lx") ==
        e.direct.scalar("SELECT count(*) FROM lx"));
  CHECK(e.direct.scalar("SELECT count(*) FROM lx") != "0");
}
