"""Every table of a review pack, and its CSV and JSON: byte-identical for identical inputs.

Values are those of `slamon compute` unchanged: ratios and means as Python's shortest
round-trip floats, durations in seconds, instants as RFC 3339 UTC. Nothing in a table
depends on when it was written.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

from sla.capacity import CapacitySummary
from sla.changes import ChangeKind, ChangeStatus
from sla.continuity import ContinuityResult
from sla.service_levels import ServiceFigures, rfc3339
from slamon.compute import SUMMARY_COLUMNS, summary_row
from slamon.report.actions import suggest
from slamon.report.build import ReviewPack, ServiceReview

Cell = str | int | float | bool | None
Row = dict[str, Cell]


@dataclass(frozen=True)
class Table:
    """One table of the pack: a file stem, a title and rows keyed by column."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]


def _instant(value: int | None) -> str | None:
    return None if value is None else rfc3339(value)


def _pooled(figures: ServiceFigures, clock: str | None = None) -> float | None:
    """Met / (met + breached) over every compliance row (of one clock when given)."""
    rows = [r for r in figures.tickets.compliance if clock is None or r.clock == clock]
    met = sum(r.met for r in rows)
    breached = sum(r.breached for r in rows)
    return met / (met + breached) if met + breached else None


def _summary(review: ServiceReview) -> list[Row]:
    m = review.month
    window = {"from": rfc3339(m.window.start), "to": rfc3339(m.window.end)}
    # `service` leads, as in compute's summary; the window follows it.
    return [{"service": review.service.id, **window, **summary_row(m.figures)}]


def _result(met: bool | None) -> str:
    return "no data" if met is None else "met" if met else "breached"


def _compliance(review: ServiceReview) -> list[Row]:
    sid = review.service.id
    objectives = review.service.objectives
    f = review.month.figures
    rows: list[Row] = []
    if objectives.availability is not None:
        ratio = None if f.availability is None else f.availability.ratio
        remaining = None if f.error_budget is None else f.error_budget.remaining_ratio
        rows.append(
            {
                "service": sid,
                "objective": "availability",
                "subject": "",
                "target": objectives.availability,
                "target_unit": "percent",
                "achieved": ratio,
                "achieved_unit": "ratio",
                # Downtime within the budget is the objective met, exactly at the boundary too.
                "result": _result(None if ratio is None or remaining is None else remaining >= 0),
                "credit_percent": None if f.credit is None else f.credit.percent,
            }
        )
    tests: tuple[ContinuityResult | None, ...] = f.continuity.tests or (None,)
    for name, target in (("rto", objectives.rto), ("rpo", objectives.rpo)):
        if target is None:
            continue
        for t in tests:
            achieved = (
                None
                if t is None
                else (t.achieved_rto_seconds if name == "rto" else t.achieved_rpo_seconds)
            )
            met = None if t is None else t.rto_met if name == "rto" else t.rpo_met
            rows.append(
                {
                    "service": sid,
                    "objective": name,
                    "subject": "" if t is None else t.test.test_id,
                    "target": target,
                    "target_unit": "seconds",
                    "achieved": achieved,
                    "achieved_unit": "seconds",
                    "result": _result(met),
                    "credit_percent": None,
                }
            )
    goals = review.service.tickets.goals if review.service.tickets else {}
    for r in f.tickets.compliance:
        goal = goals.get(r.priority)
        rows.append(
            {
                "service": sid,
                "objective": r.clock,
                "subject": f"{r.kind} {r.priority}",
                "target": None if goal is None else getattr(goal, r.clock),
                "target_unit": "seconds",
                "achieved": r.ratio,
                "achieved_unit": "ratio",
                "result": _result(None if r.ratio is None else r.breached == 0),
                "credit_percent": None,
            }
        )
    return rows


def _daily(review: ServiceReview) -> list[Row]:
    rows: list[Row] = []
    for d in review.days:
        a = d.figures.availability
        rows.append(
            {
                "service": review.service.id,
                "date": d.day.isoformat(),
                "from": rfc3339(d.window.start),
                "to": rfc3339(d.window.end),
                "agreed_seconds": None if a is None else a.agreed_seconds,
                "downtime_seconds": None if a is None else a.downtime_seconds,
                "availability_ratio": None if a is None else a.ratio,
                "outages": None if a is None else a.outages,
            }
        )
    return rows


