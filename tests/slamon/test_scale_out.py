"""Scale-out: pipeline workers in one consumer group share the partitions, one shard each."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from rich.console import Console

from pipeline.parquet import store_from_parquet
from pipeline.shards import ShardUnion
from sla.config import SlamonConfig
from sla.events import CAPACITY, PROBE, new_event
from sla.intervals import Interval
from slamon.compute import (
    compute,
    figures_in_batches,
    render_json,
    store_from_events,
    write_csv,
)
from slamon.configfile import load_config

if TYPE_CHECKING:
    from conftest import EndToEnd


pytestmark = pytest.mark.kafka

SERVICES = [f"svc-{n:02d}" for n in range(12)]
DISTINCT = 24_000
DUPLICATES = 2_000
WORKERS = 3
PARTITIONS = 6
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)


def write_stream(path: Path, seed: int) -> dict[str, int]:
    """Probe results and capacity samples of 12 services, with failures and repeats."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    by_type = {PROBE: 0, CAPACITY: 0}
    for n in range(DISTINCT):
        service = SERVICES[n % len(SERVICES)]
        at = START + timedelta(seconds=n // len(SERVICES) * 10)
        if n % 25 == 0:
            data: dict[str, Any] = {
                "resource": "cpu",
                "used": rng.random(),
                "capacity": 1.0,
                "unit": "ratio",
            }
            event = new_event(CAPACITY, service, data, source="test/host", time=at)
        else:
            # Each service fails for a stretch of its own, so every figure differs.
            index = SERVICES.index(service)
            failing = 200 + 40 * index <= n // len(SERVICES) < 230 + 45 * index
            data = {"check": "health", "ok": not failing, "latency_ms": rng.uniform(1, 50)}
            event = new_event(PROBE, service, data, source="test/probe", time=at)
        by_type[event.type] += 1
        lines.append(event.to_json())
    for _ in range(DUPLICATES):
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines[:DISTINCT]))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return by_type


def services_exported(samples: dict[str, float]) -> set[str]:
    """The services a worker exports availability gauges for."""
    return {
        key.split('service="', 1)[1].split('"', 1)[0]
        for key in samples
        if key.startswith("slamon_availability_ratio{")
    }


def ingested(samples: dict[str, float]) -> dict[str, float]:
    """A worker's stored event counts by type."""
    return {
        key.split('type="', 1)[1].split('"', 1)[0]: value
        for key, value in samples.items()
        if key.startswith("slamon_events_ingested_total{")
    }


def figures_documents(config: SlamonConfig, store: Any, now: int) -> tuple[str, str]:
    """The `slamon compute` JSON and CSV of the stream's six hours, as of `now`."""
    window = Interval(int(START.timestamp()), now)
    summaries = io.StringIO()
    with store:
        write_csv(figures_in_batches(config, store, window, now, listed=False), summaries)
        return render_json(compute(config, store, window, now), window, now), summaries.getvalue()


def test_three_workers_one_killed_lose_and_double_count_nothing(
    kafka_bootstrap: str,
    unique_name: str,
    e2e: EndToEnd,
    tmp_path: Path,
) -> None:
    ports = [e2e.free_port() for _ in range(WORKERS)]
    configs = [
        e2e.write_config(
            {
                "transport": {
                    "kind": "kafka",
                    "bootstrap": kafka_bootstrap,
                    "topic_prefix": unique_name,
                    "partitions": PARTITIONS,
                    # The broker's minimum: the dead worker's partitions move on sooner.
                    "session_timeout": 6,
                },
                "store": {
                    "path": str(tmp_path / "shards"),
                    "sharded": True,
                    "parquet": {"path": str(tmp_path / "parquet"), "interval": 1},
                },
                "exporter": {"listen": f"127.0.0.1:{port}"},
                "pipeline": {"group_id": unique_name, "batch_size": 200, "poll_timeout": 0.2},
                "services": [{"id": s, "name": s} for s in SERVICES],
            }
        )
        for port in ports
    ]
    stream = tmp_path / "stream.jsonl"
    by_type = write_stream(stream, seed=11)
    publish = e2e.slamon_process("ingest", "--config", str(configs[0]), str(stream))
    assert publish.proc.wait(timeout=180) == 0, publish.output()

    workers = [e2e.slamon_process("pipeline", "--config", str(c)) for c in configs]
    urls = [f"http://127.0.0.1:{port}/metrics" for port in ports]
    stored_by_victim = e2e.wait_for(
        lambda: (n := sum(ingested(e2e.scrape(urls[0])).values())) >= 500 and n,
        90,
        "the first worker to store some events",
        workers[0],
    )
    workers[0].kill()
    assert stored_by_victim < DISTINCT, "the kill came after the whole stream"

    survivors, survivor_urls = workers[1:], urls[1:]

    def caught_up() -> bool:
        totals: dict[str, float] = {}
        for url in survivor_urls:
            for event_type, count in ingested(e2e.scrape(url)).items():
                totals[event_type] = totals.get(event_type, 0) + count
        return totals == by_type

    e2e.wait_for(caught_up, 180, "the two survivors to hold every event between them", survivors[0])
    # Figures follow the shards: each survivor exports its own services, together all.
    exported = e2e.wait_for(
        lambda: (
            (sets := [services_exported(e2e.scrape(u)) for u in survivor_urls])
            and set().union(*sets) == set(SERVICES)
            and sets
        ),
        60,
        "the survivors to export every service between them",
        survivors[1],
    )
    assert not exported[0] & exported[1], exported
    for survivor in survivors:
        assert survivor.terminate() == 0, survivor.output()

    config = load_config(configs[0])
    union = ShardUnion(tmp_path / "shards")
    ((ledger, distinct_ids),) = union.query(
        "SELECT count(*), count(DISTINCT id) FROM events"
    ).rows()
    assert ledger == distinct_ids == DISTINCT
    assert union.counts_by_type() == by_type
    assert len(union.shards) == PARTITIONS

    now = int((START + timedelta(hours=6)).timestamp())
    clean = figures_documents(config, store_from_events(stream, config, Console(quiet=True)), now)
    downtime = {
        service: figures["availability"]["downtime_seconds"]
        for service, figures in json.loads(clean[0])["services"].items()
    }
    assert all(downtime[s] > 0 for s in SERVICES), downtime
    assert len(clean[1].splitlines()) == 1 + len(SERVICES)
    assert figures_documents(config, union, now) == clean
    assert figures_documents(config, store_from_parquet(tmp_path / "parquet"), now) == clean
