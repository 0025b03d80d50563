"""Every figure of one service over one window: the one assembly `compute`, reports and the
exporter read. Pure: it takes reduced `ServiceInputs` and returns `ServiceFigures`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from pydantic import BaseModel

from sla.availability import (
    AvailabilityResult,
    agreed_service_seconds,
    availability,
    error_budget,
)
from sla.calendar import Calendars
from sla.capacity import CapacitySummary, capacity_summaries
from sla.changes import ChangeSummary
from sla.config import ServiceConfig
from sla.continuity import ContinuitySummary, continuity_summary
from sla.credits import CreditResult, service_credit
from sla.inputs import ServiceInputs
from sla.intervals import Interval
from sla.tickets import ClockTally, ComplianceRow, TicketClock, at_risk, in_window, latest_cycles

# Fields holding Unix seconds; JSON shows them as RFC 3339 UTC.
INSTANT_FIELDS = frozenset(
    {
        "start",
        "end",
        "started_at",
        "stopped_at",
        "breach_at",
        "invoked_at",
        "restored_at",
        "data_restored_to",
        "next_due",
        "exhaustion_at",
        "time",
    }
)


def rfc3339(instant: int) -> str:
    """Unix seconds as RFC 3339 in UTC, e.g. ``2026-11-01T00:00:00Z``."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ErrorBudgetFigures:
    """The window's error budget against the availability objective."""

    objective_percent: float
    budget_seconds: float
    spent_seconds: int
    remaining_ratio: float | None


@dataclass(frozen=True)
class TicketFigures:
    """Ticket clocks in the window with their compliance, at-risk clocks and MTTR."""

    clocks: tuple[TicketClock, ...]
    """Every clock in the window, but for the stopped ones the inputs counted instead."""
    compliance: tuple[ComplianceRow, ...]
    at_risk: tuple[TicketClock, ...]
    mttr_seconds: float | None


@dataclass(frozen=True)
class ServiceFigures:
    """Every figure of one service over one window, as of one instant."""

    service: str
    window: Interval
    at: int
    availability: AvailabilityResult | None
    error_budget: ErrorBudgetFigures | None
    credit: CreditResult | None
    tickets: TicketFigures
    capacity: tuple[CapacitySummary, ...]
    continuity: ContinuitySummary
    changes: ChangeSummary

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `slamon compute` (documented in docs/compute.md)."""
        return {
            "availability": plain(self.availability),
            "error_budget": plain(self.error_budget),
            "credit": plain(self.credit),
            "tickets": plain(latest_cycles(self.tickets.clocks)),
            "ticket_compliance": plain(self.tickets.compliance),
            "tickets_at_risk": [
                {
                    "ticket_id": c.ticket_id,
                    "clock": c.clock,
                    "priority": c.priority,
                    "used_share": c.used_share,
                    "breach_at": None if c.breach_at is None else rfc3339(c.breach_at),
                }
                for c in self.tickets.at_risk
            ],
            "mttr_seconds": self.tickets.mttr_seconds,
            "capacity": plain(self.capacity),
            "continuity": plain(self.continuity),
            "changes": plain(self.changes),
        }


def plain(value: Any, name: str = "") -> Any:
    """Dataclasses, named tuples, tuples and dicts as JSON-ready values, with instants as
    RFC 3339."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), f.name) for f in fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {name: plain(getattr(value, name), name) for name in value._fields}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [plain(v, name) for v in value]
    if name in INSTANT_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return rfc3339(value)
    return value


def service_figures(
    service: ServiceConfig,
    calendars: Calendars,
    inputs: ServiceInputs,
    window: Interval,
    at: int,
) -> ServiceFigures:
    """Every figure of `service` over `window`, as of `at` (at most the window's end)."""
    objectives = service.objectives
    result = None
    budget = None
    credit = None
    if inputs.observed:
        calendar = calendars[service.service_hours]
        # Time after `at` has not been delivered yet: it is neither agreed nor available.
        so_far = Interval(window.start, max(window.start, min(window.end, at)))
        result = availability(
            calendar,
            so_far,
            inputs.outages,
            inputs.maintenance,
            at,
            count_partial=objectives.count_partial_outages,
        )
        if objectives.availability is not None:
            # The budget is the whole window's: early in a month a 10 s blip must not read
            # as an overspent budget. Maintenance and planned outages known so far are out.
            whole = agreed_service_seconds(
                calendar, window, inputs.outages, inputs.maintenance, window.end
            )
            spent = error_budget(objectives.availability, whole, result.downtime_seconds)
            budget = ErrorBudgetFigures(
                objectives.availability,
                spent.budget_seconds,
                result.downtime_seconds,
                spent.remaining_ratio,
            )
        exact = (
            None
            if not result.agreed_seconds
            else Fraction(result.agreed_seconds - result.downtime_seconds, result.agreed_seconds)
        )
        credit = service_credit(exact, service.credits) if service.credits else None
    clocks = in_window(inputs.ticket_clocks, window)
    tally = ClockTally.of(clocks) + inputs.clock_tally(window)
    share = service.tickets.at_risk if service.tickets else 0.75
    return ServiceFigures(
        service=service.id,
        window=window,
        at=at,
        availability=result,
        error_budget=budget,
        credit=credit,
        tickets=TicketFigures(
            clocks=tuple(clocks),
            compliance=tuple(tally.compliance()),
            at_risk=tuple(at_risk(clocks, share)),
            mttr_seconds=tally.mttr(),
        ),
        capacity=tuple(capacity_summaries(inputs.capacity, service.capacity, window, at)),
        continuity=continuity_summary(
            inputs.continuity,
            window,
            at,
            rto_seconds=objectives.rto,
            rpo_seconds=objectives.rpo,
            test_interval=objectives.continuity_test_interval,
        ),
        changes=inputs.change_tally(window).summary(),
    )
