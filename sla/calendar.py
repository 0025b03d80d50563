"""Business calendars: working time laid on local wall-clock dates, then converted to UTC.

Wall-clock rule for daylight-saving transitions (see docs/formulas.md):

* a wall time that does not exist (spring-forward gap) shifts forward to the first instant
  whose wall clock reads at or after it, i.e. the transition itself (02:30 -> 03:00);
* a wall time that occurs twice (autumn fold) takes its first occurrence (``fold=0``).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sla.config import TWENTY_FOUR_SEVEN
from sla.errors import ConfigError
from sla.intervals import Interval, InvalidIntervalError, clip, subtract, total, union

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 1440
# deadline() looks ahead this far per step; long enough that typical goals resolve in one step.
_LOOKAHEAD_SECONDS = 35 * 86_400

TimeRange = tuple[int, int]
"""Minutes since local midnight, ``[start, end)``; ``end`` may be 1440 (24:00)."""


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; an unknown name is a configuration error."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r}") from exc


def _wall(tz: ZoneInfo, instant: int) -> datetime:
    return datetime.fromtimestamp(instant, tz).replace(tzinfo=None)


def local_to_epoch(tz: ZoneInfo, day: date, minute: int = 0) -> int:
    """UTC epoch second when the wall clock of ``tz`` reads ``minute`` past midnight of ``day``."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    # fold=0 is the first occurrence of an ambiguous time, which is the rule we want.
    first = int(wall.replace(tzinfo=tz).timestamp())
    if _wall(tz, first) == wall:
        return first
    # A nonexistent time: fold=1 maps it before the gap and fold=0 after it, so the
    # transition lies in (before, first]; find the first instant reading at or after `wall`.
    before = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    lo, hi = before, first
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(tz, mid) >= wall:
            hi = mid
        else:
            lo = mid
    return hi


def local_date(tz: ZoneInfo, instant: int) -> date:
    """The wall-clock date in ``tz`` at UTC epoch second ``instant``."""
    return datetime.fromtimestamp(instant, tz).date()


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """Working ranges for each weekday, Monday first, in minutes since local midnight."""

    days: tuple[tuple[TimeRange, ...], ...]

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ConfigError(f"working hours need 7 weekdays, got {len(self.days)}")
        for name, ranges in zip(WEEKDAYS, self.days, strict=True):
            previous_end = 0
            for start, end in ranges:
                if not 0 <= start < end <= MINUTES_PER_DAY:
                    raise ConfigError(f"{name}: invalid range {_hhmm(start)}-{_hhmm(end)}")
                if start < previous_end:
                    raise ConfigError(f"{name}: ranges overlap or are out of order")
                previous_end = end
        if not any(self.days):
            raise ConfigError("working hours have no working time on any weekday")

    @classmethod
    def from_mapping(cls, hours: Mapping[str, Iterable[TimeRange]]) -> WorkingHours:
        """Build from ``{'mon': [(540, 1020)], ...}``; weekdays left out have no working time."""
        unknown = sorted(set(hours) - set(WEEKDAYS))
        if unknown:
            raise ConfigError(f"unknown weekday(s) {', '.join(unknown)}; use {', '.join(WEEKDAYS)}")
        return cls(tuple(tuple(sorted(hours.get(day, ()))) for day in WEEKDAYS))

    def on(self, day: date) -> tuple[TimeRange, ...]:
        """The working ranges of ``day``'s weekday."""
        return self.days[day.weekday()]


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Working hours in a time zone, minus holidays (local dates)."""

    timezone: str
    hours: WorkingHours
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        zone(self.timezone)

    def working_intervals(self, start: int, end: int) -> list[Interval]:
        """Working time within ``[start, end)`` as sorted, disjoint UTC intervals."""
        return list(_working_intervals(self, start, end))


# Every service on one calendar asks for the same window (a month: hundreds of intervals,
# each two time-zone conversions), so the answer is kept; intervals are immutable.
@lru_cache(maxsize=256)
def _working_intervals(cal: BusinessCalendar, start: int, end: int) -> tuple[Interval, ...]:
    window = Interval(start, end)
    tz = zone(cal.timezone)
    day, last = local_date(tz, start), local_date(tz, end)
    spans: list[Interval] = []
    while day <= last:
        if day not in cal.holidays:
            spans.extend(
                Interval(local_to_epoch(tz, day, a), local_to_epoch(tz, day, b))
                for a, b in cal.hours.on(day)
            )
        day += timedelta(days=1)
    return tuple(clip(spans, window))


ROUND_THE_CLOCK = BusinessCalendar("UTC", WorkingHours((((0, MINUTES_PER_DAY),),) * 7))
"""Every second counts: UTC days from 00:00 to 24:00 join into one continuous span."""


class Calendars:
    """A config's business calendars by name, with the built-in ``24x7`` among them."""

    def __init__(self, configs: Mapping[str, CalendarSource[Any]]) -> None:
        self._by_name = {name: calendar_from_config(c) for name, c in configs.items()}

    def __getitem__(self, name: str) -> BusinessCalendar:
        """The calendar called `name`; ``24x7`` is every second, in UTC."""
        return ROUND_THE_CLOCK if name == TWENTY_FOUR_SEVEN else self._by_name[name]


def business_seconds(cal: BusinessCalendar, a: int, b: int, pauses: Iterable[Interval] = ()) -> int:
    """Working seconds of ``cal`` in ``[a, b)`` that are not paused."""
    return total(subtract(cal.working_intervals(a, b), pauses))


