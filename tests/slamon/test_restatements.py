"""Late events for a month whose pack was handed out: the pipeline restates it next to the
original, with a record, a warning and a counter, and never silently or in place."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collectors.publisher import EventPublisher
from pipeline.store import EventStore
from pipeline.transport import EmbeddedTransport
from sla.config import SlamonConfig
from sla.events import OUTAGE, PROBE, STATUS, CloudEvent, new_event
from slamon.app import PipelineService
from slamon.report import config_sha256

MONTH = "2026-10"
DOWNTIME = "figures-shop.json.services.shop.availability.downtime_seconds"


def instant(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def event(type_: str, data: dict[str, Any], time: str, id_: str, subject: str = "shop") -> Any:
    return new_event(type_, subject, data, source="test", time=datetime.fromisoformat(time), id=id_)


def outage(id_: str, start: str, end: str) -> CloudEvent:
    data = {"outage_id": id_, "start": start, "end": end, "impact": "full"}
    return event(OUTAGE, data, end, id_)


@dataclass
class Pipeline:
    """A pipeline service on the embedded transport with a clock the test moves."""

    config: SlamonConfig
    now: float
    service: PipelineService | None = None
    transport: EmbeddedTransport | None = None
    registry: CollectorRegistry | None = None

    def start(self) -> None:
        self.transport = EmbeddedTransport()
        self.registry = CollectorRegistry()
        self.service = PipelineService(
            self.config, self.transport, self.registry, clock=lambda: self.now
        )

    def store(self, events: list[CloudEvent], at: str) -> None:
        """Publish `events`, let the pipeline store them at `at`, wait for its reporter."""
        assert self.service is not None and self.transport is not None
        self.now = instant(at)
        publisher = EventPublisher(self.transport.producer(), self.config.transport.topic_prefix)
        publisher.publish_all(events)
        self.service.drain()
        assert self.service.reporter is not None
        self.service.reporter.wait()

    def restatements(self) -> float:
        assert self.registry is not None
        value = self.registry.get_sample_value("slamon_restatements_total", {"month": MONTH})
        return value or 0.0

    def stop(self) -> None:
        if self.service is not None:
            self.service.close()
            self.service = None

    @property
    def out(self) -> Path:
        return Path(self.config.reports.out_dir)


@pytest.fixture(name="pipeline")
def pipeline_fixture(tmp_path: Path) -> Iterator[Pipeline]:
    config = SlamonConfig.model_validate(
        {
            "transport": {"kind": "embedded"},
            "store": {"path": str(tmp_path / "slamon.duckdb")},
            "reports": {"enabled": True, "out_dir": str(tmp_path / "reports"), "pdf": False},
            "services": [{"id": "shop", "name": "Shop", "objectives": {"availability": 99.9}}],
        }
    )
    pipeline = Pipeline(config, instant("2026-11-02T12:00:00+00:00"))
    pipeline.start()
    yield pipeline
    pipeline.stop()


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((out / "restatements" / MONTH).glob("*"))]


def test_late_events_restate_a_written_month_next_to_the_original(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline.store(
        [outage("INC-1", "2026-10-10T10:00:00Z", "2026-10-10T10:30:00Z")],
        at="2026-11-02T12:00:00+00:00",
    )
    original = pipeline.out / f"{MONTH}-shop"
    assert (pipeline.out / f".written-{MONTH}").exists()
    handed_out = snapshot(original)
    first = json.loads(handed_out["provenance.json"])
    assert first["watermark"]["events"] == 1

    # A monitor's outage in October arrives a day after the pack was written.
    late = [
        event(STATUS, {"state": "down"}, "2026-10-20T08:00:00+00:00", "s-1"),
        event(STATUS, {"state": "up"}, "2026-10-20T08:20:00+00:00", "s-2"),
    ]
    with caplog.at_level(logging.WARNING, logger="slamon.app"):
        pipeline.store(late, at="2026-11-03T09:00:00+00:00")

    assert snapshot(original) == handed_out  # never rewritten in place
    restated = pipeline.out / f"{MONTH}-shop-r1"
    provenance = json.loads((restated / "provenance.json").read_text())
    assert (provenance["revision"], provenance["restates"]) == (1, f"{MONTH}-shop")
    assert provenance["watermark"]["events"] == 3
    assert "Restatement 1" in (restated / "review.html").read_text()
    figures = json.loads((restated / "figures-shop.json").read_text())
    assert figures["services"]["shop"]["availability"]["downtime_seconds"] == 1800 + 1200

    (record,) = records(pipeline.out)
    (pack,) = record["packs"]
    assert record["config_sha256"] == config_sha256(pipeline.config)
    assert pack["previous"] == f"{MONTH}-shop" and pack["restated"] == f"{MONTH}-shop-r1"
    assert DOWNTIME in pack["changed"]
    change = next(c for c in pack["changes"] if c["field"] == DOWNTIME)
    assert (change["previous"], change["current"]) == (1800, 3000)
    assert pack["previous_figures"]["shop"]["availability"]["downtime_seconds"] == 1800
    assert pack["figures"]["shop"]["availability"]["downtime_seconds"] == 3000
    assert pack["watermarks"]["previous"] == first["watermark"]
    assert pack["watermarks"]["current"] == provenance["watermark"]
    assert pack["previous_provenance"]["config_sha256"] == pack["provenance"]["config_sha256"]

    assert pipeline.restatements() == 1
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert f"late events changed {MONTH}: {MONTH}-shop restated as {MONTH}-shop-r1" in (
        warning.getMessage()
    )
    assert "shop availability.downtime_seconds 1800 -> 3000" in warning.getMessage()


def test_late_events_that_change_no_figure_and_live_events_restate_nothing(
    pipeline: Pipeline,
) -> None:
    pipeline.store(
        [outage("INC-1", "2026-10-10T10:00:00Z", "2026-10-10T10:30:00Z")],
        at="2026-11-02T12:00:00+00:00",
    )
    # October evidence of a service the config does not have, and November's live probes.
    ghost = event(STATUS, {"state": "down"}, "2026-10-20T08:00:00+00:00", "g-1", subject="ghost")
    pipeline.store([ghost], at="2026-11-03T09:00:00+00:00")
    live = {"check": "home", "ok": True, "latency_ms": 5.0}
    pipeline.store(
        [event(PROBE, live, "2026-11-04T09:00:00+00:00", "p-1")], at="2026-11-04T09:00:01+00:00"
    )
    assert not (pipeline.out / f"{MONTH}-shop-r1").exists()
    assert not (pipeline.out / "restatements").exists()
    assert pipeline.restatements() == 0


def test_events_stored_while_the_pipeline_was_down_are_restated_after_a_restart(
    pipeline: Pipeline,
) -> None:
    pipeline.store(
        [outage("INC-1", "2026-10-10T10:00:00Z", "2026-10-10T10:30:00Z")],
        at="2026-11-02T12:00:00+00:00",
    )
    pipeline.store(
        [outage("INC-2", "2026-10-20T08:00:00Z", "2026-10-20T08:20:00Z")],
        at="2026-11-03T09:00:00+00:00",
    )
    pipeline.stop()
    # Another writer (a backfill) stores a late outage while the pipeline is stopped.
    with EventStore(pipeline.config.store.path) as store:
        store.write_batch([outage("INC-3", "2026-10-25T08:00:00Z", "2026-10-25T08:10:00Z")])
    pipeline.start()
    pipeline.store([], at="2026-11-05T09:00:00+00:00")

    r2 = json.loads((pipeline.out / f"{MONTH}-shop-r2" / "provenance.json").read_text())
    assert (r2["revision"], r2["restates"]) == (2, f"{MONTH}-shop-r1")
    first, second = records(pipeline.out)
    assert first["packs"][0]["restated"] == f"{MONTH}-shop-r1"
    (pack,) = second["packs"]
    change = next(c for c in pack["changes"] if c["field"] == DOWNTIME)
    assert (change["previous"], change["current"]) == (3000, 3600)
    assert pipeline.restatements() == 1  # counted by this process
