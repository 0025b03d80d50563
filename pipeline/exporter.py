"""Prometheus exposition of service levels and of the pipeline's own health."""

from __future__ import annotations

import math
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import get_args
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sla.availability import AvailabilityResult
from sla.config import ServiceConfig, TicketKind
from sla.events import REJECTION_CODES
from sla.service_levels import ErrorBudgetFigures, ServiceFigures
from sla.tickets import CLOCKS

CURRENT_WINDOW = "30d"
"""The window whose figures give the gauges without a `window` label (open tickets,
capacity, continuity): unlike a young month it always spans the capacity trend."""
TICKET_KINDS: tuple[TicketKind, ...] = get_args(TicketKind)
OTHER_PRIORITY = "other"
"""The `priority` label of tickets whose priority has no goal: producers may send anything."""


def target_ratio(objective_percent: float | None) -> float | None:
    """The objective as a ratio, via a decimal fraction: 99.9 gives 0.999, not 0.99900...01."""
    return None if objective_percent is None else float(Fraction(str(objective_percent)) / 100)


@dataclass(frozen=True)
class MetricSpec:
    """Name, help text and label names of one exported gauge."""

    name: str
    help: str
    labels: tuple[str, ...]


_BY_WINDOW = ("service", "window")
SERVICE_LEVEL_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "slamon_availability_ratio",
        "Availability within agreed service time: (agreed - downtime) / agreed.",
        _BY_WINDOW,
    ),
    MetricSpec(
        "slamon_availability_24x7_ratio",
        "Availability over the whole window around the clock, maintenance excluded.",
        _BY_WINDOW,
    ),
    MetricSpec(
        "slamon_availability_target_ratio",
        "Agreed availability objective as a ratio.",
        ("service",),
    ),
    MetricSpec(
        "slamon_agreed_service_seconds",
        "Agreed service time in the window: service hours minus maintenance and planned outages.",
        _BY_WINDOW,
    ),
    MetricSpec(
        "slamon_downtime_seconds", "Unplanned downtime within agreed service time.", _BY_WINDOW
    ),
    MetricSpec("slamon_outages", "Unplanned outages that touched agreed service time.", _BY_WINDOW),
    MetricSpec("slamon_mtrs_seconds", "Mean time to restore service.", _BY_WINDOW),
    MetricSpec("slamon_mtbf_seconds", "Mean time between failures.", _BY_WINDOW),
    MetricSpec(
        "slamon_error_budget_remaining_ratio",
        "Share of the window's error budget not yet spent (negative when overspent).",
        _BY_WINDOW,
    ),
    MetricSpec(
        "slamon_service_up",
        "0 while an unplanned outage counted as downtime is ongoing, else 1.",
        ("service",),
    ),
    MetricSpec(
        "slamon_agreed_service_time_active",
        "1 while now is agreed service time (service hours, no maintenance), else 0.",
        ("service",),
    ),
    MetricSpec(
        "slamon_service_credit_ratio",
        "Service credit owed for the month so far, as a ratio of the charge.",
        _BY_WINDOW,
    ),
    MetricSpec(
        "slamon_ticket_sla_compliance_ratio",
        "Ticket clocks that met their goal: met / (met + breached).",
        (*_BY_WINDOW, "kind", "priority", "clock"),
    ),
    MetricSpec(
        "slamon_tickets_open",
        "Tickets whose resolution clock is running.",
        ("service", "kind", "priority"),
    ),
    MetricSpec(
        "slamon_tickets_at_risk",
        "Running ticket clocks not yet breached that used the at-risk share of their goal.",
        ("service", "priority", "clock"),
    ),
    MetricSpec(
        "slamon_capacity_utilization_ratio",
        "Last sampled utilization (used / capacity) of a resource.",
        ("service", "resource", "host"),
    ),
    MetricSpec(
        "slamon_capacity_threshold_ratio",
        "Configured utilization threshold of a resource.",
        ("service", "resource", "level"),
    ),
    MetricSpec(
        "slamon_capacity_exhaustion_seconds",
        "Seconds until the utilization trend reaches 1 (0 when already past).",
        ("service", "resource", "host"),
    ),
    MetricSpec(
        "slamon_continuity_rto_achieved_seconds",
        "Recovery time achieved by the last continuity test.",
        ("service",),
    ),
    MetricSpec(
        "slamon_continuity_rpo_achieved_seconds",
        "Recovery point achieved by the last continuity test (data lost, in seconds).",
        ("service",),
    ),
    MetricSpec(
        "slamon_continuity_test_overdue",
        "1 when the next continuity test is past due, else 0.",
        ("service",),
    ),
    MetricSpec(
        "slamon_continuity_last_test_timestamp_seconds",
        "Unix time the last continuity test was invoked.",
        ("service",),
    ),
    MetricSpec(
        "slamon_change_success_ratio",
        "Changes implemented / (implemented + failed + rolled back).",
        _BY_WINDOW,
    ),
    MetricSpec(
        "slamon_probe_certificate_expiry_timestamp_seconds",
        "Unix time the TLS certificate last presented to a probe expires.",
        ("service", "check"),
    ),
)


