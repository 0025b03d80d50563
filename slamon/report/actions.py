"""Actions the review should consider, suggested from the month's breaches and risks."""

from __future__ import annotations

from dataclasses import dataclass

from sla.availability import OutageReport
from sla.service_levels import rfc3339
from slamon.report.build import ServiceReview
from slamon.report.formats import duration, percent

# A resource forecast to fill up within this long after the month ends needs a plan now.
EXHAUSTION_HORIZON_SECONDS = 90 * 86_400


@dataclass(frozen=True)
class Action:
    """One suggested action: what to do, on which topic, about which record."""

    service: str
    topic: str
    action: str
    reference: str


def suggest(review: ServiceReview) -> list[Action]:
    """The actions the month's figures call for, by topic in report order."""
    return [
        *_availability(review),
        *_tickets(review),
        *_changes(review),
        *_capacity(review),
        *_continuity(review),
    ]


def _availability(review: ServiceReview) -> list[Action]:
    sid = review.service.id
    f = review.month.figures
    target = review.service.objectives.availability
    a = f.availability
    actions: list[Action] = []
    if a is None or a.ratio is None or target is None or f.error_budget is None:
        return actions
    if f.error_budget.remaining_ratio is not None and f.error_budget.remaining_ratio < 0:
        causes = sorted(
            (
                o
                for o in a.outage_list
                if o.service_seconds and not o.planned and o.impact == "full"
            ),
            key=lambda o: (-o.service_seconds, o.start),
        )
        chosen: list[OutageReport] = []
        for outage in causes:
            # Probes, status and outage records often see the same outage: one record for it.
            if any(_overlap(outage, other, f.at) for other in chosen):
                continue
            chosen.append(outage)
            reference = outage.ref or outage.outage_id or f"{outage.source} {rfc3339(outage.start)}"
            actions.append(
                Action(
                    sid,
                    "availability",
                    f"Availability {percent(a.ratio, 3)} below target {target:g} %: raise a "
                    f"problem record for the outage of {duration(outage.service_seconds)} "
                    "in service hours",
                    reference,
                )
            )
    if f.credit is not None and f.credit.percent > 0:
        actions.append(
            Action(
                sid,
                "credit",
                f"Service credit of {f.credit.percent:g} % owed for {review.month.month}: "
                "confirm it with the customer and finance",
                review.month.month,
            )
        )
    return actions


def _overlap(a: OutageReport, b: OutageReport, at: int) -> bool:
    """Whether two outages share time; an ongoing one lasts until `at`."""
    return a.start < (at if b.end is None else b.end) and b.start < (at if a.end is None else a.end)


def _tickets(review: ServiceReview) -> list[Action]:
    sid = review.service.id
    clocks = review.month.figures.tickets.clocks
    actions = []
    for row in review.month.figures.tickets.compliance:
        if not row.breached:
            continue
        ids = sorted(
            {
                c.ticket_id
                for c in clocks
                if (c.kind, c.priority, c.clock, c.status)
                == (row.kind, row.priority, row.clock, "breached")
            }
        )
        actions.append(
            Action(
                sid,
                "tickets",
                f"{row.breached} {row.kind} {row.priority} {row.clock} goal(s) breached: review "
                "escalation, staffing and the causes with the resolver groups",
                " ".join(ids),
            )
        )
    return actions


def _changes(review: ServiceReview) -> list[Action]:
    sid = review.service.id
    summary = review.month.figures.changes
    caused = dict(summary.caused_incidents)
    actions = [
        Action(
            sid,
            "changes",
            "Failed or rolled-back change: hold a post-implementation review",
            change_id,
        )
        for change_id in summary.failed_changes
    ]
    actions.extend(
        Action(
            sid,
            "changes",
            f"Change caused incident {incident}: review its risk assessment and testing",
            change_id,
        )
        for change_id, incident in sorted(caused.items())
    )
    return actions


def _capacity(review: ServiceReview) -> list[Action]:
    sid = review.service.id
    actions = []
    horizon = review.month.window.end + EXHAUSTION_HORIZON_SECONDS
    for c in review.month.figures.capacity:
        name = c.resource if c.host is None else f"{c.resource} on {c.host}"
        if c.seconds_above_crit and c.crit_ratio is not None:
            actions.append(
                Action(
                    sid,
                    "capacity",
                    f"{name} spent {duration(c.seconds_above_crit)} above critical "
                    f"({percent(c.crit_ratio, 0)}): add capacity or reduce the load",
                    name,
                )
            )
        if c.exhaustion_at is not None and c.exhaustion_at <= horizon:
            actions.append(
                Action(
                    sid,
                    "capacity",
                    f"{name} is forecast to be full on {rfc3339(c.exhaustion_at)[:10]}: plan "
                    "the expansion before then",
                    name,
                )
            )
    return actions


def _continuity(review: ServiceReview) -> list[Action]:
    sid = review.service.id
    summary = review.month.figures.continuity
    actions = []
    for r in summary.tests:
        missed = [name for name, met in (("RTO", r.rto_met), ("RPO", r.rpo_met)) if met is False]
        if missed:
            actions.append(
                Action(
                    sid,
                    "continuity",
                    f"Continuity test {r.test.test_id} missed its {' and '.join(missed)}: "
                    "review the recovery plan and retest",
                    r.test.test_id,
                )
            )
    if summary.overdue:
        last = summary.last_test
        actions.append(
            Action(
                sid,
                "continuity",
                "Continuity test overdue: schedule the next one",
                "never tested" if last is None else f"last {last.test.test_id}",
            )
        )
    return actions
