#!/usr/bin/env bash
# A full send of a big build context into an empty build cache: `envd build`
# on a tcp context against `buildctl build`, both clients of the same
# standalone buildkitd (BuildKit's own v0.11.6 from ../shared/tools/buildkit,
# or ENVD_TEST_BUILDKIT_DIR) on 127.0.0.1, same Dockerfile, same output:
#   (1) 10,000 files of 4 KiB in 100 directories (the small files alone)
#   (2) the same plus one 256 MiB file of random bytes
#   (3) the context of (2) sent once, one 4 KiB file changed, sent again: the
#       bytes the daemon reports for each ("transferring ..." in plain
#       progress)
# `FROM scratch` and `COPY . /ctx`, --no-cache, the image exported as a tar to
# /dev/null, so the daemon's work is the transfer, one copy and the tar.
#
# Every timed run starts from an empty build cache: hyperfine's --prepare runs
# `buildctl prune --all` first. Renaming the directory is not enough for
# buildctl: buildkitd keeps the last transfer of a local directory under the
# session's shared key and the directory's name ("context"), buildctl sends no
# shared key, so every later run of buildctl sends only the metadata of the
# files it already sent (292 kB of a 41 MB context), whatever the directory.
# envd keys each directory on its own (docs/performance.md).
#
# Reported: median wall time (hyperfine), the client's mean CPU time (user +
# sys of the client process, hyperfine's rusage), the DAEMON's CPU time per
# run (buildkitd's utime + stime from /proc around each run, the prune
# excluded; median), and for (1) and (2) one more run of each under
# /usr/bin/time for the client's peak resident memory and the bytes sent.
#
# Needs: root (buildkitd), hyperfine, python3, /usr/bin/time.
# Usage: bench/send.sh [runs]   (default 5, after one warm-up run each)
#   ENVD=/path/to/envd   the envd binary (default build/bin/envd; built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs="${1:-5}"

fail() {
  echo "bench: $*" >&2
  exit 1
}
[[ -x /usr/bin/time ]] || fail "/usr/bin/time is missing (apt-get install time)"
# shellcheck source=bench/lib/standalone-buildkitd.sh
source "$repo/bench/lib/standalone-buildkitd.sh"
start_standalone_bench send

small="$work/small"
big="$work/big"
python3 "$repo/bench/lib/small-files.py" "$small"
printf 'FROM scratch\nCOPY . /ctx\n' >"$small/Dockerfile"
mkdir -p "$big"
cp -a "$small/." "$big/"
head -c $((256 * 1024 * 1024)) /dev/urandom >"$big/large.bin"

# Before each run: the previous run ends, the cache is emptied, this run
# starts. Every mark goes to one log per client, in order.
daemon_cpu_marks
# A script of its own, so hyperfine's word splitting (-N) meets no path of
# the checkout's, which may hold spaces.
printf '%q --addr %q prune --all\n' "$bkdir/buildctl" "$addr" >"$work/prune.sh"

# cmd_of CLIENT PROGRESS DIR: sets the array `cmd` to CLIENT's build command.
# shellcheck disable=SC2154 # addr comes from start_buildkitd
cmd_of() {
  if [[ $1 == envd ]]; then
    cmd=("$envd" build --progress "$2" --no-cache --output "type=tar,dest=/dev/null" "$3")
  else
    cmd=("$bkdir/buildctl" --addr "$addr" build --progress "$2" --frontend dockerfile.v0 --no-cache
      --local "context=$3" --local "dockerfile=$3" --output "type=tar,dest=/dev/null")
  fi
}

