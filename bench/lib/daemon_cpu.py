"""The daemon's CPU time per benchmark run, from a log of marks that
bench/lib/standalone-buildkitd.sh's daemon_cpu_marks writes: "start S" and
"end S" lines in order, S being the daemon's CPU seconds (all its threads)
when the line was written. Each start with the next end is one run; an end
with no start before it closes nothing. hyperfine's warm-ups come first, so
the last `runs` pairs are the timed runs."""
import statistics


def median_per_run(path, runs):
    """The median of the daemon's CPU seconds over the last `runs` runs."""
    deltas, start = [], None
    with open(path) as log:
        for line in log:
            kind, value = line.split()
            if kind == "start":
                start = float(value)
            elif start is not None:
                deltas.append(float(value) - start)
                start = None
    return statistics.median(deltas[-runs:])
