# Sourced by the benchmarks that time clients of BuildKit's own buildkitd.
# start_buildkitd BKDIR ROOT LOG: starts `BKDIR/buildkitd` (oci worker, native
# snapshotter) on a free 127.0.0.1 port with state under ROOT and waits until
# it answers. Sets `port`, `addr` (tcp://127.0.0.1:PORT) and `daemon` (its
# pid, for the caller's cleanup). Needs the caller's `fail`.
start_buildkitd() {
  local bkdir="$1" root="$2" log="$3"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  addr="tcp://127.0.0.1:$port"
  "$bkdir/buildkitd" --root "$root" --addr "$addr" --oci-worker=true --containerd-worker=false \
    --oci-worker-snapshotter=native >"$log" 2>&1 </dev/null &
  daemon=$!
  for _ in $(seq 1 300); do
    "$bkdir/buildctl" --addr "$addr" debug workers >/dev/null 2>&1 && return 0
    kill -0 "$daemon" 2>/dev/null || { tail -n 20 "$log" >&2; fail "buildkitd exited"; }
    sleep 0.2
  done
  fail "buildkitd did not answer on $addr"
}

# start_standalone_bench NAME: the common start of the benchmarks that time
# `envd build` on a tcp context against `buildctl build`: checks for
# hyperfine, root and BuildKit's binaries (ENVD_TEST_BUILDKIT_DIR, else
# ../shared/tools/buildkit), finds envd (ENVD, else build/bin/envd, built if
# missing), makes a work directory /tmp/envd-bench-NAME.XXXXXX that goes away
# on exit with the daemon, starts buildkitd there and creates the tcp context
# `bench` in a private envd configuration. Needs the caller's `fail` and
# `repo` (the repository's root, the current directory). Sets `bkdir`,
# `envd`, `work`, and what start_buildkitd sets.
start_standalone_bench() {
  local name="$1"
  command -v hyperfine >/dev/null || fail "hyperfine is missing (apt-get install hyperfine)"
  [[ $(id -u) == 0 ]] || fail "buildkitd needs root"
  bkdir="${ENVD_TEST_BUILDKIT_DIR:-$repo/../shared/tools/buildkit}"
  [[ -x "$bkdir/buildkitd" && -x "$bkdir/buildctl" ]] ||
    fail "no buildkitd and buildctl in '$bkdir' (set ENVD_TEST_BUILDKIT_DIR)"
  envd="${ENVD:-$repo/build/bin/envd}"
  if [[ ! -x "$envd" ]]; then
    bash scripts/build.sh dev >/dev/null
    envd="$repo/build/bin/envd"
  fi
  work=$(mktemp -d "/tmp/envd-bench-$name.XXXXXX")
  daemon=""
  trap stop_standalone_bench EXIT
  start_buildkitd "$bkdir" "$work/root" "$work/buildkitd.log"
  export ENVD_CONFIG_DIR="$work/envd" XDG_CACHE_HOME="$work/cache"
  unset ENVD_CONTEXT ENVD_PLUGIN_PATH BUILDKIT_PROGRESS
  "$envd" context create --name bench --builder tcp --builder-address "127.0.0.1:$port" \
    --use >/dev/null 2>&1
}

# The exit trap of start_standalone_bench: stops the daemon, removes the work
# directory.
stop_standalone_bench() {
  if [[ -n "$daemon" ]]; then
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  rm -rf "$work"
}

# daemon_cpu_marks: writes $work/daemon-cpu.sh, which prints the daemon's CPU
# time in seconds (all its threads, from /proc), and $work/mark.sh LOG [CMD..],
# which appends "end S" to LOG, runs CMD (output discarded) and appends
# "start S": run as hyperfine's --prepare, the previous run ends there and the
# next one starts. bench/lib/daemon_cpu.py reads LOG. Needs `work` and
# `daemon`.
daemon_cpu_marks() {
  cat >"$work/daemon-cpu.sh" <<EOF
awk -v hz="\$(getconf CLK_TCK)" '{printf "%.3f\n", (\$14 + \$15) / hz}' /proc/$daemon/stat
EOF
  cat >"$work/mark.sh" <<EOF
log=\$1
shift
echo "end \$(bash $work/daemon-cpu.sh)" >>"\$log"
if [[ \$# -gt 0 ]]; then "\$@" >/dev/null; fi
echo "start \$(bash $work/daemon-cpu.sh)" >>"\$log"
EOF
}
