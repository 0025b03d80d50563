"""The Parquet export: by service and day, incremental, read back to the same store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow.fs as pafs
import pytest

from pipeline.parquet import (
    ParquetExporter,
    S3Location,
    parquet_events,
    s3_location,
    store_from_parquet,
)
from pipeline.store import EventStore
from sla.errors import StoreError
from sla.events import PROBE, CloudEvent, new_event

if TYPE_CHECKING:
    from conftest import S3Store

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


def on_s3(s3_store: S3Store, url: str, secret: str | None = None) -> S3Location:
    return s3_location(
        url,
        access_key_id=s3_store.access_key_id,
        secret_access_key=secret or s3_store.secret_access_key,
        endpoint=s3_store.endpoint,
    )


def objects(target: S3Location) -> list[str]:
    """The keys under the bucket, relative to the target's prefix."""
    bucket = target.root.split("/")[0]
    found = target.filesystem.get_file_info(pafs.FileSelector(bucket, recursive=True))
    return sorted(
        f.path.removeprefix(target.root + "/") for f in found if f.type == pafs.FileType.File
    )


def test_export_to_s3_is_incremental_and_reads_back_the_same_events(
    s3_store: S3Store, bucket: str
) -> None:
    target = on_s3(s3_store, f"s3://{bucket}/slamon/export")
    store = EventStore(":memory:")
    # A service id with a slash, a percent sign and a quote stays inside its partition.
    first = probes("checkout", range(3)) + probes("search's/1%", range(1))
    store.write_batch(first)
    exporter = ParquetExporter(target)
    assert exporter.export(store, "worker-a") == 4
    keys = objects(target)
    assert {k.rsplit("/", 1)[0] for k in keys if not k.startswith("_")} == {
        "service=checkout/day=2026-10-31",
        "service=checkout/day=2026-11-01",
        "service=search%27s%2F1%25/day=2026-10-31",
    }
    assert "_watermarks/worker-a.json" in keys
    later = probes("checkout", range(3, 5))
    store.write_batch(later)
    assert exporter.export(store, "worker-a") == 2
    assert exporter.export(store, "worker-a") == 0
    read = [event for event, _ in parquet_events(target)]
    assert sorted(e.id for e in read if isinstance(e, CloudEvent)) == sorted(
        e.id for e in first + later
    )
    with store_from_parquet(target, ["search's/1%"]) as one:
        assert one.counts_by_type() == {PROBE: 1}
    store.close()


def test_wrong_keys_are_refused_and_nothing_is_written(s3_store: S3Store, bucket: str) -> None:
    store = EventStore(":memory:")
    store.write_batch(probes("checkout", range(2)))
    wrong = on_s3(s3_store, f"s3://{bucket}/export", secret="not-the-secret")
    with pytest.raises(StoreError, match=f"s3://{bucket}/export") as raised:
        ParquetExporter(wrong).export(store, "w")
    assert "ACCESS_DENIED" in str(raised.value)
    assert objects(on_s3(s3_store, f"s3://{bucket}/export")) == []
    # With the right keys the same events go out, none lost to the failed attempt.
    assert ParquetExporter(on_s3(s3_store, f"s3://{bucket}/export")).export(store, "w") == 2


def test_reading_an_empty_prefix_says_there_is_no_export(s3_store: S3Store, bucket: str) -> None:
    with pytest.raises(StoreError, match="no Parquet export"):
        list(parquet_events(on_s3(s3_store, f"s3://{bucket}/nothing")))


def test_a_missing_bucket_is_one_clear_error_and_no_watermark(s3_store: S3Store) -> None:
    store = EventStore(":memory:")
    store.write_batch(probes("checkout", range(2)))
    target = on_s3(s3_store, f"s3://slamon-missing-{uuid.uuid4().hex[:8]}/export")
    with pytest.raises(StoreError, match=f"cannot write the Parquet export to {target.url}"):
        ParquetExporter(target).export(store, "w")
