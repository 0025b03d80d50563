"""Capacity: p95, time above warn and crit with the gap cap, headroom, time to exhaustion.

The gap-cap and least-squares cases are the worked examples of docs/formulas.md.
"""

from __future__ import annotations

import itertools
import random
import statistics
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from sla.capacity import (
    DEFAULT_TREND_WINDOW,
    CapacitySample,
    CapacitySeries,
    _exact_exhaustion_seconds,
    capacity_summaries,
    capacity_summary,
)
from sla.config import CapacityThreshold
from sla.intervals import Interval

DAY = 86_400
CPU = CapacityThreshold(warn=0.7, crit=0.85)
WIDE = Interval(0, 100 * DAY)
LATER = 10**9


def percent_samples(*points: tuple[int, int]) -> list[CapacitySample]:
    """Samples ``(time, used %)`` of a capacity of 100."""
    return [(time, float(used), 100.0) for time, used in points]


def test_p95_is_the_nearest_rank_of_twenty_samples() -> None:
    # 1..20 % in shuffled time order. Nearest rank: ceil(0.95 x 20) = 19th smallest = 19 %.
    # Headroom = crit - p95 = 0.85 - 0.19 = 0.66.
    used = list(range(1, 21))
    random.Random(7).shuffle(used)
    summary = capacity_summary(
        "cpu",
        None,
        percent_samples(*((i * 60, u) for i, u in enumerate(used))),
        WIDE,
        LATER,
        threshold=CPU,
    )
    assert summary is not None
    assert (summary.samples, summary.max_ratio, summary.p95_ratio) == (20, 0.2, 0.19)
    assert summary.headroom == 0.66


def test_p95_of_ten_samples_is_the_maximum() -> None:
    # ceil(0.95 x 10) = 10: with fewer than 20 samples the p95 is the largest one.
    summary = capacity_summary(
        "cpu", None, percent_samples(*((i, 10 * i) for i in range(1, 11))), WIDE, LATER
    )
    assert summary is not None
    assert summary.p95_ratio == summary.max_ratio == 1.0


def test_time_above_warn_and_crit_caps_a_silent_gap_at_twice_the_median_interval() -> None:
    # Intervals 60, 60, 60, 820, 60 -> median 60 -> a sample holds at most 120 s.
    # 60 s at 80 % holds to 120: 60 s above warn. 120 s at 90 % holds to 180: 60 s above both.
    # 180 s at 90 % would hold to 1000 but is capped at 180 + 120 = 300: 120 s above both.
    # Above warn 60 + 60 + 120 = 240 s; above crit 60 + 120 = 180 s.
    samples = percent_samples((0, 50), (60, 80), (120, 90), (180, 90), (1000, 50), (1060, 50))
    summary = capacity_summary("cpu", "web-1", samples, WIDE, LATER, threshold=CPU)
    assert summary is not None
    assert (summary.seconds_above_warn, summary.seconds_above_crit) == (240, 180)
    assert (summary.warn_ratio, summary.crit_ratio, summary.last_ratio) == (0.7, 0.85, 0.5)
    # Nearest rank ceil(0.95 x 6) = 6: p95 = 0.9; headroom 0.85 - 0.9 = -0.05 (the docs example).
    assert (summary.p95_ratio, summary.headroom) == (0.9, -0.05)


def test_the_last_sample_holds_until_now_at_most() -> None:
    # Samples every 60 s (max gap 120). The last one, 95 % at 120, holds until now = 150: 30 s.
    # 90 % at 60 holds to 120: 60 s. Above crit: 60 + 30 = 90 s.
    samples = percent_samples((0, 10), (60, 90), (120, 95))
    summary = capacity_summary("cpu", None, samples, WIDE, 150, threshold=CPU)
    assert summary is not None
    assert summary.seconds_above_crit == 90


def test_a_ratio_exactly_at_crit_is_not_above_it() -> None:
    # 85 / 100 is exactly 0.85, not above crit 0.85 (but above warn 0.7): exact comparison,
    # although the binary float 0.85 is a little under 17/20.
    samples = percent_samples((0, 85), (60, 85), (120, 85))
    summary = capacity_summary("cpu", None, samples, WIDE, 180, threshold=CPU)
    assert summary is not None
    assert (summary.seconds_above_warn, summary.seconds_above_crit) == (180, 0)
    assert summary.headroom == 0.0


