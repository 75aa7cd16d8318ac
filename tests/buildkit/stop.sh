#!/usr/bin/env bash
# Stops what start.sh started in <dir> and removes <dir>: the buildkitd
# processes recorded in <dir>'s pidfiles (SIGTERM, then SIGKILL after 20 s),
# any runc containers a killed buildkitd left running, whatever they left
# mounted under <dir>, then the directory itself. Idempotent. Only processes
# recorded in <dir>'s pidfiles, and runc containers whose bundle lies under
# <dir>, are signalled. The BuildKit image stays in the engine (tests/services'
# stop.sh removes the engine's data with it).
#
# usage: stop.sh <dir>
set -euo pipefail

dir=${1:?usage: stop.sh <dir>}
[[ -e $dir ]] || exit 0
dir=$(cd "$dir" && pwd)
marker=$dir/.envd-test-buildkit
if [[ ! -e $marker ]]; then
  if [[ -z $(ls -A "$dir") ]]; then
    rmdir "$dir"
    exit 0
  fi
  echo "buildkit: '$dir' was not created by start.sh (no $marker); not touching it" >&2
  exit 1
fi
started=$EPOCHREALTIME
export PATH=$PATH:/usr/sbin:/sbin

# pid_of <pidfile> <comm>: the pid in the file if that process still runs <comm>.
pid_of() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  local comm
  { read -r comm <"/proc/$pid/comm"; } 2>/dev/null || return 1
  [[ $comm == "$2" ]] || return 1
  echo "$pid"
}

# stop_all <pid>...: SIGTERM to all at once, wait up to 20 s, then SIGKILL.
stop_all() {
  local pid i alive
  (($# > 0)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < 400; i++)); do
    alive=()
    for pid in "$@"; do
      if kill -0 "$pid" 2>/dev/null; then alive+=("$pid"); fi
    done
    ((${#alive[@]} > 0)) || return 0
    if ((i == 200)); then
      echo "buildkit: pid ${alive[*]} ignored SIGTERM for 20 s; sending SIGKILL" >&2
      kill -KILL "${alive[@]}" 2>/dev/null || true
    fi
    sleep 0.1
  done
}

pids=()
for pidfile in "$dir"/*.pid; do
  if pid=$(pid_of "$pidfile" buildkitd); then pids+=("$pid"); fi
done
stop_all "${pids[@]}"

# A buildkitd that had to be killed leaves its RUN containers running: runc
# keeps their state in its default root (/run/runc), and they are ours if their
# bundle lies under <dir> (the OCI worker's <root>/runc-<snapshotter>/executor).
if command -v runc >/dev/null; then
  for id in $(runc list -q 2>/dev/null); do
    bundle=$(runc state "$id" 2>/dev/null | sed -n 's/^ *"bundle": "\(.*\)",$/\1/p')
    [[ $bundle == "$dir"/* ]] || continue
    echo "buildkit: removing leftover runc container '$id' (bundle $bundle)" >&2
    runc kill "$id" KILL 2>/dev/null || true
    runc delete -f "$id" 2>/dev/null || true
  done
fi

# Mounts under <dir>, deepest first (the executor's rootfs bind mounts of a
# killed buildkitd).
mounts_under() {
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
for m in $(mounts_under); do
  umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
done
if [[ -n $(mounts_under) ]]; then
  echo "buildkit: mounts left under '$dir', not removing it:" >&2
  mounts_under >&2
  exit 1
fi

rm -rf --one-file-system "$dir"
elapsed_ms=$(((${EPOCHREALTIME/./} - ${started/./}) / 1000))
echo "buildkit: stopped and removed '$dir' in ${elapsed_ms} ms"
