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
