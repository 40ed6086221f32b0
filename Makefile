# The two commands: `make run` and `make test`. Both set up whatever is missing first.
# DAPRML_PROFILE picks the component profile (components/<profile>, default local) for make up,
# make run and the tests: e.g. `make up DAPRML_PROFILE=nats-sqlite`. The end-to-end suite
# (tests/integration/test_e2e.py) runs on every runnable profile whatever it says.
# DAPRML_OBSERVABILITY=off starts neither Prometheus nor Jaeger (on by default; each is skipped
# with a message where it cannot run): e.g. `make up DAPRML_OBSERVABILITY=off`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint docs up down compose-up compose-down setup runtime servers browser fuzz-tools unit integration samples predictions bench bench-train bench-inference

## run: set up what is missing, start the stack, round trip, samples -> trained champions -> predictions, stop
run: setup
	$(PY) -m scripts.stack run

## test: set up what is missing, then lint and every tier (unit, api, integration with real daprd)
test: setup browser fuzz-tools lint
	$(PY) -m pytest tests/unit tests/api
	$(PY) -m pytest tests/integration

## lint: style, formatting, types (strict on services/common) and the import contracts in pyproject.toml
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check services scripts tests bench
	$(VENV)/bin/ruff format --check services scripts tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mkdocs build --strict --quiet

## docs: build the manual (docs/) as a site under .data/site
docs: $(VENV)/.installed
	$(VENV)/bin/mkdocs build --strict
	@echo "open .data/site/index.html"

## up: start infra (Prometheus and Jaeger too) and the whole stack in the background; returns once every service is ready
up: setup
	$(PY) -m scripts.stack up

## down: stop everything `make up` started
down: $(VENV)/.installed
	$(PY) -m scripts.stack down

## compose-up: the stack in containers (docker-compose.yml): installs and starts the engine if missing, builds the images, starts it; the gateway on 127.0.0.1, port DAPRML_GATEWAY_PORT (8000)
compose-up: $(VENV)/.installed runtime
	$(PY) -m scripts.containers up

## compose-down: remove the compose stack (containers, network, volumes); stop the engine if compose-up started it
compose-down: $(VENV)/.installed
	$(PY) -m scripts.containers down

## samples: load scikit-learn's datasets through the gateway of a running stack (make up)
samples: $(VENV)/.installed
	$(PY) -m scripts.samples

## predictions: predict with each sample's champion through the gateway of a running stack (make up)
predictions: $(VENV)/.installed
	$(PY) -m scripts.predictions

## bench: ingestion throughput and memory against pyarrow's ceiling, training time, then inference against MLServer (starts its own stacks)
bench: setup
	$(PY) -m bench.ingest
	$(PY) -m bench.train
	$(PY) -m bench.inference

## bench-train: commit -> registered model against a bare fit in one process, 10k to 1M rows (its own stacks)
bench-train: setup
	$(PY) -m bench.train

## bench-inference: latency and throughput of predictions (direct, through the gateway) against MLServer on the same pipeline (its own stack and MLServer venv); ARGS=--quick for a short run
bench-inference: setup
	$(PY) -m bench.inference $(ARGS)

setup: $(VENV)/.installed runtime servers

# The servers of every component profile (Redis, PostgreSQL, RabbitMQ, NATS) and Prometheus, from Debian packages when missing.
servers: $(VENV)/.installed
	$(PY) -m scripts.infra install

# The Dapr runtime and CLI, and Jaeger (traces), built from their Go modules once per machine (seconds after that).
runtime:
	scripts/install-dapr

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# Schemathesis in a venv of its own, for the fuzzing of the gateway's API (tests/integration/test_openapi.py).
fuzz-tools: .venv-fuzz/.installed

.venv-fuzz/.installed: tests/schemathesis-requirements.txt
	$(PYTHON) -m venv .venv-fuzz
	.venv-fuzz/bin/pip install --quiet -r tests/schemathesis-requirements.txt
	touch $@

# Debian's chromium and its driver, for the web console's browser tests (tests/integration/test_console.py).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "setup: installing chromium and chromium-driver from Debian packages"; \
	    export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "setup: the console's browser tests need: sudo apt-get install -y chromium chromium-driver"; fi; }

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit tests/api

integration: setup browser fuzz-tools
	$(PY) -m pytest tests/integration
