#!/usr/bin/env bash
# Build the lossd image with podman and test the real container (make test-container).
# No Docker engine and no registry are needed: ../shared/container/podman-env.sh (relative to
# the repository root; PODMAN_ENV overrides) installs podman and a stand-in base image.
# Prints the image size, build time and the container's start-to-ready time.
set -euo pipefail
cd "$(dirname "$0")/.."
PODMAN_ENV=${PODMAN_ENV:-../shared/container/podman-env.sh}
IMAGE=${IMAGE:-localhost/lossd:ci}
PYTHON=${PYTHON:-.venv/bin/python}

eval "$(bash "$PODMAN_ENV")"
export CONTAINERS_CONF CONTAINERS_STORAGE_CONF TMPDIR

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
start=$SECONDS
podman build --network=host --pull=never --format docker \
  --build-arg REVISION="$revision" --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -t "$IMAGE" -f deploy/Dockerfile .
build_seconds=$((SECONDS - start))

report=$(mktemp)
trap 'rm -f "$report"; podman ps -a --filter name=lossd-test- -q | xargs -r podman rm -f >/dev/null 2>&1 || true' EXIT
status=0
LOSSD_TEST_IMAGE=$IMAGE LOSSD_CONTAINER_REPORT=$report \
  "$PYTHON" -m pytest tests/container -q -p no:cacheprovider || status=$?

echo "== lossd image figures ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf 'build: %d s  (podman build --format docker -f deploy/Dockerfile .)\n' "$build_seconds"
podman image inspect --format 'image size: {{.Size}} bytes' "$IMAGE"
cat "$report"; echo
podman image prune -f >/dev/null 2>&1 || true
exit $status
