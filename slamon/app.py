"""Process wiring: what `slamon run`, `collect`, `pipeline`, `ingest` and `demo` start."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from collectors.probes import ProbeScheduler
from collectors.publisher import EventPublisher
from pipeline.exporter import (
    MetricsServer,
    PipelineMetrics,
    ServiceLevelCollector,
    ServiceLevels,
)
from pipeline.ingest import BatchResult, DeadLetterQueue, IngestLoop
from pipeline.levels import ServiceLevelView
from pipeline.store import EventStore
from pipeline.transport import Transport, open_transport
from sla.config import SlamonConfig
from sla.durations import format_duration
from sla.errors import ConfigError, InvalidEventError
from sla.events import FAMILIES, CloudEvent, dlq_topic, parse_event, topic_for
from slamon.demodata import generate_history
from slamon.demoserver import DemoServer

log = logging.getLogger(__name__)
Clock = Callable[[], float]


class PipelineService:
    """The ingest loop, service-level recomputation and metrics around one event store."""

    def __init__(
        self,
        config: SlamonConfig,
        transport: Transport,
        registry: CollectorRegistry,
        clock: Clock = time.time,
    ) -> None:
        Path(config.store.path).parent.mkdir(parents=True, exist_ok=True)
        self.store = EventStore(config.store.path)
        self._clock = clock
        self._ingested = self.store.counts_by_type()
        self.metrics = PipelineMetrics(registry, lambda: dict(self._ingested))
        self.levels = ServiceLevelCollector()
        registry.register(self.levels)
        self.view = ServiceLevelView(self.store, config)
        self._recompute_interval = config.pipeline.recompute_interval
        self._next_recompute = 0.0
        self.loop = IngestLoop(
            transport,
            self.store,
            config.pipeline,
            config.transport.topic_prefix,
            on_batch=self._on_batch,
        )

    def _on_batch(self, result: BatchResult) -> None:
        now = self._clock()
        for event_type, count in result.ingested_by_type.items():
            self._ingested[event_type] = self._ingested.get(event_type, 0) + count
        for code, count in result.rejected_by_code.items():
            self.metrics.rejected.labels(code).inc(count)
        if result.duplicates:
            self.metrics.duplicates.inc(result.duplicates)
        if result.stored:
            self.metrics.last_batch.set(now)
            if result.newest_event_time is not None:
                self.metrics.lag.set(max(0.0, now - result.newest_event_time))
        # Figures move with the clock even without events (an ongoing outage grows), so
        # recompute on a timer, not only when availability events arrive.
        if now >= self._next_recompute:
            self.recompute(now)

    def recompute(self, now: float | None = None) -> None:
        """Recompute every service's figures and publish them."""
        at = self._clock() if now is None else now
        self.levels.update(self.view.compute(int(at)))
        self._next_recompute = at + self._recompute_interval

    def run(self, stop: threading.Event) -> None:
        """Ingest until `stop` is set; the batch in progress is finished first."""
        self.recompute()
        self.loop.run(stop)

    def drain(self) -> int:
        """Ingest until a poll comes back empty; return how many events were stored."""
        stored = 0
        while (result := self.loop.run_once()).polled:
            stored += result.stored
        self.recompute()
        return stored

    def close(self) -> None:
        """Leave the consumer group and close the store."""
        self.loop.close()
        self.store.close()


class CollectorService:
    """The probe scheduler, publishing through the transport."""

    def __init__(self, config: SlamonConfig, transport: Transport) -> None:
        self.publisher = EventPublisher(transport.producer(), config.transport.topic_prefix)
        targets = [(s.id, probe) for s in config.services for probe in s.probes]
        self.scheduler = ProbeScheduler(targets, self.publisher.publish)

    def run(self, stop: threading.Event) -> None:
        """Probe until `stop` is set."""
        asyncio.run(self._run(stop))

    async def _run(self, stop: threading.Event) -> None:
        done = asyncio.Event()
        probing = asyncio.create_task(self.scheduler.run(done))
        # The stop signal comes from another thread; polling it keeps the bridge simple.
        while not stop.is_set() and not probing.done():
            await asyncio.sleep(0.2)
        done.set()
        await probing

    def close(self) -> None:
        """Flush what was published."""
        self.publisher.flush()


def _metrics_server(
    config: SlamonConfig, registry: CollectorRegistry, console: Console
) -> MetricsServer:
    try:
        server = MetricsServer(registry, config.exporter.host, config.exporter.port)
    except OSError as exc:
        raise ConfigError(
            f"exporter.listen {config.exporter.listen}: cannot serve /metrics: {exc.strerror}"
        ) from None
    console.print(f"metrics: http://{config.exporter.host}:{server.port}/metrics")
    return server


def run_pipeline(
    config: SlamonConfig,
    stop: threading.Event,
    console: Console,
    transport: Transport | None = None,
) -> None:
    """The pipeline process: ingest, store, compute and serve /metrics until `stop`."""
    registry = CollectorRegistry()
    service = PipelineService(config, transport or open_transport(config.transport), registry)
    try:
        server = _metrics_server(config, registry, console)
        try:
            service.run(stop)
        finally:
            server.stop()
    finally:
        service.close()


def run_collectors(
    config: SlamonConfig,
    stop: threading.Event,
    console: Console,
    transport: Transport | None = None,
) -> None:
    """The collector process: probe every configured target until `stop`."""
    collectors = CollectorService(config, transport or open_transport(config.transport))
    probes = sum(len(s.probes) for s in config.services)
    console.print(f"probing {probes} targets of {len(config.services)} services")
    try:
        collectors.run(stop)
    finally:
        collectors.close()


