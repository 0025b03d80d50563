# Developer entry points. `make test` is what CI runs (through .ci/run, after `make lint`).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
# Each recipe runs as one script, so `make test` can trap EXIT around pytest.
.ONESHELL:
.DEFAULT_GOAL := test

VENV := .venv
BIN := $(VENV)/bin
# pip install runs again only when pyproject.toml is newer than this stamp.
VENV_STAMP := $(VENV)/.slamon-installed
BROKER := ops/kafka/broker.sh
KAFKA_DIR := var/kafka
KAFKA_TEST_DIR := var/kafka-test
PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCH_DIR := var/bench
BENCH_ARGS ?= --services 1000 --probes 10000000 --tickets 1000000 --seed 7

.PHONY: venv kafka-up kafka-down prometheus report-tools test lint demo schemas clean bench bench-compute

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	[[ -x $(BIN)/python ]] || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

kafka-up:
	bash $(BROKER) start --dir $(KAFKA_DIR)

kafka-down:
	bash $(BROKER) stop --dir $(KAFKA_DIR)

prometheus:
	bash ops/prometheus/install.sh

# Chromium (HTML to PDF, and the report tests' browser) and pdftotext.
report-tools:
	bash ops/report/install.sh

# A fresh broker on a free port for the whole run; the EXIT trap stops it whatever pytest
# returns, and the recipe exits with pytest's status.
test: venv prometheus report-tools
	bash $(BROKER) stop --dir $(KAFKA_TEST_DIR)
	rm -rf $(KAFKA_TEST_DIR)
	bootstrap=$$(bash $(BROKER) start --dir $(KAFKA_TEST_DIR) | tail -n 1)
	trap 'bash $(BROKER) stop --dir $(KAFKA_TEST_DIR)' EXIT
	SLAMON_KAFKA_BOOTSTRAP=$$bootstrap $(BIN)/pytest -q $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

demo: venv
	$(BIN)/slamon demo --config examples/demo.yaml $(DEMO_ARGS)

schemas: venv
	$(BIN)/python -m slamon.schemagen

# The synthetic month is generated once (about a minute); `make bench-compute` then times the
# engine against a bare DuckDB scan and rewrites docs/benchmarks.md. Delete the store to regenerate.
$(BENCH_DIR)/month.duckdb:
	$(BIN)/python -m bench.generate --out $@ $(BENCH_ARGS)

bench-compute: venv $(BENCH_DIR)/month.duckdb
	$(BIN)/python -m bench.compute --store $(BENCH_DIR)/month.duckdb \
		--config $(BENCH_DIR)/month.yaml --json $(BENCH_DIR)/compute.json --write-docs docs/benchmarks.md

bench: bench-compute

clean:
	bash $(BROKER) stop --dir $(KAFKA_DIR)
	bash $(BROKER) stop --dir $(KAFKA_TEST_DIR)
	rm -rf var build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
