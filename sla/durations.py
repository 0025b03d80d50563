"""Durations as integer seconds, written `30s`, `15m`, `4h`, `1d` or combined like `1h30m`."""

from __future__ import annotations

import re

# Largest unit first: the order in which a duration must be written and is formatted.
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_UNITS = "s, m, h or d"
_EXAMPLES = "'30s', '15m', '4h', '1d' or '1h30m'"
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_PART = re.compile(r"(\d+)([a-zA-Z]+)")


def parse_duration(text: str | int) -> int:
    """Seconds in `text` (`30s`, `15m`, `4h`, `1d`, `1h30m`); an int is already seconds."""
    # Called by pydantic on raw YAML values, so anything else must be a ValueError, not a TypeError.
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise ValueError(f"invalid duration {text!r}: expected text such as {_EXAMPLES}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid duration {text}: must not be negative")
        return text
    spelled = text.strip()
    match = _DURATION.fullmatch(spelled)
    if spelled and match is not None:
        return sum(
            int(amount) * seconds
            for amount, seconds in zip(match.groups(), _UNIT_SECONDS.values(), strict=True)
            if amount is not None
        )
    raise ValueError(f"invalid duration {text!r}: {_why_invalid(spelled)}")


def _why_invalid(spelled: str) -> str:
    """What is wrong with a duration that did not match the grammar."""
    if not spelled:
        return "empty"
    if spelled.startswith("-"):
        return "must not be negative"
    if spelled.isdigit():
        return f"missing unit ({_UNITS})"
    parts = _PART.findall(spelled)
    if "".join(amount + unit for amount, unit in parts) != spelled:
        return f"expected a whole number and a unit, such as {_EXAMPLES}"
    unknown = [unit for _, unit in parts if unit not in _UNIT_SECONDS]
    if unknown:
        return f"unknown unit {unknown[0]!r} (use {_UNITS})"
    return "write each unit once, largest first (d, h, m, s), such as '1d4h' or '1h30m'"


def format_duration(seconds: int) -> str:
    """The shortest `1d2h3m4s`-style spelling of `seconds`, as `parse_duration` reads it."""
    if seconds < 0:
        raise ValueError(f"cannot format a negative duration ({seconds}s)")
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
