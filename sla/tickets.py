"""Ticket SLAs: response and resolution clocks, compliance, at-risk tickets and MTTR.

Every rule is written out in docs/formulas.md, section "Ticket SLAs". There are two
implementations that must agree record by record: ``ticket_clocks`` (plain Python, one
ticket at a time, on top of ``sla.calendar``) and ``ticket_clocks_frame`` (polars, every
ticket of every service at once, on cumulative business-second arrays).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Literal, NamedTuple, Protocol, get_args

import polars as pl

from sla.calendar import BusinessCalendar, business_seconds, deadline
from sla.config import TicketClock as ClockName
from sla.config import TicketGoal, TicketPolicy
from sla.errors import ConfigError
from sla.events import TicketStatus
from sla.intervals import Interval

ClockStatus = Literal["met", "breached", "in_flight", "no_goal"]
CLOCKS: tuple[ClockName, ...] = ("response", "resolution")
RESOLVED_STATUSES: frozenset[TicketStatus] = frozenset({"resolved", "closed"})
_LOOKAHEAD_SECONDS = 35 * 86_400


class CalendarLookup(Protocol):
    """Calendars by name, e.g. ``sla.calendar.Calendars`` or a dict that includes ``24x7``."""

    def __getitem__(self, name: str, /) -> BusinessCalendar: ...


@dataclass(frozen=True, slots=True)
class TicketUpdate:
    """One ticket event reduced to what the clocks need; the first update creates the ticket."""

    time: int
    status: TicketStatus
    priority: str
    responded: bool = False
    kind: str = "incident"
    customer: str | None = None

    @property
    def resolved(self) -> bool:
        """True when the status stops the resolution clock (``resolved`` or ``closed``)."""
        return self.status in RESOLVED_STATUSES


class TicketClock(NamedTuple):
    """One clock of one ticket (and cycle) as of an instant.

    A named tuple, not a dataclass: a month holds hundreds of thousands of clocks, and a
    tuple is built four times faster.
    """

    ticket_id: str
    clock: ClockName
    kind: str
    priority: str
    cycle: int
    goal_seconds: int | None
    started_at: int
    stopped_at: int | None
    elapsed_seconds: int
    paused_seconds: int
    breach_at: int | None
    status: ClockStatus
    used_share: float | None
    ever_breached: bool

    @property
    def running(self) -> bool:
        """True while the clock has not stopped."""
        return self.stopped_at is None


@dataclass(frozen=True, slots=True)
class ComplianceRow:
    """Met and breached clocks of one kind x priority x clock in a window."""

    kind: str
    priority: str
    clock: ClockName
    met: int
    breached: int
    in_flight: int
    ratio: float | None


def ticket_clocks(
    ticket_id: str,
    updates: Iterable[TicketUpdate],
    policy: TicketPolicy,
    calendar: BusinessCalendar,
    at: int,
) -> list[TicketClock]:
    """The response and resolution clocks of one ticket as of ``at``, one pair per cycle."""
    # Updates after `at` are not known yet; sorted() is stable, so same-second updates keep
    # the order they arrived in.
    rows = sorted((u for u in updates if u.time <= at), key=lambda u: u.time)
    history = _History(ticket_id, rows, policy, calendar, at)
    clocks: list[TicketClock] = []
    ever = dict.fromkeys(CLOCKS, False)
    for cycle, rows_of_cycle in enumerate(history.cycles()):
        for name in CLOCKS:
            clock = history.clock(name, cycle, rows_of_cycle)
            ever[name] = ever[name] or clock.status == "breached"
            clocks.append(clock._replace(ever_breached=ever[name]))
    return clocks


@dataclass(frozen=True, slots=True)
class _History:
    """The known updates of one ticket, in time order, and the rules its clocks follow."""

    ticket_id: str
    rows: Sequence[TicketUpdate]
    policy: TicketPolicy
    calendar: BusinessCalendar
    at: int

    def cycles(self) -> list[range]:
        """Row ranges of the cycles; ``continue`` keeps one cycle for ever."""
        rows = self.rows
        if not rows:
            return []
        starts = [0]
        if self.policy.reopen == "new_cycle":
            starts += [
                k for k in range(1, len(rows)) if rows[k - 1].resolved and not rows[k].resolved
            ]
        return [range(a, b) for a, b in zip(starts, [*starts[1:], len(rows)], strict=True)]

    def clock(self, name: ClockName, cycle: int, span: range) -> TicketClock:
        """Clock ``name`` over the rows ``span`` of one cycle."""
        rows, at = self.rows, self.at
        start = rows[span.start].time
        stop = _resolution_stop(rows, span)
        if name == "response":
            responded = next((rows[k].time for k in span if rows[k].responded), None)
            stop = min((t for t in (responded, stop) if t is not None), default=None)
        end = at if stop is None else stop
        pauses = [
            Interval(rows[k].time, min(rows[k + 1].time if k + 1 < len(rows) else at, end))
            for k in span
            if rows[k].time < end and _pauses(rows[k], name, self.policy)
        ]
        elapsed = business_seconds(self.calendar, start, end, pauses)
        paused = business_seconds(self.calendar, start, end) - elapsed
        # The priority and kind in force when the clock stopped, or at `at` while it runs.
        latest = [u for u in rows if u.time <= end][-1]
        goals = self.policy.goals.get(latest.priority)
        goal = None if goals is None else goals.response if name == "response" else goals.resolution
        return TicketClock(
            ticket_id=self.ticket_id,
            clock=name,
            kind=latest.kind,
            priority=latest.priority,
            cycle=cycle,
            goal_seconds=goal,
            started_at=start,
            stopped_at=stop,
            elapsed_seconds=elapsed,
            paused_seconds=paused,
            breach_at=None if goal is None else deadline(self.calendar, start, goal, pauses),
            status=_status(goal, elapsed, running=stop is None),
            used_share=None if goal is None else elapsed / goal,
            ever_breached=False,
        )


def _resolution_stop(rows: Sequence[TicketUpdate], span: range) -> int | None:
    """Start of the resolved run that ends the cycle, None when the cycle ends open."""
    k = span.stop - 1
    if not rows[k].resolved:
        return None
    while k > span.start and rows[k - 1].resolved:
        k -= 1
    return rows[k].time


def _pauses(update: TicketUpdate, name: ClockName, policy: TicketPolicy) -> bool:
    """True when the status from ``update`` on stops clock ``name``.

    A resolved status before the cycle's final resolved run was followed by a reopen
    (``continue``): that resolved period counts as paused.
    """
    if update.resolved:
        return True
    return update.status in policy.pause.statuses and name in policy.pause.clocks


def _status(goal: int | None, elapsed: int, *, running: bool) -> ClockStatus:
    if goal is None:
        return "no_goal"
    if running:
        # Equivalent to breach_at <= at: the goal is used up and the clock still runs.
        return "breached" if elapsed >= goal else "in_flight"
    return "met" if elapsed <= goal else "breached"


def in_window(clocks: Iterable[TicketClock], window: Interval) -> list[TicketClock]:
    """Clocks that stopped in ``window``, plus those still running at its end that began before."""
    return [
        c
        for c in clocks
        if (c.stopped_at is None and c.started_at < window.end)
        or (c.stopped_at is not None and window.start <= c.stopped_at < window.end)
    ]


def compliance(clocks: Iterable[TicketClock], window: Interval) -> list[ComplianceRow]:
    """Met / (met + breached) per kind x priority x clock of the clocks in ``window``; clocks
    without a goal are left out."""
    return ClockTally.of(in_window(clocks, window)).compliance()


def at_risk(clocks: Iterable[TicketClock], share: float = 0.75) -> list[TicketClock]:
    """Running clocks not yet breached that have used at least ``share`` of their goal."""
    return [
        c
        for c in clocks
        if c.status == "in_flight" and c.used_share is not None and c.used_share >= share
    ]


def mttr(clocks: Iterable[TicketClock]) -> float | None:
    """Mean business resolution time of resolved incidents (every cycle); None without any."""
    return ClockTally.of(clocks).mttr()


ClockGroup = tuple[str, str, ClockName, ClockStatus]
"""Kind, priority, clock and status: what compliance groups and counts clocks by."""


@dataclass(frozen=True, slots=True)
class ClockTally:
    """Clocks counted rather than listed: everything compliance and MTTR read of them.

    The live figures count the stopped clocks of settled tickets in the store instead of
    building each one: listing them would hold every clock of the month in memory at
    every recomputation.
    """

    counts: Mapping[ClockGroup, int] = field(default_factory=dict)
    resolution_seconds: int = 0
    """Business resolution time of the resolved incidents among the clocks, summed."""
    resolutions: int = 0

    @classmethod
    def of(cls, clocks: Iterable[TicketClock]) -> ClockTally:
        """The tally of listed clocks."""
        counts: Counter[ClockGroup] = Counter()
        seconds = resolutions = 0
        for c in clocks:
            counts[c.kind, c.priority, c.clock, c.status] += 1
            if c.clock == "resolution" and c.kind == "incident" and c.stopped_at is not None:
                seconds += c.elapsed_seconds
                resolutions += 1
        return cls(counts, seconds, resolutions)

    def __add__(self, other: ClockTally) -> ClockTally:
        counts = Counter(self.counts)
        counts.update(other.counts)
        return ClockTally(
            counts,
            self.resolution_seconds + other.resolution_seconds,
            self.resolutions + other.resolutions,
        )

    def compliance(self) -> list[ComplianceRow]:
        """Met / (met + breached) per kind x priority x clock; clocks without a goal are out."""
        counts = self.counts
        rows = []
        for kind, priority, clock in sorted(
            {k[:3] for k, n in counts.items() if n and k[3] != "no_goal"}
        ):
            met = counts.get((kind, priority, clock, "met"), 0)
            breached = counts.get((kind, priority, clock, "breached"), 0)
            decided = met + breached
            rows.append(
                ComplianceRow(
                    kind=kind,
                    priority=priority,
                    clock=clock,
                    met=met,
                    breached=breached,
                    in_flight=counts.get((kind, priority, clock, "in_flight"), 0),
                    ratio=met / decided if decided else None,
                )
            )
        return rows

    def mttr(self) -> float | None:
        """Mean business resolution time of the resolved incidents; None without any."""
        return self.resolution_seconds / self.resolutions if self.resolutions else None


def latest_cycles(clocks: Iterable[TicketClock]) -> list[TicketClock]:
    """The last cycle of each ticket x clock, the one a per-ticket report shows."""
    latest: dict[tuple[str, ClockName], TicketClock] = {}
    for c in clocks:
        key = (c.ticket_id, c.clock)
        if key not in latest or c.cycle > latest[key].cycle:
            latest[key] = c
    return list(latest.values())


# --- The vectorised path -------------------------------------------------------------------

FRAME_SCHEMA = pl.Schema(
    {
        "service": pl.String(),
        "ticket_id": pl.String(),
        "time": pl.Int64(),
        "status": pl.String(),
        "priority": pl.String(),
        "responded": pl.Boolean(),
        "kind": pl.String(),
    }
)
"""Columns ``ticket_clocks_frame`` reads (others, e.g. ``customer``, are ignored)."""

CLOCK_COLUMNS = (
    "service",
    "ticket_id",
    "clock",
    "kind",
    "priority",
    "cycle",
    "goal_seconds",
    "started_at",
    "stopped_at",
    "elapsed_seconds",
    "paused_seconds",
    "breach_at",
    "status",
    "used_share",
    "ever_breached",
)
"""Columns of ``ticket_clocks_frame``: the fields of ``TicketClock`` plus ``service``."""

STATUSES: tuple[TicketStatus, ...] = get_args(TicketStatus)
# Calendar k's seconds are moved k * _CALENDAR_SPAN into the future, so every calendar owns a
# disjoint stretch of one cumulative array (epoch seconds stay far below 2**40).
_CALENDAR_SPAN = 1 << 40


@dataclass(frozen=True, slots=True)
class CumulativeCalendar:
    """Working seconds of one or more calendars, laid end to end, for vector lookups.

    Instant ``t`` of calendar ``k`` is looked up as ``t + k * 2**40``. ``cum(t)`` counts the
    working seconds before ``t``, so business seconds in ``[a, b)`` are ``cum(b) - cum(a)``,
    and ``first_reaching(c)`` is the earliest ``t`` with ``cum(t) = c``.
    """

    starts: pl.Series
    cum_starts: pl.Series
    cum_ends: pl.Series

    @classmethod
    def build(
        cls, calendars: Sequence[tuple[BusinessCalendar, int]], start: int, at: int
    ) -> CumulativeCalendar:
        """Each ``(calendar, reach)`` from ``start`` to ``reach`` working seconds after ``at``."""
        starts: list[int] = []
        lengths: list[int] = []
        for k, (calendar, reach) in enumerate(calendars):
            for span in _working_spans(calendar, start, at, reach):
                starts.append(span.start + k * _CALENDAR_SPAN)
                lengths.append(span.seconds)
        cum_ends = list(accumulate(lengths))
        return cls(
            starts=pl.Series(starts, dtype=pl.Int64),
            cum_starts=pl.Series(
                [e - n for e, n in zip(cum_ends, lengths, strict=True)], dtype=pl.Int64
            ),
            cum_ends=pl.Series(cum_ends, dtype=pl.Int64),
        )

    def cum(self, instant: pl.Expr) -> pl.Expr:
        """Working seconds before ``instant``."""
        k = (pl.lit(self.starts).search_sorted(instant, side="right").cast(pl.Int64) - 1).clip(0)
        base = pl.lit(self.cum_starts).gather(k)
        length = pl.lit(self.cum_ends).gather(k) - base
        return base + pl.min_horizontal((instant - pl.lit(self.starts).gather(k)).clip(0), length)

    def first_reaching(self, target: pl.Expr) -> pl.Expr:
        """Earliest instant with ``target`` working seconds before it (``target`` > 0)."""
        k = pl.lit(self.cum_ends).search_sorted(target, side="left").cast(pl.Int64)
        return pl.lit(self.starts).gather(k) + target - pl.lit(self.cum_starts).gather(k)


def _working_spans(calendar: BusinessCalendar, start: int, at: int, reach: int) -> list[Interval]:
    """Working intervals from ``start`` until more than ``reach`` working seconds after ``at``."""
    end = at + _LOOKAHEAD_SECONDS
    while True:
        spans = calendar.working_intervals(start, end)
        after_at = sum(s.end - max(s.start, at) for s in spans if s.end > at)
        # More than `reach`, not equal: the deadline target then lies strictly inside the
        # array, where the earliest instant reaching it is known.
        if after_at > reach:
            return spans
        end += max(end - at, _LOOKAHEAD_SECONDS)


@dataclass(frozen=True, slots=True)
class _PolicyTable:
    """The ticket policies as arrays indexed by service, status and priority codes."""

    services: pl.Series
    priorities: pl.Series
    new_cycle: pl.Series
    calendar_shift: pl.Series
    pauses: dict[ClockName, pl.Series]
    goals: dict[ClockName, pl.Series]

    @classmethod
    def build(
        cls, policies: Mapping[str, TicketPolicy], calendar_names: Sequence[str]
    ) -> _PolicyTable:
        """Index by service; pauses by service x status, goals by service x priority."""
        items = list(policies.values())
        priorities = sorted({priority for p in items for priority in p.goals})
        pauses = {
            c: pl.Series(
                [
                    status in p.pause.statuses and c in p.pause.clocks
                    for p in items
                    for status in STATUSES
                ],
                dtype=pl.Boolean,
            )
            for c in CLOCKS
        }
        goals = {
            c: pl.Series(
                [_goal(p.goals.get(priority), c) for p in items for priority in priorities],
                dtype=pl.Int64,
            )
            for c in CLOCKS
        }
        return cls(
            services=pl.Series(list(policies), dtype=pl.String),
            priorities=pl.Series(priorities, dtype=pl.String),
            new_cycle=pl.Series([p.reopen == "new_cycle" for p in items], dtype=pl.Boolean),
            calendar_shift=pl.Series(
                [calendar_names.index(p.calendar) * _CALENDAR_SPAN for p in items], dtype=pl.Int64
            ),
            pauses=pauses,
            goals=goals,
        )

    def pause(self, c: ClockName) -> pl.Expr:
        """Whether the row's status pauses clock ``c`` under its service's policy."""
        return pl.lit(self.pauses[c]).gather(pl.col("svc") * len(STATUSES) + pl.col("status_code"))

    def goal(self, c: ClockName) -> pl.Expr:
        """Goal of clock ``c`` for the cycle's service and priority; null without one."""
        code = pl.col(f"priority_{c}").cast(pl.Enum(self.priorities), strict=False).to_physical()
        return pl.lit(self.goals[c]).gather(pl.col("svc") * self.priorities.len() + code)


