"""What the engine needs per service, reduced from events; and the plain-Python reduction.

The reduction here is the reference: it reads a list of CloudEvents with nothing but Python.
`pipeline/engine.py` reduces the same events in DuckDB, over all services at once, and must
produce equal `ServiceInputs` for any input (tests/pipeline/test_engine_agreement.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sla.availability import (
    Outage,
    ProbeIsland,
    StatusChange,
    outages_from_probe_islands,
    outages_from_status_changes,
    probe_islands,
)
from sla.calendar import Calendars
from sla.capacity import CapacityKey, CapacitySample, CapacitySeries
from sla.changes import ChangeRecord, ChangeTally, changes_ending_since, ended_in
from sla.config import (
    HeartbeatConfig,
    OutageFromProbes,
    ProbeConfig,
    ServiceConfig,
    SlamonConfig,
    TicketPolicy,
)
from sla.continuity import ContinuityTest
from sla.events import (
    CapacityData,
    ChangeData,
    CloudEvent,
    ContinuityData,
    EventType,
    MaintenanceData,
    OutageData,
    ProbeData,
    StatusData,
    TicketData,
)
from sla.intervals import Interval
from sla.tickets import ClockTally, TicketClock, TicketUpdate, ticket_clocks

PROBE_LOOKBACK = 86_400
"""Probe history read before a window: a failed-probe run that began earlier still counts."""
STALE_PROBE_INTERVALS = 3
"""A failing check silent for this many of its intervals no longer extends its outage."""
UNCONFIGURED_PROBE_INTERVAL = 300
"""The assumed interval of checks that are not in the config (imported probe results)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_Tally = TypeVar("_Tally", ClockTally, ChangeTally)


def epoch_seconds(instant: datetime) -> int:
    """Whole Unix seconds of an aware datetime, rounded down (exact: no float on the way)."""
    return (instant - _EPOCH) // timedelta(seconds=1)


@dataclass(frozen=True)
class OutageRecord:
    """The latest version of one reported outage (`slamon.outage.v1`)."""

    outage_id: str
    start: int
    end: int | None
    planned: bool
    impact: str
    ref: str | None


@dataclass(frozen=True)
class ServiceInputs:
    """Everything the engine needs about one service, already reduced from its events."""

    service: str
    outages: tuple[Outage, ...] = ()
    maintenance: tuple[Interval, ...] = ()
    observed: bool = False
    """Whether any availability evidence (probe, status, outage, maintenance) exists."""
    capacity: dict[CapacityKey, CapacitySeries] = field(default_factory=dict)
    """Samples in [since, now] per (resource, host), in time order."""
    continuity: tuple[ContinuityTest, ...] = ()
    """Every test known at now, the latest event of each test id, by invocation."""
    changes: tuple[ChangeRecord, ...] = ()
    """Every event known at now of the changes whose latest end is at or after since, in
    time order; `sla.changes` keeps the latest per change."""
    ticket_clocks: tuple[TicketClock, ...] = ()
    """The clocks of every ticket known at now, as of now, but for those stopped before
    since: they fall in no window within [since, now] (`sla.tickets.in_window`); and but
    for those `counted_clocks` counts."""
    counted_clocks: dict[Interval, ClockTally] | None = None
    """Per window, the stopped clocks in it, counted instead of listed (the live figures and
    the summaries; `ticket_clocks` then lists the running clocks only); None when every
    clock is listed."""
    counted_changes: dict[Interval, ChangeTally] | None = None
    """Per window, the changes that ended in it, counted; None when `changes` lists them."""

    def clock_tally(self, window: Interval) -> ClockTally:
        """The clocks counted for `window` (none when every clock is listed)."""
        if self.counted_clocks is None:
            return ClockTally()
        return _counted_for(self.counted_clocks, window)

    def change_tally(self, window: Interval) -> ChangeTally:
        """The changes that ended in `window`, counted or from the listed records."""
        if self.counted_changes is None:
            return ChangeTally.of(ended_in(self.changes, window))
        return _counted_for(self.counted_changes, window)


@dataclass
class OtherEvidence:
    """The reduced capacity, continuity and change events of one service."""

    capacity: dict[CapacityKey, CapacitySeries] = field(default_factory=dict)
    continuity: list[ContinuityTest] = field(default_factory=list)
    changes: list[ChangeRecord] = field(default_factory=list)
    ticket_clocks: list[TicketClock] = field(default_factory=list)
    counted_clocks: dict[Interval, ClockTally] | None = None
    counted_changes: dict[Interval, ChangeTally] | None = None


def _counted_for(counted: Mapping[Interval, _Tally], window: Interval) -> _Tally:
    """What was counted for `window`; counted for other windows, the inputs cannot tell."""
    try:
        return counted[window]
    except KeyError:
        raise ValueError(
            f"the inputs count clocks or changes for other windows than {window}"
        ) from None


