# The image every Kubeflow task of this pipeline runs in: the pinned TFX 1.16
# stack plus this repo at /pipeline, so the module paths the compiled spec
# names (components.trainer.run_fn.run_fn, components.transform.preprocessing.preprocessing_fn,
# components.example_gen.component..., schemas/<name>.pbtxt) import and open in the pod.
#
#   docker build -t REGISTRY/multitask-tfx:$(git rev-parse --short HEAD) .
#   make image        (the same build, with podman where no Docker daemon runs; docs/kubeflow.md)

# bookworm = Debian 12, the system the project's stack was measured on; the
# plain 3.10-slim tag has moved on to newer Debian releases.
FROM python:3.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /pipeline

# Dependencies before the code: this layer is rebuilt only when
# requirements.txt changes. requirements.txt is the fully pinned runtime lock
# compiled for x86_64 manylinux / Python 3.10 (make lock), so --no-deps installs
# exactly it, and pip check fails the build if the lock is incomplete. The
# development tools (pytest, ruff, import-linter, hypothesis) are in
# requirements-dev.txt and never installed here. A few pinned packages are
# sdists (pyfarmhash is C++): the compiler is installed for this step and every
# package it brought is purged in the same layer (apt's autoremove would keep
# some, being recommended by others), so the image holds no compiler.
COPY requirements.txt /pipeline/requirements.txt
RUN apt-get update \
    && dpkg-query -W -f '${Package}\n' | sort > /tmp/packages-before \
    && apt-get install -y --no-install-recommends build-essential \
    && pip install --no-deps -r /pipeline/requirements.txt \
    && pip check \
    && dpkg-query -W -f '${Package}\n' | sort | comm -13 /tmp/packages-before - | xargs apt-get purge -y \
    && rm -rf /var/lib/apt/lists/* /root/.cache /tmp/packages-before

# The project itself (.dockerignore keeps out .venv, outputs, sample data).
COPY . /pipeline

ENV PYTHONPATH=/pipeline \
    TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2

# Fail the build, not the first pod, when a module the spec names is missing.
RUN python -c "import components.example_gen.component, components.anomaly_gate, components.baseline, components.evaluator.executor, components.transform.preprocessing, components.trainer.run_fn, components.report.component, components.evaluator.metrics, serving.predict, pipeline.pipeline"

# No ENTRYPOINT: the compiled spec sets each task's command
# (python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor).
