#include "migration/control_plane.h"

#include <boost/json.hpp>
#include <condition_variable>
#include <deque>

#include "migration/repair.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "migration/config_files.h"
#include "migration/op_support.h"
#include "migration/operations.h"
#include "migration/other_database_shapes.h"
#include "migration/pg_client.h"
#include "migration/schema.h"
#include "migration/store.h"
#include "migration/table_shape.h"

namespace pgphase::migration {
using namespace std::chrono_literals;
using Kind = OpError::Kind;
using ops::fail;
using ops::number;
using ops::phase_name;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kConnectTimeout = 5000ms;
constexpr auto kBackoffMin = 100ms;
constexpr auto kBackoffMax = 2000ms;
// A stuck statement or lock must not hold an operation (and the command mutex) forever.
constexpr const char* kSessionSettings =
    "SET statement_timeout = '30s'; SET lock_timeout = '10s'; "
    "SET idle_in_transaction_session_timeout = '5min'";

bool same_state(const Snapshot& s, const std::vector<Migration>& ms,
                const std::vector<SwitchConfig>& ss) {
  if (s.migrations.size() != ms.size() || s.switches.size() != ss.size()) return false;
  for (size_t i = 0; i < ms.size(); ++i) {
    if (s.migrations[i].migration_id != ms[i].migration_id ||
        s.migrations[i].version != ms[i].version ||
        s.migrations[i].updated_at != ms[i].updated_at) {
      return false;
    }
  }
  for (size_t i = 0; i < ss.size(); ++i) {
    if (s.switches[i].config_id != ss[i].config_id || s.switches[i].version != ss[i].version ||
        s.switches[i].updated_at != ss[i].updated_at) {
      return false;
    }
  }
  return true;
}

// The shapes to publish when the catalog could not be read: the published ones when the state is
// unchanged, else every shape saying why.
std::map<std::string, TableShape> unsettled_or_unchanged(bool unchanged, const SnapshotPtr& current,
                                                         const std::vector<Migration>& migrations,
                                                         const std::string& why) {
  if (unchanged) return current->shapes;
  return unresolved_shapes(migrations, "cannot read the control database's catalog: " + why);
}

}  // namespace

struct ControlPlane::Impl {
  explicit Impl(ControlConfig c) : cfg(std::move(c)) {}

  ControlConfig cfg;

  // Config files: parsed by start(), registered once the database is reachable.
  std::mutex apply_mu;
  std::vector<ConfigFile> files;
  bool files_applied = true;

  // The command connection, used by operations one at a time.
  std::mutex cmd_mu;
  pg::Connection cmd;
  std::atomic<bool> schema_ready{false};

  // Publication: reading the state and publishing it happen under publish_mu, so a snapshot
  // published later was also read later (never older than the one it replaces).
  std::mutex publish_mu;
  uint64_t generation = 0;
  SnapshotCell snap;
  std::string shape_error;  // the last failure to read the table shapes, logged once
  // The shapes of migrations whose tables are in another database (used under publish_mu).
  OtherDatabaseShapes other_databases;

  // Flagged writes waiting to be logged (record_flagged_write), written by `journal`.
  std::mutex journal_mu;
  std::condition_variable journal_cv;
  std::deque<store::LogRow> journal_queue;
  uint64_t journal_dropped = 0;
  bool journal_stop = false;
  std::thread journal;

  std::atomic<bool> is_connected{false};
  std::atomic<bool> stopping{false};
  int wake_r = -1;
  int wake_w = -1;
  std::thread listener;
  bool started = false;
  std::string start_problem;  // what start()'s first attempt logged, not repeated by the listener

  // ---- connections and publication ----------------------------------------------------------

  pg::Connection open_connection() {
    pg::Connection c = pg::Connection::open(cfg.dsn, kConnectTimeout, wake_r);
    c.set_answer_timeout(std::chrono::milliseconds(cfg.answer_timeout_ms));
    c.exec(kSessionSettings);
    return c;
  }

