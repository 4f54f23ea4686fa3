#!/usr/bin/env bash
# Builds one libFuzzer target with clang (ASan + UBSan) and runs it for a bounded time over a copy
# of its seed corpus. Exits non-zero when the fuzzer finds a crash.
# Usage: run_fuzz.sh [protocol|intercept] [OUT_DIR]
#   protocol (the default; also when the first argument is a directory): protocol_fuzz.cpp over
#     protocol/, seeds in corpus/.
#   intercept: intercept_fuzz.cpp over intercept/ and router/ (the Rewriter against the model
#     backend, model_backend.cpp), seeds in corpus_intercept/; links libpg_query, Boost.JSON, libpq.
# Env: PGPHASE_FUZZ_SECONDS (default 60; 0 only replays the seed corpus once),
#      INTERCEPT_FUZZ_REPORT (intercept: report differences from PostgreSQL instead of failing;
#      the seed corpus is still replayed first without it),
#      PGPHASE_FUZZ_JOBS (parallel compiles, default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=protocol
case "${1:-}" in
  protocol | intercept)
    target=$1
    shift
    ;;
esac
out=$(mkdir -p "${1:-$root/build/fuzz}" && cd "${1:-$root/build/fuzz}" && pwd)
seconds=${PGPHASE_FUZZ_SECONDS:-60}
jobs=${PGPHASE_FUZZ_JOBS:-2}
command -v clang++ >/dev/null || { echo "clang++ not found (scripts/deps.sh installs it)" >&2; exit 1; }

cxx=(clang++)
if command -v ccache >/dev/null; then
  cxx=(ccache clang++)
  export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
fi
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
  -fno-sanitize-recover=undefined -Wall -Wextra -Wpedantic -I"$root")
libs=()
case "$target" in
  protocol)
    srcs=("$root"/protocol/*.cpp "$root/tests/fuzz/protocol_fuzz.cpp")
    corpus=$root/tests/fuzz/corpus
    max_len=8192
    ;;
  intercept)
    # intercept/ and router/ with what they use of migration/ (the snapshot model and the
    # phase rules) and common/; libpg_query itself is the system's (not instrumented).
    srcs=("$root"/protocol/*.cpp "$root"/router/*.cpp "$root"/intercept/*.cpp
      "$root"/migration/{model,snapshot,phase_machine,constraints,pg_client}.cpp
      "$root/common/log.cpp" "$root/tests/fuzz/model_sql.cpp" "$root/tests/fuzz/model_backend.cpp"
      "$root/tests/fuzz/intercept_fuzz.cpp")
    flags+=(-Wno-missing-field-initializers -I/usr/include/postgresql)
    libs=(-lpg_query -lboost_json -lpq)
    corpus=$root/tests/fuzz/corpus_intercept
    max_len=4096
    ;;
esac
mkdir -p "$out/obj"
objs=()
for src in "${srcs[@]}"; do
  objs+=("$out/obj/$(basename "$(dirname "$src")")_$(basename "${src%.cpp}").o")
done
# Compiles with up to $jobs at a time; fuzzer coverage instrumentation needs no link flag here.
for i in "${!srcs[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  "${cxx[@]}" "${flags[@]}" -c "${srcs[$i]}" -o "${objs[$i]}" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n; done
clang++ "${flags[@]}" "${objs[@]}" "${libs[@]}" -o "$out/${target}_fuzz"

# The fuzzer adds what it finds to its first corpus directory: work on a copy.
rm -rf "$out/corpus" "$out/artifacts" "$out/reports"
mkdir -p "$out/corpus" "$out/artifacts" "$out/reports"
export INTERCEPT_FUZZ_REPORT_DIR="$out/reports"  # inputs of reported differences (intercept)
if [ -d "$corpus" ]; then cp -r "$corpus"/. "$out/corpus/"; fi
if [ "$seconds" -eq 0 ]; then limit=(-runs=0); else limit=(-max_total_time="$seconds"); fi
status=0
# The seed corpus (its regress_* inputs are fixed findings) is replayed first with no report
# mode: an input that answers differently from PostgreSQL or desynchronises fails the run.
if [ "$target" = intercept ] && [ "$seconds" -ne 0 ] && [ -n "${INTERCEPT_FUZZ_REPORT:-}" ]; then
  env -u INTERCEPT_FUZZ_REPORT UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$out/${target}_fuzz" -runs=0 -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
    -artifact_prefix="$out/artifacts/" "$out/corpus" >"$out/replay.log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 80 "$out/replay.log"
    echo "a seed input of corpus_intercept fails (exit $status)" >&2
    exit 1
  fi
  echo "seed corpus replayed: every input answered as PostgreSQL would"
fi
echo "fuzzing $target for ${seconds}s (log: $out/fuzz.log)"
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$out/${target}_fuzz" "${limit[@]}" \
  -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/" "$out/corpus" >"$out/fuzz.log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  tail -n 80 "$out/fuzz.log"
  echo "fuzzer failed (exit $status); reproducer(s):" >&2
  ls -1 "$out/artifacts" >&2
  exit 1
fi
grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' \
  "$out/fuzz.log" || tail -n 5 "$out/fuzz.log"
reports=$(find "$out/reports" -type f | wc -l)
if [ "$reports" -gt 0 ]; then
  echo "$reports reported session input(s) kept in $out/reports (replay: $out/${target}_fuzz FILE)"
fi
