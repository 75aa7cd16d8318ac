#!/usr/bin/env bash
# The docs' code blocks, checked and run (docs/README.md says every command the
# docs show works as shown; this is what proves it).
#
# usage: run-doc-blocks.sh check
#        run-doc-blocks.sh list
#        run-doc-blocks.sh run --bin DIR --services-env FILE [--buildkit-env FILE] [FILE.md...]
#
#   check  every fenced block in README.md and docs/*.md has a language tag,
#          and every entry of doc-blocks.txt (the ```sh blocks that are not
#          run, each with its reason) still names a block; no daemon needed
#   list   every ```sh block as <file>:<line>: run|skip (<reason>): <first line>
#   run    runs every ```sh block not in doc-blocks.txt, in order, file by
#          file: `envd` is the one in --bin, HOME and XDG_CONFIG_HOME are a
#          throw-away directory per file (a page's blocks share it, as a reader's
#          shell would), DOCKER_HOST and the registry are those of the test
#          services' env file (tests/services/start.sh), the BuildKit daemons
#          those of --buildkit-env (tests/buildkit/start.sh). Placeholders the
#          docs use (registry.example, 10.0.0.5:8888, ...) are replaced first as
#          placeholders.txt says. A block runs under `bash -euo pipefail` in a
#          scratch directory holding copies of examples/ and scripts/ and, at its
#          top, examples/hello whose base image is in the test registry (the `.`
#          a block builds). With FILE.md arguments only those pages run.
#
# doc-blocks.txt:   <file> :: <start of the block's first line> :: <reason>
# placeholders.txt: [<file> ::] <text in the docs> => <test value>
#   A test value may name ${VAR} of the env files; an entry with a file applies
#   to that page only and comes before the global ones.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
exclusions=$here/doc-blocks.txt
placeholders=$here/placeholders.txt

fail() {
  echo "doc-blocks: $*" >&2
  exit 1
}

# blocks <file>: one record per fenced block, fields separated by \x1f:
# line, tag, first non-empty line (trimmed), body (lines joined by \x1e).
# An indented fence (in a list item) strips its indentation from the body.
blocks() {
  awk -v RS='\n' '
    function flush() { printf "%d\x1f%s\x1f%s\x1f%s\n", start, tag, first, body }
    !inb && /^[ \t]*```/ {
      inb = 1; start = NR; match($0, /^[ \t]*/); indent = RLENGTH
      tag = substr($0, indent + 4); sub(/[ \t]+$/, "", tag)
      first = ""; body = ""; next
    }
    inb && /^[ \t]*```[ \t]*$/ { flush(); inb = 0; next }
    inb {
      line = $0
      if (substr(line, 1, indent) ~ /^[ \t]*$/) line = substr(line, indent + 1)
      body = body (body == "" ? "" : "\x1e") line
      if (first == "" && line !~ /^[ \t]*$/) { first = line; sub(/^[ \t]+/, "", first); sub(/[ \t]+$/, "", first) }
    }
    END { if (inb) printf "%d\x1f!unclosed\x1f\x1f\n", start }
  ' "$1"
}