  // cmd_mu held.
  pg::Connection& command() {
    // A connection that looks alive may be stale (the server restarted while it sat idle): probe
    // it, so an operation never fails on the first use after an outage. Operations are rare; one
    // extra round trip is cheap.
    if (cmd.alive()) {
      try {
        cmd.exec("SELECT 1");
      } catch (const pg::PgError& e) {
        if (!e.connection_lost()) throw;
        log::info("control plane: command connection was stale (", e.what(), "); reconnecting");
        cmd.close();
      }
    }
    if (!cmd.alive()) {
      cmd.close();
      if (stopping) throw pg::PgError("08003", "pgphase is shutting down", true);
      cmd = open_connection();
      log::info("control plane: command connection to ", cmd.describe());
    }
    if (!schema_ready) {
      ensure_schema(cmd);
      schema_ready = true;
    }
    return cmd;
  }

  // Reads the state and publishes it unless it is the published one. The table shapes are
  // resolved on every reload (two catalog queries), so that what changes how statements must be
  // rewritten without any change of a migration (a table or index created, a same-named table in
  // another schema, a trigger, row-level security) is seen within a reload interval; a new
  // snapshot is published only when something differs.
  void reload(pg::Connection& c) {
    std::lock_guard lock(publish_mu);
    const SnapshotPtr current = snap.load();
    std::vector<Migration> migrations;
    std::vector<SwitchConfig> switches;
    std::map<std::string, TableShape> shapes;
    bool unchanged = false;
    bool catalog_failed = false;
    {
      pg::Transaction tx(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      migrations = store::load_migrations(c);
      switches = store::load_switches(c);
      unchanged = generation > 0 && same_state(*current, migrations, switches);
      {
        try {
          shapes = load_shapes(c, migrations);
        } catch (const pg::PgError& e) {
          // The state read so far is complete: a catalog query that fails must not keep it
          // from being published. Every shape says why; when nothing else changed, the
          // published shapes stay.
          if (e.connection_lost()) throw;
          if (shape_error != e.what()) {
            log::warn("control plane: cannot read the table shapes from the catalog: ", e.what());
          }
          shape_error = e.what();
          shapes = unsettled_or_unchanged(unchanged, current, migrations, e.what());
          catalog_failed = true;
        }
        if (!catalog_failed) shape_error.clear();
      }
      if (catalog_failed) {
        tx.rollback();  // the transaction is aborted; nothing was written in it
      } else {
        tx.commit();
      }
    }
    if (!catalog_failed) other_databases.load(c, cfg.dsn, wake_r, migrations, *current, shapes);
    if (unchanged && shapes == current->shapes) return;
    auto next = std::make_shared<Snapshot>();
    next->generation = ++generation;
    next->migrations = std::move(migrations);
    next->switches = std::move(switches);
    next->shapes = std::move(shapes);
    next->loaded_at = std::chrono::system_clock::now();
    next->control_database = PQdb(c.raw()) != nullptr ? PQdb(c.raw()) : "";
    log::debug("control plane: published state generation ", next->generation, " (",
               next->migrations.size(), " migrations, ", next->switches.size(), " switches)");
    snap.publish(std::move(next));
  }

  // Runs one operation on the command connection and maps failures to OpError kinds. After a
  // successful mutation the state is reloaded and published before returning, so the caller's
  // next snapshot() shows it.
  template <class T, class Body>
  OpResult<T> run(const char* what, bool mutation, Body&& body) {
    std::lock_guard lock(cmd_mu);
    try {
      pg::Connection& c = command();
      OpResult<T> result = body(c);
      if (mutation && result.ok()) {
        try {
          reload(c);
        } catch (const std::exception& e) {
          log::warn("control plane: ", what, " done, but reloading the state failed: ", e.what(),
                    " (the listener will catch up)");
        }
      }
      return result;
    } catch (const pg::PgError& e) {
      if (e.connection_lost()) {
        cmd.close();
        is_connected = false;
        return fail<T>(Kind::kUnavailable, std::string("control database unavailable: ") + e.what(),
                       "nothing was changed; retry once the control database is reachable");
      }
      const std::string& state = e.sqlstate();
      if (state == "55P03" || state == "40001" || state == "40P01") {
        return fail<T>(
            Kind::kConflict,
            std::string(what) + ": a concurrent change held the same rows (" + e.what() + ")",
            "retry");
      }
      if (state == "57014") {
        return fail<T>(Kind::kUnavailable, std::string("control database unavailable: ") + what +
                                               " timed out (" + e.what() + ")");
      }
      return fail<T>(Kind::kInternal, std::string(what) + " failed in the control database: " +
                                          e.what() + (state.empty() ? "" : " [" + state + "]"));
    } catch (const SchemaError& e) {
      return fail<T>(Kind::kUnavailable, std::string("control database unusable: ") + e.what());
    } catch (const ModelValueError& e) {
      return fail<T>(Kind::kUnprocessable, e.what());
    } catch (const ModelError& e) {
      return fail<T>(Kind::kBadRequest, e.what());
    } catch (const std::exception& e) {
      return fail<T>(Kind::kInternal, std::string(what) + " failed: " + e.what());
    }
  }

  // ---- operations -----------------------------------------------------------------------------

  OpResult<Migration> register_migration(const Migration& m, const std::string& actor,
                                         std::optional<Migration>* existing) {
    return run<Migration>("register migration", true, [&](pg::Connection& c) {
      return ops::register_migration(c, m, actor, existing);
    });
  }
  OpResult<SwitchConfig> register_switch(const SwitchConfig& s, const std::string& actor,
                                         std::optional<SwitchConfig>* existing) {
    return run<SwitchConfig>("register switch config", true, [&](pg::Connection& c) {
      return ops::register_switch(c, s, actor, existing);
    });
  }

  // ---- config files -----------------------------------------------------------------------------

  // Registers what the config files hold and the database does not; never overrides. Returns
  // false (to be retried after the next reconnect) when the database became unavailable.
  bool apply_config_files() {
    std::lock_guard lock(apply_mu);
    if (files_applied) return true;
    const std::string actor = "config-file";
    for (const ConfigFile& f : files) {
      for (const Migration& m : f.migrations) {
        std::optional<Migration> existing;
        const auto r = register_migration(m, actor, &existing);
        if (r.ok()) {
          log::info("config file ", f.path, ": registered migration ", m.migration_id);
        } else if (existing) {
          log::info("config file ", f.path, ": migration ", m.migration_id,
                    " already exists (phase ", phase_name(existing->phase), ", updated at ",
                    existing->updated_at, "); skipped it and kept the database state");
        } else if (r.error->kind == Kind::kUnavailable) {
          return false;
        } else {
          log::error("config file ", f.path, ": migration ", m.migration_id,
                     " not registered: ", r.error->message,
                     r.error->detail.empty() ? "" : " (" + r.error->detail + ")");
        }
      }
    }
    for (const ConfigFile& f : files) {
      for (const SwitchConfig& s : f.switches) {
        std::optional<SwitchConfig> existing;
        const auto r = register_switch(s, actor, &existing);
        if (r.ok()) {
          log::info("config file ", f.path, ": registered switch config ", s.config_id);
        } else if (existing) {
          log::info("config file ", f.path, ": switch config ", s.config_id,
                    " already exists (status ", to_string(existing->status), ", ",
                    number(existing->switch_percentage), "%, updated at ", existing->updated_at,
                    "); skipped it and kept the database state");
        } else if (r.error->kind == Kind::kUnavailable) {
          return false;
        } else {
          log::error("config file ", f.path, ": switch config ", s.config_id,
                     " not registered: ", r.error->message,
                     r.error->detail.empty() ? "" : " (" + r.error->detail + ")");
        }
      }
    }
    files_applied = true;
    return true;
  }

  // ---- listener -------------------------------------------------------------------------------

  // Waits up to `d` or until stop() (true when stopping).
  bool sleep_or_stop(std::chrono::milliseconds d) const {
    pollfd fd{wake_r, POLLIN, 0};
    (void)::poll(&fd, 1, static_cast<int>(d.count()));
    return stopping;
  }

  void listen_loop() {
    const auto interval = std::chrono::milliseconds(
        std::max<int64_t>(10, std::llround(cfg.reload_interval_seconds * 1000.0)));
    pg::Connection conn;
    auto backoff = kBackoffMin;
    std::string last_problem = start_problem;
    auto next_reload = Clock::now() + interval;
    while (!stopping) {
      try {
        if (!conn.ok()) {
          conn = open_connection();
          conn.exec(std::string("LISTEN ") + store::kNotifyChannel);
          if (!schema_ready) {
            ensure_schema(conn);
            schema_ready = true;
          }
          if (!apply_config_files())
            throw pg::PgError("08006", "lost while loading config files", true);
          reload(conn);
          next_reload = Clock::now() + interval;
          backoff = kBackoffMin;
          last_problem.clear();
          if (!is_connected.exchange(true)) {
            log::info("control plane: listening for changes on ", conn.describe());
          }
        }
        // Notifications libpq already read (while it read a query's result) do not wake poll().
        bool due = !conn.notifications().empty();
        if (!due) {
          const auto left =
              std::chrono::duration_cast<std::chrono::milliseconds>(next_reload - Clock::now());
          pollfd fds[2] = {{conn.socket(), POLLIN, 0}, {wake_r, POLLIN, 0}};
          const int n = ::poll(fds, 2, static_cast<int>(std::max<int64_t>(0, left.count())));
          if (stopping) break;
          if (n < 0 && errno != EINTR) {
            throw pg::PgError("08006", std::string("poll: ") + std::strerror(errno), true);
          }
          due = Clock::now() >= next_reload;
          if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            if (!conn.consume_input()) {
              throw pg::PgError("08006", "lost the connection: " + conn.error_message(), true);
            }
          }
          if (!conn.notifications().empty()) due = true;
        }
        while (due && !stopping) {
          reload(conn);
          is_connected = true;
          next_reload = Clock::now() + interval;
          // Notifications that arrived while reloading may describe later commits.
          if (!conn.consume_input()) {
            throw pg::PgError("08006", "lost the connection: " + conn.error_message(), true);
          }
          due = !conn.notifications().empty();
        }
      } catch (const store::StoreError& e) {
        // The database is reachable but holds a row pgphase cannot read: keep the last state.
        if (last_problem != e.what()) {
          log::error("control plane: cannot load the state: ", e.what(),
                     "; keeping the last state until it is fixed");
        }
        last_problem = e.what();
        next_reload = Clock::now() + interval;
        if (sleep_or_stop(std::chrono::duration_cast<std::chrono::milliseconds>(interval))) break;
      } catch (const std::exception& e) {
        conn.close();
        const bool was_connected = is_connected.exchange(false);
        if (stopping) break;
        if (was_connected || last_problem != e.what()) {
          log::warn("control database unavailable: ", e.what(), "; keeping the last state (",
                    "generation ", snap.load()->generation, ") and retrying");
        }
        last_problem = e.what();
        if (sleep_or_stop(backoff)) break;
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, kBackoffMax);
      }
    }
  }

  void start() {
    if (started) return;
    std::vector<ConfigFile> parsed;
    for (const auto& path : cfg.config_files) {
      ConfigFile f = load_config_file(path);
      for (const auto& key : f.skipped_keys) {
        log::info("config file ", path, ": \"", key,
                  "\" (alerting rules) is handled by the alerting subsystem; skipped");
      }
      parsed.push_back(std::move(f));
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      throw std::runtime_error(std::string("control plane: pipe2: ") + std::strerror(errno));
    }
    wake_r = fds[0];
    wake_w = fds[1];
    {
      std::lock_guard lock(apply_mu);
      files = std::move(parsed);
      files_applied = files.empty();
    }
    started = true;
    // A first attempt right away, so that the state is there when start() returns.
    try {
      std::lock_guard lock(cmd_mu);
      pg::Connection& c = command();
      reload(c);
      is_connected = true;
    } catch (const SchemaError&) {
      // Tables pgphase cannot use: a configuration problem, not an outage.
      started = false;
      ::close(wake_r);
      ::close(wake_w);
      wake_r = wake_w = -1;
      throw;
    } catch (const std::exception& e) {
      start_problem = e.what();
      log::warn("control database unavailable: ", e.what(),
                "; migrations stay in pass-through until it is reachable (retrying)");
    }
    if (is_connected) apply_config_files();
    stopping = false;
    listener = std::thread([this] { listen_loop(); });
    journal_stop = false;
    journal = std::thread([this] { journal_loop(); });
  }

  void journal_loop() {
    pg::Connection conn;
    for (;;) {
      std::deque<store::LogRow> batch;
      uint64_t dropped = 0;
      {
        std::unique_lock lock(journal_mu);
        journal_cv.wait(lock, [&] { return journal_stop || !journal_queue.empty(); });
        if (journal_queue.empty()) return;  // stopping with nothing left
        batch.swap(journal_queue);
        dropped = std::exchange(journal_dropped, 0);
      }
      if (dropped > 0)
        log::warn("control plane: ", dropped, " flagged-write log entries dropped (queue full)");
      try {
        if (!conn.alive()) conn = open_connection();
        pg::Transaction tx(conn);
        for (const auto& row : batch) store::insert_log(conn, row);
        tx.commit();
      } catch (const std::exception& e) {
        log::warn("control plane: could not record ", batch.size(),
                  " flagged writes in t_sys_migration_logs: ", e.what());
        conn.close();
        std::unique_lock lock(journal_mu);
        if (journal_stop) return;
        journal_cv.wait_for(lock, std::chrono::seconds(1), [&] { return journal_stop; });
      }
    }
  }

  void stop() {
    if (!started) return;
    stopping = true;
    if (wake_w >= 0) {
      const char b = 1;
      (void)!::write(wake_w, &b, 1);
    }
    if (listener.joinable()) listener.join();
    {
      std::lock_guard lock(journal_mu);
      journal_stop = true;
    }
    journal_cv.notify_all();
    if (journal.joinable()) journal.join();
    std::lock_guard lock(cmd_mu);
    cmd.close();
    is_connected = false;
  }

  ~Impl() {
    stop();
    if (wake_r >= 0) ::close(wake_r);
    if (wake_w >= 0) ::close(wake_w);
  }
};

