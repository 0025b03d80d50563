"""The Prometheus importer against a real Prometheus scraping a /metrics page served here."""

from __future__ import annotations

import itertools
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from collectors.prometheus_import import PrometheusImporter, PrometheusUnreachableError
from sla.config import PrometheusImportConfig
from sla.events import CapacityData, CloudEvent, ProbeData

pytestmark = pytest.mark.prometheus

METRICS = b"""\
# TYPE probe_success gauge
probe_success{service="shop"} 1
probe_success{service="cart"} 0
# TYPE disk_used_bytes gauge
disk_used_bytes{service="shop",host="web1"} 4.2e+09
"""
DISK_BYTES = 10e9
STARTUP_TIMEOUT_S = 30
# Seconds of scraped data the tests need: three 5 s steps of history, plus a step of margin.
HISTORY_S = 16


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(METRICS)))
        self.end_headers()
        self.wfile.write(METRICS)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""


@dataclass(frozen=True)
class _Prometheus:
    url: str
    started: float
    """Unix time before the server started: no sample can be older."""


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_Prometheus]:
    """A Prometheus scraping our /metrics page every second, once it holds HISTORY_S of data."""
    target = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: shop\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{target.server_port}']}}]\n"
    )
    with socket.socket() as probe:  # a free port, released for Prometheus to bind
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    started = time.time()
    server = subprocess.Popen(
        [str(prometheus_binaries["prometheus"]), f"--config.file={config}",
         f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "prometheus.log").open("wb"),
    )  # fmt: skip
    try:
        # The first sample is at most as old as the moment it can be queried.
        _wait_for_sample(url, server)
        time.sleep(HISTORY_S)
        yield _Prometheus(url, started)
    finally:
        server.terminate()
        server.wait(timeout=10)
        target.shutdown()
        target.server_close()


def _wait_for_sample(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"prometheus exited with code {server.returncode}")
        try:
            answer = httpx.get(f"{url}/api/v1/query", params={"query": "probe_success"}).json()
            if len(answer.get("data", {}).get("result", [])) == 2:
                return
        except (httpx.HTTPError, ValueError):  # not listening yet, or 503 text while starting
            pass
        time.sleep(0.2)
    pytest.fail(f"prometheus at {url} had no sample after {STARTUP_TIMEOUT_S}s")


def _config(url: str, *queries: dict[str, Any], interval: int = 5) -> PrometheusImportConfig:
    return PrometheusImportConfig.model_validate(
        {"url": url, "interval": interval, "timeout": 5, "queries": list(queries)}
    )


PROBE_QUERY = {"name": "up-probe", "query": "probe_success", "kind": "probe",
               "service_label": "service", "check": "blackbox"}  # fmt: skip
DISK_QUERY = {"name": "disk", "query": "disk_used_bytes", "kind": "capacity",
              "service_label": "service", "resource": "disk", "unit": "bytes",
              "capacity": DISK_BYTES, "host_label": "host"}  # fmt: skip
BAD_QUERY = {"name": "broken", "query": "probe_success{", "kind": "probe", "service": "shop"}


def _importer(config: PrometheusImportConfig, published: list[CloudEvent]) -> PrometheusImporter:
    return PrometheusImporter(config, published.append)


def _by_subject(events: list[CloudEvent]) -> dict[str, Any]:
    return {event.subject: event.data for event in events}


def test_run_once_turns_each_series_into_an_event(prometheus: _Prometheus) -> None:
    published: list[CloudEvent] = []
    importer = _importer(_config(prometheus.url, PROBE_QUERY, DISK_QUERY), published)
    before = datetime.now(UTC)
    events = importer.run_once()
    assert events == published
    probes = _by_subject([e for e in events if e.source == "collector/prometheus/up-probe"])
    assert probes == {
        "shop": ProbeData(check="blackbox", ok=True, latency_ms=0.0),
        "cart": ProbeData(check="blackbox", ok=False, latency_ms=0.0, error="up-probe returned 0"),
    }
    [disk] = [e for e in events if e.source == "collector/prometheus/disk"]
    assert disk.subject == "shop"
    assert disk.data == CapacityData(
        resource="disk", used=4.2e9, capacity=DISK_BYTES, unit="bytes", host="web1"
    )
    # Evaluated at the latest multiple of the 5 s interval.
    for event in events:
        assert event.time.timestamp() % 5 == 0
        assert before - timedelta(seconds=5) < event.time <= before


def test_overlapping_runs_give_the_same_ids(prometheus: _Prometheus) -> None:
    config = _config(prometheus.url, PROBE_QUERY, DISK_QUERY, interval=5)
    # Two runs 2 s apart within one 5 s interval evaluate the same instant.
    slot = datetime.fromtimestamp(time.time() // 5 * 5, UTC) - timedelta(seconds=5)
    first = PrometheusImporter(config, lambda _: None, clock=lambda: slot + timedelta(seconds=1))
    again = PrometheusImporter(config, lambda _: None, clock=lambda: slot + timedelta(seconds=3))
    first_events, again_events = first.run_once(), again.run_once()
    assert sorted(e.id for e in first_events) == sorted(e.id for e in again_events)
    assert len({e.id for e in first_events}) == 3


def test_backfill_over_the_last_minute_yields_an_event_per_step_with_data(
    prometheus: _Prometheus,
) -> None:
    end = datetime.now(UTC)
    importer = PrometheusImporter(_config(prometheus.url, PROBE_QUERY), lambda _: None)
    events = list(importer.backfill(end - timedelta(minutes=1), end, step=5))
    shop = sorted(e.time.timestamp() for e in events if e.subject == "shop")
    # One point per multiple of 5 s from the first scrape on: at least 16 // 5 = 3 of them.
    assert len(shop) >= 3
    assert all(t % 5 == 0 for t in shop)
    assert [b - a for a, b in itertools.pairwise(shop)] == [5.0] * (len(shop) - 1)
    # No point before Prometheus had data.
    assert shop[0] >= prometheus.started
    assert all(isinstance(e.data, ProbeData) and e.data.ok for e in events if e.subject == "shop")
    assert len({e.id for e in events}) == len(events)


def test_a_bad_query_is_logged_once_and_the_others_still_import(
    prometheus: _Prometheus, caplog: pytest.LogCaptureFixture
) -> None:
    published: list[CloudEvent] = []
    importer = _importer(_config(prometheus.url, BAD_QUERY, PROBE_QUERY), published)
    with caplog.at_level(logging.ERROR, logger="collectors.prometheus_import"):
        first = importer.run_once()
        second = importer.run_once()
    assert len(first) == len(second) == 2
    [record] = caplog.records
    assert record.getMessage().startswith("Prometheus query 'broken' failed: bad_data: ")
    assert "parse error" in record.getMessage()


def test_unreachable_prometheus_raises_in_run_once_and_is_retried_by_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    config = _config(url, PROBE_QUERY, interval=1)
    importer = PrometheusImporter(config, lambda _: None)
    with pytest.raises(PrometheusUnreachableError, match=f"Prometheus at {url} is unreachable"):
        importer.run_once()
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    with caplog.at_level(logging.WARNING, logger="collectors.prometheus_import"):
        importer.run(stop)
    # A try right away and one at the next whole second, both logged, neither fatal.
    assert len(caplog.records) >= 2
    assert all("retrying in 1s" in record.getMessage() for record in caplog.records)
