"""`slamon compute`: hand-computed figures, both sources agree, output is reproducible."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from rich.console import Console

from pipeline.parquet import ParquetExporter, s3_location
from pipeline.store import EventStore
from sla.config import SlamonConfig
from sla.events import (
    CHANGE,
    CONTINUITY,
    MAINTENANCE,
    OUTAGE,
    TICKET,
    new_event,
    parse_event,
)
from sla.intervals import Interval
from slamon.compute import figures_in_batches, render_table, summary_row, write_json

if TYPE_CHECKING:
    from conftest import S3Store

CONFIG = {
    "transport": {"kind": "embedded"},
    "services": [
        {
            "id": "shop",
            "name": "Shop",
            "objectives": {"availability": 99.9},
            "credits": [{"below": 99.9, "credit": 10}, {"below": 95.0, "credit": 30}],
            "tickets": {"goals": {"P1": {"response": "15m", "resolution": "4h"}}},
        }
    ],
}
WINDOW = ("--from", "2026-10-01", "--to", "2026-10-02", "--now", "2026-10-05T00:00:00Z")


def t(hhmm: str) -> str:
    return f"2026-10-01T{hhmm}:00Z"


def scenario(service: str = "shop") -> list[bytes]:
    """One day of the shop: maintenance, an outage, one P1 ticket, one change."""
    window = {"window_id": "m1", "start": t("02:00"), "end": t("03:00"), "reason": "patching"}
    outage = {"outage_id": "INC-7", "start": t("10:00"), "end": t("10:30"), "ref": "INC-7"}
    ticket = {"ticket_id": "T1", "kind": "incident", "priority": "P1"}
    change = {"change_id": "CHG-1", "kind": "normal", "start": t("11:00"), "end": t("12:00")}
    events = [
        (MAINTENANCE, window, "01:00"),
        (OUTAGE, {**outage, "end": None}, "10:00"),
        (OUTAGE, outage, "10:30"),
        (TICKET, {**ticket, "status": "new"}, "09:00"),
        (TICKET, {**ticket, "status": "in_progress", "responded": True}, "09:10"),
        (TICKET, {**ticket, "status": "resolved"}, "14:00"),
        (CHANGE, {**change, "status": "implemented"}, "12:00"),
    ]
    return [
        new_event(type_, service, data, source="test", time=at, id=f"{service}-e{n}").to_json()
        for n, (type_, data, at) in enumerate((ty, d, t(h)) for ty, d, h in events)
    ]


def slamon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slamon", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    config = tmp_path / "slamon.yaml"
    store = tmp_path / "store.duckdb"
    config.write_text(yaml.safe_dump({**CONFIG, "store": {"path": str(store)}}))
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(scenario()) + b"\n")
    return {"config": config, "events": events, "store": store}


def compute(files: dict[str, Path], *source: str, fmt: str = "json") -> str:
    result = slamon("compute", "-c", str(files["config"]), *source, *WINDOW, "--format", fmt)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_figures_equal_the_hand_computation(files: dict[str, Path]) -> None:
    document: dict[str, Any] = json.loads(compute(files, "--events", str(files["events"])))
    assert document["window"] == {"from": "2026-10-01T00:00:00Z", "to": "2026-10-02T00:00:00Z"}
    assert document["at"] == "2026-10-02T00:00:00Z"  # a past window is judged at its end
    shop = document["services"]["shop"]

    # Agreed service time: a 24x7 day (86,400 s) minus 1 h of maintenance = 82,800 s.
    # Downtime: the 10:00-10:30 outage, 1,800 s. Availability (82,800 - 1,800) / 82,800.
    availability = shop["availability"]
    assert availability["agreed_seconds"] == 82_800
    assert availability["downtime_seconds"] == 1_800
    assert availability["ratio"] == pytest.approx(81_000 / 82_800, abs=1e-15)
    assert availability["outages"] == 1
    assert availability["mtrs_seconds"] == 1_800  # DT / N
    assert availability["mtbf_seconds"] == 81_000  # (AST - DT) / N
    (outage,) = availability["outage_list"]
    assert (outage["start"], outage["end"], outage["ref"]) == (t("10:00"), t("10:30"), "INC-7")

    # Budget: 0.1 % of 82,800 s = 82.8 s; 1,800 s spent leaves 1 - 1800/82.8.
    budget = shop["error_budget"]
    assert budget["budget_seconds"] == pytest.approx(82.8)
    assert budget["remaining_ratio"] == pytest.approx(1 - 1_800 / 82.8)
    # 97.83 % is below 99.9 but not below 95: the 99.9 band's 10 %.
    assert shop["credit"] == {"percent": 10.0, "band": {"below": 99.9, "credit": 10.0}}

    # P1: responded after 10 min (goal 15 min: met); resolved after 5 h (goal 4 h: breached,
    # the deadline was 13:00).
    clocks = {c["clock"]: c for c in shop["tickets"]}
    assert (clocks["response"]["elapsed_seconds"], clocks["response"]["status"]) == (600, "met")
    resolution = clocks["resolution"]
    assert (resolution["elapsed_seconds"], resolution["status"]) == (18_000, "breached")
    assert resolution["breach_at"] == t("13:00")
    compliance = {(r["clock"], r["priority"]): r["ratio"] for r in shop["ticket_compliance"]}
    assert compliance == {("response", "P1"): 1.0, ("resolution", "P1"): 0.0}

    assert shop["changes"]["success_ratio"] == 1.0 and shop["changes"]["total"] == 1


def test_store_and_events_file_give_byte_identical_output(files: dict[str, Path]) -> None:
    ingest = slamon("ingest", "-c", str(files["config"]), str(files["events"]))
    assert ingest.returncode == 0, ingest.stderr
    from_events = compute(files, "--events", str(files["events"]))
    assert compute(files, "--store", str(files["store"])) == from_events
    assert compute(files, "--events", str(files["events"])) == from_events
    csv_lines = compute(files, "--store", str(files["store"]), fmt="csv").splitlines()
    assert csv_lines[0].startswith("service,agreed_seconds,downtime_seconds,availability_ratio")
    assert csv_lines[1].startswith("shop,82800,1800,0.9782608695652174,")
    # Piped, as here, the table keeps its width: rich used to cut it at 80 columns.
    table = compute(files, "--store", str(files["store"]), fmt="table")
    assert "shop" in table and "continuity" in table and "…" not in table


def test_compute_reads_the_parquet_export(files: dict[str, Path], tmp_path: Path) -> None:
    ingest = slamon("ingest", "-c", str(files["config"]), str(files["events"]))
    assert ingest.returncode == 0, ingest.stderr
    with EventStore(files["store"], read_only=True) as store:
        assert ParquetExporter(tmp_path / "parquet").export(store, "shop") > 0
    from_events = compute(files, "--events", str(files["events"]))
    assert compute(files, "--parquet", str(tmp_path / "parquet")) == from_events


def test_bad_invocations_are_one_line_errors(files: dict[str, Path], tmp_path: Path) -> None:
    config = str(files["config"])
    both = slamon("compute", "-c", config, "--events", "x", "--store", "y", *WINDOW)
    assert both.stderr.strip() == (
        "error: give exactly one of --events FILE.jsonl, --store DB or --parquet DIR|s3://..."
    )
    naive = slamon(
        "compute", "-c", config, "--store", "y", "--from", "2026-10-01T00:00", "--to", "2026-10-02"
    )
    assert (
        naive.stderr.strip()
        == "error: --from '2026-10-01T00:00': add a UTC offset, e.g. 2026-10-01T00:00Z"
    )
    missing = slamon("compute", "-c", config, "--store", str(tmp_path / "none.duckdb"), *WINDOW)
    assert missing.stderr.strip() == f"error: {tmp_path / 'none.duckdb'}: no event store there"
    assert {both.returncode, naive.returncode, missing.returncode} == {1}


def test_report_pack_figures_equal_compute(files: dict[str, Path], tmp_path: Path) -> None:
    ingest = slamon("ingest", "-c", str(files["config"]), str(files["events"]))
    assert ingest.returncode == 0, ingest.stderr
    out = tmp_path / "packs"
    result = slamon(
        "report", "-c", str(files["config"]), "--month", "2026-10", "--out", str(out), "--no-pdf"
    )
    assert result.returncode == 0, result.stderr
    pack = out / "2026-10-shop"
    assert (pack / "review.html").exists() and not (pack / "review.pdf").exists()
    figures = json.loads((pack / "figures-shop.json").read_text())
    month = slamon(
        "compute", "-c", str(files["config"]), "--store", str(files["store"]),
        "--from", "2026-10-01", "--to", "2026-11-01", "--now", "2026-11-05T00:00:00Z",
    )  # fmt: skip
    assert figures == json.loads(month.stdout)  # the same engine, the same document
    unknown = slamon("report", "-c", str(files["config"]), "--service", "nope", "--out", str(out))
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: ")


def test_summaries_count_settled_tickets_and_equal_the_listed_figures(tmp_path: Path) -> None:
    # T1 of the scenario is resolved at 14:00: settled once a computation on a writable store
    # has kept its clocks. T2, opened at 23:50 and not yet answered at the window's end
    # (10 min of its 15), keeps running.
    config = SlamonConfig.model_validate(CONFIG)
    window, now = Interval(1_790_812_800, 1_790_899_200), 1_791_158_400
    open_ticket = {"ticket_id": "T2", "kind": "incident", "priority": "P1", "status": "new"}
    late = new_event(TICKET, "shop", open_ticket, source="test", time=t("23:50"), id="shop-t2")
    path = tmp_path / "store.duckdb"
    with EventStore(path) as store:
        store.write_batch([parse_event(raw) for raw in scenario()] + [late])
        list(figures_in_batches(config, store, window, now))
    with EventStore(path, read_only=True) as store:
        (listed,) = figures_in_batches(config, store, window, now)
        (counted,) = figures_in_batches(config, store, window, now, listed=False)
    assert summary_row(counted) == summary_row(listed)
    assert summary_row(counted)["tickets_met"] == 1  # T1's response
    assert summary_row(counted)["tickets_breached"] == 1  # T1's resolution
    assert summary_row(counted)["tickets_in_flight"] == 2  # T2's clocks
    assert summary_row(counted)["changes"] == 1
    # T1's clocks came counted from the store, T2's running ones are recomputed and listed.
    assert {(c.ticket_id, c.clock) for c in listed.tickets.clocks} == {
        ("T1", "response"), ("T1", "resolution"), ("T2", "response"), ("T2", "resolution")
    }  # fmt: skip
    assert {c.ticket_id for c in counted.tickets.clocks} == {"T2"}
    assert counted.tickets.at_risk == listed.tickets.at_risk


def test_the_table_says_when_a_continuity_test_was_not_judged() -> None:
    # No RTO or RPO objective: the test has nothing to be judged against, so it neither
    # passed nor failed.
    config = SlamonConfig.model_validate(CONFIG)
    window, now = Interval(1_790_812_800, 1_790_899_200), 1_791_158_400
    test = {
        "test_id": "DR-1",
        "scenario": "restore",
        "invoked_at": t("08:00"),
        "restored_at": t("09:00"),
        "data_restored_to": t("07:30"),
        "outcome": "passed",
    }
    with EventStore(":memory:") as store:
        store.write_batch([new_event(CONTINUITY, "shop", test, source="test", time=t("09:00"))])
        (figures,) = figures_in_batches(config, store, window, now)
    assert figures.continuity.last_test is not None
    assert figures.continuity.last_test.passed is None
    console = Console(width=200, record=True)
    console.print(render_table([figures], window))
    (row,) = [line for line in console.export_text().splitlines() if "shop" in line]
    assert row.rstrip(" │").endswith("not judged")


@pytest.mark.parametrize("services", [0, 1, 3])
def test_figures_are_written_as_they_come_in_the_bytes_of_one_json_document(
    services: int,
) -> None:
    # Three copies of the shop; batches of two services, so the last batch is a short one.
    shops = [{**CONFIG["services"][0], "id": f"shop-{n}"} for n in range(services)]
    config = SlamonConfig.model_validate({**CONFIG, "services": shops})
    window, now = Interval(1_790_812_800, 1_790_899_200), 1_791_158_400
    with EventStore(":memory:") as store:
        store.write_batch([parse_event(raw) for s in shops for raw in scenario(s["id"])])
        figures = list(figures_in_batches(config, store, window, now, batch_services=2))
    assert [f.service for f in figures] == [s["id"] for s in shops]
    assert all(f.availability and f.availability.downtime_seconds == 1_800 for f in figures)
    out = io.StringIO()
    write_json(iter(figures), window, window.end, out)
    document = {
        "window": {"from": "2026-10-01T00:00:00Z", "to": "2026-10-02T00:00:00Z"},
        "at": "2026-10-02T00:00:00Z",
        "services": {f.service: f.to_dict() for f in figures},
    }
    assert out.getvalue() == json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_compute_reads_the_parquet_export_on_s3(
    files: dict[str, Path], tmp_path: Path, s3_store: S3Store, bucket: str
) -> None:
    # The key id from a file next to the config (mode 600), the secret from the environment.
    (tmp_path / "s3-key-id").write_text(s3_store.access_key_id + "\n")
    (tmp_path / "s3-key-id").chmod(0o600)
    url = f"s3://{bucket}/slamon"
    s3 = {
        "endpoint": s3_store.endpoint,
        "access_key_id_file": "s3-key-id",
        "secret_access_key_env": "SLAMON_TEST_S3_SECRET",
    }
    config = {**CONFIG, "store": {"path": str(files["store"]), "parquet": {"path": url, "s3": s3}}}
    files["config"].write_text(yaml.safe_dump(config))
    secret = {"SLAMON_TEST_S3_SECRET": s3_store.secret_access_key}
    # An embedded ingest stores the events, then exports them as the pipeline does on stop.
    ingest = slamon("ingest", "-c", str(files["config"]), str(files["events"]), env=secret)
    assert ingest.returncode == 0, ingest.stderr
    target = s3_location(
        url,
        access_key_id=s3_store.access_key_id,
        secret_access_key=s3_store.secret_access_key,
        endpoint=s3_store.endpoint,
    )
    with EventStore(files["store"], read_only=True) as store:
        assert ParquetExporter(target).export(store, "store") == 0  # nothing left to export
    from_s3 = slamon("compute", "-c", str(files["config"]), "--parquet", url, *WINDOW, env=secret)
    assert from_s3.returncode == 0, from_s3.stderr
    assert from_s3.stdout == compute(files, "--events", str(files["events"]))

    (tmp_path / "s3-key-id").chmod(0o644)
    exposed = slamon("compute", "-c", str(files["config"]), "--parquet", url, *WINDOW, env=secret)
    assert exposed.stderr.strip().startswith("error: store.parquet.s3.access_key_id: secret file ")
    assert "accessible by group or others" in exposed.stderr
    assert s3_store.secret_access_key not in exposed.stderr
