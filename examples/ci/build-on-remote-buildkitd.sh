#!/usr/bin/env bash
# A CI job that builds and pushes an image on a remote buildkitd: no Docker on
# the runner, the build cache kept in the registry (so an ephemeral runner, or
# a fresh daemon, rebuilds only what changed), a secret that never touches a
# layer, and the result's metadata for later steps. docs/building.md walks
# through it; tests/buildkit/remote_real_test.cpp runs it against a real
# buildkitd with mutual TLS.
#
# Usage: build-on-remote-buildkitd.sh [PROJECT_DIR]   (default: .)
# Inputs, as CI variables:
#   BUILDKIT_ADDR   tcp://buildkitd.ci.example.com:1234
#   BUILDKIT_CA     files of the builder's mutual TLS: its CA, and this job's
#   BUILDKIT_CERT   client certificate and key
#   BUILDKIT_KEY
#   IMAGE           registry.example.com/team/app (pushed as $IMAGE:$TAG)
#   TAG             default: ci
#   NPM_TOKEN       the secret, for RUN --mount=type=secret,id=npm_token
# Writes build-metadata.json (buildx's shape: containerimage.digest, ...).
set -euo pipefail
project="${1:-.}"
context="ci-${CI_JOB_ID:-$$}"

envd context create --name "$context" --builder tcp --builder-address "$BUILDKIT_ADDR" \
  --builder-tls-ca "$BUILDKIT_CA" --builder-tls-cert "$BUILDKIT_CERT" \
  --builder-tls-key "$BUILDKIT_KEY" >/dev/null
trap 'envd context rm "$context" >/dev/null' EXIT

envd --context "$context" build --progress plain \
  --cache-from "type=registry,ref=$IMAGE:buildcache" \
  --cache-to "type=registry,ref=$IMAGE:buildcache,mode=max" \
  --secret id=npm_token,env=NPM_TOKEN \
  --output "type=image,name=$IMAGE:${TAG:-ci},push=true" \
  --metadata-file build-metadata.json \
  "$project"
