"""Process wiring: what `slamon run`, `collect`, `pipeline`, `ingest` and `demo` start."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from collectors.heartbeat import HeartbeatWatcher, HeartbeatWebhook
from collectors.host import HostCapacityCollector
from collectors.probes import ProbeScheduler
from collectors.prometheus_import import PrometheusImporter
from collectors.publisher import EventPublisher, SpooledPublisher
from collectors.receiver import ReceiverServer, Webhook
from collectors.spool import Spool
from collectors.webhooks.alertmanager import AlertmanagerWebhook
from collectors.webhooks.records import record_webhooks
from collectors.webhooks.tickets import ticket_webhooks
from pipeline.exporter import (
    MetricsServer,
    PipelineMetrics,
    ServiceLevelCollector,
    ServiceLevels,
)
from pipeline.ingest import BatchResult, DeadLetterQueue, IngestLoop
from pipeline.levels import ServiceLevelView, ShardedLevelView
from pipeline.parquet import ParquetExporter
from pipeline.shards import ShardedStore
from pipeline.store import EventStore
from pipeline.transport import Backoff, Transport, open_transport
from sla.config import SlamonConfig
from sla.durations import format_duration
from sla.errors import ConfigError, InvalidEventError, SlamonError, StoreError
from sla.events import FAMILIES, CloudEvent, dlq_topic, parse_event, topic_for
from slamon.demodata import generate_history
from slamon.demoserver import DemoServer
from slamon.exports import export_target
from slamon.report import last_closed_month, month_end, restate_month, write_report
from slamon.report.restate import watermark_moved

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
        *,
        write_reports: bool = True,
        base_dir: Path = Path(),
    ) -> None:
        """`write_reports` is off for services that only store a backlog and close again;
        `base_dir` (the config file's directory) holds relative key files."""
        self.store: EventStore | ShardedStore
        self.view: ServiceLevelView | ShardedLevelView
        if config.store.sharded:
            # Each worker holds some shards; monthly packs need all of them, so they are
            # written by `slamon report` over the Parquet export or the stopped shards.
            self.store = ShardedStore(
                Path(config.store.path), memory_limit_mib=config.store.memory_limit_mib
            )
            self.view = ShardedLevelView(self.store, config, transport.partition_of)
            write_reports = False
        else:
            Path(config.store.path).parent.mkdir(parents=True, exist_ok=True)
            self.store = EventStore(
                config.store.path, memory_limit_mib=config.store.memory_limit_mib
            )
            self.view = ServiceLevelView(self.store, config)
        self._clock = clock
        self._memory_limit_mib = config.store.memory_limit_mib
        self._ingested = self.store.counts_by_type()
        self._owned = self._shards_owned()
        self.metrics = PipelineMetrics(registry, lambda: dict(self._ingested))
        self.levels = ServiceLevelCollector()
        registry.register(self.levels)
        self.reporter = (
            MonthlyReporter(config, self.store, registry)
            if write_reports and isinstance(self.store, EventStore)
            else None
        )
        self._recompute_interval = config.pipeline.recompute_interval
        self._next_recompute = 0.0
        parquet = config.store.parquet
        self._parquet = (
            None if parquet is None else ParquetExporter(export_target(parquet, base_dir=base_dir))
        )
        self._parquet_interval = 0.0 if parquet is None else parquet.interval
        self._next_parquet = 0.0
        self.loop = IngestLoop(
            transport,
            self.store,
            config.pipeline,
            config.transport.topic_prefix,
            on_batch=self._on_batch,
        )

    def _shards_owned(self) -> frozenset[int] | None:
        return self.store.owned if isinstance(self.store, ShardedStore) else None

    def _stores(self) -> dict[str, EventStore]:
        """The stores written here, by the name their Parquet watermark goes under."""
        if isinstance(self.store, ShardedStore):
            return {Path(s.path).stem: s for s in self.store.stores().values()}
        return {Path(self.store.path).stem: self.store}

    def export_parquet(self) -> int:
        """Copy what was stored since the last export to the Parquet directory."""
        if self._parquet is None:
            return 0
        exported = sum(self._parquet.export(store, name) for name, store in self._stores().items())
        self._next_parquet = self._clock() + self._parquet_interval
        return exported

    def _on_batch(self, result: BatchResult) -> None:
        now = self._clock()
        owned = self._shards_owned()
        if owned != self._owned:
            # A rebalance: the ingested counts are those of the shards held now, this
            # batch's events included.
            self._owned = owned
            self._ingested = self.store.counts_by_type()
        else:
            for event_type, count in result.ingested_by_type.items():
                self._ingested[event_type] = self._ingested.get(event_type, 0) + count
        for code, count in result.rejected_by_code.items():
            self.metrics.rejected.labels(code).inc(count)
        if result.duplicates:
            self.metrics.duplicates.inc(result.duplicates)
        if result.stored:
            self.metrics.last_batch.set(now)
            if self.reporter is not None and result.oldest_event_time is not None:
                self.reporter.note_events(result.oldest_event_time)
            if result.newest_event_time is not None:
                self.metrics.lag.set(max(0.0, now - result.newest_event_time))
        # Figures move with the clock even without events (an ongoing outage grows), so
        # recompute on a timer, not only when availability events arrive.
        if now >= self._next_recompute:
            self.recompute(now)
        if self._parquet is not None and now >= self._next_parquet:
            self.export_parquet()

    def recompute(self, now: float | None = None) -> None:
        """Recompute every service's figures and publish them."""
        at = self._clock() if now is None else now
        self.levels.update(self.view.compute(int(at)))
        self._publish_store_memory()
        self._next_recompute = at + self._recompute_interval
        if self.reporter is not None:
            self.reporter.maybe_write(int(at))

    def _publish_store_memory(self) -> None:
        """DuckDB's memory in use and its limit, so that operators see the cache fill up."""
        try:
            self.metrics.store_memory.set(self.store.memory_bytes())
        except StoreError as exc:
            # A gauge is not worth stopping for; the next write says what is wrong.
            log.warning("cannot read the event store's memory: %s", exc)
        stores = len(self.store.owned) if isinstance(self.store, ShardedStore) else 1
        self.metrics.store_memory_limit.set(self._memory_limit_mib * 2**20 * stores)

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
        """Leave the consumer group, let a pack in progress finish, export, close the store."""
        self.loop.close()
        if self.reporter is not None:
            self.reporter.wait()
        self.export_parquet()
        self.store.close()


# Collectors must not stall on a broker that is down: they spool instead.
COLLECTOR_BACKOFF = Backoff(deadline_s=5.0, attempt_timeout_s=2.0)


class MonthlyReporter:
    """Writes last month's review pack once, on the configured day of each month, and
    restates a written month when events stored later change its figures.

    A month is rechecked when a batch stores an event the month's figures could see (its
    time at or before the month's end) and, after a restart, when the event watermark a
    pack recorded has moved. Changed figures give a new revision of the pack next to the
    old one, a record under ``restatements/``, a warning and ``slamon_restatements_total``.
    """

    # After a failure (no Chromium, an unwritable directory) a pack is retried this much later,
    # not at every recompute.
    RETRY_AFTER = 3600
    MARKER = ".written-"

    def __init__(
        self, config: SlamonConfig, store: EventStore, registry: CollectorRegistry | None = None
    ) -> None:
        self._config = config
        self._store = store
        self._settings = config.reports
        self._out = Path(self._settings.out_dir)
        self._writing: threading.Thread | None = None
        self._retry_at = 0
        self._lock = threading.Lock()
        # Month -> the last instant its figures see; a stored event up to it is late.
        self._written: dict[str, int] = {}
        # Months to recheck -> whether a batch stored late events for it (else: a restart).
        self._pending: dict[str, bool] = {}
        self.restatements = Counter(
            "slamon_restatements",
            "Closed months whose review pack was restated after late events changed a figure.",
            ["month"],
            registry=registry,
        )
        if self._settings.enabled:
            for marker in sorted(self._out.glob(f"{self.MARKER}*")):
                month = marker.name.removeprefix(self.MARKER)
                with contextlib.suppress(ConfigError):
                    self._written[month] = month_end(config, month)
                    self._pending[month] = False

    def note_events(self, oldest_event_time: float) -> None:
        """A batch stored events, the oldest of them from `oldest_event_time`."""
        with self._lock:
            for month, end in self._written.items():
                if oldest_event_time < end + 1:
                    self._pending[month] = True

    def maybe_write(self, now: int) -> None:
        """Start writing last month's pack when it is due, else rechecking noted months."""
        if not self._settings.enabled or (self._writing and self._writing.is_alive()):
            return
        if now < self._retry_at:
            return
        month = last_closed_month(self._config, now)
        done = self._out / f"{self.MARKER}{month}"
        due = datetime.fromtimestamp(now, UTC).day >= self._settings.day and not done.exists()
        # A pack takes seconds (a PDF, one engine run per day): not on the ingest thread.
        if due:
            with self._lock:
                # Late events stored while it is computed are noted like any others.
                self._written[month] = month_end(self._config, month)
            work: Callable[[], None] = functools.partial(self._write, month, now, done)
            name = "monthly-report"
        else:
            with self._lock:
                pending, self._pending = self._pending, {}
            if not pending:
                return
            work, name = functools.partial(self._recheck, pending, now), "monthly-restatement"
        self._writing = threading.Thread(target=work, name=name, daemon=True)
        self._writing.start()

    def wait(self) -> None:
        """Block until a pack being written is done (it reads the store)."""
        if self._writing is not None:
            self._writing.join()

    def _write(self, month: str, now: int, done: Path) -> None:
        try:
            paths = write_report(
                self._config,
                self._store,
                month=month,
                service=None,
                customer=None,
                out_dir=self._out,
                now=now,
                pdf=self._settings.pdf,
            )
        except (SlamonError, OSError) as exc:
            log.error("monthly report for %s failed, retrying in an hour: %s", month, exc)
            with self._lock:
                self._written.pop(month, None)
                self._pending.pop(month, None)
            self._retry_at = now + self.RETRY_AFTER
            return
        done.write_text("\n".join(str(p) for p in paths) + "\n", encoding="utf-8")
        log.info("monthly report for %s written to %s", month, self._out)

    def _recheck(self, months: dict[str, bool], now: int) -> None:
        for month, late in sorted(months.items()):
            try:
                self._restate(month, late, now)
            except (SlamonError, OSError) as exc:
                log.error("rechecking %s for late events failed, again in an hour: %s", month, exc)
                with self._lock:
                    self._pending[month] = self._pending.get(month, False) or late
                self._retry_at = now + self.RETRY_AFTER

    def _restate(self, month: str, late: bool, now: int) -> None:
        moved = watermark_moved(self._config, self._store, self._out, month)
        # Without a recorded watermark only late events of this run justify recomputing.
        if moved is False or (moved is None and not late):
            return
        restatement = restate_month(
            self._config, self._store, self._out, month, now, pdf=self._settings.pdf
        )
        if restatement is None:
            log.info("late events for %s changed no figure of its packs", month)
            return
        self.restatements.labels(month).inc()
        for pack in restatement.packs:
            log.warning(
                "late events changed %s: %s restated as %s (%s); record %s",
                month,
                pack.previous.name,
                pack.restated.slug,
                pack.headline(),
                restatement.record,
            )


class CollectorService:
    """Every collector the config asks for, publishing through one publisher.

    With Kafka the publisher spools to disk while the broker is unreachable, so probes keep
    their results and webhooks are acknowledged only once their events are durable.
    """

    def __init__(self, config: SlamonConfig, transport: Transport, base_dir: Path) -> None:
        prefix = config.transport.topic_prefix
        self.publisher: EventPublisher | SpooledPublisher
        if config.transport.kind == "kafka":
            spool = Spool.from_config(config.spool)
            self.publisher = SpooledPublisher(transport.producer, prefix, spool)
        else:
            self.publisher = EventPublisher(transport.producer(), prefix)
        publish = self.publisher.publish
        targets = [(s.id, probe) for s in config.services for probe in s.probes]
        self._probe_targets = len(targets)
        self.scheduler = ProbeScheduler(targets, publish)
        self.watcher = (
            HeartbeatWatcher(config.services, publish)
            if any(s.heartbeats for s in config.services)
            else None
        )
        self.receiver = self._receiver(config, base_dir)
        pulled = config.collectors
        self.importer = (
            None if pulled.prometheus is None else PrometheusImporter(pulled.prometheus, publish)
        )
        self.host = None if pulled.host is None else HostCapacityCollector(pulled.host, publish)

    def _receiver(self, config: SlamonConfig, base_dir: Path) -> ReceiverServer | None:
        """The webhook receiver, when the config has a `receivers` section or heartbeats."""
        if "receivers" not in config.model_fields_set and self.watcher is None:
            return None
        services = [s.id for s in config.services]
        webhooks: list[Webhook] = [
            AlertmanagerWebhook(config.receivers.alertmanager, services),
            *ticket_webhooks(config.receivers.tickets, services),
            *record_webhooks(services),
        ]
        if self.watcher is not None:
            webhooks.append(HeartbeatWebhook(self.watcher))
        publisher = self.publisher

        def ready() -> bool:
            return not isinstance(publisher, SpooledPublisher) or publisher.ready

        return ReceiverServer(
            config.receivers, webhooks, publisher.publish_durably, ready=ready, base_dir=base_dir
        )

    def describe(self) -> str:
        """One line saying what runs."""
        parts = [f"{self._probe_targets} probe targets"]
        if self.watcher is not None:
            parts.append("heartbeats")
        if self.receiver is not None:
            parts.append("webhook receiver")
        if self.importer is not None:
            parts.append("Prometheus importer")
        if self.host is not None:
            parts.append(f"host capacity of {self.host.host}")
        return ", ".join(parts)

    def run(self, stop: threading.Event, console: Console) -> None:
        """Collect until `stop` is set; a collector that fails stops the others."""
        failures: list[BaseException] = []

        def guarded(work: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                try:
                    work()
                except BaseException as exc:
                    failures.append(exc)
                    stop.set()

            return run

        side: list[Callable[[], None]] = []
        if self.receiver is not None:
            receiver = self.receiver
            side.append(
                lambda: receiver.run(
                    stop, on_listening=lambda port: console.print(f"receiver: port {port}")
                )
            )
        for collector in (self.watcher, self.importer, self.host):
            if collector is not None:
                side.append(functools.partial(collector.run, stop))
        threads = [threading.Thread(target=guarded(work), daemon=True) for work in side]
        for thread in threads:
            thread.start()
        try:
            guarded(lambda: asyncio.run(self._probe(stop)))()
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        if failures:
            raise failures[0]

    async def _probe(self, stop: threading.Event) -> None:
        done = asyncio.Event()
        probing = asyncio.create_task(self.scheduler.run(done))
        # The stop signal comes from another thread; polling it keeps the bridge simple.
        while not stop.is_set() and not probing.done():
            await asyncio.sleep(0.2)
        done.set()
        await probing

    def close(self) -> None:
        """Deliver or spool what was published, and release connections."""
        if self.importer is not None:
            self.importer.close()
        self.publisher.close()


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
    base_dir: Path = Path(),
) -> None:
    """The pipeline process: ingest, store, compute and serve /metrics until `stop`."""
    registry = CollectorRegistry()
    transport = transport or open_transport(config.transport)
    service = PipelineService(config, transport, registry, base_dir=base_dir)
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
    base_dir: Path = Path(),
) -> None:
    """The collector process: every configured collector until `stop`."""
    transport = transport or open_transport(config.transport, backoff=COLLECTOR_BACKOFF)
    _collect(CollectorService(config, transport, base_dir), stop, console)


