"""`slamon collect` and `slamon pipeline` as separate processes over the real broker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from pipeline.store import EventStore

if TYPE_CHECKING:
    from conftest import EndToEnd

pytestmark = pytest.mark.kafka

PAYLOADS = Path(__file__).resolve().parents[1] / "collectors" / "payloads"


def test_webhooks_and_heartbeats_reach_the_store_and_bad_credentials_write_nothing(
    kafka_bootstrap: str,
    unique_name: str,
    e2e: EndToEnd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    monkeypatch.setenv("SLAMON_JIRA_TOKEN", "jira-token")
    monkeypatch.setenv("SLAMON_BEAT_TOKEN", "beat-token")
    receiver_port, exporter_port = e2e.free_port(), e2e.free_port()
    config = e2e.write_config(
        {
            "transport": {
                "kind": "kafka",
                "bootstrap": kafka_bootstrap,
                "topic_prefix": unique_name,
            },
            "store": {"path": str(tmp_path / "collect.duckdb")},
            "spool": {"path": str(tmp_path / "spool")},
            "exporter": {"listen": f"127.0.0.1:{exporter_port}"},
            "pipeline": {"group_id": unique_name, "poll_timeout": 0.2},
            "receivers": {
                "listen": f"127.0.0.1:{receiver_port}",
                "auth": {
                    "jira": {"token_env": "SLAMON_JIRA_TOKEN"},
                    "heartbeat": {"token_env": "SLAMON_BEAT_TOKEN"},
                },
                "tickets": {"jira": {"service_map": {"CHK": "checkout"}}},
            },
            "services": [
                {
                    "id": "checkout",
                    "name": "Checkout",
                    "heartbeats": [{"name": "nightly-backup", "interval": "1d", "grace": "1h"}],
                    "tickets": {"goals": {"P1": {"response": "15m", "resolution": "4h"}}},
                },
                {"id": "search", "name": "Search"},
            ],
        }
    )
    collector = e2e.slamon_process("collect", "--config", str(config))
    pipeline = e2e.slamon_process("pipeline", "--config", str(config))
    base = f"http://127.0.0.1:{receiver_port}"
    e2e.wait_for(
        lambda: httpx.get(f"{base}/readyz").status_code == 200, 30, "the receiver", collector
    )

    body = (PAYLOADS / "jira_issue_created.json").read_bytes()
    headers = {"Content-Type": "application/json"}
    refused = httpx.post(
        f"{base}/webhooks/jira", content=body, headers={**headers, "Authorization": "Bearer no"}
    )
    anonymous = httpx.post(f"{base}/webhooks/jira", content=body, headers=headers)
    assert (refused.status_code, anonymous.status_code) == (401, 401)
    accepted = httpx.post(
        f"{base}/webhooks/jira",
        content=body,
        headers={**headers, "Authorization": "Bearer jira-token"},
    )
    assert accepted.status_code == 202, accepted.text
    ping = httpx.post(
        f"{base}/heartbeat/checkout/nightly-backup",
        headers={"Authorization": "Bearer beat-token"},
    )
    assert ping.status_code == 202, ping.text

    metrics = f"http://127.0.0.1:{exporter_port}/metrics"
    tickets = 'slamon_events_ingested_total{type="slamon.ticket.v1"}'
    probes = 'slamon_events_ingested_total{type="slamon.probe.v1"}'
    expected = {tickets: float(accepted.json()["accepted"]), probes: 1.0}
    e2e.wait_for(
        lambda: all(e2e.scrape(metrics).get(k) == v for k, v in expected.items()),
        60,
        "the webhook events in the store",
        pipeline,
    )
    assert collector.terminate() == 0, collector.output()
    assert pipeline.terminate() == 0, pipeline.output()
    # Only the accepted request was published: the two refused ones added nothing.
    with EventStore(tmp_path / "collect.duckdb", read_only=True) as store:
        assert store.counts_by_type() == {
            "slamon.ticket.v1": accepted.json()["accepted"],
            "slamon.probe.v1": 1,
        }
