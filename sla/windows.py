"""Reporting windows: calendar months in a service's time zone and rolling spans, in UTC seconds."""

from __future__ import annotations

from datetime import date

from sla.calendar import local_date, local_to_epoch, zone
from sla.intervals import Interval


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def month_window(tz: str, year: int, month: int) -> Interval:
    """From local midnight on the 1st of the month to local midnight on the next 1st."""
    zone_info = zone(tz)
    next_year, next_month = _next_month(year, month)
    return Interval(
        local_to_epoch(zone_info, date(year, month, 1)),
        local_to_epoch(zone_info, date(next_year, next_month, 1)),
    )


def month_of(tz: str, instant: int) -> tuple[int, int]:
    """The ``(year, month)`` of ``instant`` on the wall clock of ``tz``."""
    day = local_date(zone(tz), instant)
    return day.year, day.month


def month_containing(tz: str, now: int) -> Interval:
    """The whole local month ``now`` falls in; figures as of ``now`` count it up to then."""
    return month_window(tz, *month_of(tz, now))


def rolling(now: int, seconds: int) -> Interval:
    """The ``seconds`` that end at ``now``."""
    return Interval(now - seconds, now)


def previous_months(tz: str, now: int, n: int) -> list[tuple[int, int]]:
    """The ``n`` complete local months before ``now``'s month, oldest first."""
    year, month = month_of(tz, now)
    # Count months from year 0 so stepping back across January is plain arithmetic.
    current = year * 12 + month - 1
    return [(index // 12, index % 12 + 1) for index in range(current - n, current)]
