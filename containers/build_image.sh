#!/usr/bin/env bash
# `make image`: builds ./Dockerfile into IMAGE (default multitask-tfx:<commit>,
# also tagged multitask-tfx:latest), then checks that the image holds no
# development tools. With a Docker daemon this is a plain `docker build`; without
# one, podman builds the same Dockerfile, with its base made from Debian packages
# when no registry answers (containers/make_base.sh).
#
#   containers/build_image.sh [IMAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
source containers/podman.sh
IMAGE=${1:-${IMAGE:-multitask-tfx:$(git rev-parse --short HEAD 2>/dev/null || echo dev)}}
LATEST=multitask-tfx:latest
ENGINE=$(container_engine)
start=$(date +%s)

if [ "$ENGINE" = docker ]; then
    docker build -t "$IMAGE" -t "$LATEST" .
    run() { docker run --rm -i "$IMAGE" "$@"; }
else
    base=$(awk 'toupper($1) == "FROM" {print $2; exit}' Dockerfile)
    case "$base" in */*) ;; *) base="docker.io/library/$base" ;; esac
    containers/make_base.sh "$base"
    extra=()
    # pip inside the build trusts the CAs this machine trusts (a TLS-inspecting
    # proxy's among them) through a pip.conf bind-mounted for the build only:
    # nothing of it stays in the image.
    ca=${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}
    if [ -n "$ca" ] && [ -f "$ca" ]; then
        conf=$(mktemp /var/tmp/pip-conf.XXXXXX)
        trap 'rm -f "$conf"' EXIT
        printf '[global]\ncert = /etc/ssl/certs/host-ca-bundle.crt\n' >"$conf"
        extra+=(-v "$ca:/etc/ssl/certs/host-ca-bundle.crt:ro" -v "$conf:/etc/pip.conf:ro")
    fi
    # shellcheck disable=SC2086
    podman_ build --pull=never --network=host $PODMAN_ULIMITS "${extra[@]}" \
        -t "$IMAGE" -t "$LATEST" .
    # shellcheck disable=SC2086
    run() { podman_ run --rm -i --network=none $PODMAN_ULIMITS "$IMAGE" "$@"; }
fi

# The production image is the runtime lock and the code, nothing for development.
run python - <<'PY'
import importlib.util, shutil, sys
dev = [m for m in ("pytest", "ruff", "importlinter", "hypothesis", "grimp") if importlib.util.find_spec(m)]
dev += [t for t in ("pytest", "ruff", "lint-imports", "gcc", "g++", "cc", "make") if shutil.which(t)]
if dev:
    sys.exit(f"error: development tools in the image: {', '.join(dev)} (they belong in requirements-dev.txt)")
import tfx, tensorflow as tf
print(f"image check: tfx {tfx.__version__}, tensorflow {tf.__version__}, no development tools or compilers")
PY
echo "built $IMAGE (also $LATEST) with $ENGINE in $(( $(date +%s) - start )) s"
