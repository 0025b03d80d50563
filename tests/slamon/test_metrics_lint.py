"""The /metrics page of a pipeline on the demo history passes `promtool check metrics`."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from collectors.publisher import EventPublisher
from pipeline.exporter import MetricsServer
from pipeline.transport import EmbeddedTransport
from sla.config import SlamonConfig
from sla.events import PROBE, new_event
from slamon.app import PipelineService
from slamon.demodata import generate_history

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.prometheus


@pytest.fixture(scope="module")
def exposition(
    tmp_path_factory: pytest.TempPathFactory, demo_config: Callable[[Path], SlamonConfig]
) -> Iterator[str]:
    """/metrics of a pipeline that stored a month of demo history and one live batch."""
    config = demo_config(tmp_path_factory.mktemp("lint"))
    now = datetime.now(UTC)
    transport = EmbeddedTransport()
    registry = CollectorRegistry()
    service = PipelineService(config, transport, registry)
    try:
        service.store.write_batch(list(generate_history(config, now, months=1)))
        # The demo probes plain HTTP; an HTTPS check reports its certificate.
        publisher = EventPublisher(transport.producer(), config.transport.topic_prefix)
        expiry = (now + timedelta(days=60)).isoformat()
        data = {"check": "health", "ok": True, "latency_ms": 12.0, "cert_expires_at": expiry}
        publisher.publish(new_event(PROBE, "checkout", data, source="test", time=now))
        publisher.flush()
        assert service.drain() == 1
        server = MetricsServer(registry, "127.0.0.1", 0)
        try:
            yield httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
        finally:
            server.stop()
    finally:
        service.close()


def test_promtool_finds_no_problem(exposition: str, prometheus_binaries: dict[str, Path]) -> None:
    checked = subprocess.run(
        [str(prometheus_binaries["promtool"]), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_the_exposition_holds_every_kind_of_figure(exposition: str) -> None:
    for series in (
        'slamon_availability_ratio{service="checkout",window="month"}',
        'slamon_service_credit_ratio{service="payments",window="month"}',
        'slamon_tickets_open{kind="incident",priority="P1",service="search"}',
        'slamon_capacity_threshold_ratio{level="crit",resource="disk",service="erp-reporting"}',
        'slamon_continuity_test_overdue{service="payments"}',
        'slamon_change_success_ratio{service="checkout",window="30d"}',
        'slamon_agreed_service_time_active{service="search"}',
        'slamon_probe_certificate_expiry_timestamp_seconds{check="health",service="checkout"}',
        'slamon_events_ingested_total{type="slamon.probe.v1"}',
        'slamon_events_rejected_total{reason="not_json"}',
        "slamon_pipeline_lag_seconds",
        "slamon_pipeline_last_batch_timestamp_seconds",
    ):
        assert f"\n{series} " in exposition, series
    assert "NaN" not in exposition


def test_every_exported_metric_is_documented(exposition: str) -> None:
    documented = (REPO / "docs" / "metrics.md").read_text()
    for name in re.findall(r"^# TYPE (\S+) ", exposition, re.MULTILINE):
        # prometheus_client's own companions of each counter: its creation time.
        if not name.endswith("_created"):
            assert f"`{name}" in documented, name


def test_the_store_memory_is_what_duckdb_uses_under_its_limit(
    exposition: str, exposition_samples: Callable[[str], dict[str, float]]
) -> None:
    samples = exposition_samples(exposition)
    used = samples["slamon_store_memory_bytes"]
    limit = samples["slamon_store_memory_limit_bytes"]
    # The default store.memory_limit_mib; a month of demo history fills some of DuckDB's cache.
    assert limit == 256 * 2**20
    assert 0 < used <= limit
