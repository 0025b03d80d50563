"""The polars ticket clocks equal the per-ticket reference, record by record."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla.calendar import ROUND_THE_CLOCK, BusinessCalendar, WorkingHours
from sla.config import PausePolicy, TicketGoal, TicketPolicy
from sla.events import TicketStatus
from sla.tickets import CLOCK_COLUMNS, TicketUpdate, ticket_clocks, ticket_clocks_frame

HOUR = 3600
# Thu 26 Mar 2026 00:00 Berlin (CET): Berlin springs forward on Sun 29 Mar.
ORIGIN = int(datetime.fromisoformat("2026-03-26T00:00+01:00").timestamp())
CALENDARS = {
    "24x7": ROUND_THE_CLOCK,
    # Split office day, a holiday on the Friday, nothing at weekends.
    "office": BusinessCalendar(
        "Europe/Berlin",
        WorkingHours((((540, 780), (840, 1020)),) * 5 + ((), ())),
        frozenset({date(2026, 3, 27)}),
    ),
    # Every local day, so the spring-forward Sunday has 23 hours.
    "berlin-days": BusinessCalendar("Europe/Berlin", WorkingHours((((0, 1440),),) * 7)),
}
STATUSES: tuple[TicketStatus, ...] = ("new", "open", "in_progress", "pending", "resolved", "closed")
GOALS = {
    "P1": TicketGoal(response=1800, resolution=4 * HOUR),
    "P2": TicketGoal(response=HOUR, resolution=8 * HOUR),
    "P3": TicketGoal(response=2 * HOUR, resolution=3 * 86_400),
}

policies = st.builds(
    TicketPolicy,
    calendar=st.sampled_from(sorted(CALENDARS)),
    pause=st.builds(
        PausePolicy,
        statuses=st.lists(st.sampled_from(STATUSES), max_size=2, unique=True),
        clocks=st.sampled_from([["response", "resolution"], ["resolution"], ["response"], []]),
    ),
    reopen=st.sampled_from(["continue", "new_cycle"]),
    goals=st.just(GOALS),
)
updates = st.builds(
    TicketUpdate,
    # Steps of 0 make same-second updates; large steps cross nights, weekends and the DST change.
    time=st.integers(0, 40 * HOUR),
    status=st.sampled_from(STATUSES),
    # P4 has no goal.
    priority=st.sampled_from(["P1", "P2", "P3", "P4"]),
    responded=st.booleans(),
    kind=st.sampled_from(["incident", "request"]),
)


@st.composite
def tickets(draw: st.DrawFn) -> list[TicketUpdate]:
    """A history whose updates arrive roughly, but not always, in time order."""
    steps = draw(st.lists(updates, min_size=1, max_size=12))
    clock, history = ORIGIN + draw(st.integers(0, 6 * 86_400)), []
    for step in steps:
        clock += draw(st.sampled_from([0, 60, step.time, step.time * 3]))
        history.append(dataclasses.replace(step, time=clock))
    if draw(st.booleans()):
        # A late delivery: one update arrives after a later one.
        i = draw(st.integers(0, len(history) - 1))
        history.append(history.pop(i))
    return history


def reference_rows(
    services: dict[str, TicketPolicy], histories: dict[tuple[str, str], list[TicketUpdate]], at: int
) -> list[dict[str, Any]]:
    rows = []
    for (service, ticket_id), history in histories.items():
        policy = services[service]
        for clock in ticket_clocks(ticket_id, history, policy, CALENDARS[policy.calendar], at):
            rows.append({"service": service, **clock._asdict()})
    return sorted(rows, key=lambda r: (r["service"], r["ticket_id"], r["cycle"], r["clock"]))


def as_frame(histories: dict[tuple[str, str], list[TicketUpdate]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"service": service, "ticket_id": ticket_id, **dataclasses.asdict(u)}
            for (service, ticket_id), history in histories.items()
            for u in history
        ],
        schema_overrides={"time": pl.Int64},
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    services=st.lists(policies, min_size=1, max_size=3),
    histories=st.lists(tickets(), min_size=1, max_size=6),
    at_offset=st.integers(0, 12 * 86_400),
)
def test_fast_path_equals_reference(
    services: list[TicketPolicy], histories: list[list[TicketUpdate]], at_offset: int
) -> None:
    by_service = {f"svc-{n}": policy for n, policy in enumerate(services)}
    by_ticket = {
        (f"svc-{n % len(services)}", f"T{n}"): history for n, history in enumerate(histories)
    }
    at = ORIGIN + at_offset
    expected = reference_rows(by_service, by_ticket, at)
    actual = ticket_clocks_frame(as_frame(by_ticket), by_service, CALENDARS, at)
    assert actual.columns == list(CLOCK_COLUMNS)
    assert actual.to_dicts() == expected


def test_services_without_a_policy_and_updates_after_at_are_left_out() -> None:
    # T1 belongs to a service without a ticket policy; T2 is only created after `at`.
    frame = pl.DataFrame(
        {
            "service": ["none", "svc"],
            "ticket_id": ["T1", "T2"],
            "time": [ORIGIN, ORIGIN + HOUR],
            "status": ["new", "new"],
            "priority": ["P1", "P1"],
            "responded": [False, False],
            "kind": ["incident", "incident"],
        }
    )
    policy = TicketPolicy(goals=GOALS)
    result = ticket_clocks_frame(frame, {"svc": policy}, CALENDARS, ORIGIN + 60)
    assert result.height == 0
    assert result.columns == list(CLOCK_COLUMNS)
