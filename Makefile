# shopbusy: `make run` trains, validates, evaluates and (if the gates hold) pushes the model;
# `make test` proves it. Both install what is missing first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
# Keras 2 (tf_keras) with TF 2.16: set before anything imports TensorFlow (README, "Stack").
export TF_USE_LEGACY_KERAS := 1

.PHONY: install lock run test test-deps test-faults test-kubeflow test-all bench bench-smoke clean

install: $(STAMP)

# --compile-bytecode: the packages' .pyc files are written once, here. Where
# PYTHONDONTWRITEBYTECODE is set (these machines, most containers) Python never writes them,
# and every process that imports TFX compiled TensorFlow's, TFX's and Beam's sources again:
# `import shopbusy.pipeline.tfx_api` took 45 s without them and 16 s with them on a 2-core VM
# (bench/notes.md, "Compiled once: the packages' bytecode").
$(STAMP): requirements.lock setup.py
	@py=$$(scripts/find-python.sh) || exit 1; \
	  echo "Creating $(VENV) with $$py"; \
	  [ -x $(BIN)/python ] || $$py -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	@touch $@

# Regenerates the fully pinned lock from setup.py's requirements (about a minute).
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip compile --python-version 3.10 --python $(BIN)/python setup.py --extra test -o requirements.lock

$(BIN)/python:
	@py=$$(scripts/find-python.sh) || exit 1; $$py -m venv $(VENV)

run: install
	$(BIN)/shopbusy run

test-deps:
	@scripts/install-test-deps.sh

# The default suite: unit tests plus the end-to-end pipeline tests (under 25 min on 2 cores).
# One pytest worker per core (pytest-xdist), a test module to a worker: a module's runs share
# a workdir and follow each other. Modules go out in collection order, the slowest first
# (tests/conftest.py).
test: install test-deps
	$(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder --durations=15 -m "not slow and not faults and not kubeflow and not bench" tests

# Runs killed inside each component, and runs racing for a workdir, side by side (one per
# core; about 7 minutes on 2 cores).
test-faults: install
	$(BIN)/python -m pytest -n auto -m faults tests

# The compiled Kubeflow spec executed by `shopbusy kubeflow run-local` under the open-source
# KFP and the Vertex AI contracts: four weekly runs (spans, drift, warm start, the report on
# the run's page) and a re-run each (7 to 12 minutes, by the machine). Chromium renders the report.
# The two launchers' runs are independent and each task is one process, mostly importing
# TFX: they run side by side, one per core; the vertex half's output follows the kfp half's.
test-kubeflow: install test-deps
	@log=$$(mktemp); 	$(BIN)/python -m pytest -m kubeflow -k vertex tests > $$log 2>&1 & vertex=$$!; 	$(BIN)/python -m pytest -m kubeflow -k kfp tests; kfp=$$?; 	wait $$vertex; vertex_status=$$?; 	echo "--- the vertex launcher's half:"; cat $$log; rm -f $$log; 	test $$kfp -eq 0 -a $$vertex_status -eq 0

# The benchmark: shopbusy against the article's script, over seeds, at 10k-1M rows, and over
# weeks with and without Transform's analyzer cache (about two and a half hours on 2 cores). Writes bench/results/<date>-<host>.json and
# docs/benchmarks.md. It refuses a busy machine; BENCH_ARGS=--allow-busy runs anyway and
# marks the figures taken beside other work.
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The benchmark harness on small data: every scenario once (about 16 minutes of one core on a
# slow day). Not in `make test`; CI runs it beside test-faults and test-kubeflow (.ci/run).
bench-smoke: install
	$(BIN)/python -m pytest -m bench tests

# Everything, including tests marked slow.
test-all: install test-deps
	$(BIN)/python -m pytest tests

clean:
	rm -rf workdir .pytest_cache
