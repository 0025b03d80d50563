"""The broker stopped for 30 s and restarted under running `slamon collect` and `slamon pipeline`.

The collector spools probe results and webhook events while Kafka is away and drains the
spool when it is back; the pipeline waits and resumes by itself. Nothing is lost: every
acknowledged webhook event is stored once, the probe results run on across the outage
without a gap, and the webhook-fed figures equal a clean run's.
(tests/collectors/test_no_loss.py covers the publisher alone through a shorter outage.)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from sla.intervals import Interval

pytestmark = pytest.mark.kafka

PROBED = [f"web-{n}" for n in range(3)]
# Probes run every second: across the outage no gap may come near its length.
MAX_PROBE_GAP_S = 10
PROBE = 'slamon_events_ingested_total{type="slamon.probe.v1"}'
CHANGE = 'slamon_events_ingested_total{type="slamon.change.v1"}'


class ProbeTarget:
    """An HTTP server answering 200 on every path and counting the requests per path."""

    def __init__(self) -> None:
        served: Counter[str] = Counter()
        self.served = served

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served[self.path.strip("/")] += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def probe_target() -> Iterator[ProbeTarget]:
    """A local endpoint for the collector's probes."""
    target = ProbeTarget()
    yield target
    target.close()


def change_window() -> Interval:
    """A past day for the change records' own times."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    return Interval(int((end - timedelta(days=1)).timestamp()), int(end.timestamp()))


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "outage_s",
    [
        pytest.param(30, id="30s"),
        # Longer than the pipeline's 60 s of retries for one Kafka call.
        pytest.param(120, id="120s", marks=pytest.mark.soak),
    ],
)
def test_a_broker_outage_under_collectors_and_pipeline_loses_nothing(
    outage_s: int,
    kafka_broker: Any,
    faults: Any,
    probe_target: ProbeTarget,
    free_port: Callable[[], int],
    change_poster: Any,
    figures_of: Callable[..., dict[str, Any]],
    scrape: Callable[[str], dict[str, float]],
    tmp_path: Path,
) -> None:
    receiver = f"127.0.0.1:{free_port()}"
    probe = {"name": "health", "interval": 1, "timeout": 1}
    services = [
        *(
            {"id": s, "name": s, "probes": [{**probe, "http": f"{probe_target.url}/{s}"}]}
            for s in PROBED
        ),
        {"id": "changes", "name": "Changes"},
    ]
    config = faults.config(
        kafka_broker.bootstrap,
        services,
        receivers={
            "listen": receiver,
            "allow_unauthenticated": ["changes"],
            "rate_limit": {"per_second": 1000, "burst": 1000},
        },
    )
    collector = faults.start("collect", "--config", str(config))
    pipeline = faults.start("pipeline", "--config", str(config))
    ready = f"http://{receiver}/readyz"
    faults.wait_for(lambda: httpx.get(ready).status_code == 200, 60, "the receiver", collector)
    poster = change_poster(f"http://{receiver}", "changes", change_window())
    stop_posting = threading.Event()
    posting = poster.run(stop_posting, per_second=10)
    try:
        faults.wait_for(lambda: faults.stored() >= 50, 60, "events before the outage", pipeline)
        outage_from = time.time()
        kafka_broker.stop()
        time.sleep(outage_s)
        kafka_broker.start()
        outage_to = time.time()
        stored_after = faults.stored()
        faults.wait_for(
            lambda: faults.stored() > stored_after + 100, 120, "events after the outage", pipeline
        )
    finally:
        stop_posting.set()
        posting.join()
    assert collector.terminate(timeout=60) == 0, collector.output()
    served = sum(probe_target.served.values())

    # The pipeline resumed by itself: the same process stores everything the collector sent.
    acknowledged = len(poster.acknowledged)
    faults.wait_for(
        lambda: (
            (m := scrape(faults.metrics_url)).get(CHANGE) == acknowledged
            and m.get(PROBE, 0) >= served - len(PROBED)
        ),
        180,
        "the pipeline to store what the collector spooled",
        pipeline,
    )
    time.sleep(2)  # nothing more arrives
    assert pipeline.terminate() == 0, pipeline.output()
    assert "Kafka is unreachable, spooling" in collector.output(), "the outage was never seen"

    print(f"{acknowledged} webhook events, {served} probes served, posts {poster.statuses}")
    assert poster.statuses == {202: acknowledged}, "a webhook was refused during the outage"
    rows, distinct_ids, counts = faults.ledger()
    assert rows == distinct_ids == sum(counts.values())
    assert counts["slamon.change.v1"] == acknowledged
    # A probe cut off by the collector's shutdown was served but never became an event.
    assert served - len(PROBED) <= counts["slamon.probe.v1"] <= served
    with faults.open_store() as store:
        change_ids = store.query("SELECT event_id FROM changes")["event_id"].to_list()
        gaps = store.query(
            "SELECT service, max(gap) AS gap FROM (SELECT service, epoch(time) - "
            "lag(epoch(time)) OVER (PARTITION BY service ORDER BY time) AS gap FROM probes) "
            "GROUP BY service"
        ).rows()
        first, last = store.query("SELECT epoch(min(time)), epoch(max(time)) FROM probes").row(0)
    assert sorted(change_ids) == sorted(poster.acknowledged)
    assert first < outage_from and last > outage_to
    assert {service: gap <= MAX_PROBE_GAP_S for service, gap in gaps} == dict.fromkeys(
        PROBED, True
    ), gaps

    clean = figures_of(
        config, ["--events", str(poster.write_jsonl(tmp_path / "acked.jsonl"))], poster.window
    )
    stored = figures_of(config, ["--store", str(faults.store_path)], poster.window)
    assert stored["services"]["changes"] == clean["services"]["changes"]
