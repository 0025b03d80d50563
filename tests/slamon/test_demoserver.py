"""The demo's local endpoints: fault schedule, real HTTP/TCP serving, and probe rewriting."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collectors.probes import ProbeScheduler
from sla.config import ProbeConfig
from sla.events import CloudEvent, ProbeData
from slamon.configfile import load_config
from slamon.demoserver import DemoResponse, DemoServer, demo_response

DEMO_YAML = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"
# Epoch seconds chosen by phase: 1_800_000_000 is a multiple of 600 (and so of 300).
CYCLE_START = 1_800_000_000


class _Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock(CYCLE_START)


@pytest.fixture
def server(clock: _Clock) -> Iterator[DemoServer]:
    with DemoServer(clock=clock, slow_delay_s=0.05) as running:
        yield running


def test_fault_schedule() -> None:
    # Payments fail in the first 60 s of every 300 s; search is slow from 300 s to 420 s of 600 s.
    assert demo_response("/payments/health", CYCLE_START + 59, 1.0) == DemoResponse(503)
    assert demo_response("/payments/health", CYCLE_START + 60, 1.0) == DemoResponse(200)
    assert demo_response("/payments/health", CYCLE_START + 300, 1.0) == DemoResponse(503)
    assert demo_response("/search/health", CYCLE_START + 299, 1.0) == DemoResponse(200)
    assert demo_response("/search/health", CYCLE_START + 300, 1.0) == DemoResponse(200, 1.0)
    assert demo_response("/search/health", CYCLE_START + 420, 1.0) == DemoResponse(200)
    assert demo_response("/checkout/health", CYCLE_START, 1.0) == DemoResponse(200)
    assert demo_response("/nothing", CYCLE_START, 1.0) == DemoResponse(404)


def test_serves_the_schedule_over_http(server: DemoServer, clock: _Clock) -> None:
    with httpx.Client(trust_env=False) as client:
        assert client.get(server.url("/payments/health")).status_code == 503
        clock.now = CYCLE_START + 60
        assert client.get(server.url("/payments/health")).status_code == 200
        assert client.get(server.url("/checkout/health")).json() == {"status": "ok"}
        assert client.get(server.url("/unknown")).status_code == 404


def test_a_probe_that_gives_up_on_a_slow_answer_prints_nothing(
    clock: _Clock, capfd: pytest.CaptureFixture[str]
) -> None:
    clock.now = CYCLE_START + 300  # search is slow
    with DemoServer(clock=clock, slow_delay_s=0.3) as server, socket.socket() as probe:
        probe.connect(("127.0.0.1", server.http_port))
        probe.sendall(b"GET /search/health HTTP/1.1\r\nHost: demo\r\n\r\n")
        # Hang up with a reset, as a timed-out client's socket does, before the answer.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        probe.close()
        time.sleep(0.6)
        # Still serving.
        with httpx.Client(trust_env=False) as client:
            assert client.get(server.url("/checkout/health")).status_code == 200
    assert "Traceback" not in capfd.readouterr().err


def test_tcp_listener_accepts(server: DemoServer) -> None:
    host, _, port = server.tcp_address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=2):
        pass


def test_stop_releases_the_ports(clock: _Clock) -> None:
    server = DemoServer(clock=clock).start()
    url = server.url("/checkout/health")
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, trust_env=False)


def test_bind_points_demo_local_probes_at_the_server(server: DemoServer) -> None:
    config = load_config(DEMO_YAML)
    bound = server.bind(config)
    probes = {s.id: s.probes[0] for s in bound.services}
    assert probes["checkout"].http == f"{server.base_url}/checkout/health"
    assert probes["erp-reporting"].tcp == server.tcp_address
    # Everything but the probe targets is left as it was.
    assert bound.services[0].objectives == config.services[0].objectives
    elsewhere = ProbeConfig(name="x", http="https://shop.example/health")
    assert server.bind_probe(elsewhere) is elsewhere


def test_probes_of_the_bound_demo_config_see_the_faults(server: DemoServer) -> None:
    bound = server.bind(load_config(DEMO_YAML))
    targets = [(s.id, probe) for s in bound.services for probe in s.probes]
    events: list[CloudEvent] = asyncio.run(ProbeScheduler(targets, _ignore).run_once())
    outcome = {e.subject: e.data.ok for e in events if isinstance(e.data, ProbeData)}
    # The clock sits at the start of a cycle: payments is in its 60 s of 503s.
    assert outcome == {"checkout": True, "payments": False, "search": True, "erp-reporting": True}


def _ignore(event: CloudEvent) -> None:
    del event
