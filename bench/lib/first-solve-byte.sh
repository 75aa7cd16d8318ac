# Sourced by the benchmarks that report envd's first Solve byte.
# first_solve CMD...: the "first Solve byte" mark, in ms, of one
# ENVD_TIMINGS=1 run of CMD (nothing when the line is missing).
first_solve() {
  ENVD_TIMINGS=1 "$@" 2>&1 >/dev/null |
    sed -n 's/^envd: timings: since process start.* first Solve byte \([0-9.]*\) ms.*/\1/p'
}
# median: the median of the numbers on stdin, "-" when there are none.
median() {
  sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else printf "%.3f", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}
