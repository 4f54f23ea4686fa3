# shellcheck shell=bash
# Shared helpers for scripts/demo.sh and bench/run.sh: free ports, a throwaway PostgreSQL 15
# cluster (trust auth, TCP on 127.0.0.1 plus a unix socket in its own directory) and running
# commands as the `postgres` OS user (PostgreSQL and PgBouncer refuse to run as root).
#
# Source it; it does not change the caller's shell options.
#   free_port START         first port >= START with no socket on it (and not in PG_RESERVED_PORTS)
#   pg_start_throwaway DIR PORT [name=value ...]
#                           initdb in DIR/pgdata, start it on 127.0.0.1:PORT, unix socket in DIR;
#                           extra arguments are postgresql.conf settings. Sets PG_DIR, PG_PORT,
#                           PG_SOCKET_DIR, PG_DATA, PG_LOG.
#   pg_stop                 fast shutdown of the cluster started by pg_start_throwaway (idempotent)
#   as_pg_user CMD...       run CMD as `postgres` when root, else as the current user
#   pg_ensure_os_user       create the `postgres` OS user when running as root and it is missing
#   pg_prepare_dir DIR      make DIR usable by the `postgres` OS user
#   wait_for_listen PORT SECONDS [PID]
#                           wait until something listens on PORT (fails early if PID dies)

# shellcheck disable=SC2034 # PG_* are read by the scripts that source this file
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_RESERVED_PORTS=${PG_RESERVED_PORTS:-}
PG_DIR=""
PG_PORT=""
PG_SOCKET_DIR=""
PG_DATA=""
PG_LOG=""

# Prints the ports that have a TCP socket on them in any state (IPv4 and IPv6), one per line.
# (mawk has no strtonum, hence the hand-written hex conversion.)
_PORT_AWK='function hex(s,  i, n) { n = 0; for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", toupper(substr(s, i, 1))) - 1; return n }
function port(addr,  a, k) { k = split(addr, a, ":"); return hex(a[k]) }'

_ports_in_use() {
  awk "$_PORT_AWK"' FNR > 1 { print port($2) }' /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -un
}

free_port() {
  local port=$1 used
  used=" $(_ports_in_use | tr '\n' ' ') ${PG_RESERVED_PORTS} "
  while [ "$port" -le 65535 ]; do
    if [[ "$used" != *" $port "* ]]; then
      PG_RESERVED_PORTS="${PG_RESERVED_PORTS} $port"
      echo "$port"
      return 0
    fi
    port=$((port + 1))
  done
  echo "free_port: no free port at or above $1" >&2
  return 1
}

# Note: free_port is usually called in $(...), a subshell, so PG_RESERVED_PORTS does not survive
# there; callers pass the chosen port to reserve_port to keep later choices distinct.
reserve_port() {
  PG_RESERVED_PORTS="${PG_RESERVED_PORTS} $1"
}

is_listening() {
  local port=$1
  awk -v p="$port" "$_PORT_AWK"' FNR > 1 && $4 == "0A" && port($2) == p { f = 1 } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

wait_for_listen() {
  local port=$1 seconds=$2 pid=${3:-} i
  for ((i = 0; i < seconds * 10; i++)); do
    if is_listening "$port"; then
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "process $pid exited before listening on port $port" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "nothing listens on port $port after ${seconds}s" >&2
  return 1
}

as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_ensure_os_user() {
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
  fi
}

pg_prepare_dir() {
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$1"
  fi
  chmod 0755 "$1"
}

pg_start_throwaway() {
  local dir=$1 port=$2
  shift 2
  if [ ! -x "$PG_BIN/initdb" ]; then
    echo "PostgreSQL 15 binaries not found in $PG_BIN (run: bash scripts/deps.sh)" >&2
    return 1
  fi
  pg_ensure_os_user
  pg_prepare_dir "$dir"
  # shellcheck disable=SC2034 # read by the scripts that source this file
  PG_DIR=$dir
  PG_PORT=$port
  PG_SOCKET_DIR=$dir
  PG_DATA=$dir/pgdata
  PG_LOG=$dir/postgresql.log
  as_pg_user "$PG_BIN/initdb" --pgdata="$PG_DATA" --username=postgres --auth=trust \
    --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
    echo "initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    return 1
  }
  {
    echo "# pgphase throwaway cluster"
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir'"
    echo "logging_collector = off"
    local setting
    for setting in "$@"; do
      echo "${setting%%=*} = '${setting#*=}'"
    done
  } | as_pg_user tee -a "$PG_DATA/postgresql.conf" >/dev/null
  as_pg_user touch "$PG_LOG"
  if ! as_pg_user "$PG_BIN/pg_ctl" --pgdata="$PG_DATA" --log="$PG_LOG" --wait --timeout=60 \
    start >"$dir/pg_ctl.log" 2>&1; then
    echo "PostgreSQL failed to start; last lines of $PG_LOG:" >&2
    tail -n 20 "$PG_LOG" >&2
    PG_DATA=""
    return 1
  fi
}

pg_stop() {
  if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    as_pg_user "$PG_BIN/pg_ctl" --pgdata="$PG_DATA" --mode=fast --wait --timeout=60 stop \
      >/dev/null 2>&1 || true
  fi
  PG_DATA=""
}
