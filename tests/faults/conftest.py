"""The fault suite's toolkit: a mixed event stream, its pipeline and the final checks.

Every fault test ends the same way: the store holds each distinct event of the stream once
(ledger rows, distinct ids and per-type counts), and `slamon compute` over the stream's
window prints the same JSON as a clean run over the JSONL file itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from rich.console import Console

from collectors.records import RecordKind, record_events
from pipeline.store import EventStore
from sla.intervals import Interval
from slamon.compute import compute, render_json, store_from_events
from slamon.configfile import load_config

if TYPE_CHECKING:
    from conftest import EndToEnd


REPO = Path(__file__).resolve().parents[2]
SERVICES = 6
# `make soak` sets it to run the long variants too.
SOAK = os.environ.get("SLAMON_SOAK") == "1"


@dataclass(frozen=True)
class Stream:
    """A JSONL file of events with repeats, and what a store of it must hold."""

    path: Path
    lines: int
    by_type: dict[str, int]
    window: Interval
    services: list[dict[str, Any]]

    @property
    def distinct(self) -> int:
        """How many different events (ids) the file holds."""
        return sum(self.by_type.values())


class Faults:
    """One fault test's stream, config, pipeline processes and checks."""

    def __init__(
        self,
        tmp_path: Path,
        unique_name: str,
        e2e: EndToEnd,
    ) -> None:
        self.tmp_path = tmp_path
        self.name = unique_name
        self.store_path = tmp_path / "faults.duckdb"
        self.metrics_url = f"http://127.0.0.1:{e2e.free_port()}/metrics"
        self.spool_path = tmp_path / "spool"
        self._write_config = e2e.write_config
        self.start = e2e.slamon_process
        self._scrape = e2e.scrape
        self.wait_for = e2e.wait_for

    def stream(self, distinct: int, duplicates: int, seed: int) -> Stream:
        """`distinct` events of the soak's mix (bench/soak.py) plus `duplicates` repeats."""
        path = self.tmp_path / f"stream-{seed}.jsonl"
        done = subprocess.run(
            [
                *(sys.executable, "-m", "bench.soak", "--write-stream", str(path)),
                *("--events", str(distinct), "--duplicates", str(duplicates)),
                *("--services", str(SERVICES), "--seed", str(seed)),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        facts = json.loads(done.stdout)
        window = Interval(*facts["window"])
        return Stream(path, facts["lines"], facts["by_type"], window, facts["services"])

    def config(
        self, bootstrap: str, services: list[dict[str, Any]], **sections: dict[str, Any]
    ) -> Path:
        """A Kafka pipeline (and collector) config; `sections` are merged over the defaults."""
        document: dict[str, Any] = {
            "transport": {
                "kind": "kafka",
                "bootstrap": bootstrap,
                "topic_prefix": self.name,
                "partitions": 3,
                # The least slamon allows: a killed member's partitions move on sooner.
                "session_timeout": 6,
            },
            "store": {"path": str(self.store_path)},
            "spool": {"path": str(self.spool_path)},
            "exporter": {"listen": self.metrics_url.removeprefix("http://").split("/")[0]},
            "pipeline": {
                "group_id": self.name,
                "poll_timeout": 0.2,
                # Figures are compared at the end; recomputing meanwhile only costs time.
                "recompute_interval": 3600,
            },
            "services": services,
        }
        for name, section in sections.items():
            document[name] = {**document.get(name, {}), **section}
        return self._write_config(document)

    def publish(self, config: Path, stream: Stream) -> None:
        """Publish a stream's JSONL into Kafka with `slamon ingest`."""
        ingest = self.start("ingest", "--config", str(config), str(stream.path))
        assert ingest.proc.wait(timeout=600) == 0, ingest.output()
        assert f"published {stream.lines} events, 0 rejected" in ingest.output()

    def stored(self) -> int:
        """Events stored, by the pipeline's `slamon_events_ingested_total` over all types."""
        samples = self._scrape(self.metrics_url)
        return int(sum(v for k, v in samples.items() if k.startswith("slamon_events_ingested")))

    def pipeline_until(self, config: Path, total: int, timeout: float = 300) -> None:
        """Run a pipeline until it has stored `total` events, then stop it cleanly."""
        pipeline = self.start("pipeline", "--config", str(config))
        self.wait_for(
            lambda: self.stored() == total, timeout, f"the pipeline to store {total}", pipeline
        )
        assert pipeline.terminate() == 0, pipeline.output()

    def open_store(self) -> EventStore:
        """The test's store, read-only (no pipeline may hold it)."""
        return EventStore(self.store_path, read_only=True)

    def ledger(self) -> tuple[int, int, dict[str, int]]:
        """Rows of the events ledger, its distinct ids, and the count of each type."""
        with self.open_store() as store:
            ((rows, distinct_ids),) = store.query(
                "SELECT count(*), count(DISTINCT id) FROM events"
            ).rows()
            return rows, distinct_ids, store.counts_by_type()

    def assert_each_event_stored_once(self, stream: Stream) -> None:
        """The ledger has one row per distinct event of the stream; per-type counts are exact."""
        assert self.ledger() == (stream.distinct, stream.distinct, stream.by_type)

    def assert_figures_match_a_clean_run(self, config: Path, stream: Stream) -> None:
        """`slamon compute --store` prints what compute/render_json print for the JSONL itself."""
        window = stream.window
        loaded = load_config(config)
        with store_from_events(stream.path, loaded, Console(quiet=True)) as clean:
            figures = compute(loaded, clean, window, window.end)
        expected = json.loads(render_json(figures, window, window.end))
        assert figures_of(config, ["--store", str(self.store_path)], window) == expected


@pytest.fixture
def faults(
    tmp_path: Path,
    unique_name: str,
    e2e: EndToEnd,
) -> Faults:
    """The toolkit of one fault test."""
    return Faults(tmp_path, unique_name, e2e)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the long variants (marked `soak`) unless `make soak` runs the suite."""
    if SOAK:
        return
    long = [item for item in items if item.get_closest_marker("soak")]
    if long:
        config.hook.pytest_deselected(items=long)
        items[:] = [item for item in items if not item.get_closest_marker("soak")]


@pytest.fixture
def soak() -> bool:
    """True under `make soak`, which runs the long variants of the suite."""
    return SOAK


def one_line_error(output: str) -> str:
    """The single `error:` line of a failed run; fails on a traceback or several errors."""
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]


@pytest.fixture(name="one_line_error")
def one_line_error_fixture() -> Callable[[str], str]:
    """The one_line_error() helper."""
    return one_line_error


class ChangePoster:
    """Posts change records, one per request, to a receiver; remembers which were acknowledged.

    Each record carries its own `time` (in `window`), so the events the receiver makes of it,
    ids included, can be rebuilt here for a clean run.
    """

    def __init__(self, receiver_url: str, service: str, window: Interval) -> None:
        self.url = f"{receiver_url}/webhooks/changes"
        self.service = service
        self.window = window
        self.acknowledged: dict[str, dict[str, str]] = {}
        self.statuses: dict[int, int] = {}
        self._next = 0

    def record(self, n: int) -> dict[str, str]:
        """The n-th record: ten seconds after the previous one, alternately a success."""
        at = datetime.fromtimestamp(self.window.start, UTC) + timedelta(seconds=10 * n)
        return {
            "service": self.service,
            "change_id": f"CHG-{n}",
            "kind": "normal",
            "status": "failed" if n % 4 == 0 else "implemented",
            "start": (at - timedelta(minutes=5)).isoformat(),
            "end": at.isoformat(),
            "time": at.isoformat(),
        }

    def post(self) -> int:
        """Post the next record; return the HTTP status (0 when the connection failed)."""
        record = self.record(self._next)
        self._next += 1
        try:
            response = httpx.post(self.url, json=record, timeout=30)
        except httpx.HTTPError:
            status = 0
        else:
            status = response.status_code
            if status == 202:
                (event_id,) = response.json()["ids"]
                self.acknowledged[event_id] = record
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return status

    def run(self, stop: threading.Event, per_second: float) -> threading.Thread:
        """Post at `per_second` in a thread until `stop` is set."""

        def post_steadily() -> None:
            while not stop.is_set():
                self.post()
                time.sleep(1 / per_second)

        thread = threading.Thread(target=post_steadily, name="change-poster")
        thread.start()
        return thread

    def write_jsonl(self, path: Path) -> Path:
        """The events of the acknowledged records, as the receiver made them, as JSONL."""
        lines = [
            event.to_json()
            for record in self.acknowledged.values()
            for event in record_events(
                RecordKind.CHANGE,
                record,
                services=[self.service],
                received_at=datetime.now(UTC),
                source="webhook/changes",
            )
        ]
        path.write_bytes(b"\n".join(lines) + b"\n")
        return path


def figures_of(config: Path, source: list[str], window: Interval) -> dict[str, Any]:
    """`slamon compute` JSON over `window` from `source` (`--store DB` or `--events FILE`)."""
    start, end = (datetime.fromtimestamp(at, UTC).isoformat() for at in astuple(window))
    done = subprocess.run(
        [
            *(sys.executable, "-m", "slamon", "compute", "--config", str(config), *source),
            *("--from", start, "--to", end, "--now", end),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


@pytest.fixture(name="figures_of")
def figures_of_fixture() -> Callable[[Path, list[str], Interval], dict[str, Any]]:
    """The figures_of() helper."""
    return figures_of


@pytest.fixture(name="change_poster")
def change_poster_fixture() -> type[ChangePoster]:
    """The ChangePoster class."""
    return ChangePoster
