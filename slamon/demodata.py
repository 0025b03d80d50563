"""The demo's bundled history: seven months of generated events for the services of a config.

`slamon demo` loads the seven full calendar months before the current one plus the current
month to date (`generate_history(..., months=7)`); `generate_history` and
`python -m slamon.demodata` default to three.

The history is a pure function of (config, seed, `now` truncated to the hour): randomness comes
from generators seeded per service, topic and month, and every event id is a uuid5 of the seed
and the event's content, so re-generating and re-ingesting the same history changes nothing.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import json
import math
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sla.calendar import BusinessCalendar, Calendars, deadline, local_to_epoch, zone
from sla.config import TWENTY_FOUR_SEVEN, ProbeConfig, ServiceConfig, SlamonConfig, TicketPolicy
from sla.events import CloudEvent, EventType, new_event
from sla.intervals import Interval
from slamon.configfile import load_config

DEMO_SEED = 20261121
PROBE_STEP_S = 300
CAPACITY_STEP_S = 3600
MINUTE = 60
HOUR = 3600
DAY = 86_400

_ID_NAMESPACE = uuid.UUID("5c1a7e3e-9d1f-4e0b-8a57-2f0d3c6b9a10")
_TICKET_SOURCE = "webhook/jira"
_ALERT_SOURCE = "webhook/alertmanager"
_CHANGE_SOURCE = "import/change-calendar"
_OUTAGE_SOURCE = "import/major-incidents"
_CONTINUITY_SOURCE = "import/continuity-tests"


@dataclass(frozen=True)
class _Outage:
    """An unplanned outage as the history tells it; probes fail during it when `seen_by_probes`."""

    outage_id: str
    span: Interval
    error: str
    status_code: int | None
    seen_by_probes: bool = True
    impact: str = "full"
    planned: bool = False
    ref: str | None = None

    @property
    def incident_id(self) -> str:
        """The incident ticket raised for this outage."""
        return "INC" + self.outage_id.removeprefix("OUT")


@dataclass(frozen=True)
class _Maintenance:
    """A maintenance window; one that implements a change takes the service down for a while."""

    window_id: str
    span: Interval
    reason: str
    change_ref: str | None


Failure = tuple[Interval, str, int | None]


@dataclass(frozen=True)
class _Resource:
    """How one capacity resource is sized and how busy it is."""

    unit: str
    capacity: float
    base: float
    daily_swing: float
    host_role: str


_RESOURCES = {
    "cpu": _Resource("cores", 16, 0.38, 0.26, "app"),
    "memory": _Resource("GiB", 64, 0.62, 0.10, "app"),
    "disk": _Resource("GB", 2000, 0.46, 0.0, "db"),
    "connections": _Resource("connections", 500, 0.30, 0.32, "db"),
}
_OTHER_RESOURCE = _Resource("ratio", 1.0, 0.40, 0.15, "app")
# The trending disk grows this much utilization per day and stands at TREND_NOW at `now`.
TREND_PER_DAY = 0.0022
TREND_NOW = 0.84

_MEAN_LATENCY_MS = (85.0, 120.0, 60.0, 140.0)


def generate_history(
    config: SlamonConfig, now: datetime, months: int = 3, seed: int = DEMO_SEED
) -> Iterator[CloudEvent]:
    """Events of the `months` full calendar months before `now`'s month plus that month to date."""
    end = _to_epoch(now.astimezone(UTC).replace(minute=0, second=0, microsecond=0))
    start = _to_epoch(_add_months(_month_of(now.astimezone(UTC)), -months))
    factory = _EventFactory(seed)
    streams: list[Iterable[CloudEvent]] = []
    trending = _trending_disk(config)
    for index, service in enumerate(config.services):
        history = _ServiceHistory(config, service, index, Interval(start, end), seed, factory)
        streams.extend(history.streams(trending == service.id))
    yield from heapq.merge(*streams, key=_event_time)


def write_jsonl(events: Iterable[CloudEvent], path: Path) -> int:
    """Write one event per line to `path` and return how many were written."""
    count = 0
    with path.open("wb") as out:
        for event in events:
            out.write(event.to_json() + b"\n")
            count += 1
    return count


def _event_time(event: CloudEvent) -> datetime:
    return event.time


