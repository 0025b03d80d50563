"""The DuckDB event store: an idempotent ledger of events plus one typed table per type."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.migrations import ENVELOPE_COLUMNS, LATEST_VERSION, TABLE_OF_TYPE, migrate
from pipeline.migrations import current_version as schema_version_of
from pipeline.probe_islands import IslandTails, rebuild_probe_islands
from pipeline.settled_tickets import UPDATE_TICKET_SIGNATURES, replace_settled
from sla.errors import StoreError, StoreInUseError
from sla.events import CloudEvent

T = TypeVar("T")

_UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")

# How DuckDB column types of the schema map to the Arrow types batches are built with.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "BOOLEAN": pa.bool_(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "TIMESTAMP WITH TIME ZONE": _UTC_TIMESTAMP,
}

# How much write-ahead log DuckDB lets grow before it checkpoints into the database file.
# The rows written since the last checkpoint stay in memory too (about 550 bytes an event of
# the soak mix), beside the cache of table blocks and within the memory limit: a small log
# keeps that saw-tooth in the pipeline's RSS small. Ingest throughput at 64 MB matched that
# at 128 MB, 256 MB and before version 5; at 16 MB checkpoints come too often (-25 %; see
# docs/reliability.md, "Pipeline memory"). Until version 5 every checkpoint also rewrote
# the ledger's whole primary-key index. The price: up to this much log to replay when the
# store is opened after a crash.
CHECKPOINT_THRESHOLD = "64MB"

# Event types whose ids are bound to their time: every producer of them gives each event a
# fresh uuid4 (HTTP probes, host capacity) or puts the instant into the id (heartbeats,
# Prometheus samples, ticket webhooks and imports, Alertmanager), so a repeat of one of these
# events always carries the time it had. Their ids are looked up only among the stored events
# of the batch's time ranges, whatever the size of the store. Ids of the other types may come
# again with another time (a record sent twice without a `time`): they are also looked up in
# the whole typed table of their type, which holds human-scale numbers of events.
TIME_BOUND_TYPES = frozenset(
    {"slamon.probe.v1", "slamon.capacity.v1", "slamon.ticket.v1", "slamon.status.v1"}
)

# A batch's event times are checked as at most this many ranges, split at the widest gaps of
# more than _RANGE_GAP: one late event then costs the row groups of its own time, not of
# everything between it and the rest of the batch.
_MAX_RANGES = 8
_RANGE_GAP = timedelta(minutes=10)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_INSERT_LEDGER = """
INSERT INTO events (id, type, source, subject, time, ingested_at, raw)
SELECT id, type, source, subject, time, current_timestamp, raw FROM _slamon_ledger
"""


def sql_literal(value: object) -> str:
    """`value` inside a single-quoted SQL literal, for statements that take no parameters
    (ATTACH, COPY ... TO)."""
    return str(value).replace("'", "''")


def _column(items: Sequence[object], attribute: str, type_: pa.DataType) -> pa.Array[Any]:
    """One attribute of every item as an Arrow array."""
    return pa.array(list(map(attrgetter(attribute), items)), type_)


def _unique_by_id(
    events: Sequence[CloudEvent], raw: Sequence[bytes]
) -> tuple[list[CloudEvent], list[bytes]]:
    """The first event of each id (and its raw JSON), in batch order."""
    if len({e.id for e in events}) == len(events):
        return list(events), list(raw)
    seen: set[str] = set()
    unique: list[CloudEvent] = []
    unique_raw: list[bytes] = []
    for event, event_raw in zip(events, raw, strict=True):
        if event.id not in seen:
            seen.add(event.id)
            unique.append(event)
            unique_raw.append(event_raw)
    return unique, unique_raw


def _time_ranges(times: pa.ChunkedArray[Any] | pa.Array[Any]) -> list[tuple[datetime, datetime]]:
    """Closed ranges covering `times`: one, split at up to `_MAX_RANGES - 1` of the widest
    gaps longer than `_RANGE_GAP`."""
    # Microseconds since the epoch, ascending (the ledger's times are never null). In NumPy:
    # a Python object per instant set off the garbage collector over a heap of parsed events.
    instants = np.unique(times.cast(pa.int64()).to_numpy())
    widths = np.diff(instants)
    wide = np.flatnonzero(widths > _RANGE_GAP // timedelta(microseconds=1))
    # The widest gaps, the later one first among equals.
    widest = np.lexsort((wide, widths[wide]))[::-1][: _MAX_RANGES - 1]
    splits = np.sort(wide[widest])
    starts = [0, *(splits + 1).tolist()]
    ends = [*splits.tolist(), len(instants) - 1]
    return [
        (
            _EPOCH + timedelta(microseconds=int(instants[start])),
            _EPOCH + timedelta(microseconds=int(instants[end])),
        )
        for start, end in zip(starts, ends, strict=True)
    ]


def _stored_ids(con: duckdb.DuckDBPyConnection, ledger: pa.Table) -> pa.Array[Any]:
    """The ids of the registered batch `_slamon_ledger` that the store holds already.

    The ledger has no index (an index on the id would grow with the store and live in memory
    for good): ids are looked up among the events of the batch's time ranges, where DuckDB
    reads only the row groups whose time span meets a range, which is the newest few while
    events arrive roughly in time order; ids of types not bound to their time also in their
    typed table.
    """
    ranges = _time_ranges(ledger["time"])
    in_ranges = " OR ".join(["time BETWEEN ? AND ?"] * len(ranges))
    queries = [
        f"SELECT id FROM events WHERE ({in_ranges}) AND id IN (SELECT id FROM _slamon_ledger)"
    ]
    params: list[Any] = [bound for time_range in ranges for bound in time_range]
    types = {str(type_) for type_ in pc.unique(ledger["type"]).to_pylist()}
    for type_ in sorted(types - TIME_BOUND_TYPES):
        queries.append(
            f'SELECT event_id FROM "{TABLE_OF_TYPE[type_]}" '
            "WHERE event_id IN (SELECT id FROM _slamon_ledger WHERE type = ?)"
        )
        params.append(type_)
    found = con.sql(" UNION ALL ".join(queries), params=params)
    if found is None:
        return pa.array([], pa.string())
    ids: pa.Array[Any] = found.to_arrow_table().column(0).combine_chunks()
    return ids


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if any.

    A COMMIT that failed (a full disk, say) has ended the transaction already: the rollback
    then fails too, and its error must not replace the one that says why.
    """
    with contextlib.suppress(duckdb.TransactionException):
        con.rollback()