ControlPlane::ControlPlane(ControlConfig config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}
ControlPlane::~ControlPlane() = default;

void ControlPlane::start() {
  impl_->start();
}
void ControlPlane::stop() {
  impl_->stop();
}

SnapshotPtr ControlPlane::snapshot() const noexcept {
  return impl_->snap.load();
}
const SnapshotCell& ControlPlane::published() const noexcept {
  return impl_->snap;
}
bool ControlPlane::connected() const noexcept {
  return impl_->is_connected;
}

OpResult<Migration> ControlPlane::register_migration(Migration m, const std::string& actor) {
  return impl_->register_migration(m, actor, nullptr);
}
OpResult<Migration> ControlPlane::set_phase(const std::string& id, Phase to, bool force,
                                            const std::string& actor) {
  return set_phase(id, to, PhaseChangeOptions{.force = force}, actor, nullptr);
}
OpResult<Migration> ControlPlane::set_phase(const std::string& id, Phase to,
                                            const PhaseChangeOptions& options,
                                            const std::string& actor,
                                            boost::json::object* actions) {
  return impl_->run<Migration>("set phase", true, [&](pg::Connection& c) {
    return ops::set_phase(c, impl_->cfg.max_check_age_seconds, id, to, options, actor, actions);
  });
}
OpResult<Migration> ControlPlane::set_dual_write(const std::string& id, bool enabled, bool force,
                                                 const std::string& actor) {
  return impl_->run<Migration>("set dual write", true, [&](pg::Connection& c) {
    return ops::set_dual_write(c, id, enabled, force, actor);
  });
}
OpResult<Migration> ControlPlane::rollback(const std::string& id, const std::string& actor,
                                           const std::string& reason,
                                           boost::json::object* actions) {
  return impl_->run<Migration>("rollback", true, [&](pg::Connection& c) {
    return ops::rollback(c, id, actor, reason, actions);
  });
}
OpResult<SwitchConfig> ControlPlane::set_switch_paused(const std::string& id, bool paused,
                                                       const std::string& actor) {
  return impl_->run<SwitchConfig>("pause switch", true, [&](pg::Connection& c) {
    return ops::set_switch_paused(c, id, paused, actor);
  });
}