@dataclass(frozen=True)
class ServiceLevels:
    """The figures of one service at one instant, as the exporter publishes them."""

    config: ServiceConfig
    at: int
    up: bool | None
    """None until any availability evidence of the service is stored."""
    agreed_time_active: bool
    figures: Mapping[str, ServiceFigures] = field(default_factory=dict)
    """Every figure per window name (`month`, `30d`)."""
    certificates: Mapping[str, int] = field(default_factory=dict)
    """The latest reported certificate expiry (Unix seconds) per probe check."""

    @property
    def service(self) -> str:
        """The service id."""
        return self.config.id

    @property
    def target_ratio(self) -> float | None:
        """The availability objective as a ratio."""
        return target_ratio(self.config.objectives.availability)

    @property
    def availability(self) -> dict[str, AvailabilityResult]:
        """Availability per window; empty without availability evidence."""
        return {w: f.availability for w, f in self.figures.items() if f.availability is not None}

    @property
    def error_budget(self) -> dict[str, ErrorBudgetFigures | None]:
        """The error budget per window; None without an objective or evidence."""
        return {w: f.error_budget for w, f in self.figures.items()}


class _Exposition:
    """The gauge families of one scrape, filled sample by sample."""

    def __init__(self, specs: Iterable[MetricSpec]) -> None:
        self.families = {s.name: GaugeMetricFamily(s.name, s.help, labels=s.labels) for s in specs}

    def add(self, name: str, labels: Sequence[str], value: float | bool | None) -> None:
        """One sample; an undefined value (None, NaN, infinite) leaves the series out."""
        if value is None or not math.isfinite(value):
            return
        self.families[name].add_metric(list(labels), float(value))


def _add_window(out: _Exposition, service: str, window: str, figures: ServiceFigures) -> None:
    """The per-window gauges of one service."""
    labels = (service, window)
    result = figures.availability
    if result is not None:
        out.add("slamon_agreed_service_seconds", labels, result.agreed_seconds)
        out.add("slamon_downtime_seconds", labels, result.downtime_seconds)
        out.add("slamon_outages", labels, result.outages)
        out.add("slamon_availability_ratio", labels, result.ratio)
        out.add("slamon_availability_24x7_ratio", labels, result.ratio_24x7)
        out.add("slamon_mtrs_seconds", labels, result.mtrs_seconds)
        out.add("slamon_mtbf_seconds", labels, result.mtbf_seconds)
    if figures.error_budget is not None:
        out.add("slamon_error_budget_remaining_ratio", labels, figures.error_budget.remaining_ratio)
    # Credits are owed per calendar month; a rolling figure would promise a different sum.
    if window == "month" and figures.credit is not None:
        out.add("slamon_service_credit_ratio", labels, figures.credit.percent / 100)
    for row in figures.tickets.compliance:
        out.add(
            "slamon_ticket_sla_compliance_ratio",
            (*labels, row.kind, row.priority, row.clock),
            row.ratio,
        )
    out.add("slamon_change_success_ratio", labels, figures.changes.success_ratio)


