#!/usr/bin/env bash
# Makes the Dockerfile's base image (python:3.10-slim-bookworm) in podman's
# store when it is not there and no registry can be reached: Debian 12 from
# Debian's own packages (debootstrap, from the apt mirror this machine uses)
# plus this machine's CPython 3.10 copied to /usr/local, as the official image
# has it. On a machine that reaches Docker Hub, `podman pull` is used instead.
#
#   containers/make_base.sh [BASE]      (root; ~1 min)
set -euo pipefail
cd "$(dirname "$0")/.."
source containers/podman.sh
BASE=${1:-docker.io/library/python:3.10-slim-bookworm}

if podman image exists "$BASE"; then
    echo "base image $BASE: present"
    exit 0
fi
if timeout 60 podman pull -q "$BASE" >/dev/null 2>&1; then
    echo "base image $BASE: pulled"
    exit 0
fi
echo "base image $BASE: no registry answers; making it from Debian packages and this machine's Python 3.10"
for tool in debootstrap; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install $tool)" >&2; exit 2; }
done

# The Debian mirror apt uses here (deb822 .sources files or a classic sources.list).
MIRROR=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
if [ -z "$MIRROR" ]; then
    MIRROR=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
             | awk '{print $2}' | grep -v security | head -n1 || true)
fi
MIRROR=${MIRROR:-http://deb.debian.org/debian}

# sys.base_prefix: the interpreter itself, also when called from inside a venv.
PREFIX=$(python3.10 -c 'import sys; print(sys.base_prefix)')
VERSION=$(python3.10 -c 'import platform; print(platform.python_version())')

WORK=$(mktemp -d /var/tmp/base-rootfs.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOTFS=$WORK/rootfs
debootstrap --variant=minbase --include=libssl3,libffi8,libsqlite3-0,libreadline8,ca-certificates \
    bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 20 "$WORK/debootstrap.log" >&2; echo "error: debootstrap failed (log above)" >&2; exit 1; }

# The interpreter and its standard library, without its test suite and without
# whatever was pip-installed into it here: like the official image, only pip
# and setuptools come with it.
tar -C "$PREFIX" --exclude="./lib/python3.10/test" --exclude="./lib/python3.10/site-packages" \
    --exclude="__pycache__" -cf - . | tar -C "$ROOTFS/usr/local" -xf -
mkdir -p "$ROOTFS/usr/local/lib/python3.10/site-packages"
for pkg in pip setuptools pkg_resources _distutils_hack distutils-precedence.pth 'pip-*.dist-info' \
           'setuptools-*.dist-info'; do
    # shellcheck disable=SC2086
    cp -a "$PREFIX"/lib/python3.10/site-packages/$pkg "$ROOTFS/usr/local/lib/python3.10/site-packages/" 2>/dev/null || true
done
# Scripts name the interpreter by its old path in their #! line, and the build
# configuration (include dirs for C extensions, python3.10-config) names the old
# prefix: both move to /usr/local, where the official image has them.
grep -rlI "$PREFIX" "$ROOTFS/usr/local/bin" "$ROOTFS/usr/local/lib/pkgconfig" \
    "$ROOTFS"/usr/local/lib/python3.10/_sysconfigdata_*.py "$ROOTFS"/usr/local/lib/python3.10/config-3.10-* \
    2>/dev/null | while read -r f; do
    sed -i "s|$PREFIX|/usr/local|g" "$f"
done
chroot "$ROOTFS" ldconfig
chroot "$ROOTFS" /usr/local/bin/python3.10 -c '
import ssl, sqlite3, ctypes, readline, pip, sysconfig
assert sysconfig.get_paths()["include"] == "/usr/local/include/python3.10", sysconfig.get_paths()' \
    || { echo "error: the copied Python does not run in the Debian root" >&2; exit 1; }

tar -C "$ROOTFS" -c . | podman import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change "ENV PYTHON_VERSION=$VERSION" \
    --change 'CMD ["python3"]' - "$BASE" >/dev/null
echo "base image $BASE: made (Debian 12 from $MIRROR, Python $VERSION from $PREFIX)"
