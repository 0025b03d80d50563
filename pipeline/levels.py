"""Live service levels for the exporter: month to date and rolling 30 days, per service."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace

from pipeline.engine import services_with_inputs
from pipeline.exporter import ServiceLevels
from pipeline.shards import ShardedStore, services_by_shard
from pipeline.store import EventStore
from sla.availability import agreed_service_time
from sla.calendar import BusinessCalendar, Calendars
from sla.config import ServiceConfig, SlamonConfig
from sla.inputs import ServiceInputs
from sla.intervals import Interval, union
from sla.service_levels import ServiceFigures, service_figures
from sla.windows import month_containing, rolling

ROLLING_30D = 30 * 86_400

# The certificate each check saw last; a check silent for the whole windows has none to show.
LATEST_CERTIFICATES = """
SELECT service, "check", epoch_us(arg_max(cert_expires_at, (time, event_id))) // 1000000
FROM probes
WHERE cert_expires_at IS NOT NULL
  AND time >= to_timestamp($since) AND time < to_timestamp($now + 1)
GROUP BY service, "check"
"""


def agreed_time_active(calendar: BusinessCalendar, inputs: ServiceInputs, now: int) -> bool:
    """Whether `now` is agreed service time: service hours, no maintenance or planned outage."""
    instant = Interval(now, now + 1)
    planned = (o.span(instant, now + 1) for o in inputs.outages if o.planned)
    excluded = union([*inputs.maintenance, *(s for s in planned if s is not None)])
    return bool(agreed_service_time(calendar, instant, excluded))


def service_up(service: ServiceConfig, inputs: ServiceInputs, now: int) -> bool | None:
    """False while an outage that counts as downtime is ongoing; None without any evidence."""
    if not inputs.observed:
        # Without any evidence there is no state to claim, not a healthy one.
        return None
    counts_partial = service.objectives.count_partial_outages
    return not any(
        not o.planned
        and (o.impact == "full" or counts_partial)
        and o.start <= now
        and (o.end is None or o.end > now)
        for o in inputs.outages
    )


def running_clocks_only(figures: ServiceFigures) -> ServiceFigures:
    """`figures` with only the running ticket clocks listed; counts and ratios unchanged.

    The gauges read no stopped clock, and published levels live until the next
    computation: keeping every clock of the windows would hold the month twice while it
    is computed again.
    """
    tickets = figures.tickets
    running = tuple(c for c in tickets.clocks if c.running)
    return replace(figures, tickets=replace(tickets, clocks=running))


class ServiceLevelView:
    """Computes month-to-date and rolling 30-day service levels for every configured service."""

    def __init__(self, store: EventStore, config: SlamonConfig) -> None:
        self._store = store
        self._config = config
        self._calendars = Calendars(config.calendars)

    def windows(self, now: int) -> dict[str, dict[str, Interval]]:
        """The exported windows of each service: its calendar month, and the last 30 days."""
        return {
            s.id: {
                # The whole month, computed as of now: figures count it up to now, while
                # the error budget is the whole month's agreed time.
                "month": month_containing(self._calendars[s.service_hours].timezone, now),
                "30d": rolling(now, ROLLING_30D),
            }
            for s in self._config.services
        }

    def certificates(self, since: int, now: int) -> dict[str, dict[str, int]]:
        """The latest certificate expiry (Unix seconds) per service and check."""
        found: dict[str, dict[str, int]] = defaultdict(dict)
        rows = self._store.query(LATEST_CERTIFICATES, {"since": since, "now": now})
        for service, check, expires_at in rows.iter_rows():
            found[service][check] = expires_at
        return found

    def compute(self, now: int) -> list[ServiceLevels]:
        """Figures for every service as of `now` (Unix seconds), reduced a batch at a time."""
        windows = self.windows(now)
        since = min((w.start for ws in windows.values() for w in ws.values()), default=now)
        certificates = self.certificates(since, now)
        levels = []
        # Only these windows' figures are wanted: settled tickets' clocks and changes are
        # counted in them rather than each built, so memory follows the services.
        count_in = {service: list(ws.values()) for service, ws in windows.items()}
        found_inputs = services_with_inputs(
            self._store, self._config, since, now, count_in=count_in
        )
        for service, found in found_inputs:
            calendar = self._calendars[service.service_hours]
            levels.append(
                ServiceLevels(
                    config=service,
                    at=now,
                    up=service_up(service, found, now),
                    agreed_time_active=agreed_time_active(calendar, found, now),
                    figures={
                        name: running_clocks_only(
                            service_figures(service, self._calendars, found, window, now)
                        )
                        for name, window in windows[service.id].items()
                    },
                    certificates=certificates.get(service.id, {}),
                )
            )
        return levels


class ShardedLevelView:
    """The figures of the services in the shards this worker holds, each from its own store."""

    def __init__(
        self, shards: ShardedStore, config: SlamonConfig, partition_of: Callable[[str], int]
    ) -> None:
        self._shards = shards
        self._config = config
        self._services = services_by_shard((s.id for s in config.services), partition_of)
        self._views: dict[int, tuple[EventStore, ServiceLevelView]] = {}

    def _view(self, partition: int, store: EventStore) -> ServiceLevelView:
        cached = self._views.get(partition)
        if cached is None or cached[0] is not store:
            ids = set(self._services.get(partition, ()))
            services = [s for s in self._config.services if s.id in ids]
            view = ServiceLevelView(store, self._config.model_copy(update={"services": services}))
            cached = self._views[partition] = (store, view)
        return cached[1]

    def compute(self, now: int) -> list[ServiceLevels]:
        """Figures as of `now` for the services of every shard held here, and no others."""
        levels = []
        for partition, store in sorted(self._shards.stores().items()):
            if partition in self._services:
                levels.extend(self._view(partition, store).compute(now))
        return levels