def _add_tickets(out: _Exposition, level: ServiceLevels, figures: ServiceFigures) -> None:
    """Open and at-risk tickets now; zeros for every goal, so alerts see the first one."""
    service = level.service
    goals = tuple(level.config.tickets.goals) if level.config.tickets else ()

    def priority(name: str) -> str:
        return name if name in goals else OTHER_PRIORITY

    open_tickets = Tally(
        (c.kind, priority(c.priority))
        for c in figures.tickets.clocks
        if c.clock == "resolution" and c.running
    )
    for ticket_kind in TICKET_KINDS:
        for goal in goals:
            open_tickets.setdefault((ticket_kind, goal), 0)
    for (kind, name), count in sorted(open_tickets.items()):
        out.add("slamon_tickets_open", (service, kind, name), count)
    at_risk = Tally((priority(c.priority), c.clock) for c in figures.tickets.at_risk)
    for goal in goals:
        for clock in CLOCKS:
            at_risk.setdefault((goal, clock), 0)
    for (name, clock), count in sorted(at_risk.items()):
        out.add("slamon_tickets_at_risk", (service, name, clock), count)


def _add_current(out: _Exposition, level: ServiceLevels) -> None:
    """The gauges of one service that describe now rather than a window."""
    service = level.service
    out.add("slamon_availability_target_ratio", (service,), level.target_ratio)
    out.add("slamon_service_up", (service,), level.up)
    out.add("slamon_agreed_service_time_active", (service,), level.agreed_time_active)
    for resource, threshold in sorted(level.config.capacity.items()):
        out.add("slamon_capacity_threshold_ratio", (service, resource, "warn"), threshold.warn)
        out.add("slamon_capacity_threshold_ratio", (service, resource, "crit"), threshold.crit)
    for check, expires_at in sorted(level.certificates.items()):
        out.add("slamon_probe_certificate_expiry_timestamp_seconds", (service, check), expires_at)
    figures = level.figures.get(CURRENT_WINDOW)
    if figures is None:
        return
    _add_tickets(out, level, figures)
    for summary in figures.capacity:
        labels = (service, summary.resource, summary.host or "")
        out.add("slamon_capacity_utilization_ratio", labels, summary.last_ratio)
        if summary.exhaustion_at is not None:
            left = max(0, summary.exhaustion_at - level.at)
            out.add("slamon_capacity_exhaustion_seconds", labels, left)
    continuity = figures.continuity
    out.add("slamon_continuity_test_overdue", (service,), continuity.overdue)
    last = continuity.last_test
    if last is not None:
        out.add("slamon_continuity_rto_achieved_seconds", (service,), last.achieved_rto_seconds)
        out.add("slamon_continuity_rpo_achieved_seconds", (service,), last.achieved_rpo_seconds)
        out.add("slamon_continuity_last_test_timestamp_seconds", (service,), last.test.invoked_at)


class ServiceLevelCollector(Collector):
    """Serves the latest computed service levels as gauges; `update` swaps them atomically.

    A scrape reads only the snapshot, never the store, so it stays cheap and never waits
    for a recomputation.
    """

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
        """Yield one family per metric name, one sample per service (and window, and key)."""
        out = _Exposition(SERVICE_LEVEL_METRICS)
        for level in self.snapshot():
            _add_current(out, level)
            for window, figures in level.figures.items():
                _add_window(out, level.service, window, figures)
        return list(out.families.values())


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
        self.store_memory = Gauge(
            "slamon_store_memory_bytes",
            "DuckDB memory in use by the event store: table cache, rows not yet "
            "checkpointed, queries.",
            registry=registry,
        )
        self.store_memory_limit = Gauge(
            "slamon_store_memory_limit_bytes",
            "The memory DuckDB may use for the event store (store.memory_limit_mib, "
            "per open shard when sharded).",
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