def _to_epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _month_of(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _add_months(month: datetime, count: int) -> datetime:
    index = month.year * 12 + month.month - 1 + count
    return month.replace(year=index // 12, month=index % 12 + 1)


def _months(window: Interval) -> list[Interval]:
    """The UTC calendar months overlapping `window`, each clipped to it."""
    spans = []
    month = _month_of(_at(window.start))
    while _to_epoch(month) < window.end:
        following = _add_months(month, 1)
        spans.append(
            Interval(max(_to_epoch(month), window.start), min(_to_epoch(following), window.end))
        )
        month = following
    return spans


def _trending_disk(config: SlamonConfig) -> str | None:
    """The service whose disk fills up slowly: the last one with a disk threshold."""
    with_disk = [service.id for service in config.services if "disk" in service.capacity]
    return with_disk[-1] if with_disk else None


class _EventFactory:
    """Builds events whose ids are uuid5 of the seed and the event's content."""

    def __init__(self, seed: int) -> None:
        self._seed = seed

    def make(
        self, type_: EventType, subject: str, source: str, epoch: int, data: dict[str, Any]
    ) -> CloudEvent:
        """One validated event at epoch second `epoch`."""
        content = json.dumps(
            [self._seed, str(type_), subject, source, epoch, data], sort_keys=True, default=str
        )
        return new_event(
            type_,
            subject,
            data,
            source=source,
            time=_at(epoch),
            id=str(uuid.uuid5(_ID_NAMESPACE, content)),
        )


def _rng(seed: int, service: str, topic: str, month: Interval) -> random.Random:
    """A generator private to one service, topic and month, so other months stay unchanged."""
    return random.Random(f"{seed}/{service}/{topic}/{_at(month.start):%Y-%m}")


@dataclass
class _ServiceHistory:
    """Everything that happened to one service in the history window."""

    config: SlamonConfig
    service: ServiceConfig
    index: int
    window: Interval
    seed: int
    factory: _EventFactory
    outages: list[_Outage] = field(default_factory=list)
    maintenance: list[_Maintenance] = field(default_factory=list)
    degraded: list[Interval] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.months = _months(self.window)
        self.hours_calendar = self._calendar(self.service.service_hours)
        self.hours_zone = self._zone_of(self.service.service_hours)
        self._plan_maintenance()
        self._plan_outages()

    def streams(self, trending_disk: bool) -> list[Iterable[CloudEvent]]:
        """Time-ordered event streams of this service, for a k-way merge."""
        events = [
            *self._outage_events(),
            *self._status_events(),
            *self._maintenance_and_change_events(),
            *self._ticket_events(),
            *self._continuity_events(),
        ]
        events = [
            event
            for event in events
            if self.window.start <= _to_epoch(event.time) < self.window.end
        ]
        events.sort(key=_event_time)
        probes = [self._probe_stream(probe) for probe in self.service.probes]
        capacity = [
            self._capacity_stream(resource, trending_disk and resource == "disk")
            for resource in self.service.capacity
        ]
        return [events, *probes, *capacity]

    # --- planning -------------------------------------------------------------------------

    def _calendar(self, name: str) -> BusinessCalendar:
        return Calendars(self.config.calendars)[name]

    def _zone_of(self, name: str) -> str:
        if name != TWENTY_FOUR_SEVEN:
            return self.config.calendars[name].timezone
        # Round-the-clock services still schedule maintenance at the operators' local night.
        return next((c.timezone for c in self.config.calendars.values()), "UTC")

    def _is(self, position: int) -> bool:
        """Whether this is the service at `position` (wrapping), to spread one-off stories."""
        return self.index == position % len(self.config.services)

    def _id(self, prefix: str, month: Interval, number: int) -> str:
        return f"{prefix}-{self.service.id}-{_at(month.start):%Y%m}-{number:02d}"

    def _plan_outages(self) -> None:
        """A few unplanned outages a month, plus the ones the demo needs on purpose."""
        http = any(probe.http is not None for probe in self.service.probes)
        failures = (
            [("HTTP 503", 503), ("HTTP 500", 500), ("timeout", None), ("connection refused", None)]
            if http
            else [("connection refused", None), ("timeout", None)]
        )
        for month_index, month in enumerate(self.months):
            rng = _rng(self.seed, self.service.id, "outages", month)
            steps = (month.end - month.start) // PROBE_STEP_S
            for number in range(rng.randint(1, 3)):
                # Mostly short; now and then a long one.
                minutes = rng.choice([5, 10, 10, 15, 20, 25, 35, 50, 70, 110])
                start = month.start + rng.randrange(steps) * PROBE_STEP_S
                error, code = rng.choice(failures)
                self.outages.append(
                    _Outage(
                        self._id("OUT", month, number),
                        Interval(start, start + minutes * MINUTE),
                        error,
                        code,
                    )
                )
            # Each month one service has a partial outage, reported by people: probes see nothing.
            if self._is(month_index):
                start = month.start + rng.randrange(steps) * PROBE_STEP_S
                self.outages.append(
                    _Outage(
                        self._id("OUT", month, 9),
                        Interval(start, start + 50 * MINUTE),
                        "partial",
                        None,
                        seen_by_probes=False,
                        impact="partial",
                    )
                )
            self._plan_degradation(rng, month, steps)
        self._plan_special_outages(failures[0])
        self.outages.sort(key=lambda outage: outage.span.start)

    def _plan_degradation(self, rng: random.Random, month: Interval, steps: int) -> None:
        """Slow spells: probes pass but take long; a monitor reports the service degraded."""
        for _ in range(rng.randint(1, 2)):
            start = month.start + rng.randrange(steps) * PROBE_STEP_S
            self.degraded.append(Interval(start, start + rng.choice([30, 45, 60]) * MINUTE))

    def _plan_special_outages(self, failure: tuple[str, int | None]) -> None:
        """The first service loses the night across a month boundary and, in the second month, an
        emergency change breaks it; the first service on a calendar fails inside its hours."""
        first_full, second_full = self.months[0], self.months[min(1, len(self.months) - 1)]
        error, code = failure
        if self.index == 0:
            begin = self._emergency_change_start()
            self.outages.append(
                _Outage(
                    self._id("OUT", second_full, 90),
                    Interval(begin + 30 * MINUTE, begin + 65 * MINUTE),
                    error,
                    code,
                )
            )
            # 21:40 to 00:20 UTC crosses midnight in UTC and in every zone east of it to +2:00.
            start = first_full.end - 2 * HOUR - 20 * MINUTE
            self.outages.append(
                _Outage(
                    self._id("OUT", first_full, 20),
                    Interval(start, start + 2 * HOUR + 40 * MINUTE),
                    error,
                    code,
                )
            )
        on_calendar = [s.id for s in self.config.services if s.service_hours != TWENTY_FOUR_SEVEN]
        if on_calendar and on_calendar[0] == self.service.id:
            opening = self._working_day(second_full, day_of_month=10)
            start = opening.start + 75 * MINUTE
            self.outages.append(
                _Outage(
                    self._id("OUT", second_full, 21),
                    Interval(start, start + 95 * MINUTE),
                    error,
                    code,
                )
            )

    def _working_day(self, month: Interval, day_of_month: int) -> Interval:
        """The first working span of at least 3 h on or after `day_of_month` of `month`."""
        from_ = month.start + (day_of_month - 1) * DAY
        for span in self.hours_calendar.working_intervals(from_, from_ + 14 * DAY):
            if span.seconds >= 3 * HOUR:
                return span
        return Interval(from_ + 9 * HOUR, from_ + 17 * HOUR)

    def _emergency_change_start(self) -> int:
        return self.months[min(1, len(self.months) - 1)].start + 17 * DAY + 19 * HOUR

    def _plan_maintenance(self) -> None:
        """A monthly Sunday-night window; every other one implements a change, with downtime."""
        tz = zone(self.hours_zone)
        for month_index, month in enumerate(self.months):
            rng = _rng(self.seed, self.service.id, "maintenance", month)
            sunday = _first_weekday(_at(month.start).date() + timedelta(days=6), weekday=6)
            span = Interval(local_to_epoch(tz, sunday, 2 * 60), local_to_epoch(tz, sunday, 4 * 60))
            change_ref = self._id("CHG", month, 1) if (month_index + self.index) % 2 == 0 else None
            reason = rng.choice(
                [
                    "OS patching",
                    "database upgrade",
                    "certificate rotation",
                    "storage firmware update",
                ]
            )
            self.maintenance.append(
                _Maintenance(self._id("MW", month, 1), span, reason, change_ref)
            )
            if self._is(1) and month_index == 1:
                # The one planned outage: announced like an outage, inside the window.
                self.outages.append(
                    _Outage(
                        self._id("OUT", month, 50),
                        span,
                        "planned",
                        None,
                        seen_by_probes=False,
                        planned=True,
                        ref=change_ref or self._id("MW", month, 1),
                    )
                )

    def _failures(self) -> list[Failure]:
        """When probes fail: outages they see, and the down part of change windows."""
        spans = [(o.span, o.error, o.status_code) for o in self.outages if o.seen_by_probes]
        spans += [
            (
                Interval(m.span.start + 10 * MINUTE, m.span.start + 40 * MINUTE),
                "connection refused",
                None,
            )
            for m in self.maintenance
            if m.change_ref is not None
        ]
        return sorted(spans, key=lambda item: item[0].start)

    # --- availability ---------------------------------------------------------------------

    def _probe_stream(self, probe: ProbeConfig) -> Iterator[CloudEvent]:
        kind = "http" if probe.http is not None else "tcp"
        source = f"collector/{kind}/{self.service.id}-{probe.name}"
        mean_ms = _MEAN_LATENCY_MS[self.index % len(_MEAN_LATENCY_MS)] if kind == "http" else 2.5
        failing = self._failures()
        slow: list[Failure] = sorted(
            ((span, "", None) for span in self.degraded), key=lambda item: item[0].start
        )
        for month in self.months:
            rng = _rng(self.seed, self.service.id, f"probe/{probe.name}", month)
            first = month.start + (-month.start) % PROBE_STEP_S
            for epoch in range(first, month.end, PROBE_STEP_S):
                latency = mean_ms * rng.lognormvariate(0, 0.25)
                data: dict[str, Any] = {"check": probe.name, "ok": True}
                hit = _covering(failing, epoch)
                if hit is not None:
                    _, error, code = hit
                    data.update(ok=False, error=error, status_code=code)
                    latency = probe.timeout * 1000.0 if error == "timeout" else latency / 4
                elif _covering(slow, epoch) is not None:
                    latency = min(latency * 12, probe.timeout * 900.0)
                if kind == "http" and data.get("status_code") is None and data["ok"]:
                    data["status_code"] = 200
                data["latency_ms"] = round(latency, 1)
                yield self.factory.make(
                    EventType.PROBE,
                    self.service.id,
                    source,
                    epoch,
                    {k: v for k, v in data.items() if v is not None},
                )

    def _outage_events(self) -> Iterator[CloudEvent]:
        """Start and end events of the outages people reported, and of the major ones."""
        for outage in self.outages:
            if outage.seen_by_probes and outage.span.seconds < 90 * MINUTE:
                continue
            ref = outage.ref or outage.incident_id
            data: dict[str, Any] = {
                "outage_id": outage.outage_id,
                "start": _at(outage.span.start),
                "planned": outage.planned,
                "impact": outage.impact,
                "ref": ref,
            }
            yield self._event(
                EventType.OUTAGE, _OUTAGE_SOURCE, outage.span.start + 10 * MINUTE, data
            )
            yield self._event(
                EventType.OUTAGE,
                _OUTAGE_SOURCE,
                outage.span.end + 15 * MINUTE,
                {**data, "end": _at(outage.span.end)},
            )

    def _status_events(self) -> Iterator[CloudEvent]:
        """Alertmanager's view: down after a few failed minutes, degraded during slow spells."""
        for outage in self.outages:
            if outage.seen_by_probes and outage.span.seconds >= 15 * MINUTE:
                yield self._event(
                    EventType.STATUS,
                    _ALERT_SOURCE,
                    outage.span.start + 5 * MINUTE,
                    {"state": "down", "reason": f"ProbeFailing: {outage.error}"},
                )
                yield self._event(
                    EventType.STATUS,
                    _ALERT_SOURCE,
                    outage.span.end,
                    {"state": "up", "reason": "resolved"},
                )
        for span in self.degraded:
            yield self._event(
                EventType.STATUS,
                _ALERT_SOURCE,
                span.start + 5 * MINUTE,
                {"state": "degraded", "reason": "HighLatency: p95 above 1s"},
            )
            yield self._event(
                EventType.STATUS, _ALERT_SOURCE, span.end, {"state": "up", "reason": "resolved"}
            )

    def _maintenance_and_change_events(self) -> Iterator[CloudEvent]:
        """The maintenance windows, a few changes a month, and the emergency change."""
        tz = zone(self.hours_zone)
        for month, window in zip(self.months, self.maintenance, strict=True):
            data: dict[str, Any] = {
                "window_id": window.window_id,
                "start": _at(window.span.start),
                "end": _at(window.span.end),
                "reason": window.reason,
            }
            if window.change_ref is not None:
                data["change_ref"] = window.change_ref
            announced = max(window.span.start - 5 * DAY, self.window.start)
            yield self._event(EventType.MAINTENANCE, _CHANGE_SOURCE, announced, data)
            rng = _rng(self.seed, self.service.id, "changes", month)
            yield from self._change(
                self._id("CHG", month, 1), "normal", "implemented", window.span, None
            )
            for number in range(2, rng.randint(3, 5) + 1):
                day = _at(month.start + rng.randrange((month.end - month.start) // DAY) * DAY)
                begin = local_to_epoch(tz, day.date(), rng.choice([6, 7, 20, 21]) * 60)
                span = Interval(begin, begin + rng.choice([30, 60, 90]) * MINUTE)
                status = rng.choices(
                    ["implemented", "failed", "rolled_back", "cancelled"], [80, 7, 9, 4]
                )[0]
                kind = "standard" if number % 2 else "normal"
                yield from self._change(self._id("CHG", month, number), kind, status, span, None)
        if self.index == 0:
            begin = self._emergency_change_start()
            month = self.months[min(1, len(self.months) - 1)]
            yield from self._change(
                self._id("CHG", month, 90),
                "emergency",
                "implemented",
                Interval(begin, begin + 25 * MINUTE),
                self._id("INC", month, 90),
            )

    def _change(
        self, change_id: str, kind: str, status: str, span: Interval, incident: str | None
    ) -> Iterator[CloudEvent]:
        data: dict[str, Any] = {
            "change_id": change_id,
            "kind": kind,
            "status": "scheduled",
            "start": _at(span.start),
            "end": _at(span.end),
        }
        if kind != "emergency":
            yield self._event(EventType.CHANGE, _CHANGE_SOURCE, span.start - 3 * DAY, data)
        final = {**data, "status": status}
        if incident is not None:
            final["caused_incident"] = incident
        yield self._event(EventType.CHANGE, _CHANGE_SOURCE, span.end, final)

    # --- tickets --------------------------------------------------------------------------

    def _ticket_events(self) -> Iterator[CloudEvent]:
        policy = self.service.tickets
        if policy is None:
            return
        clocks = _TicketClocks(self._calendar(policy.calendar), policy)
        priorities = sorted(policy.goals)
        for month_index, month in enumerate(self.months):
            rng = _rng(self.seed, self.service.id, "tickets", month)
            specs = self._ticket_specs(rng, month, priorities, clocks)
            # Numbered from 30 up: lower numbers are the incidents named after their outage.
            for number, spec in enumerate(specs, start=30):
                if not spec.ticket_id:
                    spec.ticket_id = self._id(
                        "INC" if spec.kind == "incident" else "REQ", month, number
                    )
                twist = ""
                if month_index == 1 and number == 30:
                    twist = {0: "reopen", 1: "upgrade"}.get(self.index, "")
                yield from self._ticket(spec, rng, clocks, twist)

    def _ticket_specs(
        self,
        rng: random.Random,
        month: Interval,
        priorities: Sequence[str],
        clocks: _TicketClocks,
    ) -> list[_TicketSpec]:
        specs = []
        for outage in self.outages:
            if (
                not outage.planned
                and outage.span.seconds >= 30 * MINUTE
                and month.start <= outage.span.start < month.end
            ):
                major = outage.span.seconds >= 60 * MINUTE
                priority = priorities[0 if major else min(1, len(priorities) - 1)]
                specs.append(
                    _TicketSpec(
                        "incident",
                        priority,
                        outage.span.start + 8 * MINUTE,
                        resolve_at=outage.span.end + 10 * MINUTE,
                        ticket_id=outage.incident_id,
                    )
                )
        lower = priorities[-2:]
        for kind, count in (("incident", rng.randint(4, 6)), ("request", rng.randint(5, 7))):
            for _ in range(count):
                raw = month.start + rng.randrange(month.end - month.start)
                created = clocks.after(raw, rng.randint(60, 2 * HOUR))
                specs.append(_TicketSpec(kind, rng.choice(lower), created))
        specs.sort(key=lambda spec: spec.created)
        return specs

    def _ticket(
        self, spec: _TicketSpec, rng: random.Random, clocks: _TicketClocks, twist: str
    ) -> Iterator[CloudEvent]:
        """One ticket's lifecycle: new, open, responded, maybe pending, resolved, closed."""
        goal = clocks.policy.goals[spec.priority]
        priority = spec.priority
        at = spec.created
        yield self._ticket_event(spec, priority, "new", at)
        at += rng.randint(1, 6) * MINUTE
        yield self._ticket_event(spec, priority, "open", at)
        response_share = rng.uniform(1.2, 2.5) if rng.random() < 0.08 else rng.uniform(0.1, 0.8)
        at = max(at + MINUTE, clocks.after(spec.created, int(goal.response * response_share)))
        yield self._ticket_event(spec, priority, "in_progress", at, responded=True)
        if twist == "upgrade":
            priority = clocks.next_higher(priority)
            goal = clocks.policy.goals[priority]
            at += 20 * MINUTE
            yield self._ticket_event(spec, priority, "in_progress", at)
        pauses: list[Interval] = []
        if rng.random() < 0.3:
            at += rng.randint(10, 90) * MINUTE
            pending = Interval(at, at + rng.randint(2, 40) * HOUR)
            yield self._ticket_event(spec, priority, "pending", pending.start)
            yield self._ticket_event(spec, priority, "in_progress", pending.end)
            pauses.append(pending)
            at = pending.end
        if spec.resolve_at is not None:
            resolved = max(at + MINUTE, spec.resolve_at)
        else:
            resolution_share = (
                rng.uniform(1.1, 1.8) if rng.random() < 0.1 else rng.uniform(0.15, 0.9)
            )
            resolved = max(
                at + MINUTE,
                clocks.after(
                    spec.created, int(goal.resolution * resolution_share), clocks.paused(pauses)
                ),
            )
        yield self._ticket_event(spec, priority, "resolved", resolved)
        if twist == "reopen":
            reopened = resolved + DAY
            yield self._ticket_event(spec, priority, "in_progress", reopened)
            resolved = reopened + 5 * HOUR
            yield self._ticket_event(spec, priority, "resolved", resolved)
        yield self._ticket_event(spec, priority, "closed", resolved + 3 * DAY)

    def _ticket_event(
        self, spec: _TicketSpec, priority: str, status: str, epoch: int, responded: bool = False
    ) -> CloudEvent:
        data: dict[str, Any] = {
            "ticket_id": spec.ticket_id,
            "kind": spec.kind,
            "priority": priority,
            "status": status,
        }
        if responded:
            data["responded"] = True
        if self.service.customer is not None:
            data["customer"] = self.service.customer
        return self._event(EventType.TICKET, _TICKET_SOURCE, epoch, data)

    # --- capacity and continuity ----------------------------------------------------------

    def _capacity_stream(self, resource: str, trending: bool) -> Iterator[CloudEvent]:
        shape = _RESOURCES.get(resource, _OTHER_RESOURCE)
        host = f"{self.service.id}-{shape.host_role}-1"
        source = f"collector/capacity/{self.service.id}"
        tz = zone(self.hours_zone)
        for month in self.months:
            rng = _rng(self.seed, self.service.id, f"capacity/{resource}", month)
            first = month.start + (-month.start) % CAPACITY_STEP_S
            for epoch in range(first, month.end, CAPACITY_STEP_S):
                local = _at(epoch).astimezone(tz)
                if trending:
                    days_before_now = (self.window.end - epoch) / DAY
                    ratio = TREND_NOW - TREND_PER_DAY * days_before_now
                else:
                    # Busiest in the afternoon, quieter at weekends.
                    hour_angle = (local.hour + local.minute / 60 - 8) / 24 * 2 * math.pi
                    weekend = 0.75 if local.weekday() >= 5 else 1.0
                    busy = max(0.0, math.sin(hour_angle)) * weekend
                    ratio = shape.base + shape.daily_swing * busy
                ratio = min(0.99, max(0.01, ratio + rng.gauss(0, 0.012 if trending else 0.03)))
                data = {
                    "resource": resource,
                    "used": round(ratio * shape.capacity, 2),
                    "capacity": shape.capacity,
                    "unit": shape.unit,
                    "host": host,
                }
                yield self.factory.make(EventType.CAPACITY, self.service.id, source, epoch, data)

    def _continuity_events(self) -> Iterator[CloudEvent]:
        """A test per quarter for services with an RTO or RPO; payments misses its RPO once."""
        objectives = self.service.objectives
        if objectives.rto is None and objectives.rpo is None:
            return
        rto = objectives.rto or 4 * HOUR
        rpo = objectives.rpo or 15 * MINUTE
        seen_quarters: set[tuple[int, int]] = set()
        for month in self.months:
            first_day = _at(month.start)
            quarter = (first_day.year, (first_day.month - 1) // 3)
            if quarter in seen_quarters:
                continue
            seen_quarters.add(quarter)
            rng = _rng(self.seed, self.service.id, "continuity", month)
            invoked = self._working_day(month, day_of_month=12).start + HOUR
            restored = invoked + int(rto * rng.uniform(0.35, 0.8))
            misses_rpo = self.service.id == self._rpo_misser() and len(seen_quarters) == 1
            data_loss = int(rpo * (1.6 if misses_rpo else rng.uniform(0.1, 0.8)))
            data = {
                "test_id": f"BCT-{self.service.id}-{quarter[0]}Q{quarter[1] + 1}",
                "scenario": rng.choice(["region-failover", "database-restore", "backup-restore"]),
                "invoked_at": _at(invoked),
                "restored_at": _at(restored),
                "data_restored_to": _at(invoked - data_loss),
                "outcome": "failed" if misses_rpo else "passed",
            }
            yield self._event(EventType.CONTINUITY, _CONTINUITY_SOURCE, restored, data)

    def _rpo_misser(self) -> str:
        """The service whose first continuity test misses its RPO: the second one tested."""
        tested = [
            s.id
            for s in self.config.services
            if s.objectives.rto is not None or s.objectives.rpo is not None
        ]
        return tested[min(1, len(tested) - 1)]

    def _event(self, type_: EventType, source: str, epoch: int, data: dict[str, Any]) -> CloudEvent:
        return self.factory.make(type_, self.service.id, source, epoch, data)


@dataclass
class _TicketSpec:
    """A ticket to be generated: what it is and when it was raised."""

    kind: str
    priority: str
    created: int
    resolve_at: int | None = None
    ticket_id: str = ""


@dataclass(frozen=True)
class _TicketClocks:
    """Business-time arithmetic on a service's ticket calendar."""

    calendar: BusinessCalendar
    policy: TicketPolicy

    def after(self, start: int, business_seconds: int, pauses: Sequence[Interval] = ()) -> int:
        """The instant `business_seconds` of (unpaused) business time after `start`."""
        return deadline(self.calendar, start, max(1, business_seconds), pauses)

    def paused(self, pending: list[Interval]) -> list[Interval]:
        """The pending spans that stop the resolution clock under this policy."""
        pause = self.policy.pause
        return pending if "pending" in pause.statuses and "resolution" in pause.clocks else []

    def next_higher(self, priority: str) -> str:
        """The priority one step more urgent, e.g. P3 -> P2."""
        ordered = sorted(self.policy.goals)
        return ordered[max(0, ordered.index(priority) - 1)]


def _covering(spans: list[Failure], epoch: int) -> Failure | None:
    """The entry of `spans` (sorted by start) whose interval contains `epoch`."""
    index = bisect.bisect_right(spans, epoch, key=lambda item: item[0].start) - 1
    # Spans may overlap, so look back over a few earlier starts too.
    for candidate in spans[max(0, index - 3) : index + 1]:
        if candidate[0].start <= epoch < candidate[0].end:
            return candidate
    return None


def _first_weekday(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m slamon.demodata --config examples/demo.yaml --out history.jsonl`."""
    parser = argparse.ArgumentParser(description="Write the demo history as JSON lines.")
    parser.add_argument("--config", type=Path, default=Path("examples/demo.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--now",
        type=datetime.fromisoformat,
        default=None,
        help="end of the history (RFC 3339 with offset); default: now",
    )
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    args = parser.parse_args(argv)
    now = args.now or datetime.now(UTC)
    count = write_jsonl(generate_history(load_config(args.config), now, seed=args.seed), args.out)
    print(f"wrote {count} events to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
