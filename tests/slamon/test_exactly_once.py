"""At-least-once delivery, exactly-once effect: duplicates and a SIGKILL change no figure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pipeline.store import EventStore
from sla.events import CAPACITY, PROBE, new_event

if TYPE_CHECKING:
    from conftest import EndToEnd

pytestmark = pytest.mark.kafka

DISTINCT = 9_000
DUPLICATES = 1_000


def write_stream(path: Path, seed: int) -> dict[str, int]:
    """10,000 JSONL lines: 9,000 distinct events and 1,000 byte-identical repeats among them."""
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    lines: list[bytes] = []
    distinct_by_type = {PROBE: 0, CAPACITY: 0}
    for n in range(DISTINCT):
        service = f"svc-{n % 3}"
        at = start + timedelta(seconds=n)
        if n % 10 == 0:
            data: dict[str, Any] = {
                "resource": "cpu",
                "used": rng.random(),
                "capacity": 1.0,
                "unit": "ratio",
            }
            event = new_event(CAPACITY, service, data, source="test/capacity", time=at)
            distinct_by_type[CAPACITY] += 1
        else:
            data = {"check": "health", "ok": rng.random() > 0.05, "latency_ms": rng.uniform(1, 90)}
            event = new_event(PROBE, service, data, source="test/probe", time=at)
            distinct_by_type[PROBE] += 1
        lines.append(event.to_json())
    for _ in range(DUPLICATES):
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines[:DISTINCT]))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return distinct_by_type


def test_sigkill_mid_stream_stores_each_distinct_event_once(
    kafka_bootstrap: str,
    unique_name: str,
    e2e: EndToEnd,
    tmp_path: Path,
) -> None:

    store_path = tmp_path / "exactly-once.duckdb"
    port = e2e.free_port()
    config = e2e.write_config(
        {
            "transport": {
                "kind": "kafka",
                "bootstrap": kafka_bootstrap,
                "topic_prefix": unique_name,
                "partitions": 3,
            },
            "store": {"path": str(store_path)},
            "exporter": {"listen": f"127.0.0.1:{port}"},
            # Small batches so the kill lands between many commits, not after a single one.
            "pipeline": {"group_id": unique_name, "batch_size": 100, "poll_timeout": 0.2},
            "services": [{"id": f"svc-{i}", "name": f"Service {i}"} for i in range(3)],
        }
    )
    stream = tmp_path / "stream.jsonl"
    distinct_by_type = write_stream(stream, seed=7)
    ingest = e2e.slamon_process("ingest", "--config", str(config), str(stream))
    assert ingest.proc.wait(timeout=120) == 0, ingest.output()
    assert "published 10000 events, 0 rejected" in ingest.output()

    metrics_url = f"http://127.0.0.1:{port}/metrics"
    probe_total = 'slamon_events_ingested_total{type="slamon.probe.v1"}'
    first = e2e.slamon_process("pipeline", "--config", str(config))
    stored_before_kill = e2e.wait_for(
        lambda: (n := e2e.scrape(metrics_url).get(probe_total, 0)) >= 1_000 and n,
        60,
        "the first run to store some events",
        first,
    )
    first.kill()
    assert stored_before_kill < distinct_by_type[PROBE], "the kill came after the whole stream"

    second = e2e.slamon_process("pipeline", "--config", str(config))
    totals = {f'slamon_events_ingested_total{{type="{t}"}}': n for t, n in distinct_by_type.items()}
    e2e.wait_for(
        lambda: all(e2e.scrape(metrics_url).get(k) == n for k, n in totals.items()),
        90,
        "the restarted pipeline to catch up on every topic",
        second,
    )
    final = e2e.scrape(metrics_url)
    assert second.terminate() == 0, second.output()

    assert {k: final[k] for k in totals} == totals
    store = EventStore(store_path, read_only=True)
    counts = store.counts_by_type()
    ((ledger, distinct_ids),) = store.query(
        "SELECT count(*), count(DISTINCT id) FROM events"
    ).rows()
    ((probe_rows,),) = store.query("SELECT count(*) FROM probes").rows()
    store.close()
    assert ledger == distinct_ids == DISTINCT
    assert counts == distinct_by_type
    assert probe_rows == distinct_by_type[PROBE]
