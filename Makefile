# driftgate: `make serve` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 3000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install serve test lint bench build dashboards clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(BIN)/pip install -q -e '.[dev]' 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import bentoml, river, service, monitoring, models"
	touch $(STAMP)

install: $(STAMP)

## Serve the registered models (the demo models when none are registered) on port $(PORT).
serve: install
	$(BIN)/driftgate models demo --if-empty
	$(BIN)/bentoml serve service.gateway:Gateway --port $(PORT)

## Lint and run the whole test suite (installs Prometheus/Alertmanager when absent).
test: install
	bash scripts/ensure_prometheus.sh
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q --durations=15

lint: install
	$(BIN)/ruff check .

## Side-by-side benchmark: bare BentoML vs the full gateway.
bench: install
	$(BIN)/python -m loadtests.bench

## Build a Bento with the served models: `bentoml serve driftgate:latest`.
build: install
	$(BIN)/driftgate models demo --if-empty
	$(BIN)/driftgate bento build

dashboards: install
	$(BIN)/python -m grafana.build

clean:
	rm -rf $(VENV) .data
