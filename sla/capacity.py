"""Capacity: utilization max and p95, time above warn and crit, headroom, time to exhaustion.

Every rule here is written out with a worked example in docs/formulas.md.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from sla.config import CapacityThreshold
from sla.intervals import Interval

CapacitySample = tuple[int, float, float]
"""``(time, used, capacity)`` of one sample; utilization = used / capacity."""
CapacityKey = tuple[str, str | None]
"""``(resource, host)`` of one series of samples."""

DEFAULT_TREND_WINDOW: Final = int(CapacityThreshold.model_fields["trend_window"].default)
"""Trailing window of the exhaustion trend when a resource has no thresholds configured."""


@dataclass(frozen=True, slots=True)
class CapacitySummary:
    """Utilization of one resource on one host over one window; threshold figures None without."""

    resource: str
    host: str | None
    samples: int
    max_ratio: float
    p95_ratio: float
    last_ratio: float
    warn_ratio: float | None
    crit_ratio: float | None
    seconds_above_warn: int | None
    seconds_above_crit: int | None
    headroom: float | None
    exhaustion_seconds: int | None
    exhaustion_at: int | None


def _exact(value: float) -> Fraction:
    """The decimal a float was written as (0.85 -> 17/20), not its binary approximation."""
    return Fraction(str(value))


def _ratios(samples: Sequence[CapacitySample], start: int, end: int) -> list[tuple[int, Fraction]]:
    """Exact utilization per second in ``[start, end)``, by time; of two at one second the later
    listed wins."""
    by_time: dict[int, Fraction] = {}
    for time, used, capacity in samples:
        if start <= time < end:
            by_time[time] = _exact(used) / _exact(capacity)
    return sorted(by_time.items())


def nearest_rank(sorted_values: Sequence[Fraction], percent: int) -> Fraction:
    """The nearest-rank percentile: the value at rank ceil(percent/100 x n), counted from 1."""
    rank = -(-percent * len(sorted_values) // 100)
    return sorted_values[max(rank, 1) - 1]


def _max_gap(times: Sequence[int]) -> int:
    """Twice the median sampling interval (0 with fewer than two samples)."""
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    if not gaps:
        return 0
    middle = len(gaps) // 2
    # Twice the median is an integer even when the median of an even count is a half second.
    return gaps[middle] * 2 if len(gaps) % 2 else gaps[middle - 1] + gaps[middle]


def _seconds_above(
    ratios: Sequence[tuple[int, Fraction]], threshold: Fraction, end: int, max_gap: int
) -> int:
    """Seconds during which the holding sample is strictly above ``threshold``."""
    seconds = 0
    for index, (time, ratio) in enumerate(ratios):
        if ratio > threshold:
            following = ratios[index + 1][0] if index + 1 < len(ratios) else end
            seconds += min(following, time + max_gap, end) - time
    return seconds


def _exhaustion_seconds(ratios: Sequence[tuple[int, Fraction]], trend_window: int) -> int | None:
    """Seconds from the last sample until the least-squares line over the trailing
    ``trend_window`` reaches utilization 1; None for a flat or falling trend."""
    last = ratios[-1][0]
    # Times relative to the last sample keep the exact sums small; the intercept is then the
    # trend's value at the last sample.
    points = [(time - last, ratio) for time, ratio in ratios if time >= last - trend_window]
    n = len(points)
    if n < 2:
        return None
    sum_t = sum(t for t, _ in points)
    sum_r = sum((r for _, r in points), Fraction(0))
    sum_tt = sum(t * t for t, _ in points)
    sum_tr = sum((t * r for t, r in points), Fraction(0))
    slope = (n * sum_tr - sum_t * sum_r) / (n * sum_tt - sum_t * sum_t)
    if slope <= 0:
        return None
    at_last = (sum_r - slope * sum_t) / n
    return max(0, math.ceil((1 - at_last) / slope))


def capacity_summary(
    resource: str,
    host: str | None,
    samples: Sequence[CapacitySample],
    window: Interval,
    now: int,
    *,
    threshold: CapacityThreshold | None = None,
) -> CapacitySummary | None:
    """Utilization figures of the samples in ``window`` up to ``now``; None when there are none."""
    end = min(now, window.end)
    ratios = _ratios(samples, window.start, end)
    if not ratios:
        return None
    # Rounding to float never reverses an order, so floats sort and exact values break the ties.
    ordered = sorted((ratio for _, ratio in ratios), key=lambda ratio: (float(ratio), ratio))
    p95 = nearest_rank(ordered, 95)
    exhaustion = _exhaustion_seconds(
        ratios, DEFAULT_TREND_WINDOW if threshold is None else threshold.trend_window
    )
    warn = crit = above_warn = above_crit = headroom = None
    if threshold is not None:
        max_gap = _max_gap([time for time, _ in ratios])
        warn, crit = threshold.warn, threshold.crit
        above_warn = _seconds_above(ratios, _exact(warn), end, max_gap)
        above_crit = _seconds_above(ratios, _exact(crit), end, max_gap)
        headroom = float(_exact(crit) - p95)
    return CapacitySummary(
        resource=resource,
        host=host,
        samples=len(ratios),
        max_ratio=float(ordered[-1]),
        p95_ratio=float(p95),
        last_ratio=float(ratios[-1][1]),
        warn_ratio=warn,
        crit_ratio=crit,
        seconds_above_warn=above_warn,
        seconds_above_crit=above_crit,
        headroom=headroom,
        exhaustion_seconds=exhaustion,
        exhaustion_at=None if exhaustion is None else ratios[-1][0] + exhaustion,
    )


def capacity_summaries(
    series: Mapping[CapacityKey, Sequence[CapacitySample]],
    thresholds: Mapping[str, CapacityThreshold],
    window: Interval,
    now: int,
) -> list[CapacitySummary]:
    """One summary per ``(resource, host)`` with samples in the window, by resource then host."""
    summaries = (
        capacity_summary(resource, host, samples, window, now, threshold=thresholds.get(resource))
        for (resource, host), samples in sorted(
            series.items(), key=lambda item: (item[0][0], item[0][1] is not None, item[0][1] or "")
        )
    )
    return [summary for summary in summaries if summary is not None]