def test_a_lone_sample_has_no_sampling_interval_and_holds_no_time() -> None:
    summary = capacity_summary("cpu", None, percent_samples((0, 99)), WIDE, LATER, threshold=CPU)
    assert summary is not None
    assert (summary.seconds_above_warn, summary.exhaustion_seconds) == (0, None)


def test_trend_to_exhaustion_on_a_straight_line() -> None:
    # 50 %, 60 %, 70 % a day apart: +0.1 per day. From 0.7 at day 2, 0.3 is left: 3 days.
    samples = percent_samples((0, 50), (DAY, 60), (2 * DAY, 70))
    summary = capacity_summary("disk", None, samples, WIDE, LATER)
    assert summary is not None
    assert summary.exhaustion_seconds == 3 * DAY
    assert summary.exhaustion_at == 5 * DAY


def test_trend_is_the_least_squares_line_not_the_last_two_points() -> None:
    # (day 0, 0.5), (1, 0.7), (2, 0.7): mean day 1, mean 19/30. Slope = ((-1)(-2/15) + 0 +
    # (1)(1/15)) / 2 = 1/10 per day. Line at day 2: 19/30 + 1/10 = 11/15; (1 - 11/15) / (1/10)
    # = 8/3 days = 230,400 s.
    samples = percent_samples((0, 50), (DAY, 70), (2 * DAY, 70))
    summary = capacity_summary("disk", None, samples, WIDE, LATER)
    assert summary is not None
    assert summary.exhaustion_seconds == 230_400


def test_exhaustion_rounds_up_to_the_whole_second() -> None:
    # 0 % at 0 s, 70 % at 3 s: slope 7/30 per s; (1 - 0.7) / (7/30) = 9/7 s = 1.29 s -> 2 s.
    samples = percent_samples((0, 0), (3, 70))
    summary = capacity_summary("disk", None, samples, WIDE, LATER)
    assert summary is not None
    assert (summary.exhaustion_seconds, summary.exhaustion_at) == (2, 5)


def test_flat_falling_and_single_sample_trends_never_exhaust() -> None:
    flat = percent_samples((0, 60), (DAY, 60), (2 * DAY, 60))
    falling = percent_samples((0, 60), (DAY, 50))
    for samples in (flat, falling, percent_samples((0, 90))):
        summary = capacity_summary("disk", None, samples, WIDE, LATER)
        assert summary is not None
        assert (summary.exhaustion_seconds, summary.exhaustion_at) == (None, None)


def test_trend_uses_only_the_trailing_window() -> None:
    # 90 % at day 0, then 20 % at day 5 and 30 % at day 6. Over the default 7 days all three
    # count and the line falls. Over a 1-day window only the last two: +0.1 per day from 0.3,
    # so 7 days to exhaustion.
    samples = percent_samples((0, 90), (5 * DAY, 20), (6 * DAY, 30))
    assert DEFAULT_TREND_WINDOW == 7 * DAY
    default = capacity_summary("disk", None, samples, WIDE, LATER, threshold=CPU)
    short = CapacityThreshold(warn=0.7, crit=0.85, trend_window="1d")
    one_day = capacity_summary("disk", None, samples, WIDE, LATER, threshold=short)
    assert default is not None and one_day is not None
    assert (default.exhaustion_seconds, one_day.exhaustion_seconds) == (None, 7 * DAY)


def test_only_samples_in_the_window_count_and_the_later_of_one_second_wins() -> None:
    # 99 % at 5 lies before the window [10, 100); the two samples at 20 keep the later listed.
    samples = percent_samples((5, 99), (20, 10), (20, 40), (30, 30))
    summary = capacity_summary("cpu", None, samples, Interval(10, 100), LATER)
    assert summary is not None
    assert (summary.samples, summary.max_ratio, summary.last_ratio) == (2, 0.4, 0.3)
    assert capacity_summary("cpu", None, samples, Interval(100, 200), LATER) is None


def test_summaries_per_resource_and_host_with_and_without_thresholds() -> None:
    # cpu has thresholds, memory has none (threshold figures None); the empty series is skipped.
    series = {
        ("memory", None): percent_samples((0, 40), (60, 50)),
        ("cpu", "web-2"): percent_samples((0, 80), (60, 80)),
        ("cpu", "web-1"): percent_samples((0, 10), (60, 20)),
        ("disk", None): percent_samples((10**8, 20)),
    }
    summaries = capacity_summaries(series, {"cpu": CPU}, Interval(0, 120), 120)
    assert [(s.resource, s.host) for s in summaries] == [
        ("cpu", "web-1"),
        ("cpu", "web-2"),
        ("memory", None),
    ]
    # web-2: two 80 % samples 60 s apart, each holding 60 s: 120 s above warn.
    assert summaries[1].seconds_above_warn == 120
    memory = summaries[2]
    assert (memory.warn_ratio, memory.seconds_above_warn, memory.headroom) == (None, None, None)
    assert memory.max_ratio == 0.5


