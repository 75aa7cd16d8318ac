#!/usr/bin/env bash
# Stops what start.sh started in <dir> and removes <dir>: the registry and
# dockerd (SIGTERM, then SIGKILL after 20 s), whatever mounts dockerd left
# under <dir>, then the directory itself. Idempotent. Only processes recorded in
# <dir>'s pidfiles (or, after a SIGKILL of dockerd, its own containerd and shims,
# which name <dir> on their command lines) are signalled.
#
# usage: stop.sh <dir>
set -euo pipefail

dir=${1:?usage: stop.sh <dir>}
[[ -e $dir ]] || exit 0
dir=$(cd "$dir" && pwd)
marker=$dir/.envd-test-services
if [[ ! -e $marker ]]; then
  if [[ -z $(ls -A "$dir") ]]; then
    rmdir "$dir"
    exit 0
  fi
  echo "services: '$dir' was not created by start.sh (no $marker); not touching it" >&2
  exit 1
fi
started=$EPOCHREALTIME

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
      echo "services: pid ${alive[*]} ignored SIGTERM for 20 s; sending SIGKILL" >&2
      kill -KILL "${alive[@]}" 2>/dev/null || true
    fi
    sleep 0.1
  done
}

pids=()
if pid=$(pid_of "$dir/registry.pid" docker-registry); then pids+=("$pid"); fi
if pid=$(pid_of "$dir/pid" dockerd) || pid=$(pid_of "$dir/dockerd.launcher.pid" dockerd); then
  pids+=("$pid")
fi
stop_all "${pids[@]}"
# A dockerd that had to be killed leaves its containerd, shims and containers
# behind. The containerd and shims are ours if their command line names our
# directory; the containers' processes are the shims' descendants.
descendants() {
  local parent=$1 child
  # shellcheck disable=SC2013 # the file is a list of pids separated by spaces
  for child in $(cat /proc/"$parent"/task/*/children 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}
pids=()
for proc in /proc/[0-9]*; do
  { read -r comm <"$proc/comm"; } 2>/dev/null || continue
  case $comm in containerd | containerd-shim*) ;; *) continue ;; esac
  if tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | grep -qF "$dir/"; then
    pids+=("${proc#/proc/}")
  fi
done
if ((${#pids[@]} > 0)); then
  containers=()
  for pid in "${pids[@]}"; do
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == containerd-shim* ]]; then
      mapfile -t -O "${#containers[@]}" containers < <(descendants "$pid")
    fi
  done
  if ((${#containers[@]} > 0)); then kill -KILL "${containers[@]}" 2>/dev/null || true; fi
  stop_all "${pids[@]}"
fi

# Mounts under <dir>, deepest first (vfs leaves few; the exec root may hold netns
# and shm mounts).
mounts_under() {
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
for m in $(mounts_under); do
  umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
done
if [[ -n $(mounts_under) ]]; then
  echo "services: mounts left under '$dir', not removing it:" >&2
  mounts_under >&2
  exit 1
fi

rm -rf --one-file-system "$dir"
elapsed_ms=$(((${EPOCHREALTIME/./} - ${started/./}) / 1000))
echo "services: stopped and removed '$dir' in ${elapsed_ms} ms"