sent() { python3 "$repo/bench/lib/sent-bytes.py" "$1"; }
# bench NAME DIR: hyperfine over both clients; then one run of each under
# /usr/bin/time with plain progress: "<peak RSS KiB> <bytes sent>" per client.
bench() {
  local name="$1" dir="$2" client
  : >"$work/$name.cpu.envd"
  : >"$work/$name.cpu.buildctl"
  local envd_line buildctl_line
  cmd_of envd quiet "$dir"
  envd_line="${cmd[*]}"
  cmd_of buildctl plain "$dir"
  buildctl_line="${cmd[*]}"
  hyperfine -N --style none --warmup 1 --runs "$runs" --export-json "$work/$name.json" \
    -p "bash $work/mark.sh $work/$name.cpu.envd bash $work/prune.sh" -n envd "$envd_line" \
    -p "bash $work/mark.sh $work/$name.cpu.buildctl bash $work/prune.sh" -n buildctl "$buildctl_line" \
    >/dev/null
  # envd's last run ended where buildctl's first prepare began.
  head -n 1 "$work/$name.cpu.buildctl" >>"$work/$name.cpu.envd"
  echo "end $(bash "$work/daemon-cpu.sh")" >>"$work/$name.cpu.buildctl"
  for client in envd buildctl; do
    "$bkdir/buildctl" --addr "$addr" prune --all >/dev/null
    cmd_of "$client" plain "$dir"
    /usr/bin/time -o "$work/$name.time.$client" -f '%M' "${cmd[@]}" >"$work/$name.log.$client" 2>&1 ||
      { tail -n 20 "$work/$name.log.$client" >&2; fail "$client failed on ($name)"; }
    echo "$(tail -n 1 "$work/$name.time.$client") $(sent "$work/$name.log.$client")" \
      >"$work/$name.once.$client"
  done
}
bench small "$small"
bench big "$big"

# (3): one file changed after a full send, both clients from an empty cache.
rebuild() {  # client: "<first bytes> <rebuild bytes>"
  local client="$1"
  "$bkdir/buildctl" --addr "$addr" prune --all >/dev/null
  cp "$work/big.keep" "$big/d07/f00007"
  cmd_of "$client" plain "$big"
  "${cmd[@]}" >"$work/rebuild.first.$client" 2>&1 || fail "$client failed on (3)"
  head -c 4096 /dev/urandom >"$big/d07/f00007"
  "${cmd[@]}" >"$work/rebuild.again.$client" 2>&1 || fail "$client failed on (3)"
  echo "$(sent "$work/rebuild.first.$client") $(sent "$work/rebuild.again.$client")"
}
cp "$big/d07/f00007" "$work/big.keep"
rebuild_envd=$(rebuild envd)
rebuild_buildctl=$(rebuild buildctl)

version=$("$bkdir/buildkitd" --version | awk '{print $3}')
printf 'buildkitd %s (oci worker, native snapshotter) on 127.0.0.1, envd %s, %s CPUs (%s)\n' \
  "$version" "$("$envd" --version 2>/dev/null | awk '{print $2}')" "$(nproc)" \
  "$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
PYTHONPATH="$repo/bench/lib${PYTHONPATH:+:$PYTHONPATH}" python3 - "$runs" "$work" "$rebuild_envd" "$rebuild_buildctl" <<'PY'
import json, sys
from daemon_cpu import median_per_run
runs, work = int(sys.argv[1]), sys.argv[2]

print(f"{'full send into an empty cache, median of ' + str(runs):<46} {'wall (s)':>9} {'ratio':>6} "
      f"{'client CPU (s)':>15} {'daemon CPU (s)':>15} {'peak RSS (MiB)':>15} {'bytes sent':>12}")
for name, label in (("small", "(1) 10,000 x 4 KiB"), ("big", "(2) 10,000 x 4 KiB + 256 MiB")):
    results = {r["command"]: r for r in json.load(open(f"{work}/{name}.json"))["results"]}
    base = results["buildctl"]["median"]
    for client in ("envd", "buildctl"):
        r = results[client]
        rss_kib, sent = open(f"{work}/{name}.once.{client}").read().split()
        print(f"{label + ', ' + client:<46} {r['median']:>9.3f} {r['median'] / base:>5.2f}x "
              f"{r['user'] + r['system']:>15.3f} {median_per_run(f'{work}/{name}.cpu.{client}', runs):>15.3f} "
              f"{int(rss_kib) / 1024:>15.1f} {int(sent):>12,}")
print(f"{'(3) bytes sent, one 4 KiB file changed':<46} {'first send':>12} {'rebuild':>12}")
for client, figures in (("envd", sys.argv[3]), ("buildctl", sys.argv[4])):
    first, again = (int(x) for x in figures.split())
    print(f"{'(3) ' + client:<46} {first:>12,} {again:>12,}")
PY
