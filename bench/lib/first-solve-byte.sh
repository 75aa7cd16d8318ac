# Sourced by the benchmarks that report envd's first Solve byte.
# step_line CMD...: the steps of one ENVD_TIMINGS=1 run of CMD, as envd
# prints them after "since process start (...): " ("main 2.9 ms, build ...").
step_line() {
  ENVD_TIMINGS=1 "$@" 2>&1 >/dev/null | sed -n 's/^envd: timings: since process start[^:]*: //p'
}
# first_solve CMD...: the "first Solve byte" mark, in ms, of one
# ENVD_TIMINGS=1 run of CMD (nothing when the line is missing).
first_solve() {
  step_line "$@" | sed -n 's/.*first Solve byte \([0-9.]*\) ms.*/\1/p'
}
# step_medians FILE: each step's median over the step lines in FILE.
step_medians() {
  python3 - "$1" <<'PY'
import statistics, sys
steps = {}
for line in open(sys.argv[1]):
    for part in line.strip().split(", "):  # "<step> <number> ms"
        words = part.split()
        if len(words) >= 3 and words[-1] == "ms":
            steps.setdefault(" ".join(words[:-2]), []).append(float(words[-2]))
print(", ".join(f"{name} {statistics.median(v):.1f}" for name, v in steps.items()) + " (ms)")
PY
}
# median: the median of the numbers on stdin, "-" when there are none.
median() {
  sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else printf "%.3f", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}