def _goal(goal: TicketGoal | None, c: ClockName) -> int | None:
    if goal is None:
        return None
    return goal.response if c == "response" else goal.resolution


def ticket_clocks_frame(
    updates: pl.DataFrame,
    policies: Mapping[str, TicketPolicy],
    calendars: CalendarLookup,
    at: int,
) -> pl.DataFrame:
    """``ticket_clocks`` for every ticket of every service at once, one row per clock.

    ``updates`` has the columns of ``FRAME_SCHEMA``, in arrival order; rows of services
    without a ticket policy are ignored. The result has ``CLOCK_COLUMNS``, sorted by
    service, ticket, cycle and clock.
    """
    col = pl.col
    calendar_names = sorted({p.calendar for p in policies.values()})
    table = _PolicyTable.build(policies, calendar_names)
    rows = (
        updates.lazy()
        .with_row_index("_order")
        .select(
            "_order",
            "ticket_id",
            "responded",
            "priority",
            "kind",
            col("time").cast(pl.Int64),
            svc=col("service")
            .cast(pl.Enum(table.services), strict=False)
            .to_physical()
            .cast(pl.Int64),
            status_code=col("status").cast(pl.Enum(STATUSES)).to_physical().cast(pl.Int64),
        )
        .filter((col("time") <= at) & col("svc").is_not_null())
        .collect()
    )
    if rows.is_empty():
        return pl.DataFrame(schema=_output_schema())
    reaches = {
        name: max(
            g.resolution for p in policies.values() if p.calendar == name for g in p.goals.values()
        )
        for name in calendar_names
    }
    cum = CumulativeCalendar.build(
        [(_calendar(calendars, name), reaches[name]) for name in calendar_names],
        int(rows["time"].min()),  # type: ignore[arg-type]
        at,
    )
    return _clocks(rows, table, cum, at)