@dataclass
class AvailabilityEvidence:
    """The reduced availability events of one service, before the outage rules apply."""

    islands: dict[str, list[ProbeIsland]] = field(default_factory=dict)
    status_changes: dict[str, list[StatusChange]] = field(default_factory=dict)
    """The state changes of each monitor (the CloudEvent `source`), in time order."""
    outages: list[OutageRecord] = field(default_factory=list)
    maintenance: list[Interval] = field(default_factory=list)
    observed: bool = False


def stale_after(service: ServiceConfig | None, check: str) -> int:
    """Seconds of silence after which a failing check's outage stops growing."""
    interval = UNCONFIGURED_PROBE_INTERVAL
    if service is not None:
        # A heartbeat's check is its name, and a missed heartbeat is reported once an
        # interval: a daily job is silent after days, not after the probes' default.
        checks: list[ProbeConfig | HeartbeatConfig] = [*service.probes, *service.heartbeats]
        interval = next((c.interval for c in checks if c.name == check), interval)
    return STALE_PROBE_INTERVALS * interval


def service_inputs(
    service_id: str,
    service: ServiceConfig | None,
    evidence: AvailabilityEvidence,
    other: OtherEvidence,
    *,
    since: int,
    now: int,
) -> ServiceInputs:
    """Apply the outage rules of the three sources to one service's reduced evidence.

    Only outages that overlap [since, now] are kept: older history decides nothing here.
    """
    rule = (service.outage_from_probes if service else None) or OutageFromProbes()
    outages: list[Outage] = []
    for check, islands in sorted(evidence.islands.items()):
        outages += outages_from_probe_islands(
            islands,
            rule.failures,
            rule.recoveries,
            now=now,
            stale_after=stale_after(service, check),
        )
    # Each monitor has its own state: one alert resolving must not end another's outage.
    for changes in evidence.status_changes.values():
        outages += outages_from_status_changes(changes)
    outages += [
        Outage(
            start=r.start,
            end=r.end,
            planned=r.planned,
            impact="partial" if r.impact == "partial" else "full",
            source="outage",
            ref=r.ref,
            outage_id=r.outage_id,
        )
        for r in sorted(evidence.outages, key=lambda r: (r.start, r.outage_id))
    ]
    return ServiceInputs(
        service=service_id,
        outages=tuple(
            sorted((o for o in outages if _overlaps(o.start, o.end, since, now)), key=_outage_order)
        ),
        maintenance=tuple(sorted(evidence.maintenance, key=lambda i: (i.start, i.end))),
        observed=evidence.observed,
        capacity=dict(sorted(other.capacity.items(), key=_key)),
        continuity=tuple(sorted(other.continuity, key=lambda t: (t.invoked_at, t.test_id))),
        changes=tuple(other.changes),
        ticket_clocks=tuple(
            sorted(other.ticket_clocks, key=lambda c: (c.ticket_id, c.cycle, c.clock))
        ),
        counted_clocks=other.counted_clocks,
        counted_changes=other.counted_changes,
    )


def _key(item: tuple[CapacityKey, object]) -> tuple[str, str]:
    resource, host = item[0]
    return resource, host or ""


def _outage_order(outage: Outage) -> tuple[int, int, str, str, str]:
    """A total order, so both reductions list outages identically."""
    end = outage.end if outage.end is not None else 2**62
    return outage.start, end, outage.source, outage.outage_id or "", outage.impact


def _latest(events: Iterable[CloudEvent], key: str) -> list[CloudEvent]:
    """The newest event (by time, then id) for each value of data field `key`, per service."""
    newest: dict[tuple[str, str], CloudEvent] = {}
    for event in events:
        slot = (event.subject, getattr(event.data, key))
        current = newest.get(slot)
        if current is None or (event.time, event.id) > (current.time, current.id):
            newest[slot] = event
    return list(newest.values())


def _overlaps(start: int, end: int | None, since: int, until: int) -> bool:
    return start <= until and (end is None or end > since)


