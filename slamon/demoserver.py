"""The local HTTP and TCP endpoints that the demo's live probes hit, with a fixed fault schedule."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

from sla.config import ProbeConfig, SlamonConfig

DEMO_HOST = "demo.local"
"""Probe targets on this host are pointed at the running `DemoServer` by `DemoServer.bind`."""

PAYMENTS_PERIOD_S = 300
PAYMENTS_FAULT_S = 60
SEARCH_PERIOD_S = 600
SEARCH_SLOW_FROM_S = 300
SEARCH_SLOW_S = 120


@dataclass(frozen=True)
class DemoResponse:
    """What the demo server answers on one path at one instant."""

    status: int
    delay_s: float = 0.0


def demo_response(path: str, now: float, slow_delay_s: float) -> DemoResponse:
    """The answer on `path` at epoch second `now`: payments fail 60 s in 5 min, search slows."""
    if path == "/checkout/health":
        return DemoResponse(200)
    if path == "/payments/health":
        failing = int(now) % PAYMENTS_PERIOD_S < PAYMENTS_FAULT_S
        return DemoResponse(503 if failing else 200)
    if path == "/search/health":
        phase = int(now) % SEARCH_PERIOD_S
        slow = SEARCH_SLOW_FROM_S <= phase < SEARCH_SLOW_FROM_S + SEARCH_SLOW_S
        return DemoResponse(200, slow_delay_s if slow else 0.0)
    return DemoResponse(404)


class _DemoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, clock: Callable[[], float], slow_delay_s: float) -> None:
        super().__init__(("127.0.0.1", 0), _DemoHandler)
        self.clock = clock
        self.slow_delay_s = slow_delay_s


class _DemoHandler(BaseHTTPRequestHandler):
    server: _DemoHTTPServer

    def do_GET(self) -> None:
        answer = demo_response(self.path, self.server.clock(), self.server.slow_delay_s)
        if answer.delay_s:
            time.sleep(answer.delay_s)
        body = json.dumps({"status": "ok" if answer.status < 400 else "failing"}).encode()
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError:
            # A probe whose timeout is shorter than the slow answer has hung up, as meant:
            # there is no one to answer, and no traceback to print over the demo's output.
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: the demo prints its own progress."""


class _AcceptHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        """Accept and close: a TCP probe only measures the connect."""


class _DemoTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class DemoServer:
    """Threaded HTTP server plus a TCP listener on 127.0.0.1 with OS-chosen ports."""

    def __init__(self, clock: Callable[[], float] = time.time, slow_delay_s: float = 1.2) -> None:
        self._http = _DemoHTTPServer(clock, slow_delay_s)
        self._tcp = _DemoTCPServer(("127.0.0.1", 0), _AcceptHandler)
        self._threads: list[threading.Thread] = []

    @property
    def http_port(self) -> int:
        """The port the HTTP endpoints listen on."""
        return int(self._http.server_address[1])

    @property
    def tcp_address(self) -> str:
        """`host:port` of the TCP listener, in the form a tcp probe takes."""
        return f"127.0.0.1:{self._tcp.server_address[1]}"

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`, the origin of the HTTP endpoints."""
        return f"http://127.0.0.1:{self.http_port}"

    def url(self, path: str) -> str:
        """The full URL of `path` on this server."""
        return f"{self.base_url}{path}"

    def start(self) -> DemoServer:
        """Serve both listeners on daemon threads."""
        for server in (self._http, self._tcp):
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and release both ports."""
        for server in (self._http, self._tcp):
            if self._threads:
                server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join()
        self._threads.clear()

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def bind_probe(self, probe: ProbeConfig) -> ProbeConfig:
        """Point a probe aimed at `demo.local` to this server; leave other probes alone."""
        if probe.http is not None:
            parts = urlsplit(probe.http)
            if parts.hostname != DEMO_HOST:
                return probe
            local = urlunsplit(("http", f"127.0.0.1:{self.http_port}", *parts[2:]))
            return probe.model_copy(update={"http": local})
        if probe.tcp is not None and probe.tcp.rpartition(":")[0] == DEMO_HOST:
            return probe.model_copy(update={"tcp": self.tcp_address})
        return probe

    def bind(self, config: SlamonConfig) -> SlamonConfig:
        """A copy of `config` whose `demo.local` probes target this server."""
        services = [
            service.model_copy(
                update={"probes": [self.bind_probe(probe) for probe in service.probes]}
            )
            for service in config.services
        ]
        return config.model_copy(update={"services": services})
