"""Capacity: utilization max and p95, time above warn and crit, headroom, time to exhaustion.

Every rule here is written out with a worked example in docs/formulas.md.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

import numpy as np
from numpy.typing import NDArray

from sla.config import CapacityThreshold
from sla.intervals import Interval

CapacitySample = tuple[int, float, float]
"""``(time, used, capacity)`` of one sample; utilization = used / capacity."""
CapacityKey = tuple[str, str | None]
"""``(resource, host)`` of one series of samples."""

DEFAULT_TREND_WINDOW: Final = int(CapacityThreshold.model_fields["trend_window"].default)
"""Trailing window of the exhaustion trend when a resource has no thresholds configured."""


@dataclass(frozen=True, slots=True, eq=False)
class CapacitySeries:
    """The samples of one resource on one host as columns: 24 bytes a sample, not a tuple's 140.

    A month of samples is held for every window computed over it; as columns it costs what
    the store's rows do and every figure is a handful of array operations.
    """

    times: NDArray[np.int64]
    used: NDArray[np.float64]
    capacity: NDArray[np.float64]

    @classmethod
    def of(cls, samples: Sequence[CapacitySample]) -> CapacitySeries:
        """The columns of `(time, used, capacity)` samples, in the order given."""
        times, used, capacity = zip(*samples, strict=True) if samples else ((), (), ())
        return cls(
            np.array(times, dtype=np.int64),
            np.array(used, dtype=np.float64),
            np.array(capacity, dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.times)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CapacitySeries):
            return NotImplemented
        return (
            np.array_equal(self.times, other.times)
            and np.array_equal(self.used, other.used)
            and np.array_equal(self.capacity, other.capacity)
        )

    __hash__ = None  # type: ignore[assignment]

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_] | slice) -> CapacitySeries:
        """The samples at `index`, in its order."""
        return CapacitySeries(self.times[index], self.used[index], self.capacity[index])

    def samples(self) -> list[CapacitySample]:
        """The samples as `(time, used, capacity)` tuples of plain Python numbers."""
        return list(
            zip(self.times.tolist(), self.used.tolist(), self.capacity.tolist(), strict=True)
        )


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
    # float(): a NumPy scalar's repr is `np.float64(0.85)`.
    return Fraction(repr(float(value)))


def _decimal_ratio(used: float, capacity: float) -> Fraction:
    """Utilization in the decimals the producer wrote: 2.1 / 3 is exactly 7/10."""
    return _exact(used) / _exact(capacity)


def _series(series: CapacitySeries, start: int, end: int) -> CapacitySeries:
    """The samples in ``[start, end)``, by time; of two at one second the later listed wins.

    A utilization is the IEEE quotient ``used / capacity``: correctly rounded, so 85 / 100 is
    the float 0.85 like the literal. Decisions a few units in the last place from a
    threshold, or from a whole second of the trend, go back to the decimals.
    """
    times = series.times
    if len(times) > 1 and bool(np.any(times[1:] < times[:-1])):
        # Stable: samples of one second keep the order they were listed in.
        series = series.take(np.argsort(times, kind="stable"))
        times = series.times
    low, high = np.searchsorted(times, (start, end), side="left")
    series = series.take(slice(int(low), int(high)))
    times = series.times
    last_of_second = np.append(times[1:] != times[:-1], True)
    return series if bool(last_of_second.all()) else series.take(last_of_second)


def nearest_rank(sorted_values: Sequence[float] | NDArray[np.float64], percent: int) -> float:
    """The nearest-rank percentile: the value at rank ceil(percent/100 x n), counted from 1."""
    rank = -(-percent * len(sorted_values) // 100)
    return float(sorted_values[max(rank, 1) - 1])


def _max_gap(times: NDArray[np.int64]) -> int:
    """Twice the median sampling interval (0 with fewer than two samples)."""
    gaps = np.sort(np.diff(times))
    if not len(gaps):
        return 0
    middle = len(gaps) // 2
    # Twice the median is an integer even when the median of an even count is a half second.
    return int(gaps[middle] * 2 if len(gaps) % 2 else gaps[middle - 1] + gaps[middle])


def _seconds_above(
    series: CapacitySeries,
    ratios: NDArray[np.float64],
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
    times = series.times
    following = np.append(times[1:], end)
    held = np.minimum(np.minimum(following, times + max_gap), end) - times
    above = ratios > high
    for i in np.flatnonzero((ratios >= low) & ~above).tolist():
        above[i] = _decimal_ratio(series.used[i], series.capacity[i]) > exact
    return int(held[above].sum())


def _exhaustion_seconds(
    series: CapacitySeries, ratios: NDArray[np.float64], trend_window: int
) -> int | None:
    """Seconds from the last sample until the least-squares line over the trailing
    ``trend_window`` reaches utilization 1; None for a flat or falling trend.

    Fitted in floats with a running bound on their rounding error; when the answer lies
    within that bound of a decision (slope sign, whole second), it is recomputed exactly.
    Every sum is `math.fsum`, correctly rounded, which the bound relies on.
    """
    times = series.times
    last = int(times[-1])
    first = int(np.searchsorted(times, last - trend_window, side="left"))
    n = len(times) - first
    if n < 2:
        return None
    # Times relative to the last sample keep the sums small; u(t_last) is then a - b * mean_t.
    ts = times[first:] - last
    rs = ratios[first:]
    # The integer sum is exact; float() rounds it once, as fsum would.
    mean_t = float(int(ts.sum())) / n
    mean_r = math.fsum(rs.tolist()) / n
    dts = ts - mean_t
    sxy = math.fsum((dts * (rs - mean_r)).tolist())
    sxx = math.fsum((dts * dts).tolist())
    scale = math.fsum((np.abs(dts) * (np.abs(rs) + abs(mean_r))).tolist())
    slope_error = _SAFETY * _EPSILON * scale
    if abs(sxy) <= slope_error:
        return _exact_exhaustion_seconds(series.take(slice(first, None)))
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
        return _exact_exhaustion_seconds(series.take(slice(first, None)))
    return math.ceil(seconds)


def _exact_exhaustion_seconds(series: CapacitySeries) -> int | None:
    """``_exhaustion_seconds`` in exact rationals, from the decimals the samples were written as."""
    samples = series.samples()
    last = samples[-1][0]
    points = [(time - last, _decimal_ratio(used, capacity)) for time, used, capacity in samples]
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
    samples: CapacitySeries | Sequence[CapacitySample],
    window: Interval,
    now: int,
    *,
    threshold: CapacityThreshold | None = None,
) -> CapacitySummary | None:
    """Utilization figures of the samples in ``window`` up to ``now``; None when there are none."""
    end = min(now, window.end)
    if not isinstance(samples, CapacitySeries):
        samples = CapacitySeries.of(samples)
    kept = _series(samples, window.start, end)
    if not len(kept):
        return None
    ratios = kept.used / kept.capacity
    p95 = nearest_rank(np.sort(ratios), 95)
    exhaustion = _exhaustion_seconds(
        kept, ratios, DEFAULT_TREND_WINDOW if threshold is None else threshold.trend_window
    )
    warn = crit = above_warn = above_crit = headroom = None
    if threshold is not None:
        max_gap = _max_gap(kept.times)
        warn, crit = threshold.warn, threshold.crit
        above_warn = _seconds_above(kept, ratios, warn, end=end, max_gap=max_gap)
        above_crit = _seconds_above(kept, ratios, crit, end=end, max_gap=max_gap)
        # In the decimals both print as, rounded once: 0.85 - 0.9 is -0.05, not -0.0500…04.
        headroom = float(_exact(crit) - _exact(p95))
    last_time = int(kept.times[-1])
    return CapacitySummary(
        resource=resource,
        host=host,
        samples=len(ratios),
        max_ratio=float(ratios.max()),
        p95_ratio=p95,
        last_ratio=float(ratios[-1]),
        warn_ratio=warn,
        crit_ratio=crit,
        seconds_above_warn=above_warn,
        seconds_above_crit=above_crit,
        headroom=headroom,
        exhaustion_seconds=exhaustion,
        exhaustion_at=None if exhaustion is None else last_time + exhaustion,
    )


def capacity_summaries(
    series: Mapping[CapacityKey, CapacitySeries | Sequence[CapacitySample]],
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
