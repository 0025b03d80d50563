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
# Two pytest workers (pytest-xdist): most tests wait on servers and brokers, so two halve
# the suite on two cores. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
DEMO_ARGS ?=
BENCH_DIR := var/bench
KAFKA_SOAK_DIR := var/kafka-soak
SOAK_DIR := var/soak
SOAK_ARGS ?= --minutes 60 --rate 2000
BENCH_ARGS ?= --services 1000 --probes 10000000 --tickets 1000000 --seed 7
# Ten times the deployment: 10,000 services at the same probe rate and ticket load per service.
BENCH_100M_ARGS ?= --services 10000 --probes 100000000 --tickets 10000000 \
	--capacity-services 1000 --seed 7

.PHONY: venv kafka-up kafka-down prometheus report-tools test lint demo schemas clean bench bench-compute soak bench-probes bench-ingest

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
	SLAMON_KAFKA_BOOTSTRAP=$$bootstrap $(BIN)/pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

demo: venv
	$(BIN)/slamon demo --config examples/demo.yaml $(DEMO_ARGS)

schemas: venv
	$(BIN)/python -m slamon.schemagen

# The synthetic months are generated once (10 M: about a minute and a half, 1.7 GB; 100 M:
# about twenty minutes, 17 GB, out of core); `make bench-compute` then times the engine on both
# against a bare DuckDB scan and rewrites docs/benchmarks.md. Delete a store to regenerate it.
$(BENCH_DIR)/month.duckdb:
	$(BIN)/python -m bench.generate --out $@ $(BENCH_ARGS)

$(BENCH_DIR)/month-100m.duckdb:
	nice -n 10 $(BIN)/python -m bench.generate --out $@ $(BENCH_100M_ARGS)

bench-compute: venv $(BENCH_DIR)/month.duckdb $(BENCH_DIR)/month-100m.duckdb
	$(BIN)/python -m bench.compute --store $(BENCH_DIR)/month.duckdb \
		--store $(BENCH_DIR)/month-100m.duckdb --repeat 3 --json $(BENCH_DIR)/compute.json \
		--write-docs docs/benchmarks.md

# 5,000 probe targets on local aiohttp servers: the collector pinned to one CPU for three
# 30 s intervals against a bare aiohttp client (about three minutes).
bench-probes: venv
	$(BIN)/python -m bench.probes --json $(BENCH_DIR)/probes.json --write-docs docs/benchmarks.md

# 1,000,000 events through a broker of its own: raw consume and ingest per Kafka client, then
# a minute at 5,000 events/s for freshness (about five minutes in all).
KAFKA_BENCH_DIR := var/kafka-bench
INGEST_ARGS ?=
bench-ingest: venv
	bash $(BROKER) stop --dir $(KAFKA_BENCH_DIR)
	rm -rf $(KAFKA_BENCH_DIR)
	bootstrap=$$(bash $(BROKER) start --dir $(KAFKA_BENCH_DIR) | tail -n 1)
	trap 'bash $(BROKER) stop --dir $(KAFKA_BENCH_DIR)' EXIT
	$(BIN)/python -m bench.ingest --bootstrap $$bootstrap --json $(BENCH_DIR)/ingest.json \
		--write-docs docs/benchmarks.md $(INGEST_ARGS)

bench: bench-compute bench-probes bench-ingest

# An hour of the real pipeline at 2,000 events/s from its own broker, sampling its RSS each
# minute (var/soak/soak.json, the soak section of docs/reliability.md), then the long variants
# of the fault suite (tests/faults, SLAMON_SOAK=1). Fails when a check fails.
soak: venv
	mkdir -p $(SOAK_DIR)
	bash $(BROKER) stop --dir $(KAFKA_SOAK_DIR)
	rm -rf $(KAFKA_SOAK_DIR)
	bootstrap=$$(bash $(BROKER) start --dir $(KAFKA_SOAK_DIR) | tail -n 1)
	trap 'bash $(BROKER) stop --dir $(KAFKA_SOAK_DIR)' EXIT
	status=0
	$(BIN)/python -m bench.soak --bootstrap $$bootstrap $(SOAK_ARGS) --out $(SOAK_DIR) \
		--write-docs docs/reliability.md || status=$$?
	SLAMON_KAFKA_BOOTSTRAP=$$bootstrap SLAMON_SOAK=1 $(BIN)/pytest -q -m soak tests/faults \
		|| status=$$?
	exit $$status

clean:
	bash $(BROKER) stop --dir $(KAFKA_DIR)
	bash $(BROKER) stop --dir $(KAFKA_TEST_DIR)
	rm -rf var build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
