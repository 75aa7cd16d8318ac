#!/bin/sh
# The CI job that github-actions.yml and gitlab-ci.yml run inside the CI image:
# the remote walkthrough of docs/remote-build.md, on a buildkitd with mutual
# TLS, with no Docker anywhere. POSIX sh, so the image's busybox runs it.
#
# Usage: job.sh [PROJECT_DIR]   (default: .)
# Inputs, as CI variables:
#   BUILDKIT_ADDR                          tcp://buildkitd.ci.example.com:1234
#   BUILDKIT_CA, BUILDKIT_CERT, BUILDKIT_KEY
#                                          files: the daemon's CA, this job's client
#                                          certificate and its key
#   IMAGE                                  registry.example.com/team/app
#   TAG                                    default: ci
#   REGISTRY_USER, REGISTRY_PASSWORD       optional: a login to IMAGE's registry
set -eu
project=${1:-.}

# The push goes from buildkitd to the registry with the credentials envd's
# session hands it, read from $DOCKER_CONFIG/config.json (docs/remote-build.md);
# the image has none, so a registry that wants a login gets one written here.
if [ -n "${REGISTRY_USER:-}" ] && [ -n "${REGISTRY_PASSWORD:-}" ]; then
  registry=${IMAGE%%/*}
  DOCKER_CONFIG=${DOCKER_CONFIG:-$HOME/.docker}
  export DOCKER_CONFIG
  (
    umask 077
    mkdir -p "$DOCKER_CONFIG"
    auth=$(printf '%s:%s' "$REGISTRY_USER" "$REGISTRY_PASSWORD" | base64 | tr -d '\n')
    printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$registry" "$auth" >"$DOCKER_CONFIG/config.json"
  )
fi

envd context create --name ci --builder tcp --builder-address "$BUILDKIT_ADDR" \
  --builder-tls-ca "$BUILDKIT_CA" --builder-tls-cert "$BUILDKIT_CERT" \
  --builder-tls-key "$BUILDKIT_KEY" --use
envd builder status
envd build --progress plain --output "type=image,name=$IMAGE:${TAG:-ci},push=true" "$project"
