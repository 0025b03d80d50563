"""Live service levels for the exporter: month to date and rolling 30 days, per service."""

from __future__ import annotations

from fractions import Fraction

from pipeline.engine import inputs_from_store
from pipeline.exporter import ServiceLevels
from pipeline.store import EventStore
from sla.availability import availability, error_budget
from sla.calendar import Calendars
from sla.config import SlamonConfig
from sla.intervals import Interval
from sla.windows import month_to_date, rolling

ROLLING_30D = 30 * 86_400


def target_ratio(objective_percent: float | None) -> float | None:
    """The objective as a ratio, via a decimal fraction: 99.9 gives 0.999, not 0.99900...01."""
    return None if objective_percent is None else float(Fraction(str(objective_percent)) / 100)


class ServiceLevelView:
    """Computes month-to-date and rolling 30-day service levels for every configured service."""

    def __init__(self, store: EventStore, config: SlamonConfig) -> None:
        self._store = store
        self._config = config
        self._calendars = Calendars(config.calendars)

    def windows(self, now: int) -> dict[str, dict[str, Interval]]:
        """The exported windows of each service: its calendar month to date, and 30 days."""
        return {
            s.id: {
                "month": month_to_date(self._calendars[s.service_hours].timezone, now),
                "30d": rolling(now, ROLLING_30D),
            }
            for s in self._config.services
        }

    def compute(self, now: int) -> list[ServiceLevels]:
        """Figures for every service as of `now` (Unix seconds)."""
        windows = self.windows(now)
        since = min((w.start for ws in windows.values() for w in ws.values()), default=now)
        inputs = inputs_from_store(self._store, self._config, since, now)
        levels = []
        for service in self._config.services:
            found = inputs[service.id]
            objective = service.objectives.availability
            if not found.observed:
                # Without any evidence there is no figure to claim, not a perfect one.
                levels.append(ServiceLevels(service.id, target_ratio(objective), up=None))
                continue
            calendar = self._calendars[service.service_hours]
            results = {
                name: availability(calendar, window, found.outages, found.maintenance, now)
                for name, window in windows[service.id].items()
            }
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
                    target_ratio=target_ratio(objective),
                    up=not ongoing,
                    availability=results,
                    error_budget=budgets,
                )
            )
        return levels