OpResult<RepairReport> ControlPlane::repair(const std::string& id, const std::string& actor) {
  const SnapshotPtr snap = snapshot();
  const Migration* m = snap->find_migration(id);
  if (m == nullptr)
    return OpResult<RepairReport>::failure(OpError::Kind::kNotFound, "no migration " + id);
  const Migration copy = *m;
  const TableShape* shape = snap->shape_for(id);
  return impl_->run<RepairReport>(
      "repair", false, [&](pg::Connection& c) { return ops::repair(c, copy, shape, actor); });
}

std::optional<double> ControlPlane::latest_consistency_score(const SwitchConfig& s) {
  const SnapshotPtr snap = snapshot();
  const Migration* m = snap->migration_for(s);
  if (m == nullptr) return std::nullopt;
  const Migration copy = *m;
  auto r =
      impl_->run<std::optional<double>>("read the latest check", false, [&](pg::Connection& c) {
        const auto check = store::latest_check(c, copy);
        return OpResult<std::optional<double>>::success(check ? std::optional<double>(check->score)
                                                              : std::nullopt);
      });
  return r.ok() ? *r.value : std::nullopt;
}

std::optional<ControlPlane::StoredFigures> ControlPlane::stored_figures() {
  auto r = impl_->run<StoredFigures>("read the stored figures", false, [&](pg::Connection& c) {
    StoredFigures f;
    const pg::Result scores = c.exec(
        "SELECT DISTINCT ON (migration_id) migration_id, consistency_score::text "
        "FROM t_sys_consistency_checks WHERE migration_id IS NOT NULL "
        "ORDER BY migration_id, created_at DESC");
    for (int i = 0; i < scores.rows(); ++i)
      f.consistency_scores[scores.str(i, 0)] = std::stod(scores.str(i, 1));
    const pg::Result logs = c.exec(
        "SELECT migration_id, status, count(*)::text FROM t_sys_migration_logs "
        "GROUP BY migration_id, status");
    for (int i = 0; i < logs.rows(); ++i)
      f.log_entries[{logs.str(i, 0), logs.str(i, 1)}] = std::stoll(logs.str(i, 2));
    return OpResult<StoredFigures>::success(std::move(f));
  });
  if (!r.ok()) return std::nullopt;
  return std::move(*r.value);
}

