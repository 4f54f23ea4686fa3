// A real JDBC client (pgjdbc) through pgphase: cursor fetches with setFetchSize (Execute with a
// row limit, answered by PortalSuspended), server-side prepared statements after
// prepareThreshold, and executeBatch. Exits non-zero on the first mismatch.
//
// usage: java -cp postgresql.jar:<classes> JdbcPortalTest <jdbc url>
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

public final class JdbcPortalTest {
  private static void check(boolean ok, String what) {
    if (!ok) {
      System.err.println("MISMATCH: " + what);
      System.exit(1);
    }
  }

  private static long scalar(Connection c, String sql) throws SQLException {
    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
      check(rs.next(), "no row from " + sql);
      return rs.getLong(1);
    }
  }

  // Reads generate_series(1, n) 100 rows at a time and checks every row, in order.
  private static void fetchInPieces(Connection c, int n) throws SQLException {
    try (Statement st = c.createStatement()) {
      st.setFetchSize(100);
      try (ResultSet rs =
          st.executeQuery("SELECT g, 'row-' || g FROM generate_series(1, " + n + ") g")) {
        int expected = 0;
        while (rs.next()) {
          ++expected;
          check(rs.getInt(1) == expected, "row " + expected + " has g=" + rs.getInt(1));
          check(("row-" + expected).equals(rs.getString(2)), "row " + expected + " text");
        }
        check(expected == n, "read " + expected + " rows, expected " + n);
      }
    }
  }

  // Two cursors open at once, read alternately: two suspended portals on one connection.
  private static void interleavedCursors(Connection c) throws SQLException {
    try (Statement a = c.createStatement(); Statement b = c.createStatement()) {
      a.setFetchSize(50);
      b.setFetchSize(70);
      try (ResultSet ra = a.executeQuery("SELECT g FROM generate_series(1, 1000) g");
          ResultSet rb = b.executeQuery("SELECT -g FROM generate_series(1, 1000) g")) {
        for (int i = 1; i <= 1000; ++i) {
          check(ra.next() && ra.getInt(1) == i, "cursor a row " + i);
          check(rb.next() && rb.getInt(1) == -i, "cursor b row " + i);
        }
        check(!ra.next() && !rb.next(), "cursors have extra rows");
      }
    }
  }

  private static void preparedManyTimes(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT ?::int * 2, ?::text || '!'")) {
      for (int i = 0; i < 50; ++i) {
        ps.setInt(1, i);
        ps.setString(2, "v" + i);
        try (ResultSet rs = ps.executeQuery()) {
          check(rs.next(), "prepared: no row for " + i);
          check(rs.getInt(1) == 2 * i, "prepared: " + i + " * 2 = " + rs.getInt(1));
          check(("v" + i + "!").equals(rs.getString(2)), "prepared: text for " + i);
          check(!rs.next(), "prepared: extra row for " + i);
        }
      }
      // Past prepareThreshold (5) pgjdbc switches to a named server-side statement.
      long named = scalar(c, "SELECT count(*) FROM pg_prepared_statements "
              + "WHERE NOT from_sql AND statement LIKE 'SELECT $1::int * 2%'");
      check(named == 1, "server-side prepared statements: " + named);
    }
  }

  private static void batchInsert(Connection c) throws SQLException {
    try (Statement st = c.createStatement()) {
      st.execute("CREATE TABLE jdbc_batch (id int PRIMARY KEY, v text NOT NULL)");
    }
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_batch VALUES (?, ?)")) {
      for (int i = 1; i <= 1000; ++i) {
        ps.setInt(1, i);
        ps.setString(2, "value " + i);
        ps.addBatch();
      }
      int[] counts = ps.executeBatch();
      check(counts.length == 1000, "batch returned " + counts.length + " counts");
      for (int n : counts) check(n == 1, "batch update count " + n);
    }
    c.commit();
    check(scalar(c, "SELECT count(*) FROM jdbc_batch") == 1000, "batch row count");
    check(scalar(c, "SELECT sum(id) FROM jdbc_batch") == 500500, "batch id sum");
    check(scalar(c, "SELECT count(*) FROM jdbc_batch WHERE v = 'value ' || id") == 1000,
        "batch values");
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: JdbcPortalTest <jdbc url>");
      System.exit(2);
    }
    try (Connection c = DriverManager.getConnection(args[0])) {
      c.setAutoCommit(false);  // pgjdbc uses cursors (portals) only inside a transaction
      fetchInPieces(c, 10000);
      interleavedCursors(c);
      preparedManyTimes(c);
      c.commit();
      batchInsert(c);
      fetchInPieces(c, 10000);  // again, on the same connection after all of the above
      c.commit();
    }
    System.out.println("JDBC OK");
  }
}
