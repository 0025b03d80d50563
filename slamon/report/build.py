"""The figures of a review pack: a month, its days and the six months before, per service.

Every figure comes from `slamon.compute.compute`, the engine behind `slamon compute`, over
the service's local calendar month, so the pack and the command agree to the last digit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Literal

from pipeline.store import EventStore
from sla.calendar import Calendars, local_to_epoch, zone
from sla.config import ServiceConfig, SlamonConfig
from sla.errors import ConfigError
from sla.intervals import Interval
from sla.service_levels import ServiceFigures
from sla.windows import month_window, previous_months
from slamon.compute import compute
from slamon.report.provenance import Provenance, config_sha256, consistently, slamon_version

TREND_MONTHS = 6
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
# Months whose trend months before them and whose end still have a calendar date.
_YEARS = range(1970, 9999)


@dataclass(frozen=True)
class MonthFigures:
    """One service's figures over one local calendar month."""

    month: str
    window: Interval
    figures: ServiceFigures


@dataclass(frozen=True)
class DayFigures:
    """One service's figures over one local day of the report month."""

    day: date
    window: Interval
    figures: ServiceFigures


@dataclass(frozen=True)
class ServiceReview:
    """What the pack says about one service: the month, its days and the trend before it."""

    service: ServiceConfig
    timezone: str
    month: MonthFigures
    days: tuple[DayFigures, ...]
    trend: tuple[MonthFigures, ...]


@dataclass(frozen=True)
class ReviewPack:
    """The monthly service review of one customer (or of one service without a customer)."""

    scope: str
    scope_kind: Literal["customer", "service"]
    month: str
    services: tuple[ServiceReview, ...]
    provenance: Provenance

    @property
    def base_slug(self) -> str:
        """The directory name of the pack's first revision, e.g. ``2026-10-nordwind-online``."""
        return scope_slug(self.month, self.scope)

    @property
    def slug(self) -> str:
        """The pack's directory name; a restatement adds ``-r<revision>``."""
        revision = self.provenance.revision
        return self.base_slug if revision == 0 else f"{self.base_slug}-r{revision}"

    def restating(self, previous: str, revision: int) -> ReviewPack:
        """This pack as revision `revision`, restating the pack in directory `previous`."""
        provenance = replace(self.provenance, revision=revision, restates=previous)
        return replace(self, provenance=provenance)


def scope_slug(month: str, scope: str) -> str:
    """The directory name of a month's pack of `scope`, before any restatement."""
    return f"{month}-{re.sub(r'[^A-Za-z0-9._-]+', '-', scope).strip('-')}"


def parse_month(text: str) -> tuple[int, int]:
    """``2026-10`` as ``(2026, 10)``."""
    match = _MONTH.fullmatch(text)
    if match is None:
        raise ConfigError(f"--month {text!r}: expected YYYY-MM, e.g. 2026-10")
    year = int(match.group(1))
    if year not in _YEARS:
        raise ConfigError(f"--month {text!r}: the year must be {_YEARS[0]} to {_YEARS[-1]}")
    return year, int(match.group(2))


def previous_month(now: int, timezone: str = "UTC") -> str:
    """The month before ``now``'s month on the wall clock of ``timezone``, as ``YYYY-MM``."""
    ((year, month),) = previous_months(timezone, now, 1)
    return f"{year:04d}-{month:02d}"


def last_closed_month(config: SlamonConfig, now: int) -> str:
    """The latest month that has ended in the time zone of every service, as ``YYYY-MM``.

    A month ends at different instants around the world: a pack of October written at
    00:30 UTC on 1 November would miss New York's last four hours of October.
    """
    zones = {service_timezone(config, s) for s in config.services} or {"UTC"}
    return min(previous_month(now, zone) for zone in zones)


def service_timezone(config: SlamonConfig, service: ServiceConfig) -> str:
    """The time zone of the service's calendar, in which its months begin (``24x7``: UTC)."""
    return Calendars(config.calendars)[service.service_hours].timezone


def month_end(
    config: SlamonConfig, month: str, services: Sequence[ServiceConfig] | None = None
) -> int:
    """When `month` ends in the last of the services' time zones (all configured by default).

    The figures of the month know the events up to this instant, none after it.
    """
    year, number = parse_month(month)
    chosen = config.services if services is None else services
    zones = {service_timezone(config, s) for s in chosen} or {"UTC"}
    return max(month_window(tz, year, number).end for tz in zones)


