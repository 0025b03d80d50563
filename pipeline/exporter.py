"""Prometheus exposition of service levels and of the pipeline's own health."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sla.availability import AvailabilityResult, ErrorBudget
from sla.events import REJECTION_CODES


@dataclass(frozen=True)
class ServiceLevels:
    """The figures of one service at one instant, as the exporter publishes them."""

    service: str
    target_ratio: float | None
    up: bool | None
    availability: Mapping[str, AvailabilityResult] = field(default_factory=dict)
    error_budget: Mapping[str, ErrorBudget | None] = field(default_factory=dict)


class ServiceLevelCollector(Collector):
    """Serves the latest computed service levels as gauges; `update` swaps them atomically."""

    def __init__(self) -> None:
        self._levels: tuple[ServiceLevels, ...] = ()
        self._lock = threading.Lock()

    def update(self, levels: Iterable[ServiceLevels]) -> None:
        """Replace the published figures with a new snapshot."""
        snapshot = tuple(levels)
        with self._lock:
            self._levels = snapshot

    def snapshot(self) -> tuple[ServiceLevels, ...]:
        """The figures currently published."""
        with self._lock:
            return self._levels

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """Yield one family per metric name, one sample per service and window."""
        levels = self.snapshot()
        by_window = ["service", "window"]
        ratio = GaugeMetricFamily(
            "slamon_availability_ratio",
            "Availability within agreed service time: (agreed - downtime) / agreed.",
            labels=by_window,
        )
        ratio_24x7 = GaugeMetricFamily(
            "slamon_availability_24x7_ratio",
            "Availability over the whole window around the clock, maintenance excluded.",
            labels=by_window,
        )
        target = GaugeMetricFamily(
            "slamon_availability_target_ratio",
            "Agreed availability objective as a ratio.",
            labels=["service"],
        )
        agreed = GaugeMetricFamily(
            "slamon_agreed_service_seconds",
            "Agreed service time in the window: service hours minus planned maintenance.",
            labels=by_window,
        )
        downtime = GaugeMetricFamily(
            "slamon_downtime_seconds",
            "Unplanned downtime within agreed service time.",
            labels=by_window,
        )
        outages = GaugeMetricFamily(
            "slamon_outages",
            "Unplanned outages that touched agreed service time.",
            labels=by_window,
        )
        mtrs = GaugeMetricFamily(
            "slamon_mtrs_seconds", "Mean time to restore service.", labels=by_window
        )
        mtbf = GaugeMetricFamily(
            "slamon_mtbf_seconds", "Mean time between failures.", labels=by_window
        )
        budget = GaugeMetricFamily(
            "slamon_error_budget_remaining_ratio",
            "Share of the window's error budget not yet spent (negative when overspent).",
            labels=by_window,
        )
        up = GaugeMetricFamily(
            "slamon_service_up",
            "1 when no unplanned outage is ongoing, else 0.",
            labels=["service"],
        )
        for level in levels:
            if level.target_ratio is not None:
                target.add_metric([level.service], level.target_ratio)
            if level.up is not None:
                up.add_metric([level.service], 1.0 if level.up else 0.0)
            for window, result in level.availability.items():
                labels = [level.service, window]
                agreed.add_metric(labels, result.agreed_seconds)
                downtime.add_metric(labels, result.downtime_seconds)
                outages.add_metric(labels, result.outages)
                # An undefined ratio (no agreed time yet) is left out rather than faked as 1.
                if result.ratio is not None:
                    ratio.add_metric(labels, result.ratio)
                if result.ratio_24x7 is not None:
                    ratio_24x7.add_metric(labels, result.ratio_24x7)
                if result.mtrs_seconds is not None:
                    mtrs.add_metric(labels, result.mtrs_seconds)
                if result.mtbf_seconds is not None:
                    mtbf.add_metric(labels, result.mtbf_seconds)
                window_budget = level.error_budget.get(window)
                if window_budget is not None and window_budget.remaining_ratio is not None:
                    budget.add_metric(labels, window_budget.remaining_ratio)
        return [ratio, ratio_24x7, target, agreed, downtime, outages, mtrs, mtbf, budget, up]


class IngestedCollector(Collector):
    """`slamon_events_ingested_total` read from the store, so it survives restarts."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[CounterMetricFamily]:
        """Yield the stored event count per type."""
        family = CounterMetricFamily(
            "slamon_events_ingested",
            "Distinct events stored, by event type.",
            labels=["type"],
        )
        for event_type, count in sorted(self._counts().items()):
            family.add_metric([event_type], count)
        return [family]


class PipelineMetrics:
    """The pipeline's own health metrics, registered on the registry passed in."""

    def __init__(self, registry: CollectorRegistry, ingested: Callable[[], Mapping[str, int]]):
        self.rejected = Counter(
            "slamon_events_rejected",
            "Messages sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        # Every reason exists from the start, so rate() and alerts see the first rejection.
        for code in REJECTION_CODES:
            self.rejected.labels(code)
        self.duplicates = Counter(
            "slamon_events_duplicate",
            "Messages whose event id was already stored (replays, producer retries).",
            registry=registry,
        )
        self.lag = Gauge(
            "slamon_pipeline_lag_seconds",
            "Seconds from the newest event's time in the last batch to its storage.",
            registry=registry,
        )
        self.last_batch = Gauge(
            "slamon_pipeline_last_batch_timestamp_seconds",
            "Unix time of the last stored batch.",
            registry=registry,
        )
        registry.register(IngestedCollector(ingested))


class MetricsServer:
    """Serves a registry on `/metrics` at host:port until stopped."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._server: WSGIServer
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)

    @property
    def port(self) -> int:
        """The bound port (useful when 0 was asked for)."""
        return int(self._server.server_port)

    def stop(self) -> None:
        """Stop serving and wait for the server thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