def _service_hours(service_seconds: int, duration_seconds: int) -> str:
    if not service_seconds:
        return "outside"
    return "within" if service_seconds >= duration_seconds else "partly"


def _outages(review: ServiceReview) -> list[Row]:
    a = review.month.figures.availability
    return [
        {
            "service": review.service.id,
            "start": rfc3339(o.start),
            "end": _instant(o.end),
            "duration_seconds": o.duration_seconds,
            "service_seconds": o.service_seconds,
            "service_hours": _service_hours(o.service_seconds, o.duration_seconds),
            "planned": o.planned,
            "impact": o.impact,
            "source": o.source,
            "reference": o.ref or o.outage_id,
        }
        for o in (() if a is None else a.outage_list)
    ]


def _reliability(review: ServiceReview) -> list[Row]:
    f = review.month.figures
    a = f.availability
    return [
        {
            "service": review.service.id,
            "agreed_seconds": None if a is None else a.agreed_seconds,
            "downtime_seconds": None if a is None else a.downtime_seconds,
            "outages": None if a is None else a.outages,
            "mtbf_seconds": None if a is None else a.mtbf_seconds,
            "mtrs_seconds": None if a is None else a.mtrs_seconds,
            "mtbsi_seconds": None if a is None else a.mtbsi_seconds,
            "mttr_seconds": f.tickets.mttr_seconds,
        }
    ]


def _tickets(review: ServiceReview) -> list[Row]:
    goals = review.service.tickets.goals if review.service.tickets else {}
    rows: list[Row] = []
    for r in review.month.figures.tickets.compliance:
        goal = goals.get(r.priority)
        rows.append(
            {
                "service": review.service.id,
                "kind": r.kind,
                "priority": r.priority,
                "clock": r.clock,
                "goal_seconds": None if goal is None else getattr(goal, r.clock),
                "met": r.met,
                "breached": r.breached,
                "in_flight": r.in_flight,
                "ratio": r.ratio,
            }
        )
    return rows


def _breached(review: ServiceReview) -> list[Row]:
    f = review.month.figures
    return [
        {
            "service": review.service.id,
            "ticket_id": c.ticket_id,
            "kind": c.kind,
            "priority": c.priority,
            "clock": c.clock,
            "cycle": c.cycle,
            "goal_seconds": c.goal_seconds,
            "started_at": rfc3339(c.started_at),
            "breach_at": _instant(c.breach_at),
            "stopped_at": _instant(c.stopped_at),
            "elapsed_seconds": c.elapsed_seconds,
            "paused_seconds": c.paused_seconds,
        }
        for c in sorted(
            f.tickets.clocks, key=lambda c: (c.started_at, c.ticket_id, c.clock, c.cycle)
        )
        if c.status == "breached"
    ]


_CHANGE_STATUSES: tuple[ChangeStatus, ...] = get_args(ChangeStatus)
_CHANGE_KINDS: tuple[ChangeKind, ...] = get_args(ChangeKind)


def _changes(review: ServiceReview) -> list[Row]:
    c = review.month.figures.changes
    return [
        {
            "service": review.service.id,
            "total": c.total,
            **{status: c.by_status.get(status, 0) for status in _CHANGE_STATUSES},
            **{kind: c.by_kind.get(kind, 0) for kind in _CHANGE_KINDS},
            "success_ratio": c.success_ratio,
            "emergency_share": c.emergency_share,
        }
    ]


def _change_issues(review: ServiceReview) -> list[Row]:
    c = review.month.figures.changes
    caused = dict(c.caused_incidents)
    return [
        {
            "service": review.service.id,
            "change_id": change_id,
            "failed": change_id in c.failed_changes,
            "caused_incident": caused.get(change_id),
        }
        for change_id in sorted(set(c.failed_changes) | set(caused))
    ]


def _capacity_row(service: str, c: CapacitySummary) -> Row:
    return {
        "service": service,
        "resource": c.resource,
        "host": c.host,
        "samples": c.samples,
        "max_ratio": c.max_ratio,
        "p95_ratio": c.p95_ratio,
        "last_ratio": c.last_ratio,
        "warn_ratio": c.warn_ratio,
        "crit_ratio": c.crit_ratio,
        "seconds_above_warn": c.seconds_above_warn,
        "seconds_above_crit": c.seconds_above_crit,
        "headroom": c.headroom,
        "exhaustion_seconds": c.exhaustion_seconds,
        "exhaustion_at": _instant(c.exhaustion_at),
    }


