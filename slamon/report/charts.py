"""Inline SVG charts drawn by hand: no script, no external resource, crisp in print."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

GOOD = "#2e7d32"
BAD = "#c62828"
WARN = "#ef6c00"
NONE = "#b0b0b0"
LINE = "#1565c0"
GRID = "#e0e0e0"
INK = "#333333"

# Candidate lower ends of a ratio axis: near-100 % figures need a zoomed axis to show at all.
_FLOORS = (0.999, 0.995, 0.99, 0.98, 0.95, 0.9, 0.8, 0.5, 0.0)
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 16, 24, 28


@dataclass(frozen=True)
class Bar:
    """One bar: its axis label and its ratio (None when there is nothing to measure)."""

    label: str
    value: float | None


@dataclass(frozen=True)
class DayPoint:
    """A resource's utilization on one day: the span it covers and its p95 and max ratios."""

    start: int
    end: int
    p95: float
    peak: float


def _n(value: float) -> str:
    """Coordinates with one decimal, so the same figures always draw the same bytes."""
    return f"{value:.1f}"


def _pct(ratio: float) -> str:
    """``0.9975`` as ``99.75 %``: the decimal the float prints as, without trailing zeros."""
    return f"{(Decimal(repr(ratio)) * 100).normalize():f} %"


def _below(value: float, target_percent: float) -> bool:
    """Whether a ratio is under a percentage target, in the decimals both print as."""
    return Decimal(repr(value)) * 100 < Decimal(repr(target_percent))


def _floor(values: Sequence[float]) -> float:
    lowest = min(values, default=1.0)
    return next(f for f in _FLOORS if f <= lowest - (1 - f) * 0.1 or f == 0.0)


def _frame(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]


def ratio_bars(
    bars: Sequence[Bar],
    *,
    title: str,
    target_percent: float | None = None,
    floor: float | None = None,
    width: int = 720,
    height: int = 170,
) -> str:
    """Bars of ratios on an axis from a floor to 100 %, red under the target, grey when n/a."""
    values = [b.value for b in bars if b.value is not None]
    if target_percent is not None:
        values.append(target_percent / 100)
    low = _floor(values) if floor is None else floor
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    slot = plot_w / max(len(bars), 1)

    def y(ratio: float) -> float:
        return _TOP + plot_h * (1 - (max(ratio, low) - low) / (1 - low))

    out = _frame(width, height, title)
    for tick in (low, (low + 1) / 2, 1.0):
        out.append(
            f'<line x1="{_LEFT}" x2="{width - _RIGHT}" y1="{_n(y(tick))}" y2="{_n(y(tick))}" '
            f'stroke="{GRID}"/>'
            f'<text x="{_LEFT - 4}" y="{_n(y(tick) + 3)}" text-anchor="end" font-size="9" '
            f'fill="{INK}">{_pct(round(tick, 6))}</text>'
        )
    label_every = 1 if len(bars) <= 12 else 2
    for index, bar in enumerate(bars):
        x = _LEFT + index * slot + slot * 0.15
        w = slot * 0.7
        if bar.value is None:
            out.append(
                f'<rect x="{_n(x)}" y="{_n(y(low) - 2)}" width="{_n(w)}" height="2" '
                f'fill="{NONE}"><title>{escape(bar.label)}: n/a</title></rect>'
            )
        else:
            bad = target_percent is not None and _below(bar.value, target_percent)
            top = y(bar.value)
            out.append(
                f'<rect x="{_n(x)}" y="{_n(top)}" width="{_n(w)}" '
                f'height="{_n(max(y(low) - top, 1.0))}" fill="{BAD if bad else GOOD}">'
                f"<title>{escape(bar.label)}: {_pct(bar.value)}</title></rect>"
            )
        if index % label_every == 0:
            out.append(
                f'<text x="{_n(x + w / 2)}" y="{height - _BOTTOM + 12}" text-anchor="middle" '
                f'font-size="9" fill="{INK}">{escape(bar.label)}</text>'
            )
    if target_percent is not None:
        ty = _n(y(target_percent / 100))
        out.append(
            f'<line x1="{_LEFT}" x2="{width - _RIGHT}" y1="{ty}" y2="{ty}" stroke="{INK}" '
            f'stroke-dasharray="4 3"/>'
            f'<text x="{width - _RIGHT}" y="{_n(float(ty) - 3)}" text-anchor="end" '
            f'font-size="9" fill="{INK}">target {target_percent:g} %</text>'
        )
    out.append("</svg>")
    return "".join(out)


