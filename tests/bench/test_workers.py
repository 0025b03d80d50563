"""The scale-out measurement: N worker processes store every event once between them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.common import kafka_transport
from bench.ingest import generate, produce
from bench.workers import measure
from pipeline.shards import ShardUnion

pytestmark = pytest.mark.kafka


def test_two_workers_store_every_event_once_in_their_shards(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    events = list(generate(3_000, 40, 7, datetime(2026, 3, 2, tzinfo=UTC)))
    produce(
        kafka_transport(kafka_bootstrap, unique_name, "confluent-kafka", 6),
        unique_name,
        iter(events),
        lambda: None,
    )
    shards = tmp_path / "shards"
    run = measure(
        kafka_bootstrap,
        unique_name,
        client="confluent-kafka",
        partitions=6,
        workers=2,
        expected=len(events),
        directory=shards,
    )
    assert (run["workers"], run["events"], run["complete"]) == (2, 3_000, True)
    assert run["events_per_s"] > 0
    union = ShardUnion(shards)
    try:
        ((rows, ids),) = union.query("SELECT count(*), count(DISTINCT id) FROM events").rows()
    finally:
        union.close()
    assert (rows, ids) == (3_000, 3_000)
