"""HTTP(S) probe options (method, headers, expected status and body, TLS expiry) on real servers."""

from __future__ import annotations

import asyncio
import ssl
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from collectors.probes import USER_AGENT, ProbeScheduler
from sla.config import ProbeConfig
from sla.events import ProbeData

CERT_DAYS = 5
SLOW_S = 1.5


class _Handler(BaseHTTPRequestHandler):
    """`/status/NNN` answers NNN, `/slow` answers late, `/moved` redirects to `/`.

    Every body names method and X-Token; every answer sets a cookie. HTTP/1.1 keeps
    connections open for a client that wants to reuse them.
    """

    server: _Server
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        self.server.requests.append((self.command, self.headers.get("X-Token")))
        self.server.seen.append((self.headers.get("User-Agent"), self.headers.get("Cookie")))
        self.server.client_ports.append(self.client_address[1])
        if self.path == "/slow":
            time.sleep(SLOW_S)
        _, _, code = self.path.partition("/status/")
        status = 302 if self.path == "/moved" else int(code or 200)
        body = f"method={self.command} token={self.headers.get('X-Token')} state=ready".encode()
        self.send_response(status)
        if self.path == "/moved":
            self.send_header("Location", "/")
        self.send_header("Set-Cookie", "session=abc; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""


class _Server(ThreadingHTTPServer):
    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str | None]] = []
        self.seen: list[tuple[str | None, str | None]] = []
        self.client_ports: list[int] = []
        self.scheme = "http"
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def server(serve: Any) -> _Server:
    return serve(_Server())


@pytest.fixture
def tls_server(serve: Any, tls_context: Any) -> _Server:
    """HTTPS with a self-signed certificate that expires in CERT_DAYS days."""
    return serve(_Server(tls_context(CERT_DAYS)))


def _probe(url: str, **options: Any) -> ProbeData:
    """Run one check of `url` with the given probe options and return its result."""
    config = ProbeConfig.model_validate({"name": "health", "http": url, **options})
    [event] = asyncio.run(ProbeScheduler([("shop", config)], lambda _: None).run_once())
    assert isinstance(event.data, ProbeData)
    return event.data


def test_method_and_headers_are_sent(server: _Server) -> None:
    data = _probe(server.url("/"), method="POST", headers={"X-Token": "s3cret"})
    assert (data.ok, data.status_code) == (True, 200)
    assert server.requests == [("POST", "s3cret")]


def test_head_passes_without_a_body(server: _Server) -> None:
    data = _probe(server.url("/"), method="HEAD")
    assert (data.ok, data.status_code, data.error) == (True, 200, None)
    assert server.requests == [("HEAD", None)]


def test_redirect_is_the_answer_not_followed(server: _Server) -> None:
    data = _probe(server.url("/moved"))
    # Below 400, so it passes by default, but as the 302 itself: no second request was made.
    assert (data.ok, data.status_code) == (True, 302)
    assert len(server.requests) == 1
    assert not _probe(server.url("/moved"), expect_status=[200]).ok


def test_each_check_has_its_own_connection_user_agent_and_no_cookies(server: _Server) -> None:
    # By name: cookie jars ignore cookies of IP addresses anyway.
    url = server.url("/").replace("127.0.0.1", "localhost")
    config = ProbeConfig(name="health", http=url, interval=1, timeout=1)
    # Both probes share the scheduler's session, one after the other, and the server sets a
    # cookie on each answer.
    scheduler = ProbeScheduler([("shop", config), ("shop", config)], lambda _: None, concurrency=1)
    asyncio.run(scheduler.run_once())
    assert server.seen == [(USER_AGENT, None), (USER_AGENT, None)]
    # The server would keep the first connection open, but the second check connects anew.
    assert len(set(server.client_ports)) == 2


def test_failing_500_passes_when_500_is_expected(server: _Server) -> None:
    # A probe of an error page that must keep answering 500 (or a 503 in the 5xx class).
    assert _probe(server.url("/status/500"), expect_status=[500]).ok
    assert _probe(server.url("/status/503"), expect_status=["5xx"]).ok


def test_status_outside_the_expected_list_and_ranges_fails(server: _Server) -> None:
    data = _probe(server.url("/status/302"), expect_status=[200, "204-206", "4xx"])
    assert (data.ok, data.status_code) == (False, 302)
    assert data.error == "HTTP 302, expected 200, 204-206, 400-499"
    # 205 lies inside 204-206.
    assert _probe(server.url("/status/205"), expect_status=[200, "204-206"]).ok


def test_default_expectation_is_below_400(server: _Server) -> None:
    assert _probe(server.url("/status/399")).ok
    data = _probe(server.url("/status/400"))
    assert (data.ok, data.error) == (False, "HTTP 400")


def test_body_pattern_must_match(server: _Server) -> None:
    assert _probe(server.url("/"), expect_body=r"state=(ready|ok)").ok
    data = _probe(server.url("/"), expect_body=r"state=degraded")
    # The status passed, the body did not.
    assert (data.ok, data.status_code) == (False, 200)
    assert data.error == "body does not match 'state=degraded'"


def test_slow_server_times_out(server: _Server) -> None:
    data = _probe(server.url("/slow"), timeout=1)
    assert (data.ok, data.error, data.status_code) == (False, "timeout", None)
    assert 1000 <= data.latency_ms < SLOW_S * 1000


def test_tls_certificate_expiry_is_recorded_when_verification_is_off(tls_server: _Server) -> None:
    data = _probe(tls_server.url("/"), tls_verify=False)
    assert (data.ok, data.status_code, data.error) == (True, 200, None)
    # openssl -days 5 sets notAfter to the signing time + 5 days, i.e. just before now + 5 days.
    expected = datetime.now(UTC) + timedelta(days=CERT_DAYS)
    assert data.cert_expires_at is not None
    assert abs(data.cert_expires_at - expected) < timedelta(minutes=1)


def test_untrusted_certificate_fails_with_verification_on(tls_server: _Server) -> None:
    data = _probe(tls_server.url("/"))
    assert (data.ok, data.error, data.cert_expires_at) == (
        False,
        "tls: self-signed certificate",
        None,
    )


def test_plain_http_has_no_certificate_expiry(server: _Server) -> None:
    assert _probe(server.url("/")).cert_expires_at is None


def test_verifying_and_non_verifying_probes_run_side_by_side(tls_server: _Server) -> None:
    strict = ProbeConfig(name="strict", http=tls_server.url("/"))
    lenient = ProbeConfig(name="lenient", http=tls_server.url("/"), tls_verify=False)
    events = asyncio.run(
        ProbeScheduler([("shop", strict), ("shop", lenient)], lambda _: None).run_once()
    )
    results = {e.data.check: e.data.ok for e in events if isinstance(e.data, ProbeData)}
    assert results == {"strict": False, "lenient": True}