def run_all(
    config: SlamonConfig,
    stop: threading.Event,
    console: Console,
    transport: Transport | None = None,
) -> None:
    """Collectors, pipeline and exporter in one process, sharing one transport."""
    shared = transport or open_transport(config.transport)
    failures: list[BaseException] = []

    def collect() -> None:
        try:
            run_collectors(config, stop, console, shared)
        except BaseException as exc:
            # Without its collectors the process would report figures from stale evidence.
            failures.append(exc)
            stop.set()

    collecting = threading.Thread(target=collect, name="collectors")
    collecting.start()
    try:
        run_pipeline(config, stop, console, shared)
    finally:
        stop.set()
        collecting.join()
    if failures:
        raise failures[0]


@dataclass(frozen=True)
class IngestSummary:
    """What `ingest_files` published."""

    published: int
    rejected: int
    stored: int | None


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def ingest_files(
    config: SlamonConfig,
    files: Iterable[Path],
    console: Console,
    transport: Transport | None = None,
) -> IngestSummary:
    """Publish each JSONL line to its family topic; invalid lines go to the dead-letter topic.

    With the embedded transport there is no other process to consume, so the events are
    also ingested into the store before returning.
    """
    transport = transport or open_transport(config.transport)
    prefix = config.transport.topic_prefix
    transport.ensure_topics([*(topic_for(prefix, f) for f in FAMILIES), dlq_topic(prefix)])
    producer = transport.producer()
    dead_letters = DeadLetterQueue(transport.producer(idempotent=False), dlq_topic(prefix))
    published = rejected = 0
    with _progress(console) as progress:
        for path in files:
            try:
                lines = path.read_bytes().splitlines()
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
            task = progress.add_task(f"publishing {path.name}", total=len(lines))
            for number, line in enumerate(lines, start=1):
                progress.advance(task)
                if not line.strip():
                    continue
                try:
                    event = parse_event(line, max_bytes=config.pipeline.max_event_bytes)
                except InvalidEventError as error:
                    rejected += 1
                    console.print(
                        f"{escape(str(path))}:{number}: {error.code}: {escape(error.reason)}"
                    )
                    dead_letters.send(
                        error, None, line, origin=f"file:{path}", partition=None, offset=number
                    )
                    continue
                producer.send(topic_for(prefix, event.type), event.subject, line)
                published += 1
    producer.flush()
    dead_letters.flush()
    producer.close()
    dead_letters.close()
    stored = None
    if config.transport.kind == "embedded":
        service = PipelineService(config, transport, CollectorRegistry())
        try:
            stored = service.drain()
        finally:
            service.close()
    console.print(
        f"published {published} events, {rejected} rejected to {dlq_topic(prefix)}"
        + ("" if stored is None else f", {stored} new events stored in {config.store.path}")
    )
    return IngestSummary(published, rejected, stored)


def publish_history(
    events: Iterable[CloudEvent], publisher: EventPublisher, console: Console, total: int
) -> None:
    """Publish generated history with a progress bar."""
    with _progress(console) as progress:
        task = progress.add_task("loading history", total=total)
        for event in events:
            publisher.publish(event)
            progress.advance(task)
    publisher.flush()


def levels_table(levels: Iterable[ServiceLevels], window: str = "month") -> Table:
    """A terminal table of each service's figures in `window`."""
    table = Table(title=f"Service levels, {window} to date", title_justify="left")
    for column in ("service", "availability", "target", "downtime", "outages", "budget left"):
        table.add_column(column, justify="left" if column == "service" else "right")
    for level in levels:
        result = level.availability.get(window)
        budget = level.error_budget.get(window)
        if result is None:
            continue
        met = level.target_ratio is None or (result.ratio or 0) >= level.target_ratio
        table.add_row(
            level.service,
            "n/a" if result.ratio is None else f"[{'green' if met else 'red'}]{result.ratio:.4%}",
            "" if level.target_ratio is None else f"{level.target_ratio:.2%}",
            format_duration(result.downtime_seconds),
            str(result.outages),
            ""
            if budget is None or budget.remaining_ratio is None
            else f"{budget.remaining_ratio:.0%}",
        )
    return table


def run_demo(config: SlamonConfig, stop: threading.Event, console: Console) -> None:
    """Bundled history plus live probes of local endpoints, in one process."""
    store = Path(config.store.path)
    # The history is dated relative to now: a fresh store keeps reruns from mixing two
    # histories generated at different hours.
    for stale in (store, store.with_name(store.name + ".wal")):
        stale.unlink(missing_ok=True)
    with DemoServer() as server:
        live = server.bind(config)
        transport = open_transport(live.transport)
        history = list(generate_history(live, now=datetime.now(UTC)))
        publisher = EventPublisher(transport.producer(), live.transport.topic_prefix)
        publish_history(history, publisher, console, len(history))
        loader = PipelineService(live, transport, CollectorRegistry())
        try:
            with console.status("storing history and computing service levels"):
                stored = loader.drain()
            console.print(levels_table(loader.levels.snapshot()))
        finally:
            loader.close()
        console.print(f"stored {stored} history events in {store}")
        console.print(f"live probes against {server.base_url}; Ctrl-C stops the demo")
        run_all(live, stop, console, transport)
