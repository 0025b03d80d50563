"""Availability against agreed service time: outages, downtime, MTBF/MTRS/MTBSI, error budget.

Every rule here is written out with a worked example in docs/formulas.md.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from sla.calendar import BusinessCalendar
from sla.errors import ConfigError, InvalidEventError
from sla.intervals import Interval, InvalidIntervalError, intersect, subtract, total, union

Impact = Literal["full", "partial"]
OutageSource = Literal["outage", "status", "probes"]
ProbeResult = tuple[int, bool]
"""``(time, ok)`` of one probe run."""
StatusChange = tuple[int, str]
"""``(time, state)`` with state ``up``, ``down`` or ``degraded``."""

_STATUS_IMPACT: dict[str, Impact | None] = {"up": None, "down": "full", "degraded": "partial"}


@dataclass(frozen=True, slots=True)
class Outage:
    """Lost (``full``) or degraded (``partial``) service; ``end`` is None while ongoing."""

    start: int
    end: int | None
    planned: bool = False
    impact: Impact = "full"
    source: OutageSource = "outage"
    ref: str | None = None
    outage_id: str | None = None

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise InvalidIntervalError(f"outage ends before it starts: {self.start} > {self.end}")

    def span(self, window: Interval, now: int) -> Interval | None:
        """The part inside ``window``; an ongoing outage runs to ``min(now, window.end)``."""
        end = self.end if self.end is not None else min(now, window.end)
        start, end = max(self.start, window.start), min(end, window.end)
        return Interval(start, end) if start < end else None


@dataclass(frozen=True, slots=True)
class OutageReport:
    """One outage as the monthly report lists it."""

    start: int
    end: int | None
    duration_seconds: int
    service_seconds: int
    planned: bool
    impact: Impact
    source: OutageSource
    ref: str | None
    outage_id: str | None


@dataclass(frozen=True, slots=True)
class AvailabilityResult:
    """Availability of one service over one window."""

    agreed_seconds: int
    downtime_seconds: int
    ratio: float | None
    agreed_seconds_24x7: int
    downtime_seconds_24x7: int
    ratio_24x7: float | None
    partial_downtime_seconds: int
    outages: int
    mtbf_seconds: float | None
    mtrs_seconds: float | None
    mtbsi_seconds: float | None
    outage_list: tuple[OutageReport, ...]


@dataclass(frozen=True, slots=True)
class ErrorBudget:
    """Allowed downtime for an objective and the share of it still unspent (negative: overspent)."""

    budget_seconds: float
    remaining_ratio: float | None


@dataclass(frozen=True, slots=True)
class ProbeIsland:
    """A maximal run of consecutive probe results of one check with the same outcome."""

    ok: bool
    start: int
    end: int
    count: int


def probe_islands(results: Sequence[ProbeResult]) -> list[ProbeIsland]:
    """Runs of equal outcomes, in time order: the compressed form the outage rule works on."""
    islands: list[ProbeIsland] = []
    for time, ok in sorted(results, key=lambda result: result[0]):
        if islands and islands[-1].ok == ok:
            last = islands[-1]
            islands[-1] = ProbeIsland(ok, last.start, time, last.count + 1)
        else:
            islands.append(ProbeIsland(ok, time, time, 1))
    return islands


def outages_from_probe_islands(
    islands: Sequence[ProbeIsland],
    failures: int,
    recoveries: int = 1,
    *,
    now: int | None = None,
    stale_after: int | None = None,
) -> list[Outage]:
    """Outages opened by ``failures`` consecutive failed probes, closed by ``recoveries`` successes.

    The outage starts at the first failure of the run, the earliest evidence of the outage
    (the later failures only confirm it), and ends at the first success of the closing run.
    An outage still open whose last result is older than ``stale_after`` at ``now`` ends at
    that last failed probe: when a check stops reporting, its evidence of downtime stops too.
    """
    if failures < 1 or recoveries < 1:
        raise ConfigError(f"failures and recoveries must be >= 1, got {failures}, {recoveries}")
    outages: list[Outage] = []
    opened: int | None = None
    for island in islands:
        if opened is None and not island.ok and island.count >= failures:
            opened = island.start
        elif opened is not None and island.ok and island.count >= recoveries:
            outages.append(Outage(opened, island.start, source="probes"))
            opened = None
    if opened is not None:
        last = islands[-1].end
        stale = now is not None and stale_after is not None and now - last > stale_after
        outages.append(Outage(opened, last if stale else None, source="probes"))
    return outages


def outages_from_probe_results(
    results: Sequence[ProbeResult], failures: int, recoveries: int = 1
) -> list[Outage]:
    """`outages_from_probe_islands` over raw ``(time, ok)`` results."""
    return outages_from_probe_islands(probe_islands(results), failures, recoveries)


def outages_from_status_changes(changes: Sequence[StatusChange]) -> list[Outage]:
    """Outages from one monitor's state changes: ``down`` full, ``degraded`` partial, ``up`` ends.

    A repeated state is no change, so a second ``down`` does not reopen the outage. Each
    monitor (alert, status page, ...) needs its own call: one state machine for several
    monitors would let the first ``up`` end an outage another monitor still reports.
    """
    outages: list[Outage] = []
    current: Impact | None = None
    since = 0
    for time, state in sorted(changes, key=lambda change: change[0]):
        if state not in _STATUS_IMPACT:
            raise InvalidEventError("invalid_field", f"unknown status state {state!r}")
        impact = _STATUS_IMPACT[state]
        if impact == current:
            continue
        if current is not None:
            outages.append(Outage(since, time, impact=current, source="status"))
        current, since = impact, time
    if current is not None:
        outages.append(Outage(since, None, impact=current, source="status"))
    return outages


def agreed_service_time(
    cal: BusinessCalendar, window: Interval, maintenance: Iterable[Interval]
) -> list[Interval]:
    """Service hours within ``window`` minus planned maintenance."""
    return subtract(cal.working_intervals(window.start, window.end), maintenance)


def _spans(outages: Iterable[Outage], window: Interval, now: int) -> list[tuple[Outage, Interval]]:
    """The outages that reach into ``window`` as of ``now``, by start, each with its part in it."""
    spanned = [(o, o.span(window, now)) for o in sorted(outages, key=lambda o: o.start)]
    return [(o, s) for o, s in spanned if s is not None]


def _excluded(
    spans: Iterable[tuple[Outage, Interval]], maintenance: Iterable[Interval]
) -> list[Interval]:
    """What leaves the agreed service time: maintenance, and planned outages (agreed downtime)."""
    return union([*maintenance, *(s for o, s in spans if o.planned)])


def agreed_service_seconds(
    cal: BusinessCalendar,
    window: Interval,
    outages: Iterable[Outage],
    maintenance: Iterable[Interval],
    now: int,
) -> int:
    """The agreed service time of ``window`` in seconds, as ``availability`` counts it."""
    excluded = _excluded(_spans(outages, window, now), maintenance)
    return total(agreed_service_time(cal, window, excluded))


def _ratio(agreed: int, downtime: int) -> float | None:
    return (agreed - downtime) / agreed if agreed else None


def _count_hit(spans: list[Interval], agreed: list[Interval]) -> int:
    """How many of the disjoint sorted ``spans`` share at least one second with ``agreed``."""
    starts = [s.start for s in spans]
    return len({bisect.bisect_right(starts, piece.start) - 1 for piece in intersect(spans, agreed)})


def availability(
    cal: BusinessCalendar,
    window: Interval,
    outages: Iterable[Outage],
    maintenance: Iterable[Interval],
    now: int,
    *,
    count_partial: bool = False,
) -> AvailabilityResult:
    """Availability over ``window``: agreed service time, downtime, ratios, MTBF/MTRS/MTBSI."""
    in_window = _spans(outages, window, now)
    excluded = _excluded(in_window, maintenance)
    agreed = agreed_service_time(cal, window, excluded)
    agreed_24x7 = subtract([window], excluded)

    unplanned = [(o, s) for o, s in in_window if not o.planned]
    counted = union(s for o, s in unplanned if o.impact == "full" or count_partial)
    full = union(s for o, s in unplanned if o.impact == "full")
    partial = union(s for o, s in unplanned if o.impact == "partial")

    agreed_seconds, downtime = total(agreed), total(intersect(counted, agreed))
    agreed_24x7_seconds = total(agreed_24x7)
    downtime_24x7 = total(intersect(counted, agreed_24x7))
    n = _count_hit(counted, agreed)
    return AvailabilityResult(
        agreed_seconds=agreed_seconds,
        downtime_seconds=downtime,
        ratio=_ratio(agreed_seconds, downtime),
        agreed_seconds_24x7=agreed_24x7_seconds,
        downtime_seconds_24x7=downtime_24x7,
        ratio_24x7=_ratio(agreed_24x7_seconds, downtime_24x7),
        partial_downtime_seconds=total(subtract(intersect(partial, agreed), full)),
        outages=n,
        mtbf_seconds=(agreed_seconds - downtime) / n if n else None,
        mtrs_seconds=downtime / n if n else None,
        mtbsi_seconds=agreed_seconds / n if n else None,
        outage_list=tuple(
            OutageReport(
                start=o.start,
                end=o.end,
                duration_seconds=s.seconds,
                service_seconds=total(intersect([s], agreed)),
                planned=o.planned,
                impact=o.impact,
                source=o.source,
                ref=o.ref,
                outage_id=o.outage_id,
            )
            for o, s in in_window
        ),
    )


def _allowed_error(objective_percent: float) -> Fraction:
    """``1 - objective`` as an exact fraction (99.9 -> 1/1000, not 0.0010000000000000009)."""
    if not 0 <= objective_percent <= 100:
        raise ConfigError(f"objective must be a percentage in [0, 100], got {objective_percent}")
    return 1 - Fraction(str(objective_percent)) / 100


def error_budget(
    objective_percent: float, agreed_seconds: int, downtime_seconds: int
) -> ErrorBudget:
    """budget = (1 - objective) x AST; remaining = 1 - DT / budget (None when the budget is 0)."""
    budget = _allowed_error(objective_percent) * agreed_seconds
    remaining = 1 - downtime_seconds / budget if budget else None
    return ErrorBudget(float(budget), None if remaining is None else float(remaining))


def burn_rate(error_ratio: float, objective_percent: float) -> float | None:
    """How fast the budget burns: error ratio / (1 - objective); None for a 100 % objective."""
    allowed = _allowed_error(objective_percent)
    return float(Fraction(error_ratio) / allowed) if allowed else None
