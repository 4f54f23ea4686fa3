#!/usr/bin/env bash
# Builds the libFuzzer target over protocol/ with clang (ASan + UBSan) and runs it for a bounded
# time over a copy of the seed corpus. Exits non-zero when the fuzzer finds a crash.
# Usage: run_fuzz.sh [OUT_DIR]
# Env: PGPHASE_FUZZ_SECONDS (default 60; 0 only replays the seed corpus once).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$root/build/fuzz}" && cd "${1:-$root/build/fuzz}" && pwd)
seconds=${PGPHASE_FUZZ_SECONDS:-60}
command -v clang++ >/dev/null || { echo "clang++ not found (scripts/deps.sh installs it)" >&2; exit 1; }

cxx=(clang++)
if command -v ccache >/dev/null; then
  cxx=(ccache clang++)
  export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
fi
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
  -fno-sanitize-recover=undefined -Wall -Wextra -Wpedantic -I"$root")
mkdir -p "$out/obj"
objs=()
for src in "$root"/protocol/*.cpp "$root/tests/fuzz/protocol_fuzz.cpp"; do
  obj="$out/obj/$(basename "${src%.cpp}").o"
  "${cxx[@]}" "${flags[@]}" -c "$src" -o "$obj"
  objs+=("$obj")
done
clang++ "${flags[@]}" "${objs[@]}" -o "$out/protocol_fuzz"

# The fuzzer adds what it finds to its first corpus directory: work on a copy.
rm -rf "$out/corpus" "$out/artifacts"
cp -r "$root/tests/fuzz/corpus" "$out/corpus"
mkdir -p "$out/artifacts"
if [ "$seconds" -eq 0 ]; then limit=(-runs=0); else limit=(-max_total_time="$seconds"); fi
echo "fuzzing protocol/ for ${seconds}s (log: $out/fuzz.log)"
status=0
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$out/protocol_fuzz" "${limit[@]}" \
  -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/" "$out/corpus" >"$out/fuzz.log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  tail -n 80 "$out/fuzz.log"
  echo "fuzzer failed (exit $status); reproducer(s):" >&2
  ls -1 "$out/artifacts" >&2
  exit 1
fi
grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' \
  "$out/fuzz.log" || tail -n 5 "$out/fuzz.log"
