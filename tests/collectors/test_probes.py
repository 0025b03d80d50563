"""HTTP and TCP probes and the scheduler, against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from collectors.probes import ProbeScheduler, stagger_s
from sla.config import ProbeConfig
from sla.events import CloudEvent, EventType, ProbeData

SLOW_RESPONSE_S = 1.5
HOLD_S = 0.2
FIXED_START = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


class _Handler(BaseHTTPRequestHandler):
    server: _TestServer

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(SLOW_RESPONSE_S)
        if self.path == "/held":
            with self.server.lock:
                self.server.active += 1
                self.server.peak = max(self.server.peak, self.server.active)
            time.sleep(HOLD_S)
            with self.server.lock:
                self.server.active -= 1
        self.send_response(500 if self.path == "/fail" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""


class _TestServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def http_server(serve: Any) -> _TestServer:
    return serve(_TestServer())


@pytest.fixture
def tls_server(serve: Any, tls_context: Any) -> _TestServer:
    """An HTTPS server with a self-signed certificate, which probes must not trust."""
    server = _TestServer()
    server.socket = tls_context(1).wrap_socket(server.socket, server_side=True)
    return serve(server)


def _closed_port() -> int:
    """A port nothing listens on: bound once and released, so a connect is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _http(url: str, name: str = "health", interval: int = 30, timeout: int = 5) -> ProbeConfig:
    return ProbeConfig(name=name, http=url, interval=interval, timeout=timeout)


def _run_once(*targets: tuple[str, ProbeConfig], concurrency: int = 100) -> list[CloudEvent]:
    published: list[CloudEvent] = []
    scheduler = ProbeScheduler(
        list(targets), published.append, concurrency=concurrency, clock=lambda: FIXED_START
    )
    events = asyncio.run(scheduler.run_once())
    # Published as each check finishes; returned in target order.
    assert sorted(e.id for e in events) == sorted(e.id for e in published)
    return events


def _data(event: CloudEvent) -> ProbeData:
    assert isinstance(event.data, ProbeData)
    return event.data


def test_http_200_is_ok_and_described_as_a_probe_event(http_server: _TestServer) -> None:
    [event] = _run_once(("checkout", _http(http_server.url("/health"))))
    assert event.type == EventType.PROBE
    assert event.subject == "checkout"
    assert event.source == "collector/http/checkout-health"
    # The injected clock is read when the probe starts.
    assert event.time == FIXED_START
    data = _data(event)
    assert (data.check, data.ok, data.status_code, data.error) == ("health", True, 200, None)
    assert 0 < data.latency_ms < 1000


def test_http_500_fails_with_its_status_code(http_server: _TestServer) -> None:
    data = _data(_run_once(("checkout", _http(http_server.url("/fail"))))[0])
    assert (data.ok, data.status_code, data.error) == (False, 500, "HTTP 500")


def test_slow_response_beyond_the_timeout_is_a_timeout(http_server: _TestServer) -> None:
    data = _data(_run_once(("search", _http(http_server.url("/slow"), timeout=1)))[0])
    assert (data.ok, data.status_code, data.error) == (False, None, "timeout")
    # Given up after the 1 s timeout, well before the server's 1.5 s answer.
    assert 1000 <= data.latency_ms < SLOW_RESPONSE_S * 1000


def test_closed_port_is_connection_refused_for_http_and_tcp() -> None:
    port = _closed_port()
    http_event, tcp_event = _run_once(
        ("payments", _http(f"http://127.0.0.1:{port}/health")),
        ("payments", ProbeConfig(name="db", tcp=f"127.0.0.1:{port}")),
    )
    assert tcp_event.source == "collector/tcp/payments-db"
    for event in (http_event, tcp_event):
        data = _data(event)
        assert (data.ok, data.error) == (False, "connection refused")


def test_tcp_connect_to_a_listener_is_ok() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        data = _data(_run_once(("erp", ProbeConfig(name="db", tcp=f"127.0.0.1:{port}")))[0])
    assert (data.ok, data.status_code, data.error) == (True, None, None)


def test_untrusted_certificate_is_a_tls_error(tls_server: _TestServer) -> None:
    data = _data(_run_once(("checkout", _http(tls_server.url("/health", scheme="https"))))[0])
    assert (data.ok, data.error) == (False, "tls: self-signed certificate")


