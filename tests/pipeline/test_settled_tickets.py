"""Settled tickets: clocks kept in the store are read back only while they still hold."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.engine import inputs_from_store
from pipeline.settled_tickets import REBUILD_TICKET_SIGNATURES, policy_fingerprint
from pipeline.store import EventStore
from sla.config import CalendarConfig, SlamonConfig, TicketPolicy
from sla.events import TICKET, CloudEvent, new_event
from sla.inputs import ServiceInputs

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
HOUR = 3_600
START = int(T0.timestamp())


def config(resolution: str = "4h") -> SlamonConfig:
    """One service on 24x7 tickets: P1 answered within 15 min, resolved within `resolution`."""
    return SlamonConfig.model_validate(
        {
            "services": [
                {
                    "id": "web",
                    "name": "Web",
                    "tickets": {
                        "pause": {"statuses": ["pending"]},
                        "goals": {"P1": {"response": "15m", "resolution": resolution}},
                    },
                }
            ]
        }
    )


def ticket(
    ticket_id: str, status: str, hours: float, n: int, responded: bool = False
) -> CloudEvent:
    data = {
        "ticket_id": ticket_id,
        "kind": "incident",
        "priority": "P1",
        "status": status,
        "responded": responded,
    }
    when = T0 + timedelta(hours=hours)
    return new_event(TICKET, "web", data, source="itsm", time=when, id=f"{ticket_id}-{n}")


# T1 is resolved after 3 h (met), T2 is still in progress.
HISTORY = [
    ticket("T1", "new", 0, 1),
    ticket("T1", "in_progress", 0.1, 2, responded=True),
    ticket("T1", "resolved", 3, 3),
    ticket("T2", "new", 1, 1),
    ticket("T2", "in_progress", 1.5, 2, responded=True),
]


@pytest.fixture
def store() -> EventStore:
    with EventStore(":memory:") as fresh:
        fresh.write_batch(HISTORY)
        yield fresh


Compute = Callable[..., ServiceInputs]


@pytest.fixture
def compute(store: EventStore) -> Compute:
    """The inputs of `web` over the day, as of `hours` after T0."""

    def run(
        hours: float = 8, cfg: SlamonConfig | None = None, *, settled: bool = True
    ) -> ServiceInputs:
        now = START + int(hours * HOUR)
        return inputs_from_store(store, cfg or config(), START, now, settled=settled)["web"]

    return run


def elapsed(inputs: ServiceInputs) -> dict[tuple[str, str], int]:
    return {(c.ticket_id, c.clock): c.elapsed_seconds for c in inputs.ticket_clocks}


def stored(store: EventStore, sql: str) -> list[tuple[Any, ...]]:
    return list(store.query(sql).iter_rows())


def tamper(store: EventStore) -> None:
    """Change T1's stored resolution time, to see whether a computation reads it."""
    store.query(
        "UPDATE settled_clocks SET elapsed_seconds = 1 "
        "WHERE ticket_id = 'T1' AND clock = 'resolution'"
    )


def test_only_tickets_whose_clocks_all_stopped_are_kept(
    store: EventStore, compute: Compute
) -> None:
    first = compute()
    # T1: 3 h of updates, 2 known; T2's resolution clock still runs.
    assert stored(store, "SELECT ticket_id, updates, last_us FROM settled_tickets") == [
        ("T1", 3, (START + 3 * HOUR) * 1_000_000)
    ]
    assert stored(
        store, "SELECT clock, elapsed_seconds, status FROM settled_clocks ORDER BY clock"
    ) == [("resolution", 3 * HOUR, "met"), ("response", 360, "met")]
    assert compute() == first


def test_the_kept_clocks_are_what_the_next_computation_reads(
    store: EventStore, compute: Compute
) -> None:
    compute()
    tamper(store)
    assert elapsed(compute())["T1", "resolution"] == 1


def test_without_settled_tickets_every_clock_is_recomputed(
    store: EventStore, compute: Compute
) -> None:
    compute()
    tamper(store)
    assert elapsed(compute(settled=False))["T1", "resolution"] == 3 * HOUR


def test_a_new_event_of_a_settled_ticket_makes_it_count_again(
    store: EventStore, compute: Compute
) -> None:
    compute()
    tamper(store)
    # Reopened at 5 h and resolved again at 6 h: one cycle (`continue`), 3 h + 1 h running.
    store.write_batch([ticket("T1", "in_progress", 5, 4), ticket("T1", "resolved", 6, 5)])
    assert elapsed(compute())["T1", "resolution"] == 4 * HOUR
    assert stored(store, "SELECT updates FROM settled_tickets WHERE ticket_id = 'T1'") == [(5,)]


