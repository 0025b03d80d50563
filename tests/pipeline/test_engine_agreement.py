"""The DuckDB reduction (pipeline/engine.py) equals the plain-Python reference (sla/inputs.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.engine import (
    capacity_series,
    inputs_from_store,
    inputs_in_batches,
    services_with_inputs,
)
from pipeline.store import EventStore
from sla.calendar import Calendars
from sla.config import SlamonConfig
from sla.events import (
    CAPACITY,
    CHANGE,
    CONTINUITY,
    MAINTENANCE,
    OUTAGE,
    PROBE,
    STATUS,
    TICKET,
    CloudEvent,
    new_event,
)
from sla.inputs import ServiceInputs, inputs_from_events
from sla.intervals import Interval
from sla.service_levels import ServiceFigures, service_figures
from sla.tickets import TicketClock

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SERVICES = ("api", "web")
CONFIG = SlamonConfig.model_validate(
    {
        "services": [
            {
                "id": "api",
                "name": "API",
                "outage_from_probes": {"failures": 2, "recoveries": 2},
                "probes": [{"name": "a", "http": "http://127.0.0.1/", "interval": "1m"}],
                "heartbeats": [{"name": "nightly", "interval": "1h", "grace": "5m"}],
            },
            {
                "id": "web",
                "name": "Web",
                "tickets": {
                    "pause": {"statuses": ["pending"]},
                    "goals": {
                        "P1": {"response": "15m", "resolution": "4h"},
                        "P2": {"response": "1h", "resolution": "1d"},
                    },
                },
            },
        ]
    }
)


def at(seconds: float) -> datetime:
    """T0 plus `seconds` (fractions kept, so rounding to whole seconds is exercised)."""
    return T0 + timedelta(seconds=seconds)


def both(events: list[CloudEvent], since: int, now: int) -> tuple[dict[str, ServiceInputs], ...]:
    """The reference and the fast reduction of the same events.

    The fast reduction one service at a time (`inputs_in_batches`) must give the same inputs
    for each configured service. A computation as of a later instant runs first: the
    settled tickets it keeps must not change this one, which keeps its own for the next.
    """
    with EventStore(":memory:") as store:
        store.write_batch(events)
        inputs_from_store(store, CONFIG, since, now + 30_000)
        fast = inputs_from_store(store, CONFIG, since, now)
        by_batch = list(inputs_in_batches(store, CONFIG, since, now, 1))
    assert by_batch == [{s.id: fast[s.id]} for s in CONFIG.services]
    return inputs_from_events(events, CONFIG, since, now), fast


def event(
    type_: str, subject: str, data: dict[str, Any], when: float, n: int, source: str = "test"
) -> CloudEvent:
    return new_event(type_, subject, data, source=source, time=at(when), id=f"e{n:05d}")


instants = st.floats(min_value=0, max_value=40_000, allow_nan=False).map(lambda x: round(x, 3))


@st.composite
def availability_events(draw: st.DrawFn) -> list[CloudEvent]:
    """Random probe results, state changes, outage and maintenance reports (with updates)."""
    events: list[CloudEvent] = []
    for n in range(draw(st.integers(0, 60))):
        kind = draw(
            st.sampled_from(
                ["probe", "probe", "status", "outage", "maint", "cap", "test", "change", "ticket"]
            )
        )
        service = draw(st.sampled_from(SERVICES))
        when = draw(instants)
        if kind == "probe":
            check = draw(st.sampled_from(["a", "b"]))
            ok = draw(st.booleans())
            data: dict[str, Any] = {"check": check, "ok": ok, "latency_ms": 1.0}
            events.append(event(PROBE, service, data, when, n))
        elif kind == "ticket":
            data = {
                "ticket_id": draw(st.sampled_from(["T1", "T2", "T3"])),
                "kind": draw(st.sampled_from(["incident", "request"])),
                "priority": draw(st.sampled_from(["P1", "P2", "P3"])),
                "status": draw(
                    st.sampled_from(["new", "open", "in_progress", "pending", "resolved", "closed"])
                ),
                "responded": draw(st.booleans()),
            }
            events.append(event(TICKET, service, data, when, n))
        elif kind == "cap":
            data = {
                "resource": draw(st.sampled_from(["cpu", "disk"])),
                "host": draw(st.sampled_from([None, "h1"])),
                "used": draw(st.floats(0, 100)),
                "capacity": 100.0,
                "unit": "%",
            }
            events.append(event(CAPACITY, service, data, when, n))
        elif kind == "test":
            invoked = draw(instants)
            data = {
                "test_id": draw(st.sampled_from(["dr-1", "dr-2"])),
                "scenario": "failover",
                "invoked_at": at(invoked).isoformat(),
                "restored_at": at(invoked + draw(instants)).isoformat(),
                "data_restored_to": at(invoked - draw(instants)).isoformat(),
                "outcome": "passed",
            }
            events.append(event(CONTINUITY, service, data, when, n))
        elif kind == "change":
            begin = draw(instants)
            data = {
                "change_id": draw(st.sampled_from(["CHG-1", "CHG-2"])),
                "kind": draw(st.sampled_from(["standard", "normal", "emergency"])),
                "status": draw(
                    st.sampled_from(
                        ["scheduled", "implemented", "failed", "rolled_back", "cancelled"]
                    )
                ),
                "start": at(begin).isoformat(),
                "end": at(begin + draw(instants)).isoformat(),
                "caused_incident": draw(st.none() | st.sampled_from(["INC-8", "INC-9"])),
            }
            events.append(event(CHANGE, service, data, when, n))
        elif kind == "status":
            data = {"state": draw(st.sampled_from(["up", "down", "degraded"]))}
            # Two monitors per service, each with its own state.
            monitor = draw(st.sampled_from(["alert/1", "alert/2"]))
            events.append(event(STATUS, service, data, when, n, monitor))
        else:
            start = draw(instants)
            end = draw(st.none() | instants.map(lambda x, s=start: s + x))
            ident = draw(st.sampled_from(["x", "y"]))
            if kind == "outage":
                data = {
                    "outage_id": ident,
                    "start": at(start).isoformat(),
                    "end": None if end is None else at(end).isoformat(),
                    "planned": draw(st.booleans()),
                    "impact": draw(st.sampled_from(["full", "partial"])),
                }
                events.append(event(OUTAGE, service, data, when, n))
            else:
                data = {
                    "window_id": ident,
                    "start": at(start).isoformat(),
                    "end": at(start if end is None else end).isoformat(),
                    "reason": "patching",
                }
                events.append(event(MAINTENANCE, service, data, when, n))
    return events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=availability_events(),
    since=st.integers(0, 30_000),
    span=st.integers(0, 20_000),
)
def test_fast_reduction_equals_the_reference(
    events: list[CloudEvent], since: int, span: int
) -> None:
    start = int(T0.timestamp())
    reference, fast = both(events, start + since, start + since + span)
    assert fast == reference


def test_a_rescheduled_maintenance_window_counts_only_in_its_new_place() -> None:
    first = {
        "window_id": "w1",
        "start": at(3_600).isoformat(),
        "end": at(7_200).isoformat(),
        "reason": "patching",
    }
    moved = {**first, "start": at(90_000).isoformat(), "end": at(93_600).isoformat()}
    events = [event(MAINTENANCE, "web", first, 0, 1), event(MAINTENANCE, "web", moved, 60, 2)]
    start = int(T0.timestamp())
    reference, fast = both(events, start, start + 86_400)
    # The newest version (moved to tomorrow) replaces the first: nothing today.
    assert fast["web"].maintenance == reference["web"].maintenance == ()
    reference, fast = both(events, start, start + 100_000)
    assert fast["web"].maintenance == (Interval(start + 90_000, start + 93_600),)


def test_a_check_that_goes_silent_while_failing_stops_extending_its_outage() -> None:
    # api's check "a" runs every minute: 2 failures open an outage at 100; the collector dies
    # after the failure at 160. Silent for more than 3 intervals (180 s), the outage ends at
    # the last failed probe, 160.
    data = {"check": "a", "ok": False, "latency_ms": 1.0}
    events = [event(PROBE, "api", data, t, t) for t in (100, 130, 160)]
    start = int(T0.timestamp())
    reference, fast = both(events, start, start + 160 + 181)
    (outage,) = fast["api"].outages
    assert (outage.start - start, None if outage.end is None else outage.end - start) == (100, 160)
    assert fast == reference
    # While the silence is shorter than that, the outage is ongoing.
    reference, fast = both(events, start, start + 160 + 180)
    assert fast["api"].outages[0].end is None and fast == reference


def test_a_missed_heartbeat_stays_an_outage_for_three_of_its_own_intervals() -> None:
    # api's hourly heartbeat "nightly" is missed at 0, 3,600 and 7,200 (one failed probe
    # an interval). Two hours after the last miss the job is still missing: the outage is
    # ongoing. Only after three of its intervals of silence does it end at the last miss;
    # with the probes' default interval it ended after 15 minutes.
    data = {"check": "nightly", "ok": False, "latency_ms": 0.0, "error": "missed heartbeat"}
    events = [event(PROBE, "api", data, t, t) for t in (0, 3_600, 7_200)]
    start = int(T0.timestamp())
    reference, fast = both(events, start, start + 7_200 + 7_200)
    assert fast == reference
    assert [(o.start - start, o.end) for o in fast["api"].outages] == [(0, None)]
    reference, fast = both(events, start, start + 7_200 + 3 * 3_600 + 1)
    assert fast == reference
    assert [(o.start - start, o.end and o.end - start) for o in fast["api"].outages] == [(0, 7_200)]


def test_a_service_without_evidence_is_not_observed() -> None:
    start = int(T0.timestamp())
    reference, fast = both([], start, start + 3_600)
    assert fast == reference
    assert fast["web"] == ServiceInputs("web")


def test_each_monitor_keeps_its_own_state_from_before_the_window() -> None:
    # Before the window (from 1,000 s): monitor 1 goes down at 100; monitor 2 goes down at
    # 200 and up at 300, the service's last change before the window. Monitor 1 is still
    # down, so its outage runs on into the window; monitor 2's ended before it and drops out.
    down, up = {"state": "down"}, {"state": "up"}
    events = [
        event(STATUS, "web", down, 100, 1, "alert/1"),
        event(STATUS, "web", down, 200, 2, "alert/2"),
        event(STATUS, "web", up, 300, 3, "alert/2"),
        event(STATUS, "web", up, 1_500, 4, "alert/1"),
    ]
    start = int(T0.timestamp())
    reference, fast = both(events, start + 1_000, start + 2_000)
    assert fast == reference
    assert [(o.start - start, o.end and o.end - start) for o in fast["web"].outages] == [
        (100, 1_500)
    ]


def test_ticket_updates_within_one_second_keep_their_order_to_the_microsecond() -> None:
    # Found by the test above: the P2 event comes first (00:00:00.0), the P1 one half a second
    # later with a smaller id. Ordered by whole seconds and then id, P2 would look newest.
    ticket = {"ticket_id": "T1", "kind": "incident", "status": "new"}
    events = [
        event(TICKET, "web", {**ticket, "priority": "P1"}, 0.5, 27),
        event(TICKET, "web", {**ticket, "priority": "P2"}, 0, 31),
    ]
    start = int(T0.timestamp())
    reference, fast = both(events, start, start)
    assert fast == reference
    assert {c.priority for c in fast["web"].ticket_clocks} == {"P1"}


def test_only_changes_ending_in_or_after_the_windows_are_read() -> None:
    # CHG-1 ended at 999, just before the windows from 1,000: left out, though an earlier
    # event had it end later. CHG-2 ends exactly at 1,000 and CHG-3, at the same second as
    # its rollback, is rolled back, last in the lifecycle: both stay with all their events,
    # in time then id order.
    def change(change_id: str, status: str, end: int) -> dict[str, Any]:
        return {
            "change_id": change_id,
            "kind": "normal",
            "status": status,
            "start": at(end - 100).isoformat(),
            "end": at(end).isoformat(),
        }

    events = [
        event(CHANGE, "web", change("CHG-1", "scheduled", 1_500), 10, 1),
        event(CHANGE, "web", change("CHG-1", "implemented", 999), 20, 2),
        event(CHANGE, "web", change("CHG-2", "implemented", 1_000), 20, 3),
        event(CHANGE, "web", change("CHG-3", "rolled_back", 1_200), 30, 4),
        event(CHANGE, "web", change("CHG-3", "implemented", 900), 30, 5),
    ]
    start = int(T0.timestamp())
    reference, fast = both(events, start + 1_000, start + 2_000)
    assert fast == reference
    assert [(c.change_id, c.status) for c in fast["web"].changes] == [
        ("CHG-2", "implemented"),
        ("CHG-3", "rolled_back"),
        ("CHG-3", "implemented"),
    ]


def test_capacity_samples_at_one_instant_are_listed_by_event_id() -> None:
    # Three samples of one series at the same microsecond, stored in the reverse order of
    # their ids. The reference lists them by id, and so must the store (the last listed is
    # the one a summary keeps for its second), whatever order DuckDB returns rows in.
    events = [
        event(
            CAPACITY, "web", {"resource": "cpu", "used": used, "capacity": 100.0, "unit": "%"}, 5, n
        )
        for n, used in ((3, 30.0), (2, 20.0), (1, 10.0))
    ]
    start = int(T0.timestamp())
    reference, fast = both(events, start, start + 60)
    assert fast == reference
    assert fast["web"].capacity[("cpu", None)].used.tolist() == [10.0, 20.0, 30.0]


def counted_and_listed(
    events: list[CloudEvent], since: int, now: int, windows: list[Interval]
) -> list[tuple[ServiceFigures, ServiceFigures]]:
    """Each service's figures over each window: from inputs that count settled tickets'
    stopped clocks and the changes in the windows, and from inputs that list them.

    A first computation as of `now` keeps the settled tickets, so the counted ones come
    from the store as they do in the running pipeline.
    """
    calendars = Calendars(CONFIG.calendars)
    with EventStore(":memory:") as store:
        store.write_batch(events)
        listed = inputs_from_store(store, CONFIG, since, now)
        count_in = {s.id: windows for s in CONFIG.services}
        counted = dict(
            (s.id, inputs)
            for s, inputs in services_with_inputs(store, CONFIG, since, now, 1, count_in=count_in)
        )
    pairs = []
    for service in CONFIG.services:
        for window in windows:
            pairs.append(
                tuple(
                    service_figures(service, calendars, inputs[service.id], window, now)
                    for inputs in (counted, listed)
                )
            )
    return pairs  # type: ignore[return-value]


def assert_agree(counted: ServiceFigures, listed: ServiceFigures) -> None:
    """Equal figures, but that the counted ones list only the running clocks."""

    def unlisted(figures: ServiceFigures) -> ServiceFigures:
        return replace(figures, tickets=replace(figures.tickets, clocks=()))

    def running(figures: ServiceFigures) -> list[TicketClock]:
        return [c for c in figures.tickets.clocks if c.running]

    assert unlisted(counted) == unlisted(listed)
    assert list(counted.tickets.clocks) == running(listed)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=availability_events(),
    since=st.integers(0, 30_000),
    span=st.integers(0, 20_000),
    cuts=st.lists(st.integers(0, 20_000), min_size=2, max_size=2),
)
def test_counted_figures_equal_the_listed_ones(
    events: list[CloudEvent], since: int, span: int, cuts: list[int]
) -> None:
    start = int(T0.timestamp())
    lo, hi = start + since, start + since + span
    # Two windows within [since, now], as the live month and 30 days are.
    first, second = (lo + min(c, span) for c in sorted(cuts))
    windows = [Interval(first, hi), Interval(lo, second)]
    for counted, listed in counted_and_listed(events, lo, hi, windows):
        assert_agree(counted, listed)


def test_clocks_and_changes_are_counted_in_a_window_from_its_start_up_to_its_end() -> None:
    # T1 is resolved at exactly 1,000, the start of the window [1,000, 2,000); T2 at 2,000,
    # its end (outside); CHG-1 ends at 1,000 (in), CHG-2 at 2,000 (out), CHG-3 at 1,999
    # (in). CHG-3 was first linked to INC-2, then to INC-1; a last event names none, so
    # INC-1, the latest reported, stays. Both tickets are settled: their clocks are counted
    # from the store.
    def ticket(ticket_id: str, status: str, when: int, n: int) -> CloudEvent:
        data = {
            "ticket_id": ticket_id,
            "kind": "incident",
            "priority": "P1",
            "status": status,
            "responded": status != "new",
        }
        return event(TICKET, "web", data, when, n)

    def change(
        change_id: str, status: str, end: int, n: int, when: int | None = None, **extra: Any
    ) -> CloudEvent:
        data = {
            "change_id": change_id,
            "kind": "emergency",
            "status": status,
            "start": at(end - 100).isoformat(),
            "end": at(end).isoformat(),
            **extra,
        }
        return event(CHANGE, "web", data, end if when is None else when, n)

    events = [
        ticket("T1", "new", 500, 1),
        ticket("T1", "resolved", 1_000, 2),
        ticket("T2", "new", 1_500, 3),
        ticket("T2", "resolved", 2_000, 4),
        change("CHG-1", "implemented", 1_000, 5),
        change("CHG-2", "failed", 2_000, 6),
        change("CHG-3", "scheduled", 1_999, 7, 1_900, caused_incident="INC-2"),
        change("CHG-3", "rolled_back", 1_999, 8, caused_incident="INC-1"),
        change("CHG-3", "rolled_back", 1_999, 9, 2_500),
    ]
    start = int(T0.timestamp())
    window = Interval(start + 1_000, start + 2_000)
    # The same window asked for twice is counted once.
    pairs = counted_and_listed(events, start, start + 3_000, [window, window])
    for counted, listed in pairs:
        assert_agree(counted, listed)
    counted, _ = pairs[-1]
    assert counted.tickets.clocks == ()
    # T1's two clocks: response met, resolution (500 s against 4 h) met.
    assert [(r.clock, r.met, r.breached) for r in counted.tickets.compliance] == [
        ("resolution", 1, 0),
        ("response", 1, 0),
    ]
    assert counted.tickets.mttr_seconds == 500
    changes = counted.changes
    assert (changes.total, changes.success_ratio, changes.emergency_share) == (2, 0.5, 1.0)
    assert changes.failed_changes == ("CHG-3",)
    assert changes.caused_incidents == (("CHG-3", "INC-1"),)


def test_counted_inputs_refuse_a_window_they_did_not_count() -> None:
    start = int(T0.timestamp())
    counted = next(
        inputs_in_batches(
            EventStore(":memory:"),
            CONFIG,
            start,
            start + 100,
            2,
            count_in={"web": [Interval(start, start + 100)]},
        )
    )
    with pytest.raises(ValueError, match="other windows"):
        counted["web"].clock_tally(Interval(start, start + 50))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    samples=st.lists(
        st.tuples(
            st.sampled_from(SERVICES),
            st.sampled_from(["cpu", "disk"]),
            st.sampled_from([None, "h1"]),
            # Quarter seconds from a handful: samples of one series at one instant are common.
            st.integers(0, 8).map(lambda q: q / 4),
            st.floats(0, 100),
        ),
        max_size=40,
    ),
    chunk=st.integers(1, 12),
)
def test_capacity_read_a_few_series_at_a_time_equals_it_read_at_once(
    samples: list[tuple[str, str, str | None, float, float]], chunk: int
) -> None:
    events = [
        event(
            CAPACITY,
            service,
            {"resource": resource, "host": host, "used": used, "capacity": 100.0, "unit": "%"},
            when,
            n,
        )
        for n, (service, resource, host, when, used) in enumerate(samples)
    ]
    start = int(T0.timestamp())
    with EventStore(":memory:") as store:
        store.write_batch(events)
        at_once = list(capacity_series(store, start, start + 60, chunk_samples=10**9))
        chunked = list(capacity_series(store, start, start + 60, chunk_samples=chunk))
    assert chunked == at_once
    assert sum(len(series) for *_, series in chunked) == len(samples)


def test_capacity_read_from_two_threads_at_once_is_read_right_in_both(
    in_threads: Callable[[Callable[[], object], int], list[BaseException]],
) -> None:
    # The pipeline's live figures and a monthly pack compute on one store from two threads;
    # each numbers the series in a temporary table that the other must not replace or drop
    # between its chunks.
    events = [
        event(
            CAPACITY,
            service,
            {"resource": resource, "used": float(n), "capacity": 100.0, "unit": "%"},
            n,
            n,
        )
        for n, (service, resource) in enumerate(
            (s, r) for _ in range(5) for s in SERVICES for r in ("cpu", "disk", "mem")
        )
    ]
    start = int(T0.timestamp())
    with EventStore(":memory:") as store:
        store.write_batch(events)
        expected = list(capacity_series(store, start, start + 60))

        def read_repeatedly() -> None:
            for _ in range(30):
                chunked = list(capacity_series(store, start, start + 60, chunk_samples=2))
                assert chunked == expected

        failures = in_threads(read_repeatedly, 2)
    assert not failures, failures[0]