def inputs_from_events(
    events: Iterable[CloudEvent], config: SlamonConfig, since: int, now: int
) -> dict[str, ServiceInputs]:
    """The reference reduction: per service inputs for windows within [since, now].

    Only events whose time is at or before `now` are known; a later event (a clock ahead of
    ours) waits for a later computation.
    """
    by_type: dict[str, list[CloudEvent]] = defaultdict(list)
    for event in sorted(events, key=lambda e: (e.time, e.id)):
        if epoch_seconds(event.time) <= now:
            by_type[event.type].append(event)
    evidence: dict[str, AvailabilityEvidence] = defaultdict(AvailabilityEvidence)

    results: dict[tuple[str, str], list[tuple[int, bool]]] = defaultdict(list)
    for event in by_type[EventType.PROBE]:
        t = epoch_seconds(event.time)
        if t >= since - PROBE_LOOKBACK:
            assert isinstance(event.data, ProbeData)
            results[(event.subject, event.data.check)].append((t, event.data.ok))
    for (service, check), checks in results.items():
        evidence[service].islands[check] = probe_islands(checks)
        evidence[service].observed = True

    for event in by_type[EventType.STATUS]:
        assert isinstance(event.data, StatusData)
        found = evidence[event.subject]
        found.status_changes.setdefault(event.source, []).append(
            (epoch_seconds(event.time), event.data.state)
        )
        found.observed = True

    for event in _latest(by_type[EventType.OUTAGE], "outage_id"):
        assert isinstance(event.data, OutageData)
        data = event.data
        evidence[event.subject].observed = True
        start = epoch_seconds(data.start)
        end = None if data.end is None else epoch_seconds(data.end)
        if _overlaps(start, end, since, now):
            record = OutageRecord(data.outage_id, start, end, data.planned, data.impact, data.ref)
            evidence[event.subject].outages.append(record)

    for event in _latest(by_type[EventType.MAINTENANCE], "window_id"):
        assert isinstance(event.data, MaintenanceData)
        evidence[event.subject].observed = True
        start, end = epoch_seconds(event.data.start), epoch_seconds(event.data.end)
        if _overlaps(start, end, since, now):
            evidence[event.subject].maintenance.append(Interval(start, end))

    samples: dict[tuple[str, CapacityKey], list[CapacitySample]] = defaultdict(list)
    for event in by_type[EventType.CAPACITY]:
        t = epoch_seconds(event.time)
        if t >= since:
            assert isinstance(event.data, CapacityData)
            sample = event.data
            series = samples[(event.subject, (sample.resource, sample.host))]
            series.append((t, sample.used, sample.capacity))
    other: dict[str, OtherEvidence] = defaultdict(OtherEvidence)
    for (service, key), listed in samples.items():
        other[service].capacity[key] = CapacitySeries.of(listed)

    for event in _latest(by_type[EventType.CONTINUITY], "test_id"):
        assert isinstance(event.data, ContinuityData)
        run = event.data
        test = ContinuityTest(
            run.test_id,
            run.scenario,
            epoch_seconds(run.invoked_at),
            epoch_seconds(run.restored_at),
            epoch_seconds(run.data_restored_to),
            run.outcome,
        )
        other[event.subject].continuity.append(test)

    changes: dict[str, list[ChangeRecord]] = defaultdict(list)
    for event in by_type[EventType.CHANGE]:
        assert isinstance(event.data, ChangeData)
        changes[event.subject].append(change_record(event.data, epoch_seconds(event.time)))
    for service, records in changes.items():
        other[service].changes = changes_ending_since(records, since)

    updates: dict[tuple[str, str], list[TicketUpdate]] = defaultdict(list)
    for event in by_type[EventType.TICKET]:
        assert isinstance(event.data, TicketData)
        ticket = event.data
        update = TicketUpdate(
            epoch_seconds(event.time),
            ticket.status,
            ticket.priority,
            ticket.responded,
            ticket.kind,
            ticket.customer,
        )
        updates[(event.subject, ticket.ticket_id)].append(update)
    policies = ticket_policies(config)
    calendars = Calendars(config.calendars)
    for (service, ticket_id), history in sorted(updates.items()):
        policy = policies.get(service)
        if policy is not None:
            clocks = ticket_clocks(ticket_id, history, policy, calendars[policy.calendar], now)
            other[service].ticket_clocks.extend(
                c for c in clocks if c.stopped_at is None or c.stopped_at >= since
            )

    return reduce_evidence(evidence, other, config, since, now)


def ticket_policies(config: SlamonConfig) -> dict[str, TicketPolicy]:
    """The ticket policy of each service that has one: only their tickets have clocks."""
    return {s.id: s.tickets for s in config.services if s.tickets is not None}


def change_record(data: ChangeData, time: int) -> ChangeRecord:
    """A change event as `sla.changes` reads it."""
    return ChangeRecord(
        data.change_id,
        data.kind,
        data.status,
        epoch_seconds(data.start),
        epoch_seconds(data.end),
        time,
        data.caused_incident,
    )


def reduce_evidence(
    evidence: Mapping[str, AvailabilityEvidence],
    other: Mapping[str, OtherEvidence],
    config: SlamonConfig,
    since: int,
    now: int,
) -> dict[str, ServiceInputs]:
    """`ServiceInputs` for every configured service and every service with evidence."""
    services = {s.id: s for s in config.services}
    ids: Sequence[str] = sorted(set(services) | set(evidence) | set(other))
    none, nothing = AvailabilityEvidence(), OtherEvidence()
    return {
        sid: service_inputs(
            sid,
            services.get(sid),
            evidence.get(sid, none),
            other.get(sid, nothing),
            since=since,
            now=now,
        )
        for sid in ids
    }