doc_files() {
  (cd "$src" && printf '%s\n' README.md docs/*.md)
}

# The exclusions as parallel arrays ex_file, ex_key, ex_reason, ex_used.
ex_file=() ex_key=() ex_reason=() ex_used=()
load_exclusions() {
  local line file key reason
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z ${line//[[:space:]]/} || $line == \#* ]] && continue
    [[ $line == *' :: '*' :: '* ]] || fail "doc-blocks.txt: not '<file> :: <first line> :: <reason>': $line"
    file=${line%% :: *}
    line=${line#* :: }
    key=${line%% :: *}
    reason=${line#* :: }
    [[ -n $reason && -n $key ]] || fail "doc-blocks.txt: an empty first line or reason: $file :: $key"
    ex_file+=("$file") ex_key+=("$key") ex_reason+=("$reason") ex_used+=(0)
  done <"$exclusions"
}

# excluded <file> <first line>: sets reason (empty when the block runs) and
# marks the entry used.
excluded() {
  reason=""
  local i
  for i in "${!ex_file[@]}"; do
    if [[ ${ex_file[i]} == "$1" && $2 == "${ex_key[i]}"* ]]; then
      reason=${ex_reason[i]}
      ex_used[i]=1
      return
    fi
  done
}

check() {
  local errors=0 file line tag first body i
  while IFS= read -r file; do
    while IFS=$'\x1f' read -r line tag first body; do
      if [[ $tag == '!unclosed' ]]; then
        echo "$file:$line: a fence that is never closed" >&2
        errors=$((errors + 1))
      elif [[ -z $tag ]]; then
        echo "$file:$line: a fenced block without a language tag (sh, console, text, json, ...)" >&2
        errors=$((errors + 1))
      elif [[ $tag == sh ]]; then
        excluded "$file" "$first"
      fi
    done < <(blocks "$src/$file")
  done < <(doc_files)
  for i in "${!ex_file[@]}"; do
    if ((ex_used[i] == 0)); then
      echo "doc-blocks.txt: '${ex_file[i]} :: ${ex_key[i]}' names no \`\`\`sh block any more: remove or update it" >&2
      errors=$((errors + 1))
    fi
  done
  ((errors == 0)) || fail "$errors problem(s)"
  echo "doc-blocks: every fenced block has a language tag; every exclusion names a block"
}

list() {
  local file line tag first body runs=0 skips=0
  while IFS= read -r file; do
    while IFS=$'\x1f' read -r line tag first body; do
      [[ $tag == sh ]] || continue
      excluded "$file" "$first"
      if [[ -z $reason ]]; then
        echo "$file:$line: run: $first"
        runs=$((runs + 1))
      else
        echo "$file:$line: skip ($reason): $first"
        skips=$((skips + 1))
      fi
    done < <(blocks "$src/$file")
  done < <(doc_files)
  echo "doc-blocks: $runs sh block(s) run, $skips excluded"
}

# substitute <file> <text>: prints <text> with the placeholders replaced.
ph_file=() ph_from=() ph_to=()
load_placeholders() {
  local line file from to name
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z ${line//[[:space:]]/} || $line == \#* ]] && continue
    [[ $line == *' => '* ]] || fail "placeholders.txt: not '[<file> ::] <text> => <value>': $line"
    file=""
    if [[ ${line%% => *} == *' :: '* ]]; then
      file=${line%% :: *}
      line=${line#* :: }
    fi
    from=${line%% => *}
    to=${line#* => }
    for name in "${env_names[@]}"; do
      to=${to//"\${$name}"/"${!name}"}
    done
    # shellcheck disable=SC2016 # a literal ${ left over
    [[ $to != *'${'* ]] || fail "placeholders.txt: '$to' names a variable no env file sets"
    ph_file+=("$file") ph_from+=("$from") ph_to+=("$to")
  done <"$placeholders"
}
substitute() {
  local text=$2 i
  for pass in scoped global; do
    for i in "${!ph_from[@]}"; do
      if [[ $pass == scoped && ${ph_file[i]} == "$1" ]] || [[ $pass == global && -z ${ph_file[i]} ]]; then
        text=${text//"${ph_from[i]}"/"${ph_to[i]}"}
      fi
    done
  done
  printf '%s\n' "$text"
}

env_names=()
read_env() {
  local line name
  while IFS= read -r line; do
    [[ $line == *=* ]] || continue
    name=${line%%=*}
    printf -v "$name" '%s' "${line#*=}"
    export "${name?}"
    env_names+=("$name")
  done <"$1"
}

run() {
  local bin="" services_env="" buildkit_env="" only=()
  while (($#)); do
    case $1 in
      --bin) bin=$2; shift 2 ;;
      --services-env) services_env=$2; shift 2 ;;
      --buildkit-env) buildkit_env=$2; shift 2 ;;
      -*) fail "unknown option $1" ;;
      *) only+=("$1"); shift ;;
    esac
  done
  [[ -x $bin/envd ]] || fail "no envd in --bin '$bin'"
  [[ -r $services_env ]] || fail "the services env file '$services_env' is missing (ctest fixture 'engine')"
  read_env "$services_env"
  if [[ -n $buildkit_env ]]; then
    [[ -r $buildkit_env ]] || fail "the BuildKit env file '$buildkit_env' is missing (ctest fixture 'buildkitd')"
    read_env "$buildkit_env"
    if [[ -n ${BUILDKIT_ABSENT:-} ]]; then
      echo "doc-blocks: SKIPPED: the real BuildKit is absent: $BUILDKIT_ABSENT"
      exit 77
    fi
  fi
  load_placeholders
  bin=$(cd "$bin" && pwd)
  # The docker CLI of the blocks talks to the test Engine, with a config of its own.
  export DOCKER_CONFIG=${services_env%/*}/cli-config
  mkdir -p "$DOCKER_CONFIG"
  docker image inspect envd-examples/busybox:latest >/dev/null 2>&1 ||
    docker tag envd-test/busybox:latest envd-examples/busybox:latest ||
    fail "cannot tag envd-test/busybox:latest as envd-examples/busybox:latest on the Engine at $DOCKER_HOST"

  scratch=$(mktemp -d "${TMPDIR:-/tmp}/envd-doc-blocks.XXXXXX")
  trap 'rm -rf "$scratch"' EXIT
  local file line tag first body runs=0 skips=0 failed=() n=0 dir script out started
  while IFS= read -r file; do
    if ((${#only[@]})); then
      local want=0 o
      for o in "${only[@]}"; do [[ $o == "$file" ]] && want=1; done
      ((want)) || continue
    fi
    dir=$scratch/${file//\//_}
    mkdir -p "$dir/home/.config" "$dir/work"
    cp -r "$src/examples" "$src/scripts" "$dir/work/"
    cp "$src/examples/hello/greeting.txt" "$dir/work/"
    sed "s|^ARG BASE=.*|ARG BASE=${BUILDKIT_BASE:-$ENVD_TEST_REGISTRY/envd-test/busybox:latest}|" \
      "$src/examples/hello/Dockerfile" >"$dir/work/Dockerfile"
    while IFS=$'\x1f' read -r line tag first body; do
      [[ $tag == sh ]] || continue
      excluded "$file" "$first"
      if [[ -n $reason ]]; then
        skips=$((skips + 1))
        continue
      fi
      n=$((n + 1))
      script=$dir/block-$line.sh
      substitute "$file" "${body//$'\x1e'/$'\n'}" >"$script"
      echo "--- $file:$line"
      sed 's/^/    /' "$script"
      started=$EPOCHREALTIME
      if out=$(cd "$dir/work" && env -u ENVD_CONTEXT -u ENVD_CONFIG_DIR \
        HOME="$dir/home" XDG_CONFIG_HOME="$dir/home/.config" PATH="$bin:$PATH" \
        timeout 300 bash -euo pipefail "$script" </dev/null 2>&1); then
        printf '%s\n' "$out" | sed 's/^/  | /'
        echo "  ok ($(((${EPOCHREALTIME/./} - ${started/./}) / 1000)) ms)"
        runs=$((runs + 1))
      else
        local rc=$?
        printf '%s\n' "$out" | sed 's/^/  | /'
        echo "  FAILED (exit $rc): $file:$line" >&2
        failed+=("$file:$line")
      fi
    done < <(blocks "$src/$file")
  done < <(doc_files)
  echo "doc-blocks: $runs sh block(s) ran, ${#failed[@]} failed, $skips excluded (tests/docs/doc-blocks.txt)"
  ((${#failed[@]} == 0)) || fail "failed: ${failed[*]}"
}

mode=${1:-}
shift || true
[[ -r $exclusions ]] || fail "'$exclusions' is missing"
load_exclusions
case $mode in
  check) check ;;
  list) list ;;
  run) run "$@" ;;
  *) fail "usage: run-doc-blocks.sh check|list|run --bin DIR --services-env FILE [--buildkit-env FILE] [FILE.md...]" ;;
esac
