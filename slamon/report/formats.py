"""How the report prints figures for people: percentages, durations and local times."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from sla.calendar import zone


def percent(ratio: float | None, digits: int = 1, *, high_is_bad: bool = False) -> str:
    """A ratio as a percentage rounded to the unfavourable side: down (99.8999 % never shows
    as a met 99.900 %), or up for what should stay low, such as utilization."""
    if ratio is None:
        return "n/a"
    # The decimal a float prints as: 0.999 is 99.9 %, not 99.89999… rounded down.
    rounding = ROUND_CEILING if high_is_bad else ROUND_FLOOR
    shown = (Decimal(repr(ratio)) * 100).quantize(Decimal(1).scaleb(-digits), rounding)
    return f"{shown} %"


def duration(seconds: float | None) -> str:
    """Seconds as the two largest units: ``45 s``, ``12 min``, ``1 h 05 min``, ``3 d 4 h``."""
    if seconds is None:
        return "n/a"
    whole = round(seconds)
    sign = "-" if whole < 0 else ""
    whole = abs(whole)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days} d" + (f" {hours} h" if hours else "")
    elif hours:
        text = f"{hours} h" + (f" {minutes:02d} min" if minutes else "")
    elif minutes:
        text = f"{minutes} min" + (f" {secs:02d} s" if secs else "")
    else:
        text = f"{secs} s"
    return sign + text


def local_time(instant: int | None, timezone: str) -> str:
    """Unix seconds on the wall clock of `timezone`, e.g. ``2026-10-28 14:25 CET``."""
    if instant is None:
        return "ongoing"
    moment = datetime.fromtimestamp(instant, UTC).astimezone(zone(timezone))
    return moment.strftime("%Y-%m-%d %H:%M %Z")
