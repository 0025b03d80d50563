"""Half-open integer intervals of UTC epoch seconds and their set algebra."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

from sla.errors import SlamonError


class InvalidIntervalError(SlamonError, ValueError):
    """An interval whose end lies before its start."""


@dataclass(frozen=True, order=True, slots=True)
class Interval:
    """The half-open span ``[start, end)`` of UTC epoch seconds."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidIntervalError(
                f"interval ends before it starts: [{self.start}, {self.end})"
            )

    @property
    def seconds(self) -> int:
        """Length of the interval in seconds."""
        return self.end - self.start


# Sorting by this key compares in C; the dataclass's own ordering calls Python per comparison.
_BOUNDS = attrgetter("start", "end")


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint, non-empty intervals covering the same seconds; touching ones merge."""
    merged: list[Interval] = []
    for interval in sorted((i for i in intervals if i.end > i.start), key=_BOUNDS):
        if merged and interval.start <= merged[-1].end:
            if interval.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, interval.end)
        else:
            merged.append(interval)
    return merged


def intersect(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """Seconds covered by both ``a`` and ``b``, as a normalised list."""
    left, right = union(a), union(b)
    out: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i].start, right[j].start)
        end = min(left[i].end, right[j].end)
        if start < end:
            out.append(Interval(start, end))
        # Advance whichever ends first: it cannot overlap anything further in the other list.
        if left[i].end <= right[j].end:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """Seconds covered by ``a`` but not by ``b``, as a normalised list."""
    holes = union(b)
    out: list[Interval] = []
    j = 0
    for interval in union(a):
        cursor = interval.start
        # Holes ending at or before this interval can't touch any later one either.
        while j < len(holes) and holes[j].end <= cursor:
            j += 1
        k = j
        while k < len(holes) and holes[k].start < interval.end:
            if holes[k].start > cursor:
                out.append(Interval(cursor, holes[k].start))
            cursor = max(cursor, holes[k].end)
            k += 1
        if cursor < interval.end:
            out.append(Interval(cursor, interval.end))
    return out


def clip(intervals: Iterable[Interval], window: Interval) -> list[Interval]:
    """The parts of ``intervals`` inside ``window``, normalised."""
    return intersect(intervals, [window])


def total(intervals: Iterable[Interval]) -> int:
    """Seconds covered by the union of ``intervals`` (overlaps count once)."""
    return sum(i.seconds for i in union(intervals))
