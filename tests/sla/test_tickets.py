"""Ticket clocks by hand: response and resolution, pauses, reopen, priority changes, aggregates."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from sla.calendar import ROUND_THE_CLOCK, BusinessCalendar, WorkingHours
from sla.config import PausePolicy, TicketGoal, TicketPolicy
from sla.events import TicketStatus
from sla.intervals import Interval
from sla.tickets import (
    TicketClock,
    TicketUpdate,
    at_risk,
    compliance,
    latest_cycles,
    mttr,
    ticket_clocks,
)

MIN, HOUR, DAY = 60, 3600, 86_400
GOALS = {
    "P1": TicketGoal(response=30 * MIN, resolution=4 * HOUR),
    "P2": TicketGoal(response=HOUR, resolution=8 * HOUR),
    "P3": TicketGoal(response=4 * HOUR, resolution=3 * DAY),
}
PLAIN = TicketPolicy(goals=GOALS)
PAUSE_BOTH = TicketPolicy(goals=GOALS, pause=PausePolicy(statuses=["pending"]))
PAUSE_RESOLUTION = TicketPolicy(
    goals=GOALS, pause=PausePolicy(statuses=["pending"], clocks=["resolution"])
)
NEW_CYCLE = TicketPolicy(goals=GOALS, reopen="new_cycle")
# The domain.md office calendar: Mon-Thu 09-17, Friday 09-13 and 14-18, Christmas off.
OFFICE = BusinessCalendar(
    "Europe/Berlin",
    WorkingHours((((540, 1020),),) * 4 + (((540, 780), (840, 1080)), (), ())),
    frozenset({date(2026, 12, 24), date(2026, 12, 25)}),
)


def utc(text: str) -> int:
    return int(datetime.fromisoformat(f"{text}+00:00").timestamp())


def berlin(text: str) -> int:
    """Berlin wall time in December: CET, UTC+1."""
    return int(datetime.fromisoformat(f"{text}+01:00").timestamp())


def up(
    time: int,
    status: TicketStatus = "open",
    priority: str = "P1",
    *,
    responded: bool = False,
    kind: str = "incident",
) -> TicketUpdate:
    return TicketUpdate(time, status, priority, responded, kind)


def clocks_24x7(
    updates: list[TicketUpdate], at: int, policy: TicketPolicy = PLAIN, ticket: str = "T"
) -> dict[str, TicketClock]:
    """The clocks of the last cycle by name, on the 24x7 calendar."""
    found = ticket_clocks(ticket, updates, policy, ROUND_THE_CLOCK, at)
    return {c.clock: c for c in latest_cycles(found)}


D = "2026-12-01T"


def test_response_met_on_24x7() -> None:
    # Created 10:00, first response 10:20: 20 min of a 30 min goal; the deadline is 10:30.
    c = clocks_24x7(
        [up(utc(D + "10:00"), "new"), up(utc(D + "10:20"), responded=True)], utc(D + "12:00")
    )["response"]
    assert (c.stopped_at, c.elapsed_seconds, c.paused_seconds) == (utc(D + "10:20"), 1200, 0)
    assert (c.breach_at, c.status, c.used_share) == (utc(D + "10:30"), "met", 1200 / 1800)


def test_response_breached_on_24x7() -> None:
    # Response at 10:45: 45 min > 30 min. The deadline 10:30 lies before the stop.
    c = clocks_24x7(
        [up(utc(D + "10:00"), "new"), up(utc(D + "10:45"), responded=True)], utc(D + "12:00")
    )["response"]
    assert (c.elapsed_seconds, c.breach_at, c.status) == (2700, utc(D + "10:30"), "breached")


def test_response_exactly_at_the_goal_is_met() -> None:
    # 10:00 -> 10:30 is exactly 1800 s: elapsed <= goal, so met.
    c = clocks_24x7(
        [up(utc(D + "10:00"), "new"), up(utc(D + "10:30"), responded=True)], utc(D + "12:00")
    )["response"]
    assert (c.elapsed_seconds, c.status) == (1800, "met")


def test_business_clock_over_a_weekend_in_flight_and_at_risk() -> None:
    # Fri 4 Dec 16:00, P1 resolution 4 h: Fri 16-18 (2 h) + Mon 09-11 (2 h) -> Mon 11:00.
    # At Mon 10:00: 2 h + 1 h = 10,800 s used = 75 % of the goal, still in flight.
    updates = [up(berlin("2026-12-04T16:00"), "new")]
    found = ticket_clocks("T", updates, PLAIN, OFFICE, berlin("2026-12-07T10:00"))
    resolution = next(c for c in found if c.clock == "resolution")
    assert resolution.breach_at == berlin("2026-12-07T11:00")
    assert (resolution.elapsed_seconds, resolution.status) == (10_800, "in_flight")
    assert at_risk(found, 0.75) == [resolution]
    # The response clock (30 min) ran out at Fri 16:30 with nobody answering: breached.
    response = next(c for c in found if c.clock == "response")
    assert (response.breach_at, response.status) == (berlin("2026-12-04T16:30"), "breached")


def test_split_day_lunch_break_is_not_counted() -> None:
    # Fri 11 Dec 12:45: 12:45-13:00 (15 min), lunch 13-14, 14:00-14:15 -> deadline 14:15.
    # Response at 14:10 = 15 + 10 min = 1,500 s: met.
    updates = [
        up(berlin("2026-12-11T12:45"), "new"),
        up(berlin("2026-12-11T14:10"), responded=True),
    ]
    found = ticket_clocks("T", updates, PLAIN, OFFICE, berlin("2026-12-11T18:00"))
    c = found[0]
    assert c.clock == "response"
    assert (c.breach_at, c.elapsed_seconds, c.status) == (berlin("2026-12-11T14:15"), 1500, "met")


def test_holidays_and_weekend_in_the_middle() -> None:
    # Wed 23 Dec 15:00, P2 resolution 8 h: Wed 15-17 (2 h), Thu 24 and Fri 25 are holidays,
    # Sat/Sun off, Mon 28 09-15 (6 h) -> deadline Mon 28 Dec 15:00.
    # Resolved Mon 14:00: 2 h + 5 h = 25,200 s, met.
    updates = [
        up(berlin("2026-12-23T15:00"), "new", "P2"),
        up(berlin("2026-12-23T15:30"), "in_progress", "P2", responded=True),
        up(berlin("2026-12-28T14:00"), "resolved", "P2"),
    ]
    found = {
        c.clock: c for c in ticket_clocks("T", updates, PLAIN, OFFICE, berlin("2026-12-31T00:00"))
    }
    assert found["resolution"].breach_at == berlin("2026-12-28T15:00")
    assert (found["resolution"].elapsed_seconds, found["resolution"].status) == (25_200, "met")
    # Response 1 h: Wed 15:00-15:30 = 1,800 s, deadline Wed 16:00.
    assert (found["response"].elapsed_seconds, found["response"].breach_at) == (
        1800,
        berlin("2026-12-23T16:00"),
    )


def test_created_outside_hours_starts_counting_at_the_next_working_minute() -> None:
    # Sat 12 Dec 10:00, answered Sun 12:00: no business time passed (0 s, met); the 30 min
    # goal would have run out Mon 14 Dec 09:30.
    updates = [
        up(berlin("2026-12-12T10:00"), "new"),
        up(berlin("2026-12-13T12:00"), responded=True),
    ]
    c = ticket_clocks("T", updates, PLAIN, OFFICE, berlin("2026-12-14T12:00"))[0]
    assert (c.elapsed_seconds, c.breach_at, c.status) == (0, berlin("2026-12-14T09:30"), "met")


PENDING_HISTORY = [
    up(utc(D + "10:00"), "new"),
    up(utc(D + "10:10"), "pending"),  # waiting for the customer before anyone answered
    up(utc(D + "10:40"), "open"),
    up(utc(D + "10:50"), "in_progress", responded=True),
    up(utc(D + "12:00"), "resolved"),
]


def test_pause_before_the_first_response_stops_both_clocks() -> None:
    # Response: 10:00-10:10 (10 min) + 10:40-10:50 (10 min) = 1,200 s, pending 30 min paused.
    # Deadline: 10 min, then the pause 10:10-10:40, then 20 min more -> 11:00.
    found = clocks_24x7(PENDING_HISTORY, utc(D + "13:00"), PAUSE_BOTH)
    response, resolution = found["response"], found["resolution"]
    assert (response.elapsed_seconds, response.paused_seconds) == (1200, 1800)
    assert (response.breach_at, response.status) == (utc(D + "11:00"), "met")
    # Resolution: 10:00-12:00 = 2 h minus 30 min pending = 5,400 s; deadline 14:00 + 30 min.
    assert (resolution.elapsed_seconds, resolution.paused_seconds) == (5400, 1800)
    assert (resolution.breach_at, resolution.status) == (utc(D + "14:30"), "met")


def test_pause_for_resolution_only_leaves_the_response_clock_running() -> None:
    # Response counts pending too: 10:00-10:50 = 3,000 s > 1,800 s, breached at 10:30.
    found = clocks_24x7(PENDING_HISTORY, utc(D + "13:00"), PAUSE_RESOLUTION)
    response, resolution = found["response"], found["resolution"]
    assert (response.elapsed_seconds, response.paused_seconds) == (3000, 0)
    assert (response.breach_at, response.status) == (utc(D + "10:30"), "breached")
    assert (resolution.elapsed_seconds, resolution.paused_seconds) == (5400, 1800)


def test_response_while_pending_stops_the_response_clock() -> None:
    # Pending from 10:10; the agent's answer at 10:20 arrives while still pending.
    # Elapsed 10:00-10:10 = 600 s, paused 10:10-10:20 = 600 s; deadline 10:40 (20 min left
    # after the pause known so far).
    updates = [
        up(utc(D + "10:00"), "new"),
        up(utc(D + "10:10"), "pending"),
        up(utc(D + "10:20"), "pending", responded=True),
    ]
    c = clocks_24x7(updates, utc(D + "11:00"), PAUSE_BOTH)["response"]
    assert (c.stopped_at, c.elapsed_seconds, c.paused_seconds) == (utc(D + "10:20"), 600, 600)
    assert (c.breach_at, c.status) == (utc(D + "10:40"), "met")


def test_running_clock_in_a_pause_assumes_no_further_pause() -> None:
    # Pending since 10:10 and still pending at 11:00: elapsed 10 min, paused 50 min so far.
    # The resolution deadline assumes the clock restarts now: 10:00 + 4 h + 50 min = 14:50.
    updates = [up(utc(D + "10:00"), "new"), up(utc(D + "10:10"), "pending", responded=True)]
    c = clocks_24x7(updates, utc(D + "11:00"), PAUSE_BOTH)["resolution"]
    assert (c.elapsed_seconds, c.paused_seconds) == (600, 3000)
    assert (c.breach_at, c.status, c.stopped_at) == (utc(D + "14:50"), "in_flight", None)


REOPENED = [
    up(utc(D + "10:00"), "new"),
    up(utc(D + "10:05"), "in_progress", responded=True),
    up(utc(D + "11:00"), "resolved"),
    up(utc(D + "13:00"), "open"),  # the customer says it is not fixed
    up(utc(D + "14:00"), "closed"),
]


def test_reopen_continue_counts_the_resolved_period_as_paused() -> None:
    # Resolution: 10-11 (1 h) + 13-14 (1 h) = 7,200 s; resolved 11-13 paused = 7,200 s.
    # Deadline: 4 h of open time = 10:00 + 4 h + 2 h paused = 16:00. One cycle only.
    found = ticket_clocks("T", REOPENED, PLAIN, ROUND_THE_CLOCK, utc(D + "18:00"))
    assert [c.cycle for c in found] == [0, 0]
    resolution = found[1]
    assert (resolution.elapsed_seconds, resolution.paused_seconds) == (7200, 7200)
    assert (resolution.stopped_at, resolution.breach_at) == (utc(D + "14:00"), utc(D + "16:00"))
    assert resolution.status == "met"
    # Between resolve and reopen the clock had stopped at 11:00 with 3,600 s.
    before = clocks_24x7(REOPENED, utc(D + "12:00"))["resolution"]
    assert (before.stopped_at, before.elapsed_seconds) == (utc(D + "11:00"), 3600)


def test_reopen_new_cycle_starts_fresh_clocks_and_remembers_breaches() -> None:
    # Cycle 0: 10:00 -> resolved 15:00 = 5 h > 4 h, breached. Reopened 16:00, closed 17:00:
    # cycle 1 resolution = 1 h, met, but ever_breached. Cycle 1 has no new response, so its
    # response clock stops at the resolution: 1 h > 30 min, breached.
    updates = [
        up(utc(D + "10:00"), "new"),
        up(utc(D + "10:05"), responded=True),
        up(utc(D + "15:00"), "resolved"),
        up(utc(D + "16:00"), "open"),
        up(utc(D + "17:00"), "closed"),
    ]
    found = ticket_clocks("T", updates, NEW_CYCLE, ROUND_THE_CLOCK, utc(D + "18:00"))
    by_key = {(c.cycle, c.clock): c for c in found}
    assert by_key[0, "resolution"].status == "breached"
    assert by_key[0, "response"].elapsed_seconds == 300
    last = by_key[1, "resolution"]
    assert (last.started_at, last.elapsed_seconds, last.status) == (utc(D + "16:00"), 3600, "met")
    assert last.ever_breached
    assert latest_cycles(found) == [by_key[1, "response"], last]


def test_priority_raised_mid_ticket_counts_from_creation() -> None:
    # P3 at 10:00, raised to P1 at 12:00; P1's 4 h count from creation: deadline 14:00.
    # At 13:00: 3 h used of 4 h, in flight, 75 %.
    updates = [up(utc(D + "10:00"), "new", "P3"), up(utc(D + "12:00"), "open", "P1")]
    c = clocks_24x7(updates, utc(D + "13:00"))["resolution"]
    assert (c.priority, c.goal_seconds, c.breach_at) == ("P1", 4 * HOUR, utc(D + "14:00"))
    assert (c.status, c.used_share) == ("in_flight", 0.75)


def test_priority_raised_after_the_new_deadline_passed_is_breached_at_once() -> None:
    # Raised to P1 at 14:30, when 4 h since creation had already passed at 14:00.
    updates = [up(utc(D + "10:00"), "new", "P3"), up(utc(D + "14:30"), "open", "P1")]
    c = clocks_24x7(updates, utc(D + "14:30"))["resolution"]
    assert (c.breach_at, c.elapsed_seconds, c.status) == (utc(D + "14:00"), 16_200, "breached")


def test_priority_lowered_mid_ticket_takes_the_longer_goal() -> None:
    # P1 lowered to P3 (3 d) at 12:00; at 15:00 5 h are used: in flight, due 4 Dec 10:00.
    updates = [up(utc(D + "10:00"), "new", "P1"), up(utc(D + "12:00"), "open", "P3")]
    c = clocks_24x7(updates, utc(D + "15:00"))["resolution"]
    assert (c.goal_seconds, c.breach_at) == (3 * DAY, utc("2026-12-04T10:00"))
    assert (c.elapsed_seconds, c.status) == (5 * HOUR, "in_flight")


def test_a_stopped_clock_keeps_the_priority_it_stopped_under() -> None:
    # Answered at 10:20 as P2 (1 h goal, met); raised to P1 at 11:00. The response stays a
    # P2 response; the running resolution clock is P1.
    updates = [
        up(utc(D + "10:00"), "new", "P2"),
        up(utc(D + "10:20"), "open", "P2", responded=True),
        up(utc(D + "11:00"), "open", "P1"),
    ]
    found = clocks_24x7(updates, utc(D + "12:00"))
    assert (found["response"].priority, found["response"].goal_seconds) == ("P2", HOUR)
    assert found["response"].status == "met"
    assert found["resolution"].priority == "P1"


def test_open_at_period_end_in_flight_then_breached() -> None:
    # Opened 10:00, P1 4 h: at 13:00 3 h used (in flight); at 14:00 exactly 4 h used, the
    # deadline is reached and the clock still runs: breached.
    updates = [up(utc(D + "10:00"), "new")]
    assert clocks_24x7(updates, utc(D + "13:00"))["resolution"].status == "in_flight"
    at_deadline = clocks_24x7(updates, utc(D + "14:00"))["resolution"]
    assert (at_deadline.breach_at, at_deadline.status) == (utc(D + "14:00"), "breached")


def test_priority_without_a_goal() -> None:
    # P9 has no goals: no deadline, no share, status no_goal.
    c = clocks_24x7([up(utc(D + "10:00"), "new", "P9")], utc(D + "12:00"))["resolution"]
    assert (c.goal_seconds, c.breach_at, c.used_share, c.status) == (None, None, None, "no_goal")
    assert c.elapsed_seconds == 2 * HOUR


def test_created_and_closed_in_the_same_second() -> None:
    # Both clocks stop at creation: 0 s, met.
    updates = [up(utc(D + "10:00"), "new"), up(utc(D + "10:00"), "closed")]
    found = clocks_24x7(updates, utc(D + "12:00"))
    for c in found.values():
        assert (c.stopped_at, c.elapsed_seconds, c.status) == (utc(D + "10:00"), 0, "met")


def test_updates_out_of_order_and_after_at() -> None:
    # Delivered out of order they are sorted by time; the response at 10:40 is after `at`
    # (10:35), so unknown: the clock runs, 35 min > 30 min, breached.
    updates = [up(utc(D + "10:40"), responded=True), up(utc(D + "10:00"), "new")]
    c = clocks_24x7(updates, utc(D + "10:35"))["response"]
    assert (c.started_at, c.stopped_at, c.elapsed_seconds, c.status) == (
        utc(D + "10:00"),
        None,
        2100,
        "breached",
    )
    assert clocks_24x7(updates, utc(D + "11:00"))["response"].elapsed_seconds == 2400


def test_compliance_counts_stopped_in_window_and_running_at_its_end() -> None:
    window = Interval(utc("2026-12-01T00:00"), utc("2026-12-02T00:00"))
    tickets = {
        "A": [up(utc(D + "10:00"), "new"), up(utc(D + "12:00"), "resolved")],  # 2 h: met
        "B": [up(utc(D + "10:00"), "new"), up(utc(D + "16:00"), "resolved")],  # 6 h: breached
        "C": [up(utc(D + "22:00"), "new")],  # open, 2 h at the end: in flight
        "D": [up(utc(D + "08:00"), "new")],  # open, 16 h at the end: breached
        # Stopped before the window: not counted.
        "E": [up(utc("2026-11-30T10:00"), "new"), up(utc("2026-11-30T11:00"), "resolved")],
        "F": [up(utc(D + "10:00"), "new", "P9")],  # no goal: left out
        "G": [up(window.end, "new")],  # starts at the window end: not in it
        "H": [up(utc(D + "23:50"), "new", kind="request")],  # only in flight
    }
    clocks = [
        c
        for t, ups in tickets.items()
        for c in ticket_clocks(t, ups, PLAIN, ROUND_THE_CLOCK, window.end)
    ]
    rows = {(r.kind, r.clock): r for r in compliance(clocks, window)}
    resolution = rows["incident", "resolution"]
    # met A; breached B, D; in flight C -> 1 / (1 + 2).
    assert (resolution.met, resolution.breached, resolution.in_flight) == (1, 2, 1)
    assert resolution.ratio == pytest.approx(1 / 3)
    # No response events: A and B stop their response clocks at resolution (2 h, 6 h),
    # C (2 h) and D run past 30 min: all four breached, ratio 0.
    response = rows["incident", "response"]
    assert (response.met, response.breached, response.ratio) == (0, 4, 0.0)
    # Only in flight: no ratio rather than 0 % or 100 %.
    assert rows["request", "resolution"].ratio is None
    assert {r.priority for r in rows.values()} == {"P1"}


def test_at_risk_at_75_percent() -> None:
    # At 12:00: X (09:00) used 3 h of 4 h = 75 %: at risk; Y (09:01) 74.6 %: not yet;
    # Z (07:00) 5 h: breached already, so not "at risk". Response clocks are all breached.
    at = utc(D + "12:00")
    clocks = [
        c
        for t, start in (("X", "09:00"), ("Y", "09:01"), ("Z", "07:00"))
        for c in ticket_clocks(t, [up(utc(D + start), "new")], PLAIN, ROUND_THE_CLOCK, at)
    ]
    risky = at_risk(clocks, PLAIN.at_risk)
    assert [(c.ticket_id, c.clock, c.used_share) for c in risky] == [("X", "resolution", 0.75)]


def test_mttr_of_resolved_incidents() -> None:
    # Incidents resolved after 1 h and 2 h -> 5,400 s; the request and the open incident
    # do not count.
    at = utc(D + "20:00")
    tickets = {
        "I1": [up(utc(D + "10:00"), "new"), up(utc(D + "11:00"), "resolved")],
        "I2": [up(utc(D + "10:00"), "new"), up(utc(D + "12:00"), "closed")],
        "R": [
            up(utc(D + "10:00"), "new", kind="request"),
            up(utc(D + "10:30"), "resolved", kind="request"),
        ],
        "I3": [up(utc(D + "10:00"), "new")],
    }
    clocks = [
        c for t, ups in tickets.items() for c in ticket_clocks(t, ups, PLAIN, ROUND_THE_CLOCK, at)
    ]
    assert mttr(clocks) == 5400
    assert mttr([]) is None


def test_mttr_is_business_time() -> None:
    # Fri 4 Dec 17:00 -> Mon 7 Dec 10:00 on the office calendar: Fri 17-18 + Mon 9-10 = 2 h.
    updates = [up(berlin("2026-12-04T17:00"), "new"), up(berlin("2026-12-07T10:00"), "resolved")]
    clocks = ticket_clocks("T", updates, PLAIN, OFFICE, berlin("2026-12-08T00:00"))
    assert mttr(clocks) == 2 * HOUR
