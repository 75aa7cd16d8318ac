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
set -eu
project=${1:-.}

envd context create --name ci --builder tcp --builder-address "$BUILDKIT_ADDR" \
  --builder-tls-ca "$BUILDKIT_CA" --builder-tls-cert "$BUILDKIT_CERT" \
  --builder-tls-key "$BUILDKIT_KEY" --use
envd builder status
envd build --progress plain --output "type=image,name=$IMAGE:${TAG:-ci},push=true" "$project"
