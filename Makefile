# Two commands a user needs: `make run` and `make test` (both install first).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
CONFIG ?= configs/default.yaml
OUTPUT ?= outputs
PYTEST_ARGS ?=

export TF_USE_LEGACY_KERAS := 1
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: setup lint run demo-continuous compare compare-grid test test-fast test-all bench bench-scale lock clean image kfp-local

# Re-runs only when a lock (or this file) changes. `python3.10` resolves through
# pyenv thanks to .python-version; the venv keeps pip (TFX needs it).
# requirements.txt is what the pipeline runs on (and all the image holds);
# requirements-dev.txt adds the test and lint tools. compileall writes every
# module's .pyc once (uv installs none): where PYTHONDONTWRITEBYTECODE is set
# (CI, many containers) Python would otherwise compile ~9,000 modules from
# source in every process, 25 s instead of 9 s to import TFX, TFMA and TFT on
# 2 cores (docs/results.md, "Imports"). It skips what is up to date, so a venv
# made before this line gets its .pyc files on the next make.
$(STAMP): requirements.txt requirements-dev.txt Makefile
	@test -x $(PY) || python3.10 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --python $(PY) -r requirements.txt -r requirements-dev.txt
	$(PY) -m compileall -q -j 0 $(VENV)/lib
	touch $(STAMP)

setup: $(STAMP)

# Multitask variants (train.mtl.method x model.sharing.type) over seeds against single-task
# models, with 95 % intervals (docs/compare.md); e.g. GRID="--methods none,pcgrad --seeds 3".
# Without GRID: the config's compare section, else its own method and sharing, 3 seeds.
GRID ?=
compare-grid: setup
	$(PY) -m runners.grid --config $(CONFIG) --output-dir $(OUTPUT) $(GRID)

# Style (ruff) and the layers of the house (import-linter's contract in
# pyproject.toml; docs/architecture.md). CI runs it before the tests.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

run: setup
	$(PY) run_local.py --config $(CONFIG) --output-dir $(OUTPUT)

# Two deliveries of data (spans), drift reported, a warm start, a rollback (docs/continuous.md).
# OUTPUT must be a new or empty folder.
demo-continuous: setup
	$(PY) -m runners.demo_continuous --output-dir $(OUTPUT)

# The multitask run plus one single-task run per task (OUTPUT/compare/<task>/),
# then a multitask-vs-single-task table in OUTPUT/report (docs/compare.md).
compare: setup
	$(PY) -m runners.compare --config $(CONFIG) --output-dir $(OUTPUT)

# pytest exits 5 when it collects nothing; say so instead of failing silently.
# TESTS picks tests by marker: `slow` ones (make compare's three-run DAG test)
# run only with `make test-all`.
TESTS ?= not slow
test: setup
	@$(PY) -m pytest tests -m "$(TESTS)" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-fast: setup
	@$(MAKE) --no-print-directory test TESTS="not e2e and not slow"

# Everything: the `slow` tests too, among them the `multiworker` ones that start
# Trainer processes on 127.0.0.1 (docs/distributed.md; alone: pytest -m multiworker).
test-all: setup
	@$(MAKE) --no-print-directory test TESTS="e2e or not e2e"

bench: setup
	$(PY) -m benchmarks --output bench-results.json

# The cost curve to real sizes (docs/results.md#cost-curve-to-real-sizes): the whole
# DAG at SIZES images (generated IMDB-WIKI + GENKI-4K data), per-component time,
# peak RSS and bytes; merges scale_exponent_max and scale_rss_ratio_max into
# bench-results.json. Not part of `make bench` or `make test` (~25 min on 2 cores).
SIZES ?= 5000,20000,80000
bench-scale: setup
	$(PY) -m benchmarks.scale --sizes $(SIZES) --output bench-results.json

# Both locks; the dev lock is constrained to the runtime one, so they agree on
# every package they share.
LOCK_FLAGS := --python-version 3.10 --python-platform x86_64-manylinux_2_28
# The image every Kubeflow task runs in (Dockerfile): `docker build` where a daemon
# answers, else podman, with the base made from Debian packages when no registry
# answers (docs/kubeflow.md). IMAGE defaults to multitask-tfx:<commit>.
IMAGE ?=
image:
	containers/build_image.sh $(IMAGE)

# The compiled Kubeflow spec run offline: every task in the image, fed what a KFP v2
# launcher feeds it, DIR/root standing in for the object store (runners/kfp_local.py,
# docs/kubeflow.md). Writes OUTPUT/report/report.json and OUTPUT/serving_model/.
# KFP_LOCAL_ARGS: more flags, e.g. "--expect-figures-of outputs/report/report.json".
KFP_LOCAL_ARGS ?=
kfp-local: setup image
	$(PY) -m runners.kfp_local --config $(CONFIG) --output-dir $(OUTPUT) $(KFP_LOCAL_ARGS)

lock: setup
	$(VENV)/bin/uv pip compile $(LOCK_FLAGS) requirements.in -o requirements.txt
	$(VENV)/bin/uv pip compile $(LOCK_FLAGS) requirements-dev.in -o requirements-dev.txt

clean:
	rm -rf outputs bench-results.json .pytest_cache
