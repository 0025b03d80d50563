"""Active probes (HTTP(S) request, TCP connect, DNS resolution) and the scheduler that runs them."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Protocol

import aiohttp

from collectors.tls import CertificateError, certificate_expires_at
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
    cert_expires_at: datetime | None = None


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
    """Send the configured request; pass on an expected status (default: below 400) and body."""

    service_id: str
    config: ProbeConfig
    session: aiohttp.ClientSession

    async def check(self) -> ProbeOutcome:
        """Send one request, note the peer certificate's expiry, judge status and body."""
        config = self.config
        if config.http is None:
            raise ValueError(f"probe {config.name!r} has no http URL")
        async with self.session.request(
            config.method,
            config.http,
            headers=config.headers,
            # A redirect is the service's answer: expect_status decides whether it passes.
            allow_redirects=False,
            # True verifies with the connector's default context, False does not verify.
            ssl=config.tls_verify,
        ) as response:
            cert_expires_at = _peer_certificate_expiry(response)
            # Decoded only when a pattern needs the text: by its charset, else as UTF-8.
            if config.expect_body is None:
                await response.read()
                body = ""
            else:
                body = await response.text(errors="replace")
        problem = self._problem(response.status, body)
        return ProbeOutcome(problem is None, response.status, problem, cert_expires_at)

    def _problem(self, status: int, body: str) -> str | None:
        """Why the response fails the check, or None when it passes."""
        expected = self.config.expect_status
        if expected is None and status >= 400:
            return f"HTTP {status}"
        if expected is not None and not any(status in codes for codes in expected):
            return f"HTTP {status}, expected {', '.join(str(codes) for codes in expected)}"
        pattern = self.config.expect_body
        if pattern is not None and re.search(pattern, body) is None:
            return f"body does not match {pattern!r}"
        return None


class CertifiedResponse(aiohttp.ClientResponse):
    """A response that keeps the peer certificate of the connection it arrived on."""

    peer_certificate: bytes | None = None
    """The server's certificate (DER) on a TLS connection, whether verified or not."""

    async def start(self, connection: aiohttp.connector.Connection) -> aiohttp.ClientResponse:
        """Note the certificate first: aiohttp releases the connection once a body is read."""
        transport = connection.transport
        tls = None if transport is None else transport.get_extra_info("ssl_object")
        if isinstance(tls, ssl.SSLObject | ssl.SSLSocket):
            # The binary form is there even when verification is off, unlike getpeercert()'s.
            self.peer_certificate = tls.getpeercert(binary_form=True)
        return await super().start(connection)


def _peer_certificate_expiry(response: aiohttp.ClientResponse) -> datetime | None:
    """When the certificate the server presented on this response's connection expires."""
    der = response.peer_certificate if isinstance(response, CertifiedResponse) else None
    if der is None:
        return None
    try:
        return certificate_expires_at(der)
    except CertificateError as exc:  # the check itself went fine; only the expiry is unknown
        log.warning("%s: cannot read the certificate's expiry: %s", response.url, exc)
        return None


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


@dataclass(frozen=True)
class DnsProbe:
    """Resolve the configured name with the system resolver; pass on an expected answer."""

    service_id: str
    config: ProbeConfig

    async def check(self) -> ProbeOutcome:
        """Look up the A or AAAA addresses and compare them with `expect`, if given."""
        if self.config.dns is None:
            raise ValueError(f"probe {self.config.name!r} has no dns name")
        family = socket.AF_INET if self.config.record == "A" else socket.AF_INET6
        # The loop's getaddrinfo runs the system resolver (hosts file, nsswitch) in a thread.
        answers = await asyncio.get_running_loop().getaddrinfo(
            self.config.dns, None, family=family, type=socket.SOCK_STREAM
        )
        addresses = {ip_address(sockaddr[0]) for *_, sockaddr in answers}
        unexpected = sorted(addresses - set(self.config.expect or addresses), key=str)
        if unexpected:
            return ProbeOutcome(
                ok=False, error=f"dns: unexpected {', '.join(str(a) for a in unexpected)}"
            )
        return ProbeOutcome(ok=True)


