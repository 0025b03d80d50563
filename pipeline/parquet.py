"""The events ledger as Parquet, partitioned by service and day, for readers on other machines.

Each pipeline worker copies what its stores took in since the last export to a shared
directory, or a bucket of an S3-compatible store, laid out as
``service=<id>/day=<YYYY-MM-DD>/*.parquet`` (Hive partitioning, which DuckDB, polars and
Spark read as columns). A file holds whole CloudEvents (`raw`), so a reader rebuilds a store
with the same parser and the same figures as the pipeline. DuckDB writes the files (into a
local staging directory first, for S3) and reads them back (through a pyarrow dataset, for
S3: DuckDB's own S3 support is an extension it would download at run time).

The export is at least once: a worker that dies between writing files and recording its
watermark writes those events again, and so does one whose clock stepped back. Readers drop
repeated event ids, as the store does.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow.dataset as ds
import pyarrow.fs as pafs

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


@dataclass(frozen=True)
class S3Location:
    """A bucket and key prefix on an S3-compatible store, with the file system that reaches it."""

    url: str
    filesystem: pafs.FileSystem

    @property
    def root(self) -> str:
        """``bucket/prefix`` as pyarrow's S3 file system names it."""
        return self.url.removeprefix("s3://").rstrip("/")

    def path(self, *parts: str) -> str:
        """The key of `parts` under the prefix."""
        return "/".join((self.root, *parts))


ExportTarget = Path | S3Location
"""Where the export goes: a directory, or a place on an S3-compatible store."""


def s3_location(
    url: str,
    *,
    access_key_id: str,
    secret_access_key: str,
    endpoint: str | None = None,
    region: str = "us-east-1",
) -> S3Location:
    """`url` (``s3://bucket/prefix``) on AWS, or on the store at `endpoint`."""
    host = None if endpoint is None else endpoint.rstrip("/").partition("://")[2]
    scheme: Literal["http", "https"] = "http" if (endpoint or "").startswith("http:") else "https"
    filesystem = pafs.S3FileSystem(
        access_key=access_key_id,
        secret_key=secret_access_key,
        region=region,
        endpoint_override=host,
        scheme=scheme,
    )
    return S3Location(url, filesystem)


class ParquetExporter:
    """Copies what one store took in since its last export into the shared directory or bucket."""

    def __init__(self, target: ExportTarget) -> None:
        self.target = target

    def export(self, store: EventStore, name: str) -> int:
        """Export the events stored since store `name`'s watermark; return how many."""
        watermark, rows_up_to = _read_watermark(self.target, name)
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
        if isinstance(self.target, Path):
            _copy(store, watermark, self.target, prefix)
        else:
            with tempfile.TemporaryDirectory(prefix="slamon-export-") as staging:
                _copy(store, watermark, Path(staging), prefix)
                _upload(Path(staging), self.target)
        _write_watermark(self.target, name, int(newest), total)
        return int(after)


def _copy(store: EventStore, watermark: int, directory: Path, prefix: str) -> None:
    """The rows stored after `watermark`, as Parquet files under `directory`."""
    store.query(EXPORT.format(watermark=watermark, directory=sql_literal(directory), prefix=prefix))


def _upload(staging: Path, target: S3Location) -> None:
    """The files under `staging` to the same keys under `target`."""
    try:
        pafs.copy_files(
            str(staging),
            target.root,
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=target.filesystem,
        )
    except OSError as exc:
        raise StoreError(f"cannot write the Parquet export to {target.url}: {exc}") from exc


