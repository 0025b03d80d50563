"""Reporting windows: local calendar months in UTC seconds, month to date, rolling spans."""

from __future__ import annotations

from datetime import datetime

from sla.intervals import Interval
from sla.windows import month_containing, month_of, month_window, previous_months, rolling

BERLIN = "Europe/Berlin"
DAY = 86_400


def at(text: str) -> int:
    """UTC epoch seconds of an ISO 8601 time with offset."""
    return int(datetime.fromisoformat(text).timestamp())


def test_march_with_spring_switch_is_one_hour_short() -> None:
    # 1 Mar 00:00 CET = 28 Feb 23:00Z; 1 Apr 00:00 CEST = 31 Mar 22:00Z: 31 days - 1 h.
    window = month_window(BERLIN, 2026, 3)
    assert window == Interval(at("2026-02-28T23:00Z"), at("2026-03-31T22:00Z"))
    assert window.seconds == 31 * DAY - 3600


def test_october_with_autumn_switch_is_one_hour_long() -> None:
    # 1 Oct 00:00 CEST = 30 Sep 22:00Z; 1 Nov 00:00 CET = 31 Oct 23:00Z: 31 days + 1 h.
    assert month_window(BERLIN, 2026, 10).seconds == 31 * DAY + 3600


def test_december_window_ends_on_new_year_and_utc_months_are_plain() -> None:
    assert month_window(BERLIN, 2026, 12).end == at("2027-01-01T00:00+01:00")
    assert month_window("UTC", 2026, 2) == Interval(
        at("2026-02-01T00:00Z"), at("2026-03-01T00:00Z")
    )


def test_month_of_uses_local_wall_clock() -> None:
    # 28 Feb 23:30Z is already 1 Mar 00:30 in Berlin.
    assert month_of(BERLIN, at("2026-02-28T23:30Z")) == (2026, 3)
    assert month_of("UTC", at("2026-02-28T23:30Z")) == (2026, 2)


def test_the_month_containing_now_and_rolling() -> None:
    now = at("2026-03-10T12:00Z")
    # Berlin's March: CET at its start, CEST (from 29 March) at its end.
    assert month_containing(BERLIN, now) == Interval(
        at("2026-02-28T23:00Z"), at("2026-03-31T22:00Z")
    )
    assert rolling(now, 30 * DAY) == Interval(at("2026-02-08T12:00Z"), now)


def test_previous_months_cross_the_new_year_oldest_first() -> None:
    # Berlin is already in January 2026 at 31 Dec 23:30Z; the current month is left out.
    assert previous_months(BERLIN, at("2025-12-31T23:30Z"), 3) == [
        (2025, 10),
        (2025, 11),
        (2025, 12),
    ]
    assert previous_months(BERLIN, at("2026-03-10T12:00Z"), 0) == []