def test_scheduler_never_runs_more_checks_at_once_than_its_concurrency(
    http_server: _TestServer,
) -> None:
    targets = [(f"svc{i}", _http(http_server.url("/held"))) for i in range(10)]
    started = time.monotonic()
    events = _run_once(*targets, concurrency=3)
    elapsed = time.monotonic() - started
    assert all(_data(event).ok for event in events)
    assert http_server.peak == 3
    # 10 checks of 0.2 s, 3 at a time, need ceil(10 / 3) = 4 rounds.
    assert elapsed >= 4 * HOLD_S


async def _run_for(scheduler: ProbeScheduler, seconds: float) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    await scheduler.run(stop)


def test_scheduler_runs_each_target_every_interval_after_its_stagger(
    http_server: _TestServer,
) -> None:
    targets = [
        (service, _http(http_server.url("/health"), interval=1, timeout=1))
        for service in ("checkout", "payments")
    ]
    published: list[CloudEvent] = []
    begin = time.time()
    asyncio.run(_run_for(ProbeScheduler(targets, published.append), 3.5))
    for service, config in targets:
        offset = stagger_s(service, config)
        times = [e.time.timestamp() - begin for e in published if e.subject == service]
        # Runs at offset, offset + 1, ... while below 3.5 s: 4 runs if the offset is under 0.5 s.
        assert len(times) == (4 if offset < 0.5 else 3)
        assert times[0] == pytest.approx(offset, abs=0.15)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps == pytest.approx([1.0] * len(gaps), abs=0.15)


def test_a_failing_publish_does_not_stop_the_scheduler(http_server: _TestServer) -> None:
    published: list[CloudEvent] = []

    def flaky(event: CloudEvent) -> None:
        published.append(event)
        if len(published) == 1:
            raise RuntimeError("broker hiccup")

    target = ("checkout", _http(http_server.url("/health"), interval=1, timeout=1))
    offset = stagger_s(*target)
    asyncio.run(_run_for(ProbeScheduler([target], flaky), offset + 1.5))
    # Runs at offset and offset + 1 both reached publish, although the first one raised.
    assert len(published) == 2


def test_stagger_is_stable_and_within_the_interval() -> None:
    config = _http("http://demo.local/health", interval=30)
    offsets = {stagger_s(f"svc{i}", config) for i in range(200)}
    assert all(0 <= offset < 30 for offset in offsets)
    assert stagger_s("svc0", config) == stagger_s("svc0", config)
    # 200 targets spread over 30 s: nowhere near all at the same instant.
    assert len(offsets) > 150


def test_zero_concurrency_is_rejected() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        ProbeScheduler([], _ignore, concurrency=0)


def _ignore(event: CloudEvent) -> None:
    del event


def test_a_blocking_publish_does_not_delay_the_probes(http_server: _TestServer) -> None:
    targets = [
        (service, _http(http_server.url("/health"), interval=1, timeout=1))
        for service in ("checkout", "payments")
    ]
    published: list[CloudEvent] = []

    def stuck_once(event: CloudEvent) -> None:
        published.append(event)
        if len(published) == 1:
            time.sleep(2.0)  # a Kafka send blocked while the broker is away

    begin = time.time()
    asyncio.run(_run_for(ProbeScheduler(targets, stuck_once), 3.5))
    for service, config in targets:
        offset = stagger_s(service, config)
        times = [e.time.timestamp() - begin for e in published if e.subject == service]
        # As if publishing were instant: runs at offset, offset + 1, ... below 3.5 s, all of
        # them published (those queued behind the stuck send too), in order.
        assert len(times) == (4 if offset < 0.5 else 3)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps == pytest.approx([1.0] * len(gaps), abs=0.15)


def test_every_result_is_published_even_when_the_queue_is_full() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        targets = [(f"svc{i}", ProbeConfig(name="db", tcp=f"127.0.0.1:{port}")) for i in range(20)]
        published: list[CloudEvent] = []

        def slow(event: CloudEvent) -> None:
            time.sleep(0.01)
            published.append(event)

        # A queue of 2 for 20 results: probes wait for room instead of dropping results.
        events = asyncio.run(ProbeScheduler(targets, slow, publish_queue_size=2).run_once())
    assert sorted(e.id for e in published) == sorted(e.id for e in events)
    assert len(published) == 20
