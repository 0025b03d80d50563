"""Durations: `30s 15m 4h 1d` and combinations to integer seconds and back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 15 * 60),
        ("4h", 4 * 3600),
        ("1d", 86_400),  # 24 business hours for ticket goals: the same number of seconds
        ("1h30m", 3600 + 30 * 60),
        ("1d2h3m4s", 86_400 + 2 * 3600 + 3 * 60 + 4),
        ("0s", 0),
        (" 5m ", 300),
        (45, 45),  # YAML ints are already seconds
        (0, 0),
    ],
)
def test_parse_duration_reads_units_and_passes_ints_through(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-5m", "must not be negative"),
        (-5, "must not be negative"),
        ("5x", "unknown unit 'x'"),
        ("5ms", "unknown unit 'ms'"),
        ("5M", "unknown unit 'M'"),
        ("30", "missing unit"),
        ("1.5h", "expected a whole number and a unit"),
        ("h", "expected a whole number and a unit"),
        ("1h 30m", "expected a whole number and a unit"),
        ("30m1h", "largest first"),
        ("1h1h", "largest first"),
        (True, "expected text such as"),
        (1.5, "expected text such as"),
        (None, "expected text such as"),
    ],
)
def test_parse_duration_rejects_bad_input_saying_why(text: object, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as caught:
        parse_duration(text)  # type: ignore[arg-type]
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (90, "1m30s"), (3600, "1h"), (86_400 + 1, "1d1s"), (172_800, "2d")],
)
def test_format_duration_writes_largest_units_first(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)


@given(st.integers(min_value=0, max_value=10**9))
def test_format_then_parse_gives_the_same_seconds(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
