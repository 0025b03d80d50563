"""The Parquet export: by service and day, incremental, read back to the same store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline.parquet import ParquetExporter, parquet_events, store_from_parquet
from pipeline.store import EventStore
from sla.errors import StoreError
from sla.events import PROBE, CloudEvent, new_event

START = datetime(2026, 10, 31, 22, tzinfo=UTC)


def probes(service: str, hours: range) -> list[CloudEvent]:
    """One probe result of `service` per hour in `hours` after START."""
    return [
        new_event(
            PROBE,
            service,
            {"check": "health", "ok": h % 2 == 0, "latency_ms": 1.0},
            source="test/probe",
            time=START + timedelta(hours=h),
        )
        for h in hours
    ]


def exported_rows(directory: Path) -> list[tuple[str, str, str]]:
    """(service, day, id) of every exported row, read with DuckDB as a report would."""
    rows = duckdb.sql(
        f"SELECT service, day::VARCHAR, id FROM read_parquet('{directory}/**/*.parquet', "
        "hive_partitioning = true) ORDER BY id"
    ).fetchall()
    return [(str(s), str(d), str(i)) for s, d, i in rows]


def test_export_is_partitioned_by_service_and_utc_day_and_incremental(tmp_path: Path) -> None:
    store = EventStore(":memory:")
    first = probes("checkout", range(4)) + probes("search's", range(1))
    store.write_batch(first)
    exporter = ParquetExporter(tmp_path / "export")
    assert exporter.export(store, "worker-a") == 5
    days = sorted(
        p.relative_to(tmp_path / "export").parent.as_posix()
        for p in (tmp_path / "export").rglob("*.parquet")
    )
    # 22:00 and 23:00 on 31 October, 00:00 and 01:00 on 1 November (UTC); partition values
    # are percent-encoded, so no service id can name a path outside the export.
    assert sorted(set(days)) == [
        "service=checkout/day=2026-10-31",
        "service=checkout/day=2026-11-01",
        "service=search%27s/day=2026-10-31",
    ]
    assert {row[0] for row in exported_rows(tmp_path / "export")} == {"checkout", "search's"}
    later = probes("checkout", range(4, 6))
    store.write_batch(later)
    assert exporter.export(store, "worker-a") == 2
    assert exporter.export(store, "worker-a") == 0
    ids = [row[2] for row in exported_rows(tmp_path / "export")]
    assert sorted(ids) == sorted(e.id for e in first + later)
    store.close()


def test_rows_stamped_before_the_watermark_are_exported_again(tmp_path: Path) -> None:
    store = EventStore(":memory:")
    store.write_batch(probes("checkout", range(2)))
    exporter = ParquetExporter(tmp_path)
    assert exporter.export(store, "w") == 2
    # A commit whose clock stepped back an hour, behind the watermark.
    store.write_batch(probes("checkout", range(2, 3)))
    store.query(
        "UPDATE events SET ingested_at = ingested_at - INTERVAL 1 HOUR "
        "WHERE time = (SELECT max(time) FROM events)"
    )
    assert exporter.export(store, "w") == 3
    ids = [row[2] for row in exported_rows(tmp_path)]
    assert len(set(ids)) == 3 and len(ids) == 5
    assert store_from_parquet(tmp_path).counts_by_type() == {PROBE: 3}
    store.close()


def test_reading_back_gives_the_events_once_each(tmp_path: Path) -> None:
    events = probes("checkout", range(6)) + probes("search", range(3))
    a, b = EventStore(":memory:"), EventStore(":memory:")
    a.write_batch(events[:5])
    b.write_batch(events[3:])  # two events held by both, as after a crash and a replay
    exporter = ParquetExporter(tmp_path)
    exporter.export(a, "partition-000")
    exporter.export(b, "partition-001")
    read = store_from_parquet(tmp_path)
    assert read.counts_by_type() == {PROBE: len(events)}
    assert read.query("SELECT id FROM events ORDER BY id")["id"].to_list() == sorted(
        e.id for e in events
    )
    ((islands,),) = read.query(
        "SELECT count(*) FROM probe_islands WHERE service = 'checkout'"
    ).rows()
    assert islands == 6  # alternating results: every one is its own island
    only_search = [e for e, _ in parquet_events(tmp_path, ["search"])]
    assert {e.subject for e in only_search if isinstance(e, CloudEvent)} == {"search"}
    read.close()


def test_no_export_and_a_corrupt_watermark_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no Parquet export"):
        store_from_parquet(tmp_path)
    store = EventStore(":memory:")
    store.write_batch(probes("checkout", range(1)))
    (tmp_path / "_watermarks").mkdir()
    (tmp_path / "_watermarks" / "w.json").write_text("{}")
    with pytest.raises(StoreError, match="not a Parquet export watermark"):
        ParquetExporter(tmp_path).export(store, "w")
    store.close()