def test_a_late_event_before_the_last_one_is_seen(store: EventStore, compute: Compute) -> None:
    compute()
    tamper(store)
    # Pending from 2 h until the resolution at 3 h: the resolution clock paused that hour.
    store.write_batch([ticket("T1", "pending", 2, 9, responded=True)])
    assert elapsed(compute())["T1", "resolution"] == 2 * HOUR


def test_another_policy_recomputes_the_kept_clocks(store: EventStore, compute: Compute) -> None:
    compute()
    tamper(store)
    clocks = {c.clock: c for c in compute(cfg=config("2h")).ticket_clocks if c.ticket_id == "T1"}
    assert clocks["resolution"].elapsed_seconds == 3 * HOUR
    assert clocks["resolution"].status == "breached"


def test_a_computation_before_the_last_event_does_not_read_the_kept_clocks(
    store: EventStore, compute: Compute
) -> None:
    compute()
    tamper(store)
    # At 2 h, T1 was still being worked on: its resolution clock ran, 2 h so far.
    early = {c.clock: c for c in compute(hours=2).ticket_clocks if c.ticket_id == "T1"}
    assert early["resolution"].stopped_at is None
    assert early["resolution"].elapsed_seconds == 2 * HOUR


def test_clocks_that_stopped_before_the_window_are_left_out(
    store: EventStore, compute: Compute
) -> None:
    compute()
    day_after = START + 30 * HOUR
    for _ in range(2):  # recomputed, then read from the store
        found = inputs_from_store(store, config(), day_after, day_after + HOUR)["web"]
        assert {c.ticket_id for c in found.ticket_clocks} == {"T2"}


def test_a_read_only_store_keeps_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    with EventStore(path) as writable:
        writable.write_batch(HISTORY)
    with EventStore(path, read_only=True) as read_only:
        inputs_from_store(read_only, config(), START, START + 8 * HOUR)
        assert stored(read_only, "SELECT count(*) FROM settled_tickets") == [(0,)]


def test_the_fingerprint_follows_what_the_clocks_depend_on() -> None:
    policy = TicketPolicy.model_validate({"goals": {"P1": {"response": "15m", "resolution": "4h"}}})
    office = CalendarConfig.model_validate(
        {"timezone": "Europe/Berlin", "hours": {"mon": ["08:00-17:00"]}}
    )
    holiday = office.model_copy(update={"holidays": [datetime(2026, 12, 25).date()]})
    base = policy_fingerprint(policy, office)
    assert policy_fingerprint(policy, office) == base
    assert policy_fingerprint(policy, holiday) != base
    assert policy_fingerprint(policy, None) != base
    stricter = policy.model_copy(update={"reopen": "new_cycle"})
    assert policy_fingerprint(stricter, office) != base
    # The at-risk share reads clocks; it does not change them.
    assert policy_fingerprint(policy.model_copy(update={"at_risk": 0.5}), office) == base


SIGNATURES = "SELECT * FROM ticket_signatures ORDER BY service, ticket_id"


# Events of three tickets at random instants (several in one second), stored in batches in
# any order, some of them again.
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(0, 3 * HOUR * 1_000_000)),
        min_size=1,
        max_size=30,
        unique_by=lambda update: update[1],
    ),
    st.data(),
)
def test_the_signatures_kept_as_events_arrive_equal_a_rebuild(
    updates: list[tuple[str, int]], data: st.DataObject
) -> None:
    events = [
        new_event(
            TICKET,
            "web",
            {"ticket_id": ticket_id, "kind": "incident", "priority": "P1", "status": "open"},
            source="itsm",
            time=T0 + timedelta(microseconds=us),
            id=f"{ticket_id}-{us}",
        )
        for ticket_id, us in updates
    ]
    batches = data.draw(st.lists(st.lists(st.sampled_from(events), max_size=8), max_size=6))
    with EventStore(":memory:") as store:
        for batch in [*batches, events]:
            store.write_batch(batch)
        kept = stored(store, SIGNATURES)
        store.query(REBUILD_TICKET_SIGNATURES)
        assert kept == stored(store, SIGNATURES)
    last = {ticket_id: max(us for t, us in updates if t == ticket_id) for ticket_id, _ in updates}
    assert [(ticket_id, updates_, last_us) for _, ticket_id, updates_, last_us in kept] == [
        (
            ticket_id,
            sum(t == ticket_id for t, _ in updates),
            int(T0.timestamp()) * 1_000_000 + last[ticket_id],
        )
        for ticket_id in sorted(last)
    ]


def test_a_ticket_updated_after_now_is_recomputed_as_of_now(
    store: EventStore, compute: Compute
) -> None:
    compute()
    tamper(store)
    # T1 reopened at 9 h: as of 8 h its kept clocks still hold, but not the signature.
    store.write_batch([ticket("T1", "in_progress", 9, 4)])
    assert elapsed(compute(hours=8))["T1", "resolution"] == 3 * HOUR
