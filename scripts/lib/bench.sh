# Shared pieces of the bench/*.sh scripts (sourced, after scripts/lib/pg.sh): the error exit,
# --quick/--help parsing, and the median of a list of numbers.

# die MESSAGE: "<script>: MESSAGE" on stderr, exit 1.
die() {
  echo "bench/$(basename "$0"): $*" >&2
  exit 1
}

# bench_parse_args "$@": sets QUICK=1 for --quick, prints the script's header comment for --help
# (and exits), refuses anything else.
bench_parse_args() {
  QUICK=0
  local arg
  for arg in "$@"; do
    case "$arg" in
      --quick) QUICK=1 ;;
      -h | --help)
        awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
        exit 0
        ;;
      *) die "unknown argument '$arg' (try --help)" ;;
    esac
  done
}

# median "N1 N2 ...": the median of the numbers.
median() {
  tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g |
    awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# bench_init NAME: the common start of the bench scripts that run one pgphase over a throwaway
# cluster: $PGPHASE_BIN checked, libpq defaults for the postgres role over TCP, a temporary
# directory $TMP, and on exit pgphase ($PID, when set) and PostgreSQL stopped and $TMP removed.
bench_init() {
  PGPHASE_BIN=${PGPHASE_BIN:-$ROOT/${BUILD_DIR:-build}/pgphase}
  [ -x "$PGPHASE_BIN" ] || die "pgphase binary not found at $PGPHASE_BIN"
  export PGUSER=postgres PGHOST=127.0.0.1
  unset PGPASSWORD PGSERVICE PGDATABASE PGPORT PGOPTIONS PGSSLMODE
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgphase-$1.XXXXXX")
  PID=""
  trap _bench_cleanup EXIT
}

_bench_cleanup() {
  local rc=$?
  set +e
  [ -n "$PID" ] && { kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }
  pg_stop
  rm -rf "$TMP"
  exit "$rc"
}

# log MESSAGE: a timestamped progress line.
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }

# bench_start_pgphase CONTROL_DSN [serve options...]: pgphase serve in front of $PG_PORT with its
# control plane on CONTROL_DSN, a fresh admin token ($TOKEN), free ports ($listen, $admin), its
# log in $TMP/pgphase.log; returns when both ports listen ($PID is its pid).
bench_start_pgphase() {
  local dsn=$1
  shift
  TOKEN=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  listen=$(free_port 6832)
  reserve_port "$listen"
  admin=$(free_port 8832)
  reserve_port "$admin"
  PGPHASE_ADMIN_TOKEN=$TOKEN "$PGPHASE_BIN" serve --listen "127.0.0.1:$listen" \
    --backend "127.0.0.1:$PG_PORT" --admin "127.0.0.1:$admin" --log-level warn \
    --control-dsn "$dsn" "$@" >"$TMP/pgphase.log" 2>&1 &
  PID=$!
  wait_for_listen "$listen" 30 "$PID"
  wait_for_listen "$admin" 30 "$PID"
}

# bench_create_pair DB ROWS: the issue's 7-column pair in DB (bigint key, text, int, numeric,
# timestamptz, jsonb, text): src with ROWS rows and an empty dst of the same shape, both analysed.
bench_create_pair() {
  psql -X -q -At -v ON_ERROR_STOP=1 -p "$PG_PORT" -d "$1" <<SQL
CREATE TABLE src (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2),
                  created timestamptz, doc jsonb, note text);
INSERT INTO src SELECT g, 'name ' || g, g % 1000, (g % 100000) / 7.0, now() - g * interval '1 s',
                       jsonb_build_object('g', g, 'tag', 't' || (g % 50)), repeat('x', 40)
  FROM generate_series(1, $2) g;
CREATE TABLE dst (LIKE src INCLUDING ALL);
VACUUM ANALYZE src;
SQL
}

