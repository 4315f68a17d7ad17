# The README's two commands are `make demo` and `make test`; everything they need is installed here.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: venv assets lint format typecheck test test-unit test-integration demo bench bench-micro docs chart clean

# The example plugin package (examples/backup-controller) is installed too: the daemon's tests and demo use it.
$(STAMP): setup.cfg setup.py pyproject.toml examples/backup-controller/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	$(PIP) install --quiet -e examples/backup-controller
	touch $(STAMP)

venv: $(STAMP)

# Builds the pinned etcd and kube-apiserver with Go into ~/.cache/informerd (once; later runs return at once).
assets: $(STAMP)
	$(PY) -m informers.testing install

# ruff: lint and formatting (configured in pyproject.toml); `make format` rewrites in place.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(STAMP)
	$(PY) -m mypy --strict informers controllers examples/backup-controller/backup_controller

# Lint, type checks, then unit and integration tests (integration tests run against a real etcd + kube-apiserver).
test: assets lint typecheck
	$(PY) -m pytest -p no:cacheprovider tests

test-unit: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider tests/unit

test-integration: assets
	$(PY) -m pytest -p no:cacheprovider -m integration tests

# A local control plane, the example Backup CRD and `informerd run` reconciling Backups, then a clean SIGTERM.
demo: assets
	$(PY) -m backup_controller.demo

# Measurements (tens of minutes on 2 cores): every peer side by side, written to bench/results.json and
# bench/RESULTS.md (BENCH_ARGS=--full adds N=50,000). Not part of `make test`.
bench: assets
	$(PY) -m bench.peers $(BENCH_ARGS)

# The single-purpose scripts (figures and how to read them in bench/README.md).
bench-micro: assets
	$(PY) bench/workqueue_bench.py
	$(PY) bench/reconcile_dispatch_bench.py
	$(PY) bench/store_forms.py
	$(PY) bench/informer_sync.py
	$(PY) bench/metrics_scrape.py

# docs/reference.md is generated from the config model, the CLI and the metrics collector (a unit test checks it).
docs: $(STAMP)
	$(PY) -m controllers._reference docs/reference.md

# Regenerates the chart's values.schema.json (from `informerd config-schema`) and its README values table.
chart: $(STAMP)
	$(PY) -m tools.chartgen

clean:
	rm -rf $(VENV) build *.egg-info