def _collect(collectors: CollectorService, stop: threading.Event, console: Console) -> None:
    console.print(f"collecting: {collectors.describe()}")
    try:
        collectors.run(stop, console)
    finally:
        collectors.close()


def run_all(
    config: SlamonConfig,
    stop: threading.Event,
    console: Console,
    transport: Transport | None = None,
    base_dir: Path = Path(),
) -> None:
    """Collectors, pipeline and exporter in one process (one in-process transport if embedded)."""
    shared = transport or open_transport(config.transport)
    # Kafka clients are per use anyway; the collectors' ones must give up fast and spool.
    collecting_via = (
        shared
        if config.transport.kind == "embedded"
        else open_transport(config.transport, backoff=COLLECTOR_BACKOFF)
    )
    # Built before anything starts: a missing secret or a spool in use stops the process
    # with its one error line, not after /metrics has been announced.
    collectors = CollectorService(config, collecting_via, base_dir)
    failures: list[BaseException] = []

    def collect() -> None:
        try:
            _collect(collectors, stop, console)
        except BaseException as exc:
            # Without its collectors the process would report figures from stale evidence.
            failures.append(exc)
            stop.set()

    collecting = threading.Thread(target=collect, name="collectors")
    collecting.start()
    try:
        run_pipeline(config, stop, console, shared, base_dir)
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
        # A bar in a log file or pipe is noise (and left an empty line there).
        disable=not console.is_terminal,
    )