def _calendar(calendars: CalendarLookup, name: str) -> BusinessCalendar:
    try:
        return calendars[name]
    except KeyError:
        raise ConfigError(f"ticket policy calendar {name!r} is not defined") from None


def _output_schema() -> dict[str, pl.DataType]:
    ints = ("cycle", "goal_seconds", "started_at", "stopped_at", "elapsed_seconds")
    schema: dict[str, pl.DataType] = {name: pl.String() for name in CLOCK_COLUMNS}
    schema.update({name: pl.Int64() for name in (*ints, "paused_seconds", "breach_at")})
    schema.update(used_share=pl.Float64(), ever_breached=pl.Boolean())
    return schema


def _clocks(
    rows: pl.DataFrame, table: _PolicyTable, cum: CumulativeCalendar, at: int
) -> pl.DataFrame:
    """The clocks of the tickets in ``rows`` (services as codes of ``table``)."""
    col = pl.col
    resolved_codes = [STATUSES.index(s) for s in sorted(RESOLVED_STATUSES)]
    # Rows only need to be grouped by ticket, in time then arrival order (the output is
    # sorted at the end): an integer per (service, ticket) sorts several times faster than
    # the strings. Categorical codes are distinct per string, in no particular order.
    ticket_code = col("ticket_id").cast(pl.Categorical).to_physical().cast(pl.Int64)
    df = (
        rows.with_columns(ticket=col("svc") * (1 << 32) + ticket_code)
        .sort("ticket", "time", "_order")
        .with_columns(
            same=(col("ticket") == col("ticket").shift(1)).fill_null(False),
            resolved=col("status_code").is_in(resolved_codes),
            shift=pl.lit(table.calendar_shift).gather(col("svc")),
            **{f"pause_{c}": table.pause(c) for c in CLOCKS},
        )
        .with_columns(
            prev_resolved=col("resolved").shift(1).fill_null(False) & col("same"),
            next_same=col("same").shift(-1).fill_null(False),
        )
        .with_columns(
            cycle_start=~col("same")
            | (
                pl.lit(table.new_cycle).gather(col("svc")) & col("prev_resolved") & ~col("resolved")
            ),
            next_time=pl.when(col("next_same")).then(col("time").shift(-1)).otherwise(at),
            # The last row of a same-second run holds the priority and kind in force then.
            last_at_time=~(col("next_same") & (col("time").shift(-1) == col("time"))),
        )
        .with_columns(
            cid=col("cycle_start").cum_sum(),
            run_start=col("resolved") & (col("cycle_start") | ~col("prev_resolved")),
            priority_then=pl.when(col("last_at_time")).then(col("priority")).backward_fill(),
            kind_then=pl.when(col("last_at_time")).then(col("kind")).backward_fill(),
            cum_time=cum.cum(col("time") + col("shift")),
            cum_next=cum.cum(col("next_time") + col("shift")),
        )
        .with_columns(cycle=col("cid") - pl.when(~col("same")).then(col("cid")).forward_fill())
    )
    # cid numbers the cycles 1, 2, ... in row order, so a cycle's values are a gather away.
    cycles = _stops(df, table, cum, at).sort("cid")
    per_cycle = (f"{x}_{c}" for c in CLOCKS for x in ("cum_end", "goal"))
    spans = df.with_columns(
        pl.lit(cycles[name]).gather(col("cid") - 1).alias(name) for name in per_cycle
    )
    sums = (
        spans.select("cid", **{k: e for c in CLOCKS for k, e in _segments(c).items()})
        .group_by("cid")
        .agg(
            *(col(f"{x}_{c}").sum() for c in CLOCKS for x in ("elapsed", "paused")),
            *(col(f"target_{c}").drop_nulls().first() for c in CLOCKS),
        )
    )
    cycles = cycles.join(sums, on="cid", how="left", maintain_order="left")
    return (
        pl.concat([_clock_rows(cycles, c, cum) for c in CLOCKS])
        .with_columns(service=pl.lit(table.services).gather(col("svc")))
        .sort("service", "ticket_id", "cycle", "clock")
        .select(CLOCK_COLUMNS)
    )


