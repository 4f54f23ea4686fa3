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
