"""Active probes (HTTP GET, TCP connect) and the asyncio scheduler that runs them."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

import httpx

from sla.config import ProbeConfig, split_host_port
from sla.events import CloudEvent, EventType, ProbeData, new_event

log = logging.getLogger(__name__)

Publish = Callable[[CloudEvent], None]
Clock = Callable[[], datetime]

USER_AGENT = "slamon-probe/0.1"

# Results waiting for the publishing thread; when it is full, probes wait rather than drop.
PUBLISH_QUEUE_SIZE = 1000
# At most this many results go to the publishing thread in one hand-over.
PUBLISH_BATCH = 100


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ProbeOutcome:
    """What one check found, before it is timed and wrapped into an event."""

    ok: bool
    status_code: int | None = None
    error: str | None = None


class Probe(Protocol):
    """One check of one service endpoint."""

    @property
    def service_id(self) -> str:
        """The service the check belongs to."""

    @property
    def config(self) -> ProbeConfig:
        """The probe's configuration (name, target, interval, timeout)."""

    async def check(self) -> ProbeOutcome:
        """Run the check once; may raise, `run_probe` turns exceptions into failed outcomes."""


@dataclass(frozen=True)
class HttpProbe:
    """GET the configured URL; the check passes on a status below 400."""

    service_id: str
    config: ProbeConfig
    client: httpx.AsyncClient

    async def check(self) -> ProbeOutcome:
        """Send one GET and judge the status code."""
        url = self.config.http
        if url is None:
            raise ValueError(f"probe {self.config.name!r} has no http URL")
        response = await self.client.get(url, timeout=self.config.timeout)
        ok = response.status_code < 400
        error = None if ok else f"HTTP {response.status_code}"
        return ProbeOutcome(ok, response.status_code, error)


@dataclass(frozen=True)
class TcpProbe:
    """Open a TCP connection to the configured `host:port`; the check passes once connected."""

    service_id: str
    config: ProbeConfig

    async def check(self) -> ProbeOutcome:
        """Connect and close again."""
        if self.config.tcp is None:
            raise ValueError(f"probe {self.config.name!r} has no tcp address")
        host, port = split_host_port(self.config.tcp)
        _, writer = await asyncio.open_connection(host, port)
        writer.close()
        await writer.wait_closed()
        return ProbeOutcome(ok=True)


def describe_error(exc: BaseException) -> str:
    """A short, stable text for why a check raised: `timeout`, `connection refused`, `tls: ...`."""
    causes = list(_chain(exc))
    if any(isinstance(cause, TimeoutError | httpx.TimeoutException) for cause in causes):
        return "timeout"
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"tls: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"tls: {cause.reason or cause}"
        if isinstance(cause, socket.gaierror):
            return f"dns: {cause.strerror}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the exceptions it was raised from, nearest first; httpx wraps the OS error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def probe_kind(config: ProbeConfig) -> Literal["http", "tcp"]:
    """Which kind of check a probe runs."""
    return "http" if config.http is not None else "tcp"


def probe_source(service_id: str, config: ProbeConfig) -> str:
    """The CloudEvents source of a probe, e.g. `collector/http/checkout-health`."""
    return f"collector/{probe_kind(config)}/{service_id}-{config.name}"


async def run_probe(probe: Probe, clock: Clock = utc_now) -> CloudEvent:
    """Run one check within its timeout and return its `slamon.probe.v1` event; never raises."""
    started = clock()
    begin = time.perf_counter()
    try:
        async with asyncio.timeout(probe.config.timeout):
            outcome = await probe.check()
    except Exception as exc:  # a failing endpoint is a result, not an error of the collector
        outcome = ProbeOutcome(ok=False, error=describe_error(exc))
    latency_ms = round((time.perf_counter() - begin) * 1000, 3)
    data = ProbeData(
        check=probe.config.name,
        ok=outcome.ok,
        latency_ms=latency_ms,
        status_code=outcome.status_code,
        error=outcome.error,
    )
    return new_event(
        EventType.PROBE,
        probe.service_id,
        data,
        source=probe_source(probe.service_id, probe.config),
        time=started,
    )