def _stops(df: pl.DataFrame, table: _PolicyTable, cum: CumulativeCalendar, at: int) -> pl.DataFrame:
    """Per cycle: start, and per clock the stop, end, priority, kind and goal."""
    col = pl.col
    cycles = df.group_by("cid").agg(
        col("svc", "ticket_id", "cycle", "shift").first(),
        started_at=col("time").first(),
        ends_resolved=col("resolved").last(),
        run_at=col("time").filter(col("run_start")).last(),
        run_priority=col("priority_then").filter(col("run_start")).last(),
        run_kind=col("kind_then").filter(col("run_start")).last(),
        responded_at=col("time").filter(col("responded")).first(),
        responded_priority=col("priority_then").filter(col("responded")).first(),
        responded_kind=col("kind_then").filter(col("responded")).first(),
        last_priority=col("priority_then").last(),
        last_kind=col("kind_then").last(),
    )
    return (
        cycles.with_columns(
            **_at_stop("at", "stop", None),
            **_at_stop("priority", "priority", col("last_priority")),
            **_at_stop("kind", "kind", col("last_kind")),
        )
        .with_columns(
            **{f"end_{c}": col(f"stop_{c}").fill_null(at) for c in CLOCKS},
            **{f"goal_{c}": table.goal(c) for c in CLOCKS},
        )
        .with_columns(**{f"cum_end_{c}": cum.cum(col(f"end_{c}") + col("shift")) for c in CLOCKS})
    )


