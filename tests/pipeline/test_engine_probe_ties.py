"""Probe results of one check at the same instant: the fast reduction orders them by event id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.engine import inputs_from_store
from pipeline.store import EventStore
from sla.availability import Outage
from sla.config import SlamonConfig
from sla.events import PROBE, CloudEvent, new_event
from sla.inputs import inputs_from_events

T0 = datetime(2026, 3, 1, tzinfo=UTC)
START = int(T0.timestamp())
CONFIG = SlamonConfig.model_validate(
    {
        "services": [
            {
                "id": "api",
                "name": "API",
                "outage_from_probes": {"failures": 2},
                "probes": [{"name": "a", "http": "http://127.0.0.1/", "interval": "1m"}],
            }
        ]
    }
)


def probe(seconds: int, ok: bool, event_id: str) -> CloudEvent:
    data = {"check": "a", "ok": ok, "latency_ms": 1.0}
    return new_event(
        PROBE, "api", data, source="test", time=T0 + timedelta(seconds=seconds), id=event_id
    )


def test_results_at_one_instant_are_ordered_by_event_id() -> None:
    # At 60 s two results share the microsecond, stored ok first. By (time, id): e1 ok@0,
    # e2 fail@60, e3 ok@60, e4 fail@120, e5 fail@180, e6 ok@240. e3 splits the failures, so
    # the first run of two is 120-180: the outage opens at 120 and the success at 240 ends
    # it. In stored order (e3 before e2) it would open at 60.
    events = [
        probe(0, True, "e1"),
        probe(60, True, "e3"),
        probe(60, False, "e2"),
        probe(120, False, "e4"),
        probe(180, False, "e5"),
        probe(240, True, "e6"),
    ]
    now = START + 300
    with EventStore(":memory:") as store:
        store.write_batch(events)
        fast = inputs_from_store(store, CONFIG, START, now)
    reference = inputs_from_events(events, CONFIG, START, now)
    assert fast == reference
    assert fast["api"].outages == (Outage(START + 120, START + 240, source="probes"),)
