// What pgjdbc reports for writes: executeUpdate and executeBatch counts (pgjdbc sends Execute with
// a row limit of 1 for them), an optimistic-locking UPDATE as Hibernate issues it, RETURNING read
// with executeQuery, and the table at the end. Prints one line per answer; the test runs it
// through pgphase and straight against an oracle database and compares the two outputs.
//
// usage: java -cp postgresql.jar:<classes> JdbcUpdateCounts <jdbc url> <table>
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Arrays;

public final class JdbcUpdateCounts {
  public static void main(String[] args) throws SQLException {
    final String table = args[1];
    try (Connection c = DriverManager.getConnection(args[0])) {
      // Server-side prepared statements from the first use, and again after five (default).
      try (PreparedStatement ins = c.prepareStatement(
               "INSERT INTO " + table + " (id, name, version) VALUES (?, ?, 0)")) {
        for (int i = 1; i <= 6; ++i) {
          ins.setInt(1, i);
          ins.setString(2, "n" + i);
          System.out.println("insert " + i + ": " + ins.executeUpdate());
        }
        for (int i = 7; i <= 11; ++i) {
          ins.setInt(1, i);
          ins.setString(2, "b" + i);
          ins.addBatch();
        }
        System.out.println("batch: " + Arrays.toString(ins.executeBatch()));
      }
      try (PreparedStatement upd = c.prepareStatement(
               "UPDATE " + table + " SET name = ?, version = version + 1 WHERE id = ? AND version = ?")) {
        for (int round = 0; round < 7; ++round) {
          upd.setString(1, "v" + round);
          upd.setInt(2, 1 + round % 3);
          upd.setInt(3, round / 3);
          System.out.println("optimistic " + round + ": " + upd.executeUpdate());
        }
        upd.setString(1, "stale");
        upd.setInt(2, 1);
        upd.setInt(3, 0);  // an old version: Hibernate's StaleObjectStateException case
        System.out.println("stale: " + upd.executeUpdate());
      }
      try (Statement st = c.createStatement()) {
        System.out.println("update many: "
            + st.executeUpdate("UPDATE " + table + " SET version = version + 10 WHERE id > 8"));
        st.addBatch("UPDATE " + table + " SET name = name || '!' WHERE id <= 2");
        st.addBatch("DELETE FROM " + table + " WHERE id = 11");
        st.addBatch("INSERT INTO " + table + " (id, name, version) VALUES (20, 'x', 0), (21, 'y', 0)");
        System.out.println("statement batch: " + Arrays.toString(st.executeBatch()));
        System.out.println("delete: " + st.executeUpdate("DELETE FROM " + table + " WHERE id = 10"));
        System.out.println("delete none: "
            + st.executeUpdate("DELETE FROM " + table + " WHERE id = 999"));
      }
      try (PreparedStatement ret = c.prepareStatement(
               "UPDATE " + table + " SET version = version + 1 WHERE id < ? RETURNING id, version")) {
        ret.setInt(1, 4);
        try (ResultSet rs = ret.executeQuery()) {
          java.util.List<String> rows = new java.util.ArrayList<>();
          while (rs.next()) rows.add(rs.getInt(1) + "/" + rs.getInt(2));
          java.util.Collections.sort(rows);  // RETURNING's order is the scan's
          System.out.println("returning: " + rows);
        }
      }
      try (Statement st = c.createStatement();
           ResultSet rs = st.executeQuery("SELECT id, name, version FROM " + table + " ORDER BY id")) {
        while (rs.next()) {
          System.out.println("row " + rs.getInt(1) + " " + rs.getString(2) + " " + rs.getInt(3));
        }
      }
    }
    System.out.println("JDBC DONE");
  }
}