bool ControlPlane::record_audit(const AuditRow& row) {
  return impl_
      ->run<bool>("record the audit entry", false,
                  [&](pg::Connection& c) {
                    store::insert_audit(c, row);
                    return OpResult<bool>::success(true);
                  })
      .ok();
}

void ControlPlane::record_flagged_write(const std::string& migration_id, const std::string& reason,
                                        const std::string& sql) {
  store::LogRow row;
  row.migration_id = migration_id;
  row.action = "unsupported_write";
  row.actor = "pgphase";
  row.status = "flagged";
  row.message = "a write pgphase cannot mirror was passed (allow_and_flag): " + reason +
                "; the next validation must clear this divergence";
  row.details_json = boost::json::serialize(boost::json::object{{"reason", reason}, {"sql", sql}});
  {
    std::lock_guard lock(impl_->journal_mu);
    if (impl_->journal_queue.size() >= 1000) {
      ++impl_->journal_dropped;
      return;
    }
    impl_->journal_queue.push_back(std::move(row));
  }
  impl_->journal_cv.notify_one();
}

OpResult<std::vector<LogEntry>> ControlPlane::logs(const std::string& migration_id, int limit) {
  return impl_->run<std::vector<LogEntry>>(
      "list logs", false, [&](pg::Connection& c) { return ops::logs(c, migration_id, limit); });
}
OpResult<SwitchConfig> ControlPlane::register_switch(SwitchConfig s, const std::string& actor) {
  return impl_->register_switch(s, actor, nullptr);
}
OpResult<SwitchConfig> ControlPlane::activate_switch(const std::string& id,
                                                     const std::string& actor) {
  return impl_->run<SwitchConfig>("activate switch config", true, [&](pg::Connection& c) {
    return ops::activate_switch(c, id, actor);
  });
}
OpResult<SwitchConfig> ControlPlane::set_switch_percentage(const std::string& id, double percentage,
                                                           const std::string& actor,
                                                           const std::string& reason) {
  return impl_->run<SwitchConfig>("update switch percentage", true, [&](pg::Connection& c) {
    return ops::set_switch_percentage(c, id, percentage, actor, reason);
  });
}
OpResult<SwitchConfig> ControlPlane::rollback_switch(const std::string& id,
                                                     const std::string& actor,
                                                     const std::string& reason) {
  return impl_->run<SwitchConfig>("roll back switch config", true, [&](pg::Connection& c) {
    return ops::rollback_switch(c, id, actor, reason);
  });
}
OpResult<std::vector<PercentageChange>> ControlPlane::percentage_history(const std::string& id,
                                                                         int limit) {
  return impl_->run<std::vector<PercentageChange>>(
      "percentage history", false,
      [&](pg::Connection& c) { return ops::percentage_history(c, id, limit); });
}

}  // namespace pgphase::migration