def _read_watermark(target: ExportTarget, name: str) -> tuple[int, int]:
    """The newest `ingested_at` exported from store `name` and how many rows it had up to it."""
    where = _watermark_path(target, name)
    try:
        if isinstance(target, Path):
            text = Path(where).read_text(encoding="utf-8")
        else:
            with target.filesystem.open_input_stream(where) as stream:
                text = stream.read().decode()
    except FileNotFoundError:
        return 0, 0
    except OSError as exc:
        raise StoreError(f"{_name(target)}: cannot read the export watermark: {exc}") from exc
    try:
        mark = json.loads(text)
        return int(mark["ingested_at_us"]), int(mark["rows_up_to"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{where}: not a Parquet export watermark ({exc})") from exc


def _write_watermark(target: ExportTarget, name: str, ingested_at_us: int, rows_up_to: int) -> None:
    """Replace the watermark atomically, so a crash leaves the old or the new one (a local
    file is renamed into place; an S3 object is replaced whole by one PUT)."""
    where = _watermark_path(target, name)
    mark = json.dumps({"ingested_at_us": ingested_at_us, "rows_up_to": rows_up_to})
    if isinstance(target, Path):
        path = Path(where)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(mark, encoding="utf-8")
        os.replace(temporary, path)
        return
    try:
        with target.filesystem.open_output_stream(where) as stream:
            stream.write(mark.encode())
    except OSError as exc:
        raise StoreError(f"{_name(target)}: cannot write the export watermark: {exc}") from exc


def _watermark_path(target: ExportTarget, name: str) -> str:
    if isinstance(target, Path):
        return str(target / WATERMARKS / f"{name}.json")
    return target.path(WATERMARKS, f"{name}.json")


def parquet_events(
    target: ExportTarget, services: list[str] | None = None
) -> Iterator[tuple[CloudEvent | InvalidEventError, bytes]]:
    """Every event exported under `target` (of `services` only, when given), parsed."""
    params: dict[str, object] = {}
    where = ""
    if services is not None:
        # The service is a partition column: only those directories are read.
        where = " WHERE service IN (SELECT unnest($services))"
        params["services"] = services
    with duckdb.connect() as connection:
        try:
            source = _exported_files(connection, target)
            reader = connection.sql(f"SELECT raw FROM {source}{where}", params=params)
            for batch in reader.to_arrow_reader(LOAD_BATCH) or ():
                for raw in batch.column(0).to_pylist():
                    body = str(raw).encode()
                    try:
                        yield parse_event(body), body
                    except InvalidEventError as exc:
                        yield exc, body
        except (duckdb.Error, OSError) as exc:
            raise StoreError(f"cannot read the Parquet export {_name(target)}: {exc}") from exc


def _exported_files(connection: duckdb.DuckDBPyConnection, target: ExportTarget) -> str:
    """A relation over the export's files, for `connection`; raises when there are none."""
    empty = StoreError(f"{_name(target)}: no Parquet export (service=*/day=*/*.parquet) there")
    if isinstance(target, Path):
        if not any(target.glob("service=*/day=*/*.parquet")):
            raise empty
        files = sql_literal(target / "**" / "*.parquet")
        return f"read_parquet('{files}', hive_partitioning = true)"
    # Hive partitions, percent-decoded as DuckDB encoded them; `_watermarks` is left out.
    try:
        dataset = ds.dataset(
            target.root, filesystem=target.filesystem, format="parquet", partitioning="hive"
        )
    except FileNotFoundError:
        raise empty from None
    if not dataset.files:
        raise empty
    connection.register("slamon_export", dataset)
    return "slamon_export"


def _name(target: ExportTarget) -> str:
    return str(target) if isinstance(target, Path) else target.url


def store_from_parquet(target: ExportTarget, services: list[str] | None = None) -> EventStore:
    """An in-memory store of the exported events, each once, as the pipeline stored them."""
    store = EventStore(":memory:")
    events: list[CloudEvent] = []
    raw: list[bytes] = []
    for event, body in parquet_events(target, services):
        if isinstance(event, InvalidEventError):
            # The pipeline stored only valid events: a file that no longer parses was altered.
            raise StoreError(f"{_name(target)}: an exported event does not parse: {event}")
        events.append(event)
        raw.append(body)
        if len(events) == LOAD_BATCH:
            store.write_batch(events, raw=raw)
            events, raw = [], []
    store.write_batch(events, raw=raw)
    return store
