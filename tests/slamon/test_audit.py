"""The audit trail: each pack's provenance (config hash, event watermark) and
`slamon compute --explain`, the stored events behind a service's figures."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.store import EventStore
from sla.events import MAINTENANCE, OUTAGE, PROBE, STATUS, TICKET, CloudEvent, new_event
from slamon.cli import main
from slamon.configfile import load_config
from slamon.report import config_sha256, read_watermark, write_report
from slamon.report.provenance import consistently

MONTH = "2026-10"
NOW = int(datetime(2026, 11, 21, 10, tzinfo=UTC).timestamp())
OCTOBER_END = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
CONFIG: dict[str, Any] = {
    "services": [
        {
            "id": "shop",
            "name": "Shop",
            "objectives": {"availability": 99.9},
            "tickets": {"goals": {"P1": {"response": "15m", "resolution": "4h"}}},
        }
    ]
}


def event(
    type_: str, data: dict[str, Any], time: str, id_: str, source: str = "test"
) -> CloudEvent:
    return new_event(type_, "shop", data, source=source, time=datetime.fromisoformat(time), id=id_)


def probe(id_: str, time: str, ok: bool) -> CloudEvent:
    data = {"check": "home", "ok": ok, "latency_ms": 10.0}
    return event(PROBE, data, time, id_, source="probe/home")


def ticket(id_: str, time: str, status: str, responded: bool = False) -> CloudEvent:
    data = {
        "ticket_id": "T1",
        "kind": "incident",
        "priority": "P1",
        "status": status,
        "responded": responded,
    }
    return event(TICKET, data, time, id_, source="desk")


def october() -> list[CloudEvent]:
    """A probe outage, a monitor's down and up, a reported outage, maintenance, a ticket."""
    failing = [probe(f"p-{m}", f"2026-10-03T10:0{m}:00+00:00", False) for m in range(4)]
    outage = {"outage_id": "INC-9", "start": "2026-10-15T09:00:00Z", "impact": "full"}
    ended = {**outage, "end": "2026-10-15T10:00:00Z"}
    window = {
        "window_id": "MW-1",
        "start": "2026-10-20T01:00:00Z",
        "end": "2026-10-20T03:00:00Z",
        "reason": "database upgrade",
    }
    return [
        probe("p-before", "2026-10-03T09:59:00+00:00", True),
        *failing,
        probe("p-back", "2026-10-03T10:04:00+00:00", True),
        event(STATUS, {"state": "down"}, "2026-10-12T08:00:00+00:00", "s-1", "alertmanager"),
        event(STATUS, {"state": "up"}, "2026-10-12T08:10:00+00:00", "s-other", "statuspage"),
        event(STATUS, {"state": "up"}, "2026-10-12T08:30:00+00:00", "s-2", "alertmanager"),
        event(OUTAGE, outage, "2026-10-15T09:00:00+00:00", "o-1", "itsm"),
        event(OUTAGE, ended, "2026-10-15T10:00:00+00:00", "o-2", "itsm"),
        event(MAINTENANCE, window, "2026-10-18T12:00:00+00:00", "m-1", "cab"),
        ticket("t-1", "2026-10-05T10:00:00+00:00", "new"),
        ticket("t-2", "2026-10-05T10:10:00+00:00", "in_progress", responded=True),
        ticket("t-3", "2026-10-05T12:00:00+00:00", "resolved", responded=True),
    ]


def november() -> list[CloudEvent]:
    return [probe("p-nov", "2026-11-02T08:00:00+00:00", True)]


@pytest.fixture(name="config_path")
def config_path_fixture(tmp_path: Path) -> Path:
    path = tmp_path / "slamon.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return path


@pytest.fixture(name="store_path")
def store_path_fixture(tmp_path: Path) -> Path:
    path = tmp_path / "events.duckdb"
    with EventStore(path) as store:
        store.write_batch(october())
        store.write_batch(november())
    return path


@dataclass(frozen=True)
class Run:
    """What one `slamon` command line did."""

    code: int
    stdout: str
    stderr: str