def select_scopes(
    config: SlamonConfig, *, service: str | None, customer: str | None
) -> list[tuple[str, Literal["customer", "service"], list[ServiceConfig]]]:
    """The packs to write: one service, one customer, or every customer in config order."""
    if service is not None and customer is not None:
        raise ConfigError("give at most one of --service and --customer")
    if service is not None:
        try:
            return [(service, "service", [config.service(service)])]
        except KeyError:
            known = ", ".join(s.id for s in config.services) or "none"
            raise ConfigError(f"--service {service!r}: no such service (known: {known})") from None
    if customer is not None:
        chosen = [s for s in config.services if s.customer == customer]
        if not chosen:
            names = sorted({s.customer for s in config.services if s.customer is not None})
            raise ConfigError(
                f"--customer {customer!r}: no service has this customer "
                f"(known: {', '.join(names) or 'none'})"
            )
        return [(customer, "customer", chosen)]
    groups: dict[str, list[ServiceConfig]] = {}
    scopes: list[tuple[str, Literal["customer", "service"], list[ServiceConfig]]] = []
    for s in config.services:
        if s.customer is None:
            scopes.append((s.id, "service", [s]))
        elif s.customer in groups:
            groups[s.customer].append(s)
        else:
            groups[s.customer] = [s]
            scopes.append((s.customer, "customer", groups[s.customer]))
    return scopes


class _Engine:
    """`compute` over a store, once per window, for the services being reported."""

    def __init__(self, config: SlamonConfig, store: EventStore, now: int) -> None:
        self._config = config
        self._store = store
        self._now = now
        self._done: dict[Interval, dict[str, ServiceFigures]] = {}

    def forget(self) -> None:
        """Drop the figures computed so far (the store has taken events since)."""
        self._done.clear()

    def figures(self, service: str, window: Interval) -> ServiceFigures:
        """The figures of `service` over `window`, as `slamon compute` gives them."""
        if window not in self._done:
            self._done[window] = compute(self._config, self._store, window, self._now)
        return self._done[window][service]


def _days(timezone: str, year: int, month: int) -> list[tuple[date, Interval]]:
    """The local days of a month; DST days are 23 or 25 hours long."""
    tz = zone(timezone)
    days = []
    day = date(year, month, 1)
    while day.month == month:
        following = day + timedelta(days=1)
        days.append((day, Interval(local_to_epoch(tz, day), local_to_epoch(tz, following))))
        day = following
    return days


def month_label(year: int, month: int) -> str:
    """``(2026, 10)`` as ``2026-10``."""
    return f"{year:04d}-{month:02d}"


def _review(
    engine: _Engine, service: ServiceConfig, timezone: str, year: int, month: int
) -> ServiceReview:
    window = month_window(timezone, year, month)
    before = previous_months(timezone, window.start, TREND_MONTHS)
    trend = []
    for y, m in before:
        span = month_window(timezone, y, m)
        trend.append(MonthFigures(month_label(y, m), span, engine.figures(service.id, span)))
    return ServiceReview(
        service=service,
        timezone=timezone,
        month=MonthFigures(month_label(year, month), window, engine.figures(service.id, window)),
        days=tuple(
            DayFigures(day, span, engine.figures(service.id, span))
            for day, span in _days(timezone, year, month)
        ),
        trend=tuple(trend),
    )


def build_packs(
    config: SlamonConfig,
    store: EventStore,
    *,
    month: str,
    service: str | None = None,
    customer: str | None = None,
    now: int,
) -> list[ReviewPack]:
    """The review packs of `month` (``YYYY-MM``) as of `now`, one per customer or service.

    Each carries its provenance: the config's hash and the watermark of the events its
    figures saw (those up to the latest month end of its services, or `now`).
    """
    year, number = parse_month(month)
    scopes = select_scopes(config, service=service, customer=customer)
    reported: Sequence[ServiceConfig] = [s for _, _, chosen in scopes for s in chosen]
    zones = {service_timezone(config, s) for s in reported} or {"UTC"}
    if min(month_window(tz, year, number).start for tz in zones) > now:
        # Its figures would all be empty or zero, read as a perfect month.
        raise ConfigError(f"--month {month!r}: the month has not begun yet")
    # Services are computed independently, so leaving the others out changes no figure.
    engine = _Engine(config.model_copy(update={"services": list(reported)}), store, now)
    packs = []
    for scope, kind, chosen in scopes:
        # A pack's provenance is its own services' alone: which other packs are written in
        # the same run must not change it.
        through = min(now, month_end(config, month, chosen))

        def reviews(chosen: list[ServiceConfig] = chosen) -> tuple[ServiceReview, ...]:
            engine.forget()  # a second run must not reuse figures of the store before the batch
            return tuple(
                _review(engine, s, service_timezone(config, s), year, number) for s in chosen
            )

        services, watermark = consistently(store, through, reviews)
        provenance = Provenance(config_sha256(config), watermark, slamon_version(), now)
        packs.append(ReviewPack(scope, kind, month, services, provenance))
    return packs
