# Sourced by the container scripts: how podman is called on machines like the
# ones this project is built on (docs/kubeflow.md#building-the-image).
#  - crun fails there ("cgroups in hybrid mode not supported"): use runc;
#  - the sandbox has no CAP_SYS_RESOURCE, so podman's default ulimits cannot be
#    set (setrlimit EPERM): ask for values the machine already allows.
# PODMAN_RUNTIME / PODMAN_ULIMITS override them where the defaults work.
PODMAN_RUNTIME=${PODMAN_RUNTIME:-runc}
PODMAN_ULIMITS=${PODMAN_ULIMITS:---ulimit nofile=20000:20000 --ulimit nproc=4096:4096}
podman_() { podman --runtime "$PODMAN_RUNTIME" "$@"; }

# The engine that builds and runs the image: a Docker daemon when one answers,
# else podman (installed from Debian's packages when missing and we are root).
container_engine() {
    if [ -n "${CONTAINER_ENGINE:-}" ]; then echo "$CONTAINER_ENGINE"; return; fi
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then echo docker; return; fi
    if ! command -v podman >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing podman, runc and debootstrap (Debian packages)" >&2
            apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -q --no-install-recommends podman runc debootstrap >&2
        else
            echo "error: no Docker daemon and no podman; install one of them" >&2
            return 2
        fi
    fi
    echo podman
}