samples_strategy = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.floats(0, 1000, allow_nan=False, allow_infinity=False),
        st.floats(0.001, 1000, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=40,
)


@given(samples_strategy)
def test_p95_lies_between_min_and_max(samples: list[CapacitySample]) -> None:
    summary = capacity_summary("cpu", None, samples, Interval(0, 20_000), 20_000)
    assert summary is not None
    ratios = [used / capacity for _, used, capacity in samples]
    # Each figure is the exact ratio rounded once, so it lies within float rounding of the sample.
    assert min(ratios) * (1 - 1e-12) <= summary.p95_ratio <= summary.max_ratio
    assert summary.max_ratio <= max(ratios) * (1 + 1e-12)


@given(samples_strategy, st.integers(0, 25_000))
def test_time_above_crit_never_exceeds_time_above_warn(
    samples: list[CapacitySample], now: int
) -> None:
    summary = capacity_summary("cpu", None, samples, Interval(0, 20_000), now, threshold=CPU)
    if summary is not None:
        assert summary.seconds_above_crit is not None and summary.seconds_above_warn is not None
        assert 0 <= summary.seconds_above_crit <= summary.seconds_above_warn <= now


def decimal(value: float) -> Fraction:
    return Fraction(repr(value))


# Decimals that sit on a threshold once divided (2.1 / 3 is 0.7 exactly, but not in binary),
# next to any float at all.
near_thresholds = st.sampled_from([0.7, 2.1, 0.85, 2.55, 70.0, 85.0, 0.69999, 0.70001, 0.1])
decimal_samples = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.one_of(near_thresholds, st.floats(0, 1000, allow_nan=False, allow_infinity=False)),
        st.sampled_from([1.0, 3.0, 100.0]),
    ),
    min_size=1,
    max_size=60,
)
# Straight lines in decimals: trends whose exhaustion lands on or near a whole second.
straight_lines = st.builds(
    lambda base, step, count, every: [(i * every, base + step * i, 1.0) for i in range(count)],
    st.sampled_from([0.1, 0.2, 0.5, 0.0]),
    st.sampled_from([0.001, 0.01, 0.1 / 3, 0.0, -0.01]),
    st.integers(2, 40),
    st.integers(1, 600),
)


@given(st.one_of(decimal_samples, straight_lines), st.integers(0, 25_000))
def test_fast_figures_equal_the_exact_decimal_ones(samples: list[CapacitySample], now: int) -> None:
    """The float path with its error bounds decides exactly as the decimals do."""
    threshold = CapacityThreshold(warn=0.7, crit=0.85, trend_window=3_000)
    summary = capacity_summary("cpu", None, samples, Interval(0, 20_000), now, threshold=threshold)
    # The samples in [0, now), one per second (the later listed wins), by time.
    kept = sorted({time: (time, used, cap) for time, used, cap in samples if time < now}.values())
    if not kept:
        assert summary is None
        return
    assert summary is not None
    times = [time for time, _, _ in kept]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    max_gap = int(2 * statistics.median(gaps)) if gaps else 0
    held = [
        min(after, time + max_gap, now) - time
        for time, after in zip(times, [*times[1:], now], strict=True)
    ]
    ratios = [decimal(used) / decimal(cap) for _, used, cap in kept]

    def seconds_above(limit: float) -> int:
        return sum(h for h, r in zip(held, ratios, strict=True) if r > decimal(limit))

    assert summary.seconds_above_warn == seconds_above(0.7)
    assert summary.seconds_above_crit == seconds_above(0.85)
    trailing = [s for s in kept if s[0] >= times[-1] - threshold.trend_window]
    exact = None if len(trailing) < 2 else _exact_exhaustion_seconds(CapacitySeries.of(trailing))
    assert summary.exhaustion_seconds == exact


def test_series_compare_by_their_samples() -> None:
    samples = [(0, 1.0, 2.0), (60, 1.5, 2.0)]
    assert CapacitySeries.of(samples) == CapacitySeries.of(list(samples))
    assert CapacitySeries.of(samples) != CapacitySeries.of(samples[:1])
    assert CapacitySeries.of(samples).samples() == samples
    assert len(CapacitySeries.of([])) == 0