def _capacity(review: ServiceReview) -> list[Row]:
    return [_capacity_row(review.service.id, c) for c in review.month.figures.capacity]


def _capacity_daily(review: ServiceReview) -> list[Row]:
    rows: list[Row] = []
    for d in review.days:
        rows.extend(
            {
                "service": review.service.id,
                "resource": c.resource,
                "host": c.host,
                "date": d.day.isoformat(),
                "samples": c.samples,
                "max_ratio": c.max_ratio,
                "p95_ratio": c.p95_ratio,
            }
            for c in d.figures.capacity
        )
    return sorted(rows, key=lambda r: (str(r["resource"]), str(r["host"] or ""), str(r["date"])))


def _continuity_tests(review: ServiceReview) -> list[Row]:
    objectives = review.service.objectives
    return [
        {
            "service": review.service.id,
            "test_id": r.test.test_id,
            "scenario": r.test.scenario,
            "invoked_at": rfc3339(r.test.invoked_at),
            "restored_at": rfc3339(r.test.restored_at),
            "data_restored_to": rfc3339(r.test.data_restored_to),
            "outcome": r.test.outcome,
            "rto_seconds": objectives.rto,
            "achieved_rto_seconds": r.achieved_rto_seconds,
            "rto_met": r.rto_met,
            "rpo_seconds": objectives.rpo,
            "achieved_rpo_seconds": r.achieved_rpo_seconds,
            "rpo_met": r.rpo_met,
            "passed": r.passed,
        }
        for r in review.month.figures.continuity.tests
    ]


def _continuity_plan(review: ServiceReview) -> list[Row]:
    c = review.month.figures.continuity
    last = c.last_test
    return [
        {
            "service": review.service.id,
            "tests_in_window": c.tests_in_window,
            "last_test_id": None if last is None else last.test.test_id,
            "last_test_invoked_at": None if last is None else rfc3339(last.test.invoked_at),
            "last_test_passed": None if last is None else last.passed,
            "test_interval_seconds": review.service.objectives.continuity_test_interval,
            "next_due": _instant(c.next_due),
            "overdue": c.overdue,
        }
    ]


def _trend(review: ServiceReview) -> list[Row]:
    rows: list[Row] = []
    for m in (*review.trend, review.month):
        a = m.figures.availability
        rows.append(
            {
                "service": review.service.id,
                "month": m.month,
                "from": rfc3339(m.window.start),
                "to": rfc3339(m.window.end),
                "availability_ratio": None if a is None else a.ratio,
                "availability_target_percent": review.service.objectives.availability,
                "downtime_seconds": None if a is None else a.downtime_seconds,
                "outages": None if a is None else a.outages,
                "credit_percent": None if m.figures.credit is None else m.figures.credit.percent,
                "ticket_compliance_ratio": _pooled(m.figures),
                "response_compliance_ratio": _pooled(m.figures, "response"),
                "resolution_compliance_ratio": _pooled(m.figures, "resolution"),
            }
        )
    return rows


def _actions(review: ServiceReview) -> list[Row]:
    return [
        {"service": a.service, "topic": a.topic, "action": a.action, "reference": a.reference}
        for a in suggest(review)
    ]