def describe_error(exc: BaseException) -> str:
    """A short, stable text for why a check raised: `timeout`, `connection refused`, `tls: ...`."""
    causes = list(_chain(exc))
    if any(isinstance(cause, TimeoutError) for cause in causes):
        return "timeout"
    # aiohttp's errors subclass the OS and TLS errors they wrap, without their details.
    for cause in (cause for cause in causes if not isinstance(cause, aiohttp.ClientError)):
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
    """`exc` and the exceptions it was raised from, nearest first; aiohttp wraps the OS error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def probe_source(service_id: str, config: ProbeConfig) -> str:
    """The CloudEvents source of a probe, e.g. `collector/http/checkout-health`."""
    return f"collector/{config.kind}/{service_id}-{config.name}"


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
        cert_expires_at=outcome.cert_expires_at,
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


def run_times(service_id: str, config: ProbeConfig, now: float) -> Iterator[float]:
    """When a probe's runs start: slots `interval` apart from its stagger, each moved by jitter.

    The jitter of each run is drawn within +-`jitter` from a generator seeded by the target, so
    a schedule is reproducible; as jitter stays under half the interval, runs never bunch. The
    slots begin `jitter` after `now`, so that no run is due before the scheduler started:
    such runs would all start at once, late, in a burst.
    """
    jitter = random.Random(f"{service_id}/{config.name}")
    slot = now + config.jitter + stagger_s(service_id, config)
    while True:
        yield slot + jitter.uniform(-config.jitter, config.jitter) if config.jitter else slot
        slot += config.interval


class ProbeScheduler:
    """Runs every target on its interval, at most `concurrency` checks at a time.

    `publish` may block (a Kafka send waits while the broker is away), so it runs in a worker
    thread fed through a bounded queue, in the order the checks finished. `observe_lag`, when
    given, is called with how late each scheduled run started (seconds after its planned time).
    """

    def __init__(
        self,
        targets: Sequence[tuple[str, ProbeConfig]],
        publish: Publish,
        concurrency: int = 100,
        clock: Clock = utc_now,
        publish_queue_size: int = PUBLISH_QUEUE_SIZE,
        *,
        observe_lag: Callable[[float], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._targets = list(targets)
        self._publish = publish
        self._concurrency = concurrency
        self._clock = clock
        self._publish_queue_size = publish_queue_size
        self._observe_lag = observe_lag
        self.skipped_runs = 0
        """Scheduled runs left out because the previous run of their target ended too late."""

    async def run(self, stop: asyncio.Event) -> None:
        """Probe every target on its interval until `stop` is set, then publish what is left."""
        limit = asyncio.Semaphore(self._concurrency)
        async with self._probes() as probes, self._publishing() as queue:
            # One origin for every target, so their staggers spread them as computed.
            origin = asyncio.get_running_loop().time()
            loops = [
                asyncio.create_task(self._every_interval(probe, origin, limit, queue))
                for probe in probes
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
        async with self._probes() as probes, self._publishing() as queue:
            return list(
                await asyncio.gather(
                    *(self._probe_and_queue(probe, limit, queue) for probe in probes)
                )
            )

    @asynccontextmanager
    async def _probes(self) -> AsyncIterator[list[Probe]]:
        """One probe per target; HTTP probes share one session, made only when there are any."""
        async with AsyncExitStack() as stack:
            session: aiohttp.ClientSession | None = None
            probes: list[Probe] = []
            for service_id, config in self._targets:
                if config.kind == "http":
                    if session is None:
                        session = await stack.enter_async_context(self._session())
                    probes.append(HttpProbe(service_id, config, session))
                elif config.kind == "tcp":
                    probes.append(TcpProbe(service_id, config))
                else:
                    probes.append(DnsProbe(service_id, config))
            yield probes

    def _session(self) -> aiohttp.ClientSession:
        """The HTTP session of every HTTP probe: a connection per check, no cookies, no proxy.

        aiohttp rather than httpx: httpx's pool scans every pooled connection on each request,
        which cost 2-5 ms of CPU per probe at 5,000 targets (see docs/benchmarks.md).
        """
        # Every check resolves the name and connects (and shakes hands) afresh, as with httpx
        # before: its latency always includes all three, a DNS failure shows at once, and idle
        # sockets to thousands of targets do not pile up between runs.
        connector = aiohttp.TCPConnector(
            limit=self._concurrency, force_close=True, use_dns_cache=False
        )
        return aiohttp.ClientSession(
            connector=connector,
            response_class=CertifiedResponse,
            headers={"User-Agent": USER_AGENT},
            # One check must not see another's cookies: each measures the service afresh.
            cookie_jar=aiohttp.DummyCookieJar(),
            # trust_env off: a probe measures the service, not whatever proxy the env names.
            trust_env=False,
            # run_probe bounds each check with the probe's own timeout.
            timeout=aiohttp.ClientTimeout(total=None),
        )

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
        self,
        probe: Probe,
        origin: float,
        limit: asyncio.Semaphore,
        queue: asyncio.Queue[CloudEvent],
    ) -> None:
        loop = asyncio.get_running_loop()
        starts = run_times(probe.service_id, probe.config, origin)
        start = next(starts)
        while True:
            await asyncio.sleep(max(0.0, start - loop.time()))
            await self._probe_and_queue(probe, limit, queue, planned=start)
            start = next(starts)
            while start < loop.time():
                # Skip the runs missed while waiting for the semaphore instead of bursting.
                self.skipped_runs += 1
                start = next(starts)

    async def _probe_and_queue(
        self,
        probe: Probe,
        limit: asyncio.Semaphore,
        queue: asyncio.Queue[CloudEvent],
        planned: float | None = None,
    ) -> CloudEvent:
        async with limit:
            if planned is not None and self._observe_lag is not None:
                self._observe_lag(asyncio.get_running_loop().time() - planned)
            event = await run_probe(probe, self._clock)
        await queue.put(event)
        return event
