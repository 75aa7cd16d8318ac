#!/usr/bin/env bash
# CI image test (examples/ci-image, docs/ci-image.md): the image a user builds
# for CI jobs, made here exactly as the example says and with no base image to
# pull: CPack's packages of envd and the tcp module, unpacked with their
# libraries by assemble-rootfs.sh, turned into an image by `envd build` on the
# test Engine (moby-worker). Then, in the real Engine, inside that image:
#   - `envd plugin ls` lists exactly the tcp builder; no other module file and
#     no docker binary is in the image;
#   - the example's job.sh (context create --builder tcp with mutual TLS,
#     builder status, build with type=image,push=true) runs against the real
#     standalone buildkitd and pushes to the test registry;
#   - a build with type=local writes its files into a mounted directory.
# Prints the image's size (docs/ci-image.md records it).
# Usage: ci_image.sh <build dir> <services env> <buildkit env> <source dir>
# Exits 77 (skipped) when the standalone BuildKit is absent.
set -euo pipefail
usage="usage: ci_image.sh <build dir> <services env> <buildkit env> <source dir>"
build=$(realpath "${1:?$usage}")
services_env=${2:?$usage}
buildkit_env=${3:?$usage}
source=$(realpath "${4:?$usage}")
work=$(mktemp -d)
tag="ci-image-$$"
image="envd-test/ci-image:$tag"

fail() {
  echo "ci image test: $*" >&2
  exit 1
}
value() { sed -nE "s/^$2=(.*)$/\1/p" "$1" | tail -n 1; }

absent=$(value "$buildkit_env" BUILDKIT_ABSENT)
if [[ -n $absent ]]; then
  echo "ci image test: SKIPPED: $absent" >&2
  exit 77
fi
export DOCKER_HOST
DOCKER_HOST=$(value "$services_env" DOCKER_HOST)
registry=$(value "$services_env" ENVD_TEST_REGISTRY)
mtls=$(value "$buildkit_env" BUILDKIT_MTLS)
pki=$(value "$buildkit_env" BUILDKIT_PKI)
base=$(value "$buildkit_env" BUILDKIT_BASE)
[[ -n $DOCKER_HOST && -n $registry && -n $mtls && -n $pki && -n $base ]] ||
  fail "incomplete env files '$services_env' and '$buildkit_env'"