# Sampling /proc for processes that may exit at any moment. A process can exit between the glob
# that lists it and the read of its file: the open then fails (ENOENT), or, when the open came
# first, the read fails with ESRCH, which mawk treats as fatal ("awk: read error (No such
# process)", exit 2), and that under `set -e` used to abort bench/run.sh. So /proc files are read
# with cat (which reports the file and goes on with the next one) and its errors are dropped: a
# process that has gone simply contributes no line, and these functions always succeed.

# bench_proc_cat FILE...: what can still be read of FILE..., on stdout; never fails.
bench_proc_cat() {
  cat -- "$@" 2>/dev/null || true
}

# bench_proc_stats [PID...]: one line "PID PPID TICKS CHILD_TICKS" per process (every process
# when no PID is given) that still exists: TICKS = utime + stime (all threads), CHILD_TICKS =
# cutime + cstime (reaped children), in clock ticks (getconf CLK_TCK) from /proc/PID/stat.
# Processes that have exited, or never existed, are left out.
bench_proc_stats() {
  local -a files=()
  local pid
  if [ "$#" -eq 0 ]; then
    files=(/proc/[0-9]*/stat)
  else
    for pid in "$@"; do files+=("/proc/$pid/stat"); done
  fi
  # Drop "pid (comm) " so that a comm with spaces or parentheses cannot shift the fields:
  # afterwards s[n] is field n+2 of proc(5) (s[2] ppid, s[12..15] utime stime cutime cstime).
  # shellcheck disable=SC2016 # awk program
  bench_proc_cat "${files[@]}" | awk '
    $1 ~ /^[0-9]+$/ {
      pid = $1; line = $0
      if (!sub(/^[^(]*\(.*\) /, "", line)) next
      if (split(line, s, " ") < 15) next
      printf "%s %s %d %d\n", pid, s[2], s[12] + s[13], s[14] + s[15]
    }'
}

# bench_proc_ticks PID: utime + stime of PID in clock ticks; 0 when it has exited.
bench_proc_ticks() {
  bench_proc_stats "$1" | awk '{ t = $3 } END { print t + 0 }'
}

# bench_vmrss_kib PID: VmRSS of PID in KiB; 0 when it has exited.
bench_vmrss_kib() {
  bench_proc_cat "/proc/$1/status" | awk '/^VmRSS:/ { v = $2 } END { print v + 0 }'
}

# bench_children PID: the pids of PID's live children, one a line (none when PID has exited).
bench_children() {
  bench_proc_stats | awk -v p="$1" '$2 == p { print $1 }'
}

# bench_set_affinity CPULIST PID...: every thread of every PID; a process that has gone is skipped.
bench_set_affinity() {
  local cpus=$1 pid
  shift
  for pid in "$@"; do taskset -a -p -c "$cpus" "$pid" >/dev/null 2>&1 || true; done
}

# bench_pin_postgres CPULIST POSTMASTER_PID: the postmaster first (the backends it forks from then
# on inherit its affinity), then every live backend.
bench_pin_postgres() {
  bench_set_affinity "$1" "$2"
  # shellcheck disable=SC2046 # one pid per word
  bench_set_affinity "$1" $(bench_children "$2")
}

# bench_set_cpu_mode shared|pinned POSTMASTER_PID PROXY_PID...: PostgreSQL on $PIN_PG_CPU and the
# proxies on $PIN_CLIENT_CPU (pinned), or all of them back on $ALL_CPUS (shared); sets CPU_MODE.
bench_set_cpu_mode() {
  local mode=$1 postmaster=$2 pg=$ALL_CPUS proxies=$ALL_CPUS
  shift 2
  if [ "$mode" = pinned ]; then
    pg=$PIN_PG_CPU
    proxies=$PIN_CLIENT_CPU
  fi
  bench_pin_postgres "$pg" "$postmaster"
  bench_set_affinity "$proxies" "$@"
  CPU_MODE=$mode
}