@pytest.fixture(name="slamon")
def slamon_fixture(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Run]:
    """Run the `slamon` command line in this process, through its entry point."""
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Run:
        monkeypatch.setattr(sys, "argv", ["slamon", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out = capsys.readouterr()
        return Run(code, out.out, out.err)

    return run


# --- provenance ---


def test_the_config_hash_ignores_layout_but_not_content(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(yaml.safe_dump(CONFIG, default_flow_style=True))
    commented = tmp_path / "commented.yaml"
    commented.write_text("# the shop\n" + yaml.safe_dump(CONFIG, indent=4, sort_keys=True))
    assert config_sha256(load_config(flow)) == config_sha256(load_config(commented))
    changed = tmp_path / "changed.yaml"
    services = [{**CONFIG["services"][0], "objectives": {"availability": 99.5}}]
    changed.write_text(yaml.safe_dump({"services": services}))
    assert config_sha256(load_config(changed)) != config_sha256(load_config(flow))


class _Footer(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attributes: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "footer":
            self.attributes = dict(attrs)


def test_every_pack_file_names_the_config_and_the_events_it_came_from(
    config_path: Path, store_path: Path, tmp_path: Path
) -> None:
    config = load_config(config_path)
    with EventStore(store_path, read_only=True) as store:
        write_report(config, store, month=MONTH, out_dir=tmp_path / "out", now=NOW, pdf=False)
        stored = store.query(
            "SELECT count(*) AS n, max(ingested_at) AS latest FROM events WHERE time < $end",
            {"end": datetime.fromtimestamp(OCTOBER_END + 1, UTC)},
        ).row(0, named=True)
    pack = tmp_path / "out" / f"{MONTH}-shop"
    provenance = json.loads((pack / "provenance.json").read_text())
    # The November probe cannot change October's figures: it is not in the watermark.
    assert provenance == {
        "config_sha256": config_sha256(config),
        "watermark": {
            "through": "2026-11-01T00:00:00Z",
            "events": len(october()),
            "max_ingested_at": stored["latest"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "max_event_time": "2026-10-18T12:00:00.000000Z",
        },
        "slamon_version": provenance["slamon_version"],
        "now": "2026-11-21T10:00:00Z",
        "revision": 0,
        "restates": None,
    }
    assert stored["n"] == len(october())
    assert provenance["slamon_version"] not in ("", "unknown")
    for table in pack.glob("*.csv"):
        document = json.loads(table.with_suffix(".json").read_text())
        assert document["provenance"] == {
            "config_sha256": provenance["config_sha256"],
            "watermark": provenance["watermark"],
        }, table.name
    footer = _Footer()
    footer.feed((pack / "review.html").read_text())
    watermark = provenance["watermark"]
    assert footer.attributes["data-config-sha256"] == provenance["config_sha256"]
    assert footer.attributes["data-events"] == str(watermark["events"])
    assert footer.attributes["data-max-ingested-at"] == watermark["max_ingested_at"]
    assert footer.attributes["data-max-event-time"] == watermark["max_event_time"]


def test_live_events_leave_a_closed_months_watermark_alone(store_path: Path) -> None:
    with EventStore(store_path) as store:
        before = read_watermark(store, OCTOBER_END)
        store.write_batch([probe("p-live", "2026-11-21T09:00:00+00:00", True)])
        assert read_watermark(store, OCTOBER_END) == before
        store.write_batch([probe("p-late", "2026-10-31T23:59:59+00:00", True)])
        late = read_watermark(store, OCTOBER_END)
    assert late.events == before.events + 1
    assert late.max_event_time == "2026-10-31T23:59:59.000000Z"
    assert late.max_ingested_at is not None and before.max_ingested_at is not None
    assert late.max_ingested_at > before.max_ingested_at


def test_figures_are_computed_again_when_a_batch_lands_meanwhile(store_path: Path) -> None:
    runs: list[int] = []
    with EventStore(store_path) as store:

        def work() -> int:
            runs.append(len(runs))
            if len(runs) == 1:  # the ingest thread stores a late event mid-computation
                store.write_batch([probe("p-mid", "2026-10-30T12:00:00+00:00", True)])
            return len(runs)

        result, watermark = consistently(store, OCTOBER_END, work)
    assert (result, runs) == (2, [0, 1])
    assert watermark.events == len(october()) + 1


# --- slamon compute --explain ---


def explain_args(config: Path, store: Path, *more: str) -> list[str]:
    """`slamon compute` over October as of 21 November, with `more` options."""
    window = ["--from", "2026-10-01", "--to", "2026-11-01", "--now", "2026-11-21T10:00:00Z"]
    return ["compute", "--config", str(config), "--store", str(store), *window, *more]


def test_explain_lists_the_events_behind_each_outage(
    slamon: Callable[..., Run], config_path: Path, store_path: Path
) -> None:
    result = slamon(*explain_args(config_path, store_path, "--explain", "shop:availability"))
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert "tickets" not in document
    availability = document["availability"]
    computed = json.loads(slamon(*explain_args(config_path, store_path)).stdout)
    expected = computed["services"]["shop"]["availability"]
    # The same outages as `slamon compute`, each with its evidence.
    assert [{k: v for k, v in o.items() if k != "evidence"} for o in availability["outages"]] == (
        expected["outage_list"]
    )
    assert availability["downtime_seconds"] == expected["downtime_seconds"]
    by_source = {o["source"]: o["evidence"] for o in availability["outages"]}
    (probes,) = by_source["probes"]
    assert probes["check"] == "home" and probes["failed_results"] == 4
    assert probes["first_failed"] == {
        "id": "p-0",
        "source": "probe/home",
        "time": "2026-10-03T10:00:00.000000Z",
    }
    assert probes["last_failed"]["id"] == "p-3"
    assert probes["recovered_by"]["id"] == "p-back"
    (status,) = by_source["status"]
    # Only the monitor that went down, not the status page that stayed up meanwhile.
    assert status["monitor"] == "alertmanager"
    assert [(e["id"], e["state"]) for e in status["events"]] == [("s-1", "down"), ("s-2", "up")]
    (reported,) = by_source["outage"]
    assert [e["id"] for e in reported["events"]] == ["o-1", "o-2"]
    assert reported["events"][-1]["end"] == "2026-10-15T10:00:00.000000Z"
    (window,) = availability["maintenance"]
    assert window["window_id"] == "MW-1" and window["event"]["id"] == "m-1"
    assert window["excluded_seconds"] == window["excluded_service_seconds"] == 7200


def test_explain_lists_the_events_of_each_ticket_clock(
    slamon: Callable[..., Run], config_path: Path, store_path: Path
) -> None:
    result = slamon(*explain_args(config_path, store_path, "--explain", "shop"))
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert "availability" in document
    (t1,) = document["tickets"]
    assert t1["ticket_id"] == "T1"
    assert {(c["clock"], c["status"]) for c in t1["clocks"]} == {
        ("response", "met"),
        ("resolution", "met"),
    }
    assert [(e["id"], e["status"], e["source"]) for e in t1["events"]] == [
        ("t-1", "new", "desk"),
        ("t-2", "in_progress", "desk"),
        ("t-3", "resolved", "desk"),
    ]


def test_explain_prints_tables(
    slamon: Callable[..., Run], config_path: Path, store_path: Path
) -> None:
    args = explain_args(config_path, store_path, "--explain", "shop", "--format", "table")
    result = slamon(*args)
    assert result.code == 0, result.stderr
    for text in ("Outages of shop", "p-0", "p-back", "s-2", "o-2", "MW-1", "m-1", "t-3"):
        assert text in result.stdout, text


@pytest.mark.parametrize(
    ("more", "message"),
    [
        (("--explain", "nope"), "error: --explain 'nope': no service 'nope' (known: shop)"),
        (
            ("--explain", "shop:credit"),
            "error: --explain 'shop:credit': no figure 'credit' to explain",
        ),
        (
            ("--explain", "shop", "--format", "csv"),
            "error: --explain prints --format json or table, not csv",
        ),
    ],
)
def test_explain_errors_are_one_line(
    slamon: Callable[..., Run],
    config_path: Path,
    store_path: Path,
    more: tuple[str, ...],
    message: str,
) -> None:
    result = slamon(*explain_args(config_path, store_path, *more))
    assert result.code == 1
    assert result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1