def stagger_s(service_id: str, config: ProbeConfig) -> float:
    """Delay of a probe's first run: a stable spread over its interval, so targets don't align."""
    spread_ms = config.interval * 1000
    return (zlib.crc32(f"{service_id}/{config.name}".encode()) % spread_ms) / 1000


class ProbeScheduler:
    """Runs every target on its interval, at most `concurrency` checks at a time.

    `publish` may block (a Kafka send waits while the broker is away), so it runs in a worker
    thread fed through a bounded queue, in the order the checks finished.
    """

    def __init__(
        self,
        targets: Sequence[tuple[str, ProbeConfig]],
        publish: Publish,
        concurrency: int = 100,
        clock: Clock = utc_now,
        publish_queue_size: int = PUBLISH_QUEUE_SIZE,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._targets = list(targets)
        self._publish = publish
        self._concurrency = concurrency
        self._clock = clock
        self._publish_queue_size = publish_queue_size

    async def run(self, stop: asyncio.Event) -> None:
        """Probe every target on its interval until `stop` is set, then publish what is left."""
        limit = asyncio.Semaphore(self._concurrency)
        async with self._client() as client, self._publishing() as queue:
            loops = [
                asyncio.create_task(self._every_interval(probe, limit, queue))
                for probe in self._probes(client)
            ]
            try:
                await stop.wait()
            finally:
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)

    async def run_once(self) -> list[CloudEvent]:
        """Probe every target once, now, publish, and return the events in target order."""
        limit = asyncio.Semaphore(self._concurrency)
        async with self._client() as client, self._publishing() as queue:
            return list(
                await asyncio.gather(
                    *(self._probe_and_queue(probe, limit, queue) for probe in self._probes(client))
                )
            )

    def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=self._concurrency, max_keepalive_connections=self._concurrency
        )
        # trust_env off: a probe measures the service, not whatever proxy the environment names.
        return httpx.AsyncClient(limits=limits, headers={"User-Agent": USER_AGENT}, trust_env=False)

    def _probes(self, client: httpx.AsyncClient) -> list[Probe]:
        return [
            HttpProbe(service_id, config, client)
            if probe_kind(config) == "http"
            else TcpProbe(service_id, config)
            for service_id, config in self._targets
        ]

    @asynccontextmanager
    async def _publishing(self) -> AsyncIterator[asyncio.Queue[CloudEvent]]:
        """A queue drained by one publishing worker; on exit every queued event is published."""
        queue: asyncio.Queue[CloudEvent] = asyncio.Queue(self._publish_queue_size)
        worker = asyncio.create_task(self._publish_queued(queue))
        try:
            yield queue
        finally:
            await queue.join()
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    async def _publish_queued(self, queue: asyncio.Queue[CloudEvent]) -> None:
        while True:
            events = [await queue.get()]
            while not queue.empty() and len(events) < PUBLISH_BATCH:
                events.append(queue.get_nowait())
            try:
                # One thread at a time, so events are published in the order they were queued.
                await asyncio.to_thread(self._publish_all, events)
            finally:
                for _ in events:
                    queue.task_done()

    def _publish_all(self, events: list[CloudEvent]) -> None:
        for event in events:
            try:
                self._publish(event)
            except Exception:
                log.exception("publishing the result of probe %s failed", event.source)

    async def _every_interval(
        self, probe: Probe, limit: asyncio.Semaphore, queue: asyncio.Queue[CloudEvent]
    ) -> None:
        loop = asyncio.get_running_loop()
        interval = probe.config.interval
        due = loop.time() + stagger_s(probe.service_id, probe.config)
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            await self._probe_and_queue(probe, limit, queue)
            due += interval
            late = loop.time() - due
            if late > 0:
                # Skip the slots missed while waiting for the semaphore instead of bursting.
                due += math.ceil(late / interval) * interval

    async def _probe_and_queue(
        self, probe: Probe, limit: asyncio.Semaphore, queue: asyncio.Queue[CloudEvent]
    ) -> CloudEvent:
        async with limit:
            event = await run_probe(probe, self._clock)
        await queue.put(event)
        return event