def ingest_files(
    config: SlamonConfig,
    files: Iterable[Path],
    console: Console,
    transport: Transport | None = None,
    base_dir: Path = Path(),
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
    stored = _store_if_embedded(config, transport, base_dir)
    # The embedded transport's topics live as long as the process: there the lines listed
    # above, still in their files, are the record of what was rejected.
    kept = "listed above" if stored is not None else f"to {dlq_topic(prefix)}"
    console.print(
        f"published {published} events, {rejected} rejected {kept}"
        + ("" if stored is None else f", {stored} new events stored in {config.store.path}")
    )
    return IngestSummary(published, rejected, stored)


def _store_if_embedded(config: SlamonConfig, transport: Transport, base_dir: Path) -> int | None:
    """With the embedded transport no other process consumes: store what was published."""
    if config.transport.kind != "embedded":
        return None
    service = PipelineService(
        config, transport, CollectorRegistry(), write_reports=False, base_dir=base_dir
    )
    try:
        return service.drain()
    finally:
        service.close()


def publish_events(
    config: SlamonConfig,
    events: Iterable[CloudEvent],
    console: Console,
    transport: Transport | None = None,
    base_dir: Path = Path(),
) -> int:
    """Publish events built by `record` or `import` and wait until they are acknowledged."""
    transport = transport or open_transport(config.transport)
    publisher = EventPublisher(transport.producer(), config.transport.topic_prefix)
    published = publisher.publish_all(events)
    stored = _store_if_embedded(config, transport, base_dir)
    console.print(
        f"published {published} events"
        + ("" if stored is None else f", {stored} new events stored in {config.store.path}")
    )
    return published


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


def run_demo(
    config: SlamonConfig, stop: threading.Event, console: Console, base_dir: Path = Path()
) -> None:
    """Bundled history plus live probes of local endpoints, in one process."""
    store = Path(config.store.path)
    # The history is dated relative to now: a fresh store keeps reruns from mixing two
    # histories generated at different hours.
    for stale in (store, store.with_name(store.name + ".wal")):
        stale.unlink(missing_ok=True)
    with DemoServer() as server:
        live = server.bind(config)
        transport = open_transport(live.transport)
        # Seven months: the review pack of last month shows a full six-month trend.
        history = list(generate_history(live, now=datetime.now(UTC), months=7))
        publisher = EventPublisher(transport.producer(), live.transport.topic_prefix)
        publish_history(history, publisher, console, len(history))
        loader = PipelineService(
            live, transport, CollectorRegistry(), write_reports=False, base_dir=base_dir
        )
        try:
            with console.status("storing history and computing service levels"):
                stored = loader.drain()
            console.print(levels_table(loader.levels.snapshot()))
        finally:
            loader.close()
        console.print(f"stored {stored} history events in {store}")
        console.print(f"live probes against {server.base_url}; Ctrl-C stops the demo")
        run_all(live, stop, console, transport, base_dir)