def _at_stop(x: str, name: str, running: pl.Expr | None) -> dict[str, pl.Expr]:
    """``{name}_response`` and ``{name}_resolution``: ``x`` where each clock stopped."""
    col = pl.col
    resolved = col("ends_resolved")
    # The response clock stops at the first response, or when the cycle is resolved first.
    responded_first = col("responded_at").is_not_null() & (
        ~resolved | (col("responded_at") <= col("run_at"))
    )
    return {
        f"{name}_response": pl.when(responded_first)
        .then(col(f"responded_{x}"))
        .when(resolved)
        .then(col(f"run_{x}"))
        .otherwise(running),
        f"{name}_resolution": pl.when(resolved).then(col(f"run_{x}")).otherwise(running),
    }


def _segments(c: ClockName) -> dict[str, pl.Expr]:
    """Per row: counted and paused business seconds of clock ``c``, and its deadline target.

    Each row opens the segment ``[time, next_time)`` clipped to the clock's end. The
    deadline falls in the first counted segment where the running total reaches the goal;
    the target is the cumulative working time at that instant (null in other segments).
    """
    col = pl.col
    goal = col(f"goal_{c}")
    seg = (pl.min_horizontal(col("cum_next"), col(f"cum_end_{c}")) - col("cum_time")).clip(0)
    counted = pl.when(col(f"pause_{c}") | col("resolved")).then(0).otherwise(seg)
    # Counted seconds of earlier rows of the same cycle: the running total since the cycle began.
    running = counted.cum_sum() - counted
    before = running - pl.when(col("cycle_start")).then(running).forward_fill()
    hit = (counted > 0) & (before < goal) & (before + counted >= goal)
    return {
        f"elapsed_{c}": counted,
        f"paused_{c}": seg - counted,
        f"target_{c}": pl.when(hit).then(col("cum_time") + goal - before),
    }


