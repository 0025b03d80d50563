"""Interval algebra: union, intersect, subtract, clip, total on half-open second spans."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla.intervals import (
    Interval,
    InvalidIntervalError,
    clip,
    intersect,
    subtract,
    total,
    union,
)


def iv(start: int, end: int) -> Interval:
    return Interval(start, end)


def test_interval_rejects_end_before_start() -> None:
    with pytest.raises(InvalidIntervalError, match=r"\[10, 5\)"):
        Interval(10, 5)


def test_union_sorts_merges_overlapping_and_touching_and_drops_empty() -> None:
    # [5,7) overlaps [6,9); [9,12) touches [6,9) at 9 (half-open: no gap); [20,20) is empty.
    assert union([iv(9, 12), iv(20, 20), iv(6, 9), iv(5, 7), iv(0, 2)]) == [iv(0, 2), iv(5, 12)]


def test_intersect_keeps_only_common_seconds() -> None:
    # [0,10) ∩ [5,15) = [5,10); [20,30) ∩ [25,26) = [25,26); [10,20) of b touches a only at 10.
    a = [iv(0, 10), iv(20, 30)]
    b = [iv(5, 15), iv(25, 26)]
    assert intersect(a, b) == [iv(5, 10), iv(25, 26)]
    assert intersect(a, [iv(10, 20)]) == []


def test_subtract_punches_holes_across_several_intervals() -> None:
    # [0,100) minus [10,20) and [90,120) leaves [0,10) and [20,90); [200,210) is untouched.
    a = [iv(0, 100), iv(200, 210)]
    assert subtract(a, [iv(90, 120), iv(10, 20)]) == [iv(0, 10), iv(20, 90), iv(200, 210)]
    # One hole spanning two intervals removes both.
    assert subtract([iv(0, 5), iv(10, 15)], [iv(-1, 16)]) == []


def test_clip_and_total() -> None:
    # Window [5,25): [0,10) -> [5,10) (5 s), [20,30) -> [20,25) (5 s); overlaps count once in total.
    assert clip([iv(0, 10), iv(20, 30)], iv(5, 25)) == [iv(5, 10), iv(20, 25)]
    assert total([iv(0, 10), iv(5, 15)]) == 15


spans = st.lists(
    st.tuples(st.integers(0, 200), st.integers(0, 50)).map(lambda p: Interval(p[0], p[0] + p[1])),
    max_size=12,
)


def seconds(intervals: list[Interval]) -> set[int]:
    return {s for i in intervals for s in range(i.start, i.end)}


@given(spans, spans)
def test_algebra_matches_sets_of_seconds(a: list[Interval], b: list[Interval]) -> None:
    # Each operation must equal the same set operation on the individual seconds.
    assert seconds(union(a)) == seconds(a)
    assert seconds(intersect(a, b)) == seconds(a) & seconds(b)
    assert seconds(subtract(a, b)) == seconds(a) - seconds(b)
    assert total(a) == len(seconds(a))
    for result in (union(a), intersect(a, b), subtract(a, b)):
        # Normalised: sorted, non-empty, and separated by real gaps.
        assert all(x.start < x.end for x in result)
        assert all(x.end < y.start for x, y in pairwise(result))