def capacity_chart(
    days: Sequence[DayPoint],
    *,
    title: str,
    start: int,
    end: int,
    warn: float | None,
    crit: float | None,
    exhaustion_at: int | None,
    width: int = 720,
    height: int = 170,
) -> str:
    """Daily p95 (line) and peak (dots) over the month, thresholds, and the way to full."""
    # Half a month of room after the month shows where the fitted trend is heading.
    horizon = end + (end - start) // 2
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def x(instant: float) -> float:
        return _LEFT + plot_w * (instant - start) / (horizon - start)

    def y(ratio: float) -> float:
        return _TOP + plot_h * (1 - min(max(ratio, 0.0), 1.0))

    out = _frame(width, height, title)
    out.append(
        f'<rect x="{_n(x(end))}" y="{_TOP}" width="{_n(x(horizon) - x(end))}" height="{plot_h}" '
        f'fill="#f4f4f4"/><text x="{_n((x(end) + x(horizon)) / 2)}" y="{height - _BOTTOM + 12}" '
        f'text-anchor="middle" font-size="9" fill="{INK}">forecast</text>'
    )
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(
            f'<line x1="{_LEFT}" x2="{width - _RIGHT}" y1="{_n(y(tick))}" y2="{_n(y(tick))}" '
            f'stroke="{GRID}"/><text x="{_LEFT - 4}" y="{_n(y(tick) + 3)}" text-anchor="end" '
            f'font-size="9" fill="{INK}">{tick:.0%}</text>'
        )
    for number, point in enumerate(days, start=1):
        if number == 1 or number % 5 == 0:
            out.append(
                f'<text x="{_n(x(point.start))}" y="{height - _BOTTOM + 12}" '
                f'text-anchor="middle" font-size="9" fill="{INK}">{number}</text>'
            )
    for name, level, colour in (("warn", warn, WARN), ("crit", crit, BAD)):
        if level is not None:
            out.append(
                f'<line x1="{_LEFT}" x2="{width - _RIGHT}" y1="{_n(y(level))}" '
                f'y2="{_n(y(level))}" stroke="{colour}" stroke-dasharray="4 3"/>'
                f'<text x="{_LEFT + 4}" y="{_n(y(level) - 3)}" font-size="9" fill="{colour}">'
                f"{name} {level:.0%}</text>"
            )
    mids = [((p.start + p.end) / 2, p) for p in days]
    if mids:
        points = " ".join(f"{_n(x(t))},{_n(y(p.p95))}" for t, p in mids)
        out.append(f'<polyline points="{points}" fill="none" stroke="{LINE}" stroke-width="1.5"/>')
        out.extend(
            f'<circle cx="{_n(x(t))}" cy="{_n(y(p.peak))}" r="1.6" fill="{LINE}" '
            f'fill-opacity="0.45"/>'
            for t, p in mids
        )
    if mids and exhaustion_at is not None:
        # From the last day's p95 to 100 % when the engine's fitted trend gets there; past
        # the chart's edge the line is cut where it leaves the plot.
        at, ratio = end, mids[-1][1].p95
        stop = min(max(exhaustion_at, at), horizon)
        reach = ratio + (1 - ratio) * (stop - at) / max(exhaustion_at - at, 1)
        out.append(
            f'<line x1="{_n(x(at))}" y1="{_n(y(ratio))}" x2="{_n(x(stop))}" y2="{_n(y(reach))}" '
            f'stroke="{BAD}" stroke-width="1.5" stroke-dasharray="2 2"/>'
        )
    out.append("</svg>")
    return "".join(out)