def _clock_rows(cycles: pl.DataFrame, c: ClockName, cum: CumulativeCalendar) -> pl.DataFrame:
    """One row per cycle for clock ``c``, in the columns of ``CLOCK_COLUMNS`` but ``service``."""
    col = pl.col
    goal, elapsed, stop = col(f"goal_{c}"), col(f"elapsed_{c}"), col(f"stop_{c}")
    # No segment reached the goal: it is reached after the end, with nothing paused then.
    target = col(f"target_{c}").fill_null(col(f"cum_end_{c}") + goal - elapsed).fill_null(1)
    status = (
        pl.when(goal.is_null())
        .then(pl.lit("no_goal"))
        .when(stop.is_null())
        .then(pl.when(elapsed >= goal).then(pl.lit("breached")).otherwise(pl.lit("in_flight")))
        .when(elapsed <= goal)
        .then(pl.lit("met"))
        .otherwise(pl.lit("breached"))
    )
    breached = (status == "breached").cast(pl.Int64).cum_sum()
    # Breaches in this or an earlier cycle of the ticket: cycles are in row order, by ticket.
    earlier = pl.when(col("cycle") == 0).then(breached - (status == "breached")).forward_fill()
    return cycles.select(
        "svc",
        "ticket_id",
        clock=pl.lit(c),
        kind=col(f"kind_{c}"),
        priority=col(f"priority_{c}"),
        cycle=col("cycle").cast(pl.Int64),
        goal_seconds=goal,
        started_at="started_at",
        stopped_at=stop,
        elapsed_seconds=elapsed,
        paused_seconds=col(f"paused_{c}"),
        breach_at=pl.when(goal.is_not_null()).then(cum.first_reaching(target) - col("shift")),
        status=status,
        used_share=elapsed / goal,
        ever_breached=breached > earlier,
    )
