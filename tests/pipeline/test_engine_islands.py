"""Probe islands kept by the store: batches in any order, and windows that cut islands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.engine import inputs_from_store
from pipeline.probe_islands import IslandTails, rebuild_probe_islands, service_batches
from pipeline.store import EventStore
from sla.availability import Outage
from sla.config import SlamonConfig
from sla.errors import StoreError
from sla.events import PROBE, CloudEvent, new_event
from sla.inputs import PROBE_LOOKBACK, inputs_from_events

T0 = datetime(2026, 3, 1, tzinfo=UTC)
START = int(T0.timestamp())
CONFIG = SlamonConfig.model_validate(
    {
        "services": [
            {
                "id": "api",
                "name": "API",
                "outage_from_probes": {"failures": 2, "recoveries": 2},
                "probes": [{"name": "a", "http": "http://127.0.0.1/", "interval": "1m"}],
            }
        ]
    }
)
ISLANDS = 'SELECT * FROM probe_islands ORDER BY service, "check", start_us, start_id'


def probe(seconds: float, ok: bool, n: int, service: str = "api", check: str = "a") -> CloudEvent:
    data = {"check": check, "ok": ok, "latency_ms": 1.0}
    when = T0 + timedelta(seconds=seconds)
    return new_event(PROBE, service, data, source="test", time=when, id=f"e{n:04d}")


def stored_islands(batches: list[list[CloudEvent]]) -> list[tuple[object, ...]]:
    """The islands the store kept batch by batch."""
    with EventStore(":memory:") as store:
        for batch in batches:
            store.write_batch(batch)
        return store.query(ISLANDS).rows()


@st.composite
def probe_batches(draw: st.DrawFn) -> tuple[list[CloudEvent], list[list[CloudEvent]]]:
    """Probe results over three days (ties at one instant included), cut into batches that
    arrive in random order, replays included."""
    # Whole seconds or milliseconds from a small set, so that results share instants.
    times = st.integers(0, 3 * 86_400).map(lambda t: t - t % 7) | st.sampled_from([5.0, 5.001])
    events = [
        probe(
            draw(times),
            draw(st.booleans()),
            n,
            draw(st.sampled_from(["api", "web"])),
            draw(st.sampled_from(["a", "b"])),
        )
        for n in range(draw(st.integers(0, 50)))
    ]
    cuts = sorted(draw(st.lists(st.integers(0, len(events)), max_size=5)))
    batches = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    order = draw(st.permutations(batches))
    replay = draw(st.lists(st.sampled_from(batches), max_size=2)) if batches else []
    return events, [*order, *replay]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    drawn=probe_batches(),
    since=st.integers(0, 3 * 86_400),
    span=st.integers(0, 86_400),
)
def test_islands_from_batches_in_any_order_give_the_reference_inputs(
    drawn: tuple[list[CloudEvent], list[list[CloudEvent]]], since: int, span: int
) -> None:
    events, batches = drawn
    with EventStore(":memory:") as store:
        for batch in batches:
            store.write_batch(batch)
        kept = store.query(ISLANDS).rows()
        fast = inputs_from_store(store, CONFIG, START + since, START + since + span)
        store.rebuild_probe_islands()
        # Maintained batch by batch or rebuilt from all results: the same islands.
        assert store.query(ISLANDS).rows() == kept
    # The window's edges (since - 1 day, now) cut islands: their counts come from results.
    assert fast == inputs_from_events(events, CONFIG, START + since, START + since + span)


def test_a_reopened_store_extends_the_islands_it_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last island of each check is kept in memory between batches: after a restart it
    # is read back from the store, and a rolled-back batch leaves no trace in it.
    path = tmp_path / "islands.duckdb"
    with EventStore(path) as store:
        store.write_batch([probe(0, True, 1), probe(60, False, 2), probe(0, True, 3, check="b")])
    with EventStore(path) as store:
        store.write_batch([probe(120, False, 4), probe(60, True, 5, check="b")])
        # A batch that fails after its islands were folded: a statement after it, say.
        update = IslandTails.update

        def fails_after(tails: IslandTails, con: duckdb.DuckDBPyConnection, new: object) -> None:
            update(tails, con, new)  # type: ignore[arg-type]
            raise duckdb.IOException("disk full")

        with monkeypatch.context() as patch:
            patch.setattr(IslandTails, "update", fails_after)
            with pytest.raises(StoreError, match="disk full"):
                store.write_batch([probe(180, True, 6)])
        store.write_batch([probe(180, False, 8), probe(120, False, 9, check="b")])
        kept = store.query(ISLANDS).rows()
        store.rebuild_probe_islands()
        assert store.query(ISLANDS).rows() == kept
    starts_and_counts = [(row[1], row[2], row[3] // 1_000_000 - START, row[7]) for row in kept]
    assert starts_and_counts == [
        ("a", True, 0, 1),
        ("a", False, 60, 3),
        ("b", True, 0, 2),
        ("b", False, 120, 1),
    ]


def test_results_in_order_extend_the_last_island() -> None:
    # ok at 0 and 60 (one island of 2), then a batch: ok at 120, failures at 180 and 240.
    batches = [[probe(0, True, 1), probe(60, True, 2)], [probe(120, True, 3)]]
    batches.append([probe(180, False, 4), probe(240, False, 5)])
    us = 1_000_000
    assert stored_islands(batches) == [
        ("api", "a", True, START * us, "e0001", (START + 120) * us, "e0003", 3),
        ("api", "a", False, (START + 180) * us, "e0004", (START + 240) * us, "e0005", 2),
    ]


def test_a_late_failure_splits_an_island() -> None:
    # ok at 0, 60, 120, 180; the failure at 90 arrives last and splits the run in two.
    on_time = [probe(t, True, n) for n, t in enumerate((0, 60, 120, 180))]
    us = 1_000_000
    assert stored_islands([on_time, [probe(90, False, 9)]]) == [
        ("api", "a", True, START * us, "e0000", (START + 60) * us, "e0001", 2),
        ("api", "a", False, (START + 90) * us, "e0009", (START + 90) * us, "e0009", 1),
        ("api", "a", True, (START + 120) * us, "e0002", (START + 180) * us, "e0003", 2),
    ]


def test_a_window_starting_inside_a_failure_run_counts_only_its_results_inside() -> None:
    # Check "b" (not configured: 300 s interval, stale after 900 s) fails every 600 s for
    # more than a day. The window's history starts a day before `since` = 1 day + 300 s, at
    # 300 s: the outage opens at 600, the first failure inside. At now = since + 600 the
    # last failure known is at 1 day + 600 s, 300 s ago: not stale, the outage is ongoing.
    events = [probe(t, False, n, check="b") for n, t in enumerate(range(0, 86_400 + 1_201, 600))]
    since = START + PROBE_LOOKBACK + 300
    with EventStore(":memory:") as store:
        store.write_batch(events)
        fast = inputs_from_store(store, CONFIG, since, since + 600)
    assert fast == inputs_from_events(events, CONFIG, since, since + 600)
    assert fast["api"].outages == (Outage(START + 600, None, source="probes"),)


@pytest.mark.parametrize("batch_services", [1, 2, 5])
def test_islands_rebuilt_a_batch_of_services_at_a_time_are_the_kept_ones(
    tmp_path: Path, batch_services: int
) -> None:
    path = tmp_path / "store.duckdb"
    outcomes = [True, True, False, True, False, False, True]
    events = [
        probe(60 * n + k, ok, 100 * k + n, service, check)
        for k, (service, check) in enumerate(
            (s, c) for s in ("api", "db", "web", "zz") for c in ("a", "b")
        )
        for n, ok in enumerate(outcomes[k % 3 :])
    ]
    with EventStore(path) as store:
        store.write_batch(events)
        kept = store.query(ISLANDS).rows()
    with duckdb.connect(str(path)) as con:
        assert service_batches(con, 2) == [("api", "db"), ("web", "zz")]
        rebuild_probe_islands(con, batch_services)
        assert con.sql(ISLANDS).fetchall() == kept
    with duckdb.connect(str(path)) as con, pytest.raises(ValueError):
        rebuild_probe_islands(con, 0)
