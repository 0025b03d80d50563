"""A collector SIGKILLed with a full spool while the broker is down loses nothing it acknowledged.

With Kafka away the webhook receiver spools each event before answering 202; once the spool
(`spool.max_bytes`) is full it answers 503, so the sender keeps the event and retries: no
silent loss. The collector is then killed. Restarted with the broker back, it drains the
spool it left, and the store holds every acknowledged event exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sla.intervals import Interval

pytestmark = pytest.mark.kafka

# The least slamon allows: a few hundred change records.
SPOOL_BYTES = 65_536
# Refusals in a row that show the spool is full, not a passing hiccup.
REFUSALS = 5


@pytest.mark.timeout(900)
def test_a_collector_killed_with_a_full_spool_stores_every_acknowledged_event_once(
    kafka_broker: Any,
    faults: Any,
    free_port: Callable[[], int],
    change_poster: Any,
    figures_of: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    receiver = f"127.0.0.1:{free_port()}"
    config = faults.config(
        kafka_broker.bootstrap,
        [{"id": "changes", "name": "Changes"}],
        receivers={
            "listen": receiver,
            "allow_unauthenticated": ["changes"],
            "rate_limit": {"per_second": 1000, "burst": 1000},
        },
        spool={"max_bytes": SPOOL_BYTES, "segment_bytes": 8192},
    )
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    window = Interval(int((end - timedelta(days=1)).timestamp()), int(end.timestamp()))
    poster = change_poster(f"http://{receiver}", "changes", window)
    ready = f"http://{receiver}/readyz"

    collector = faults.start("collect", "--config", str(config))
    pipeline = faults.start("pipeline", "--config", str(config))
    faults.wait_for(lambda: httpx.get(ready).status_code == 200, 60, "the receiver", collector)
    for _ in range(20):
        assert poster.post() == 202
    faults.wait_for(lambda: faults.stored() == 20, 60, "the first events stored", pipeline)

    kafka_broker.stop()
    refused_in_a_row = 0
    while refused_in_a_row < REFUSALS:
        status = poster.post()
        assert status in (202, 503), f"webhook answered {status}"
        refused_in_a_row = refused_in_a_row + 1 if status == 503 else 0
        assert len(poster.statuses) <= 2 and poster.statuses.get(202, 0) < 2_000, poster.statuses
    spooled = poster.statuses[202] - 20
    assert spooled > 100, f"only {spooled} events fit the spool before it refused"
    assert "Kafka is unreachable, spooling" in collector.output()
    collector.kill()

    kafka_broker.start()
    restarted = faults.start("collect", "--config", str(config))
    acknowledged = len(poster.acknowledged)
    faults.wait_for(
        lambda: faults.stored() == acknowledged, 180, "the spool left behind stored", pipeline
    )
    assert restarted.terminate(timeout=60) == 0, restarted.output()
    assert pipeline.terminate() == 0, pipeline.output()

    print(f"{spooled} events spooled before the kill, posts {poster.statuses}")
    rows, distinct_ids, counts = faults.ledger()
    assert (rows, distinct_ids, counts) == (
        acknowledged,
        acknowledged,
        {"slamon.change.v1": acknowledged},
    )
    with faults.open_store() as store:
        stored_ids = store.query("SELECT id FROM events")["id"].to_list()
    assert sorted(stored_ids) == sorted(poster.acknowledged)
    clean = figures_of(
        config, ["--events", str(poster.write_jsonl(tmp_path / "acked.jsonl"))], window
    )
    assert figures_of(config, ["--store", str(faults.store_path)], window) == clean
