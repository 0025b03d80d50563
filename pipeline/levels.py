"""Service levels computed from the event store: the bridge between DuckDB and the sla engine."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

from pipeline.exporter import ServiceLevels
from pipeline.store import EventStore
from sla.availability import (
    Outage,
    availability,
    error_budget,
    outages_from_probe_results,
    outages_from_status_changes,
)
from sla.calendar import TWENTY_FOUR_SEVEN as CALENDAR_24X7
from sla.calendar import BusinessCalendar, calendar_from_config
from sla.config import OutageFromProbes, ServiceConfig, SlamonConfig
from sla.intervals import Interval
from sla.windows import month_to_date, rolling

ROLLING_30D = 30 * 86_400
# A failed-probe run that opened before the window still counts inside it; a day of probe
# history before the window start is enough to see where such a run began.
PROBE_LOOKBACK = 86_400
TWENTY_FOUR_SEVEN = "24x7"


@dataclass(frozen=True)
class ServiceEvidence:
    """Everything the store knows about one service's availability since a point in time."""

    outages: list[Outage]
    maintenance: list[Interval]
    seen: bool


class ServiceLevelView:
    """Computes month-to-date and rolling 30-day service levels for every configured service."""

    def __init__(self, store: EventStore, config: SlamonConfig) -> None:
        self._store = store
        self._services = config.services
        self._calendars: dict[str, BusinessCalendar] = {
            name: calendar_from_config(calendar) for name, calendar in config.calendars.items()
        }

    def calendar_of(self, service: ServiceConfig) -> BusinessCalendar:
        """The calendar of the service's agreed service hours."""
        if service.service_hours == TWENTY_FOUR_SEVEN:
            return CALENDAR_24X7
        return self._calendars[service.service_hours]

    def compute(self, now: int) -> list[ServiceLevels]:
        """Figures for every service as of `now` (Unix seconds)."""
        windows = {
            service.id: {
                "month": month_to_date(self.calendar_of(service).timezone, now),
                "30d": rolling(now, ROLLING_30D),
            }
            for service in self._services
        }
        since = min((w.start for ws in windows.values() for w in ws.values()), default=now)
        evidence = self._evidence(since, now)
        levels = []
        for service in self._services:
            found = evidence.get(service.id, ServiceEvidence([], [], seen=False))
            calendar = self.calendar_of(service)
            results = {
                name: availability(calendar, window, found.outages, found.maintenance, now)
                for name, window in windows[service.id].items()
            }
            objective = service.objectives.availability
            budgets = {
                name: error_budget(objective, r.agreed_seconds, r.downtime_seconds)
                for name, r in results.items()
                if objective is not None
            }
            ongoing = any(
                o.end is None and not o.planned and o.impact == "full" for o in found.outages
            )
            levels.append(
                ServiceLevels(
                    service=service.id,
                    # Via a decimal fraction: 99.9 gives 0.999, not 0.9990000000000001.
                    target_ratio=None
                    if objective is None
                    else float(Fraction(str(objective)) / 100),
                    up=(not ongoing) if found.seen else None,
                    availability=results,
                    error_budget=budgets,
                )
            )
        return levels

    def _evidence(self, since: int, now: int) -> dict[str, ServiceEvidence]:
        """Outages from all three sources and maintenance windows per service."""
        outages: dict[str, list[Outage]] = defaultdict(list)
        seen: set[str] = set()
        rules = {s.id: s.outage_from_probes or OutageFromProbes() for s in self._services}

        probe_runs: dict[tuple[str, str], list[tuple[int, bool]]] = defaultdict(list)
        for service, check, t, ok in self._store.query(
            """SELECT service, "check", epoch_us(time) // 1000000, ok FROM probes
               WHERE time >= to_timestamp(?) AND time <= to_timestamp(?)
               ORDER BY service, "check", time""",
            [since - PROBE_LOOKBACK, now],
        ).iter_rows():
            probe_runs[(service, check)].append((t, ok))
        for (service, _check), results in probe_runs.items():
            seen.add(service)
            # Each check is its own run of evidence; the union over checks is taken later.
            rule = rules.get(service, OutageFromProbes())
            outages[service].extend(
                outages_from_probe_results(results, rule.failures, rule.recoveries)
            )

        status_changes: dict[str, list[tuple[int, str]]] = defaultdict(list)
        # Every state change up to now: the state before the window decides whether an
        # outage was already open when the window began.
        for service, t, state in self._store.query(
            """SELECT service, epoch_us(time) // 1000000, state FROM statuses
               WHERE time <= to_timestamp(?) ORDER BY service, time""",
            [now],
        ).iter_rows():
            status_changes[service].append((t, state))
        for service, changes in status_changes.items():
            seen.add(service)
            outages[service].extend(outages_from_status_changes(changes))

        for service, outage_id, start, end, planned, impact, ref in self._store.query(
            """SELECT service, outage_id, epoch_us(start) // 1000000,
                      epoch_us("end") // 1000000, planned, impact, ref
               FROM outages_latest
               WHERE start <= to_timestamp(?) AND ("end" IS NULL OR "end" > to_timestamp(?))""",
            [now, since],
        ).iter_rows():
            seen.add(service)
            outages[service].append(
                Outage(
                    start=start,
                    end=end,
                    planned=bool(planned),
                    impact=impact,
                    source="outage",
                    ref=ref,
                    outage_id=outage_id,
                )
            )

        maintenance: dict[str, list[Interval]] = defaultdict(list)
        for service, start, end in self._store.query(
            """SELECT service, epoch_us(start) // 1000000, epoch_us("end") // 1000000
               FROM maintenance
               WHERE start <= to_timestamp(?) AND "end" > to_timestamp(?)
               QUALIFY row_number() OVER (
                   PARTITION BY service, window_id ORDER BY time DESC, event_id DESC) = 1""",
            [now, since],
        ).iter_rows():
            maintenance[service].append(Interval(start, end))

        services = seen | set(maintenance)
        return {s: ServiceEvidence(outages[s], maintenance[s], seen=s in seen) for s in services}