_TABLES: tuple[tuple[str, str, tuple[str, ...], Callable[[ServiceReview], list[Row]]], ...] = (
    ("summary", "Summary", ("service", "from", "to", *SUMMARY_COLUMNS[1:]), _summary),
    (
        "sla_compliance",
        "SLA compliance",
        (
            "service",
            "objective",
            "subject",
            "target",
            "target_unit",
            "achieved",
            "achieved_unit",
            "result",
            "credit_percent",
        ),
        _compliance,
    ),
    (
        "availability_daily",
        "Availability per day",
        (
            "service",
            "date",
            "from",
            "to",
            "agreed_seconds",
            "downtime_seconds",
            "availability_ratio",
            "outages",
        ),
        _daily,
    ),
    (
        "outages",
        "Outages",
        (
            "service",
            "start",
            "end",
            "duration_seconds",
            "service_seconds",
            "service_hours",
            "planned",
            "impact",
            "source",
            "reference",
        ),
        _outages,
    ),
    (
        "reliability",
        "MTBF and MTRS",
        (
            "service",
            "agreed_seconds",
            "downtime_seconds",
            "outages",
            "mtbf_seconds",
            "mtrs_seconds",
            "mtbsi_seconds",
            "mttr_seconds",
        ),
        _reliability,
    ),
    (
        "ticket_compliance",
        "Ticket compliance by priority",
        (
            "service",
            "kind",
            "priority",
            "clock",
            "goal_seconds",
            "met",
            "breached",
            "in_flight",
            "ratio",
        ),
        _tickets,
    ),
    (
        "breached_tickets",
        "Breached tickets",
        (
            "service",
            "ticket_id",
            "kind",
            "priority",
            "clock",
            "cycle",
            "goal_seconds",
            "started_at",
            "breach_at",
            "stopped_at",
            "elapsed_seconds",
            "paused_seconds",
        ),
        _breached,
    ),
    (
        "changes",
        "Changes",
        ("service", "total", *_CHANGE_STATUSES, *_CHANGE_KINDS, "success_ratio", "emergency_share"),
        _changes,
    ),
    (
        "change_issues",
        "Failed changes and changes that caused incidents",
        ("service", "change_id", "failed", "caused_incident"),
        _change_issues,
    ),
    (
        "capacity",
        "Capacity",
        (
            "service",
            "resource",
            "host",
            "samples",
            "max_ratio",
            "p95_ratio",
            "last_ratio",
            "warn_ratio",
            "crit_ratio",
            "seconds_above_warn",
            "seconds_above_crit",
            "headroom",
            "exhaustion_seconds",
            "exhaustion_at",
        ),
        _capacity,
    ),
    (
        "capacity_daily",
        "Capacity per day",
        ("service", "resource", "host", "date", "samples", "max_ratio", "p95_ratio"),
        _capacity_daily,
    ),
    (
        "continuity_tests",
        "Continuity tests",
        (
            "service",
            "test_id",
            "scenario",
            "invoked_at",
            "restored_at",
            "data_restored_to",
            "outcome",
            "rto_seconds",
            "achieved_rto_seconds",
            "rto_met",
            "rpo_seconds",
            "achieved_rpo_seconds",
            "rpo_met",
            "passed",
        ),
        _continuity_tests,
    ),
    (
        "continuity_plan",
        "Continuity test plan",
        (
            "service",
            "tests_in_window",
            "last_test_id",
            "last_test_invoked_at",
            "last_test_passed",
            "test_interval_seconds",
            "next_due",
            "overdue",
        ),
        _continuity_plan,
    ),
    (
        "trend",
        "Trend over the previous six months",
        (
            "service",
            "month",
            "from",
            "to",
            "availability_ratio",
            "availability_target_percent",
            "downtime_seconds",
            "outages",
            "credit_percent",
            "ticket_compliance_ratio",
            "response_compliance_ratio",
            "resolution_compliance_ratio",
        ),
        _trend,
    ),
    ("actions", "Suggested actions", ("service", "topic", "action", "reference"), _actions),
)


def pack_tables(pack: ReviewPack) -> dict[str, Table]:
    """Every table of the pack by name, rows in service order."""
    tables = {}
    for name, title, columns, rows_of in _TABLES:
        rows = tuple(row for review in pack.services for row in rows_of(review))
        # CSV writes the columns, JSON the rows: both must name the same cells.
        assert all(tuple(row) == columns for row in rows), name
        tables[name] = Table(name, title, columns, rows)
    return tables


def cell_text(value: Cell) -> str:
    """CSV cells: empty for undefined, booleans as in JSON, floats as they round-trip."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_text(table: Table) -> str:
    """The table as CSV: a header, then one line per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows([cell_text(row[c]) for c in table.columns] for row in table.rows)
    return out.getvalue()


def json_text(table: Table, pack: ReviewPack) -> str:
    """The table as JSON: the pack it belongs to, its columns, its rows and where they came
    from (config hash and event watermark), keys sorted."""
    document: dict[str, Any] = {
        "table": table.name,
        "title": table.title,
        "scope": pack.scope,
        "month": pack.month,
        "columns": list(table.columns),
        "rows": list(table.rows),
        "provenance": pack.provenance.figures_record(),
    }
    return (
        json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    )
