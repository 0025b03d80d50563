"""The events ledger as Parquet, partitioned by service and day, for readers on other machines.

Each pipeline worker copies what its stores took in since the last export to a shared
directory laid out as ``service=<id>/day=<YYYY-MM-DD>/*.parquet`` (Hive partitioning, which
DuckDB, polars and Spark read as columns). A file holds whole CloudEvents (`raw`), so a
reader rebuilds a store with the same parser and the same figures as the pipeline.

The export is at least once: a worker that dies between writing files and recording its
watermark writes those events again, and so does one whose clock stepped back. Readers drop
repeated event ids, as the store does.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb

from pipeline.store import EventStore, sql_literal
from sla.errors import InvalidEventError, StoreError
from sla.events import CloudEvent, parse_event

log = logging.getLogger(__name__)

WATERMARKS = "_watermarks"
LOAD_BATCH = 50_000

# The ledger rows stored after the watermark (microseconds of `ingested_at`, the commit's
# transaction time; one writer at a time, so later commits have later times).
EXPORT = """
COPY (
    SELECT id, type, source, subject AS service, time, ingested_at, raw::VARCHAR AS raw,
           strftime(time AT TIME ZONE 'UTC', '%Y-%m-%d') AS day
    FROM events WHERE epoch_us(ingested_at) > {watermark}
) TO '{directory}' (
    FORMAT PARQUET, PARTITION_BY (service, day), FILENAME_PATTERN '{prefix}-{{uuid}}',
    APPEND
)
"""

# Rows at or before the watermark are counted too: more of them than at the last export
# means the clock stepped back, and rows stamped in the past would be skipped for good.
PENDING = """
SELECT count(*) FILTER (WHERE epoch_us(ingested_at) <= $w),
       count(*) FILTER (WHERE epoch_us(ingested_at) > $w),
       coalesce(max(epoch_us(ingested_at)), 0)
FROM events
"""


class ParquetExporter:
    """Copies what one store took in since its last export into the shared directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def export(self, store: EventStore, name: str) -> int:
        """Export the events stored since store `name`'s watermark; return how many."""
        marks = self.directory / WATERMARKS
        marks.mkdir(parents=True, exist_ok=True)
        mark_file = marks / f"{name}.json"
        watermark, rows_up_to = _read_watermark(mark_file)
        before, after, newest = store.query(PENDING, {"w": watermark}).row(0)
        total = int(before + after)
        if before != rows_up_to:
            log.warning(
                "%s: %d rows stored at or before the export watermark, not %d (the clock "
                "stepped back?): exporting all again, readers drop the repeats",
                name,
                before,
                rows_up_to,
            )
            watermark, after = -1, total
        if not after:
            return 0
        prefix = f"{sql_literal(name)}-{uuid.uuid4().hex[:8]}"
        store.query(
            EXPORT.format(watermark=watermark, directory=sql_literal(self.directory), prefix=prefix)
        )
        _write_watermark(mark_file, int(newest), total)
        return int(after)


def _read_watermark(path: Path) -> tuple[int, int]:
    """The newest `ingested_at` exported and how many rows were stored up to it."""
    try:
        mark = json.loads(path.read_text(encoding="utf-8"))
        return int(mark["ingested_at_us"]), int(mark["rows_up_to"])
    except FileNotFoundError:
        return 0, 0
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{path}: not a Parquet export watermark ({exc})") from exc


def _write_watermark(path: Path, ingested_at_us: int, rows_up_to: int) -> None:
    """Replace the watermark atomically, so a crash leaves the old or the new one."""
    temporary = path.with_suffix(".tmp")
    mark = {"ingested_at_us": ingested_at_us, "rows_up_to": rows_up_to}
    temporary.write_text(json.dumps(mark), encoding="utf-8")
    os.replace(temporary, path)


def parquet_events(
    directory: Path, services: list[str] | None = None
) -> Iterator[tuple[CloudEvent | InvalidEventError, bytes]]:
    """Every event exported under `directory` (of `services` only, when given), parsed."""
    files = str(directory / "**" / "*.parquet")
    if not any(directory.glob("service=*/day=*/*.parquet")):
        raise StoreError(f"{directory}: no Parquet export (service=*/day=*/*.parquet) there")
    query = f"SELECT raw FROM read_parquet('{sql_literal(files)}', hive_partitioning = true)"
    params: dict[str, object] = {}
    if services is not None:
        # The service is a partition column: DuckDB reads only those directories.
        query += " WHERE service IN (SELECT unnest($services))"
        params["services"] = services
    with duckdb.connect() as connection:
        try:
            reader = connection.sql(query, params=params).to_arrow_reader(LOAD_BATCH)
            for batch in reader or ():
                for raw in batch.column(0).to_pylist():
                    body = str(raw).encode()
                    try:
                        yield parse_event(body), body
                    except InvalidEventError as exc:
                        yield exc, body
        except duckdb.Error as exc:
            raise StoreError(f"cannot read the Parquet export {directory}: {exc}") from exc


def store_from_parquet(directory: Path, services: list[str] | None = None) -> EventStore:
    """An in-memory store of the exported events, each once, as the pipeline stored them."""
    store = EventStore(":memory:")
    events: list[CloudEvent] = []
    raw: list[bytes] = []
    for event, body in parquet_events(directory, services):
        if isinstance(event, InvalidEventError):
            # The pipeline stored only valid events: a file that no longer parses was altered.
            raise StoreError(f"{directory}: an exported event does not parse: {event}")
        events.append(event)
        raw.append(body)
        if len(events) == LOAD_BATCH:
            store.write_batch(events, raw=raw)
            events, raw = [], []
    store.write_batch(events, raw=raw)
    return store
