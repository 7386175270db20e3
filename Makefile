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

.PHONY: setup run compare test test-fast bench lock clean

# Re-runs only when requirements.txt changes. `python3.10` resolves through
# pyenv thanks to .python-version; the venv keeps pip (TFX needs it).
$(STAMP): requirements.txt
	@test -x $(PY) || python3.10 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --python $(PY) -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) run_local.py --config $(CONFIG) --output-dir $(OUTPUT)

# The multitask run plus one single-task run per task (OUTPUT/compare/<task>/),
# then a multitask-vs-single-task table in OUTPUT/report (docs/compare.md).
compare: setup
	$(PY) -m pipeline.compare --config $(CONFIG) --output-dir $(OUTPUT)

# pytest exits 5 when it collects nothing; say so instead of failing silently.
test: setup
	@$(PY) -m pytest tests $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-fast: setup
	@$(MAKE) --no-print-directory test PYTEST_ARGS="-m 'not e2e' $(PYTEST_ARGS)"

bench: setup
	$(PY) -m benchmarks --output bench-results.json

lock: setup
	$(VENV)/bin/uv pip compile --python-version 3.10 --python-platform x86_64-manylinux_2_28 \
		requirements.in -o requirements.txt

clean:
	rm -rf outputs bench-results.json .pytest_cache