def deadline(
    cal: BusinessCalendar, start: int, goal_seconds: int, pauses: Iterable[Interval] = ()
) -> int:
    """Earliest ``t`` with ``business_seconds(cal, start, t, pauses) == goal_seconds``."""
    if goal_seconds < 0:
        raise InvalidIntervalError(f"a business-time goal cannot be negative: {goal_seconds}")
    if goal_seconds == 0:
        return start
    paused = union(pauses)
    pause_starts = [p.start for p in paused]
    remaining, cursor = goal_seconds, start
    while True:
        # Jump over a pause covering the cursor so a long pause costs one step, not many.
        k = bisect.bisect_right(pause_starts, cursor) - 1
        if k >= 0 and paused[k].end > cursor:
            cursor = paused[k].end
        step_end = cursor + _LOOKAHEAD_SECONDS
        for free in subtract(cal.working_intervals(cursor, step_end), paused):
            if free.seconds >= remaining:
                return free.start + remaining
            remaining -= free.seconds
        cursor = step_end


class TimeRangeSource(Protocol):
    """Anything with ``start``/``end`` minutes since midnight (e.g. ``sla.config.TimeRange``)."""

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


_Day = TypeVar("_Day", bound=str)


class CalendarSource(Protocol[_Day]):
    """Anything shaped like ``sla.config.CalendarConfig``; weekdays may be a ``str`` enum."""

    @property
    def timezone(self) -> str: ...

    @property
    def hours(self) -> Mapping[_Day, Sequence[TimeRangeSource]]: ...

    @property
    def holidays(self) -> Sequence[date]: ...


def calendar_from_config(
    cfg: CalendarSource[_Day],
) -> BusinessCalendar:
    """A ``BusinessCalendar`` from a calendar config.

    The config loader has already merged the ``holidays_ics`` file into ``holidays``: this
    package does no I/O.
    """
    hours = WorkingHours.from_mapping(
        {str(day): [(r.start, r.end) for r in ranges] for day, ranges in cfg.hours.items()}
    )
    return BusinessCalendar(cfg.timezone, hours, frozenset(cfg.holidays))


_ICS_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_ICS_DAYS = re.compile(r"^P(?:(\d+)W|(\d+)D)$")


@dataclass(frozen=True, slots=True)
class _Property:
    name: str
    params: str
    value: str
    line: int


def _unfold(text: str) -> list[tuple[int, str]]:
    """Content lines with their first physical line number; RFC 5545 folds are joined."""
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] = (lines[-1][0], lines[-1][1] + raw[1:])
        elif raw.strip():
            lines.append((number, raw))
    return lines


def _parse_property(number: int, line: str) -> _Property:
    quoted = False
    for i, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            head, value = line[:i], line[i + 1 :]
            name, _, params = head.partition(";")
            return _Property(name.strip().upper(), params.upper(), value.strip(), number)
    raise ConfigError(f"holidays ics line {number}: not a 'NAME:VALUE' content line")


def _ics_date(prop: _Property) -> date:
    match = _ICS_DATE.match(prop.value)
    if match is None:
        raise ConfigError(
            f"holidays ics line {prop.line}: {prop.name} {prop.value!r} is not an all-day "
            "date (YYYYMMDD); only all-day events are holidays"
        )
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise ConfigError(f"holidays ics line {prop.line}: {exc}") from exc


def _event_days(event: dict[str, _Property], begin_line: int) -> set[date]:
    if "STATUS" in event and event["STATUS"].value.upper() == "CANCELLED":
        return set()
    if "RRULE" in event:
        raise ConfigError(
            f"holidays ics line {event['RRULE'].line}: recurring events are not supported; "
            "list each holiday as its own event"
        )
    if "DTSTART" not in event:
        raise ConfigError(f"holidays ics line {begin_line}: VEVENT without DTSTART")
    first = _ics_date(event["DTSTART"])
    if "DTEND" in event:
        end = _ics_date(event["DTEND"])
    elif "DURATION" in event:
        match = _ICS_DAYS.match(event["DURATION"].value)
        if match is None:
            raise ConfigError(
                f"holidays ics line {event['DURATION'].line}: DURATION must be whole days "
                f"or weeks (P2D, P1W), got {event['DURATION'].value!r}"
            )
        end = first + timedelta(weeks=int(match[1] or 0), days=int(match[2] or 0))
    else:
        # RFC 5545 3.6.1: an all-day DTSTART without DTEND or DURATION lasts one day.
        end = first + timedelta(days=1)
    if end <= first:
        raise ConfigError(f"holidays ics line {begin_line}: event ends before it starts")
    return {first + timedelta(days=n) for n in range((end - first).days)}


def holidays_from_ics(text: str) -> set[date]:
    """Local dates covered by the all-day VEVENTs of an iCalendar text (DTEND exclusive)."""
    days: set[date] = set()
    components: list[str] = []
    event: dict[str, _Property] = {}
    begin_line = 0
    for number, line in _unfold(text):
        prop = _parse_property(number, line)
        if prop.name == "BEGIN":
            components.append(prop.value.upper())
            if components[-1] == "VEVENT":
                event, begin_line = {}, number
        elif prop.name == "END":
            if not components or components[-1] != prop.value.upper():
                raise ConfigError(f"holidays ics line {number}: unexpected END:{prop.value}")
            if components.pop() == "VEVENT":
                days |= _event_days(event, begin_line)
        elif components and components[-1] == "VEVENT":
            # Properties of nested components (VALARM) are not the event's own.
            event.setdefault(prop.name, prop)
    if components:
        raise ConfigError(f"holidays ics: BEGIN:{components[-1]} is never closed")
    return days
