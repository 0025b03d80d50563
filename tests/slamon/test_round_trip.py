"""A live probe through the real Kafka broker, the pipeline and DuckDB to /metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pipeline.store import EventStore

if TYPE_CHECKING:
    from conftest import EndToEnd


pytestmark = pytest.mark.kafka


class FlakyService:
    """A local HTTP endpoint the test switches between healthy (200) and failing (503)."""

    def __init__(self) -> None:
        self.healthy = True
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if service.healthy else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The health URL to probe."""
        return f"http://127.0.0.1:{self.server.server_port}/health"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky_service() -> Iterator[FlakyService]:
    """A started FlakyService."""
    service = FlakyService()
    yield service
    service.close()


def expected_downtime(probes: list[tuple[int, bool]], failures: int) -> tuple[int, int]:
    """Downtime and outage count by the rule of docs/formulas.md, written out independently.

    An outage opens at the first failed probe of a run of at least `failures` consecutive
    failures and closes at the next successful probe.
    """
    downtime = outages = 0
    run_start: int | None = None
    run_length = 0
    for t, ok in probes:
        if not ok:
            run_start = t if run_length == 0 else run_start
            run_length += 1
            continue
        if run_length >= failures and run_start is not None:
            downtime += t - run_start
            outages += 1
        run_length, run_start = 0, None
    return downtime, outages


def test_probe_outage_flows_from_kafka_to_metrics(
    kafka_bootstrap: str,
    unique_name: str,
    e2e: EndToEnd,
    flaky_service: FlakyService,
    tmp_path: Path,
) -> None:
    store_path = tmp_path / "roundtrip.duckdb"
    port = e2e.free_port()
    config = e2e.write_config(
        {
            "transport": {
                "kind": "kafka",
                "bootstrap": kafka_bootstrap,
                "topic_prefix": unique_name,
                "partitions": 2,
            },
            "store": {"path": str(store_path)},
            # The default, var/spool, is relative to the working directory: the repository.
            "spool": {"path": str(store_path.parent / "spool")},
            "exporter": {"listen": f"127.0.0.1:{port}"},
            "pipeline": {
                "group_id": unique_name,
                "batch_size": 50,
                "poll_timeout": 0.2,
                "recompute_interval": 0.5,
            },
            "services": [
                {
                    "id": "shop",
                    "name": "Web shop",
                    "objectives": {"availability": 99.9},
                    "outage_from_probes": {"failures": 2},
                    "probes": [
                        {
                            "name": "health",
                            "http": flaky_service.url,
                            "interval": "1s",
                            "timeout": "1s",
                        }
                    ],
                }
            ],
        }
    )
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    pipeline = e2e.slamon_process("pipeline", "--config", str(config))
    collector = e2e.slamon_process("collect", "--config", str(config))
    up = 'slamon_service_up{service="shop"}'
    downtime = 'slamon_downtime_seconds{service="shop",window="month"}'

    e2e.wait_for(
        lambda: e2e.scrape(metrics_url).get(up) == 1.0, 30, "the service to be seen up", pipeline
    )
    flaky_service.healthy = False
    e2e.wait_for(lambda: e2e.scrape(metrics_url).get(up) == 0.0, 30, "the outage to show", pipeline)
    time.sleep(2)
    flaky_service.healthy = True
    e2e.wait_for(
        lambda: e2e.scrape(metrics_url).get(up) == 1.0, 30, "the recovery to show", pipeline
    )
    assert collector.terminate() == 0, collector.output()

    def settled() -> dict[str, float] | None:
        # Every probe the collector sent is stored and the figures are recomputed from them.
        first = e2e.scrape(metrics_url)
        time.sleep(1.0)  # two recompute intervals
        second = e2e.scrape(metrics_url)
        keys = ('slamon_events_ingested_total{type="slamon.probe.v1"}', downtime)
        return second if all(first.get(k) == second.get(k) for k in keys) else None

    during = e2e.wait_for(settled, 30, "the pipeline to settle", pipeline)
    assert pipeline.terminate() == 0, pipeline.output()

    store = EventStore(store_path, read_only=True)
    rows = store.query(
        "SELECT epoch_us(time) // 1000000, ok FROM probes WHERE service = 'shop' ORDER BY time"
    ).rows()
    store.close()
    probes = [(int(t), bool(ok)) for t, ok in rows]
    assert any(not ok for _, ok in probes) and probes[-1][1]
    hand_downtime, hand_outages = expected_downtime(probes, failures=2)
    assert hand_outages == 1 and hand_downtime >= 2

    assert during[downtime] == hand_downtime
    assert during['slamon_outages{service="shop",window="month"}'] == hand_outages
    agreed = during['slamon_agreed_service_seconds{service="shop",window="month"}']
    # A 24x7 service's agreed time runs from the 1st of the month, 00:00 UTC, to now.
    month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert abs(time.time() - agreed - month_start.timestamp()) < 10
    assert during['slamon_availability_ratio{service="shop",window="month"}'] == pytest.approx(
        (agreed - hand_downtime) / agreed, abs=1e-12
    )
    assert during['slamon_availability_target_ratio{service="shop"}'] == pytest.approx(0.999)
    assert during[up] == 1.0
    assert during['slamon_events_ingested_total{type="slamon.probe.v1"}'] == len(probes)
