"""Capacity: utilization max and p95, time above warn and crit, headroom, time to exhaustion.

Every rule here is written out with a worked example in docs/formulas.md.
"""

from __future__ import annotations

import bisect
import itertools
import math
import sys
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


_EPSILON: Final = sys.float_info.epsilon
# How far beyond its rounding-error estimate a float trend must be from a decision (the sign
# of the slope, an integer second) before it is trusted without the exact recomputation.
_SAFETY: Final = 64


def _exact(value: float) -> Fraction:
    """The decimal a float was written as (0.85 -> 17/20), not its binary approximation."""
    return Fraction(repr(value))


def _decimal_ratio(sample: CapacitySample) -> Fraction:
    """Utilization in the decimals the producer wrote: 2.1 / 3 is exactly 7/10."""
    _, used, capacity = sample
    return _exact(used) / _exact(capacity)


def _series(
    samples: Sequence[CapacitySample], start: int, end: int
) -> tuple[list[int], list[float], list[CapacitySample]]:
    """Times, utilizations and samples in ``[start, end)``, by time; of two at one second the
    later listed wins.

    A utilization is the IEEE quotient ``used / capacity``: correctly rounded, so 85 / 100 is
    the float 0.85 like the literal. Decisions a few units in the last place from a
    threshold, or from a whole second of the trend, go back to the decimals.
    """
    by_time = {sample[0]: sample for sample in samples if start <= sample[0] < end}
    kept = [by_time[time] for time in sorted(by_time)]
    return [s[0] for s in kept], [used / capacity for _, used, capacity in kept], kept


def nearest_rank(sorted_values: Sequence[float], percent: int) -> float:
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
    times: Sequence[int],
    ratios: Sequence[float],
    samples: Sequence[CapacitySample],
    threshold: float,
    *,
    end: int,
    max_gap: int,
) -> int:
    """Seconds during which the holding sample is strictly above ``threshold``.

    Within a few units in the last place of the threshold floats cannot tell (2.1 / 3 is
    above 0.7 in binary): there the samples' decimals decide.
    """
    near = _SAFETY * _EPSILON * threshold
    low, high, exact = threshold - near, threshold + near, _exact(threshold)
    following = itertools.chain(itertools.islice(times, 1, None), (end,))
    return sum(
        min(after, time + max_gap, end) - time
        for time, after, ratio, sample in zip(times, following, ratios, samples, strict=True)
        if ratio > high or (ratio >= low and _decimal_ratio(sample) > exact)
    )


def _exhaustion_seconds(
    times: Sequence[int],
    ratios: Sequence[float],
    samples: Sequence[CapacitySample],
    trend_window: int,
) -> int | None:
    """Seconds from the last sample until the least-squares line over the trailing
    ``trend_window`` reaches utilization 1; None for a flat or falling trend.

    Fitted in floats with a running bound on their rounding error; when the answer lies
    within that bound of a decision (slope sign, whole second), it is recomputed exactly.
    """
    last = times[-1]
    first = bisect.bisect_left(times, last - trend_window)
    n = len(times) - first
    if n < 2:
        return None
    # Times relative to the last sample keep the sums small; u(t_last) is then a - b * mean_t.
    ts = [time - last for time in itertools.islice(times, first, None)]
    rs = ratios[first:]
    mean_t = math.fsum(ts) / n
    mean_r = math.fsum(rs) / n
    dts = [t - mean_t for t in ts]
    sxy = math.fsum(dt * (r - mean_r) for dt, r in zip(dts, rs, strict=True))
    sxx = math.fsum(dt * dt for dt in dts)
    scale = math.fsum(abs(dt) * (abs(r) + abs(mean_r)) for dt, r in zip(dts, rs, strict=True))
    slope_error = _SAFETY * _EPSILON * scale
    if abs(sxy) <= slope_error:
        return _exact_exhaustion_seconds(samples[first:])
    if sxy < 0:
        return None
    slope = sxy / sxx
    at_last = mean_r - slope * mean_t
    seconds = (1 - at_last) / slope
    relative = slope_error / abs(sxy) + _SAFETY * _EPSILON
    error = (relative * (abs(mean_r) + abs(slope * mean_t) + 1)) / slope + relative * abs(seconds)
    if (
        seconds <= error
        or min(seconds - math.floor(seconds), math.ceil(seconds) - seconds) <= error
    ):
        return _exact_exhaustion_seconds(samples[first:])
    return math.ceil(seconds)


def _exact_exhaustion_seconds(samples: Sequence[CapacitySample]) -> int | None:
    """``_exhaustion_seconds`` in exact rationals, from the decimals the samples were written as."""
    last = samples[-1][0]
    points = [(sample[0] - last, _decimal_ratio(sample)) for sample in samples]
    n = len(points)
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
    times, ratios, kept = _series(samples, window.start, end)
    if not ratios:
        return None
    ordered = sorted(ratios)
    p95 = nearest_rank(ordered, 95)
    exhaustion = _exhaustion_seconds(
        times, ratios, kept, DEFAULT_TREND_WINDOW if threshold is None else threshold.trend_window
    )
    warn = crit = above_warn = above_crit = headroom = None
    if threshold is not None:
        max_gap = _max_gap(times)
        warn, crit = threshold.warn, threshold.crit
        above_warn = _seconds_above(times, ratios, kept, warn, end=end, max_gap=max_gap)
        above_crit = _seconds_above(times, ratios, kept, crit, end=end, max_gap=max_gap)
        # In the decimals both print as, rounded once: 0.85 - 0.9 is -0.05, not -0.0500…04.
        headroom = float(_exact(crit) - _exact(p95))
    return CapacitySummary(
        resource=resource,
        host=host,
        samples=len(ratios),
        max_ratio=ordered[-1],
        p95_ratio=p95,
        last_ratio=ratios[-1],
        warn_ratio=warn,
        crit_ratio=crit,
        seconds_above_warn=above_warn,
        seconds_above_crit=above_crit,
        headroom=headroom,
        exhaustion_seconds=exhaustion,
        exhaustion_at=None if exhaustion is None else times[-1] + exhaustion,
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