class EventStore:
    """A DuckDB database of events; safe to share between threads (calls are serialised).

    Readers use `query`; times come back as UTC instants (the session time zone is UTC).
    `memory_limit_mib` bounds DuckDB's own memory (its table block cache above all, which
    otherwise fills up to DuckDB's default of 80 % of the machine's memory); running out of
    it raises `StoreError`.
    """

    # Stores built without __init__ (the read-only union of shards) have no limit of their own.
    memory_limit_mib: int | None = None

    def __init__(
        self, path: str | Path, *, read_only: bool = False, memory_limit_mib: int | None = None
    ) -> None:
        self.path = str(path)
        self.read_only = read_only
        self.memory_limit_mib = memory_limit_mib
        try:
            self._connection: duckdb.DuckDBPyConnection | None = duckdb.connect(
                self.path, read_only=read_only
            )
        except duckdb.Error as exc:
            if "Could not set lock" in str(exc):
                # DuckDB allows one process per file, readers included.
                raise StoreInUseError(
                    f"the event store {self.path} is in use by another process (a running "
                    "slamon pipeline?): stop it, or work on a copy of the file"
                ) from exc
            raise StoreError(f"cannot open the event store {self.path}: {exc}") from exc
        # Reentrant: `held` keeps it across the calls of a block.
        self._lock = threading.RLock()
        self._island_tails = IslandTails()
        try:
            # Date functions in readers' SQL (date_trunc, ...) then work in UTC on every host.
            self._connection.execute("SET TimeZone = 'UTC'")
            if memory_limit_mib is not None:
                # Set before migrating: a migration copying the ledger then spills, not grows.
                self._connection.execute(f"SET memory_limit = '{int(memory_limit_mib)}MiB'")
            if read_only:
                self.schema_version = self._check_version(self._connection)
            else:
                self._connection.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
                self.schema_version = migrate(self._connection)
            self._table_schemas = self._read_table_schemas(self._connection)
        except BaseException:
            self._connection.close()
            raise

    def _check_version(self, connection: duckdb.DuckDBPyConnection) -> int:
        version = schema_version_of(connection)
        if version != LATEST_VERSION:
            raise StoreError(
                f"the event store {self.path} has schema version {version}, not "
                f"{LATEST_VERSION}: open it writable once to migrate it"
            )
        return version

    @staticmethod
    def _read_table_schemas(connection: duckdb.DuckDBPyConnection) -> dict[str, pa.Schema]:
        """The Arrow schema of each typed table, read from the catalog the migrations built."""
        rows = connection.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
        ).fetchall()
        fields: dict[str, list[pa.Field[Any]]] = {}
        for table, column, data_type in rows:
            if table not in TABLE_OF_TYPE.values():
                continue
            if data_type not in _ARROW_TYPES:
                raise StoreError(f"column {table}.{column} has an unmapped type {data_type}")
            fields.setdefault(table, []).append(pa.field(column, _ARROW_TYPES[data_type]))
        return {table: pa.schema(table_fields) for table, table_fields in fields.items()}

    def _run(self, what: str, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work` under the lock, turning DuckDB failures into `StoreError`."""
        with self._lock:
            if self._connection is None:
                raise StoreError(f"the event store {self.path} is closed")
            try:
                return work(self._connection)
            except duckdb.OutOfMemoryException as exc:
                # DuckDB's message goes on with a list of remedies over several lines.
                reason = str(exc).strip().splitlines()[0]
                raise StoreError(
                    f"{what} failed in {self.path}: {reason}; DuckDB may use "
                    f"{self._memory_limit_text()} here (store.memory_limit_mib)"
                ) from exc
            except duckdb.Error as exc:
                raise StoreError(f"{what} failed in {self.path}: {exc}") from exc

    def _memory_limit_text(self) -> str:
        """How much memory DuckDB may use here, for error messages."""
        if self.memory_limit_mib is None:
            return "its default of 80 % of the machine's memory"
        return f"{self.memory_limit_mib:,} MiB"

    def write_batch(
        self, events: Sequence[CloudEvent], *, raw: Sequence[bytes] | None = None
    ) -> int:
        """Store the events whose id is not stored yet, in one transaction; return how many.

        `raw` is the JSON each event arrived as, kept in the ledger; by default the event
        is serialised again.
        """
        return sum(self.write_batch_by_type(events, raw=raw).values())

    def write_batch_by_type(
        self, events: Sequence[CloudEvent], *, raw: Sequence[bytes] | None = None
    ) -> dict[str, int]:
        """Like `write_batch`, returning the number of new events per type."""
        if raw is not None and len(raw) != len(events):
            raise ValueError(f"{len(raw)} raw messages for {len(events)} events")
        unique, unique_raw = _unique_by_id(
            events, [e.to_json() for e in events] if raw is None else raw
        )
        if not unique:
            return {}
        by_type: dict[str, list[CloudEvent]] = {}
        for event in unique:
            by_type.setdefault(event.type, []).append(event)
        unknown = by_type.keys() - TABLE_OF_TYPE.keys()
        if unknown:
            raise StoreError(f"no table for event types {sorted(unknown)}")
        ledger = pa.table(
            {
                "id": _column(unique, "id", pa.string()),
                "type": _column(unique, "type", pa.string()),
                "source": _column(unique, "source", pa.string()),
                "subject": _column(unique, "subject", pa.string()),
                "time": _column(unique, "time", _UTC_TIMESTAMP),
                "raw": pa.array(list(map(bytes.decode, unique_raw)), pa.string()),
            }
        )
        typed = {
            TABLE_OF_TYPE[type_]: self._typed_rows(TABLE_OF_TYPE[type_], ledger, of_type)
            for type_, of_type in by_type.items()
        }
        return self._run("writing a batch", lambda con: self._write(con, ledger, typed))

    def _typed_rows(self, table: str, ledger: pa.Table, events: list[CloudEvent]) -> pa.Table:
        """The rows of `table` for `events` (all of its type), column by column in table order."""
        schema = self._table_schemas[table]
        if len(events) < ledger.num_rows:
            ledger = ledger.filter(pc.equal(ledger["type"], pa.scalar(events[0].type, pa.string())))
        columns: dict[str, pa.Array[Any] | pa.ChunkedArray[Any]] = {}
        data = list(map(attrgetter("data"), events))
        for field in schema:
            if field.name in ENVELOPE_COLUMNS:
                columns[field.name] = ledger[ENVELOPE_COLUMNS[field.name]]
            else:
                columns[field.name] = _column(data, field.name, field.type)
        return pa.table(columns, schema=schema)

    def _write(
        self, con: duckdb.DuckDBPyConnection, ledger: pa.Table, typed: dict[str, pa.Table]
    ) -> dict[str, int]:
        """Insert the ledger rows whose id is not stored yet, then the typed rows of exactly
        those, in one transaction (the store's lock keeps other writers out meanwhile)."""
        con.begin()
        try:
            con.register("_slamon_ledger", ledger)
            stored = _stored_ids(con, ledger)
            new = ledger
            if len(stored):
                new = ledger.filter(pc.invert(pc.is_in(ledger["id"], value_set=stored)))
                typed = {
                    table: rows.filter(pc.is_in(rows["event_id"], value_set=new["id"]))
                    for table, rows in typed.items()
                }
                con.register("_slamon_ledger", new)
            con.execute(_INSERT_LEDGER)
            for table, fresh in typed.items():
                if fresh.num_rows:
                    con.register("_slamon_typed", fresh)
                    con.execute(f'INSERT INTO "{table}" SELECT * FROM _slamon_typed')
                    if table == "probes":
                        self._island_tails.update(con, fresh)
                    elif table == "tickets":
                        con.execute(UPDATE_TICKET_SIGNATURES)
            con.commit()
        except BaseException:
            # The tails may say what the rollback undid.
            self._island_tails.forget()
            _rollback(con)
            raise
        finally:
            con.unregister("_slamon_ledger")
            con.unregister("_slamon_typed")
        return dict(Counter(str(type_) for type_ in new["type"].to_pylist()))

    def rebuild_probe_islands(self) -> None:
        """Recompute the probe islands from the stored probe results, in one transaction."""

        def rebuild(con: duckdb.DuckDBPyConnection) -> None:
            con.begin()
            self._island_tails.forget()
            try:
                rebuild_probe_islands(con)
                con.commit()
            except BaseException:
                _rollback(con)
                raise

        self._run("rebuilding the probe islands", rebuild)

    def keep_settled_tickets(self, tickets: pl.DataFrame, clocks: pl.DataFrame) -> None:
        """Replace the stored clocks of settled `tickets` (see `pipeline.settled_tickets`)."""

        def keep(con: duckdb.DuckDBPyConnection) -> None:
            con.begin()
            try:
                replace_settled(con, tickets, clocks)
                con.commit()
            except BaseException:
                _rollback(con)
                raise

        self._run("keeping settled ticket clocks", keep)

    def counts_by_type(self) -> dict[str, int]:
        """How many distinct events of each type are stored."""
        rows = self._run(
            "counting events",
            lambda con: con.execute("SELECT type, count(*) FROM events GROUP BY type").fetchall(),
        )
        return {str(type_): int(count) for type_, count in rows}

    def memory_bytes(self) -> int:
        """DuckDB's memory in use here: table cache, rows not yet checkpointed, queries."""
        ((used,),) = self._run(
            "reading DuckDB's memory",
            lambda con: con.execute(
                "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()"
            ).fetchall(),
        )
        return int(used)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run a parameterised SQL query and return its result as a polars DataFrame."""
        return self._run("a query", lambda con: _frame(con, sql, params))

    def query_together(
        self, queries: Sequence[tuple[str, dict[str, Any] | None]]
    ) -> list[pl.DataFrame]:
        """Run several parameterised statements with no write between them (one snapshot);
        a statement without a result (a temporary table) gives an empty frame."""
        return self._run(
            "a query", lambda con: [_frame(con, sql, params) for sql, params in queries]
        )

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Keep every other thread's statements, writes included, out until the block ends.

        The block's queries then see one state of the store, and may share a temporary
        table that another thread's computation would otherwise replace or drop.
        """
        with self._lock:
            yield

    def close(self) -> None:
        """Close the database; later calls raise `StoreError`."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | dict[str, Any] | None
) -> pl.DataFrame:
    """The result of one statement as a polars DataFrame; empty for a statement without one."""
    relation = con.sql(sql, params=params)
    if relation is None:
        return pl.DataFrame()
    frame: pl.DataFrame = relation.pl()
    return frame