cleanup() {
  docker image rm -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- the packages, and the root file system the example assembles ----------------
(cd "$build" && cpack -G DEB -B "$work/packages" >"$work/cpack.log" 2>&1) ||
  fail "cpack failed: $(tail -n 20 "$work/cpack.log")"
shopt -s nullglob
cli_deb=("$work"/packages/envd_*_amd64.deb)
tcp_deb=("$work"/packages/envd-plugin-tcp_*_amd64.deb)
((${#cli_deb[@]} == 1 && ${#tcp_deb[@]} == 1)) ||
  fail "cpack made no envd and envd-plugin-tcp packages: $(ls "$work/packages")"
mkdir "$work/image"
cp "$source"/examples/ci-image/{Dockerfile,.dockerignore} "$work/image/"
bash "$source/examples/ci-image/assemble-rootfs.sh" "$work/image/rootfs" "${cli_deb[0]}" "${tcp_deb[0]}" \
  2>"$work/assemble.log" || fail "assemble-rootfs.sh failed: $(tail -n 5 "$work/assemble.log")"

# --- built by envd itself, on the test Engine -------------------------------------
export HOME="$work/home" PATH="$build/bin:$PATH"
unset XDG_CONFIG_HOME XDG_CACHE_HOME ENVD_CONFIG_DIR ENVD_CONTEXT ENVD_PLUGIN_PATH DOCKER_CONFIG
mkdir -p "$HOME"
envd context create --name engine --builder moby-worker --use >/dev/null 2>"$work/context.log" ||
  fail "cannot create the moby-worker context: $(cat "$work/context.log")"
envd build --progress plain --output "type=image,name=$image" "$work/image" >"$work/build.log" 2>&1 ||
  fail "envd build of the CI image failed: $(tail -n 20 "$work/build.log")"
size=$(docker image inspect -f '{{.Size}}' "$image") || fail "the Engine has no image $image"

# --- inside the image ----------------------------------------------------------------
in_image() {
  docker run --rm --network host -v "$work/job:/job" -v "$pki:/pki:ro" \
    -v "$source/examples/ci-image:/ci:ro" "$@"
}
mkdir -p "$work/job/project" "$work/job/out"
printf 'FROM %s\nCOPY greeting.txt /greeting.txt\nRUN cp /greeting.txt /copied.txt\n' "$base" \
  >"$work/job/project/Dockerfile"
echo "hello from the ci image" >"$work/job/project/greeting.txt"

plugins=$(in_image "$image" envd plugin ls --format json) || fail "envd plugin ls failed in the image"
types=$(grep -oE '"path":"[^"]*"' <<<"$plugins" | sed -E 's|.*/envd-([a-z]+)-([^/]+)\.so"$|\1:\2|' |
  sort | tr '\n' ' ')
[[ $types == "builder:tcp " ]] || fail "envd plugin ls in the image lists '$types', expected 'builder:tcp': $plugins"
grep -q '"status":"refused"' <<<"$plugins" && fail "a module is refused in the image: $plugins"
contents=$(in_image "$image" sh -c 'command -v docker dockerd containerd buildctl; find / -xdev -name "envd-*.so"') || true
[[ $contents == "/usr/lib/envd/plugins/envd-builder-tcp.so" ]] ||
  fail "the image holds more than envd and the tcp module: '$contents'"

# The example's job: mutual TLS to the real buildkitd, status, build and push.
repository="envd-test/ci-image-job"
in_image -e "BUILDKIT_ADDR=tcp://$mtls" -e BUILDKIT_CA=/pki/ca.pem -e BUILDKIT_CERT=/pki/client-cert.pem \
  -e BUILDKIT_KEY=/pki/client-key.pem -e "IMAGE=$registry/$repository" -e "TAG=$tag" \
  "$image" sh /ci/job.sh /job/project >"$work/job.log" 2>&1 ||
  fail "the example's job.sh failed in the image: $(tail -n 20 "$work/job.log")"
grep -qE "^Reachable: +yes" "$work/job.log" ||
  fail "envd builder status did not find the builder reachable: $(head -n 20 "$work/job.log")"
grep -q "Pushed $registry/$repository:$tag" "$work/job.log" ||
  fail "the job's build did not say it pushed $registry/$repository:$tag: $(tail -n 5 "$work/job.log")"
code=$(curl -s -o /dev/null -w '%{http_code}' \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://$registry/v2/$repository/manifests/$tag")
[[ $code == 200 ]] || fail "the registry has no $repository:$tag after the job (HTTP $code)"

# A local export. Every docker run starts from the image, so this one makes
# its context again.
in_image "$image" sh -c "envd context create --name ci --builder tcp --builder-address 'tcp://$mtls' \
  --builder-tls-ca /pki/ca.pem --builder-tls-cert /pki/client-cert.pem --builder-tls-key /pki/client-key.pem \
  --use >/dev/null && envd build --progress plain --output type=local,dest=/job/out /job/project" \
  >"$work/local.log" 2>&1 || fail "the type=local build failed in the image: $(tail -n 20 "$work/local.log")"
[[ $(cat "$work/job/out/copied.txt" 2>/dev/null) == "hello from the ci image" ]] ||
  fail "the type=local build wrote no copied.txt: $(ls -R "$work/job/out" | head -n 20)"

echo "ci image test: ok ($image: $((size / 1024 / 1024)) MiB ($size bytes), tcp module only, no docker;" \
  "job pushed $registry/$repository:$tag; type=local wrote copied.txt)"
