"""Sharded stores: one DuckDB file per Kafka partition, so state moves with the partition.

Events are keyed by service, and every family topic has the same number of partitions, so
partition k of every topic holds the same services: shard k. The range assignor gives a
consumer the same partition numbers in every topic, and a pipeline worker holds open the
shard files of exactly the partitions it is assigned. On a rebalance the old owner closes a
shard before the new owner can open it (DuckDB allows one process per file), and records
redelivered after a crash land in the same file, where the dedupe on event id drops them.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import duckdb

from pipeline.migrations import LATEST_VERSION
from pipeline.store import EventStore, sql_literal
from pipeline.transport.base import Backoff, Message
from sla.errors import StoreError, StoreInUseError
from sla.events import CloudEvent

log = logging.getLogger(__name__)

SHARD_NAME = "partition-{:03d}.duckdb"
_SHARD_FILE = re.compile(r"^partition-(\d{3,})\.duckdb$")

# How long a new owner waits for the previous one to close a shard after a rebalance; a
# crashed owner releases it at once, a live one after its current batch.
SHARD_OPEN_BACKOFF = Backoff(deadline_s=120.0, initial_s=0.1, max_s=2.0)


def shard_path(directory: Path, partition: int) -> Path:
    """The store file of `partition` under `directory`."""
    return directory / SHARD_NAME.format(partition)


def shard_files(directory: Path) -> dict[int, Path]:
    """Every shard file under `directory`, by partition."""
    if not directory.is_dir():
        return {}
    found = {}
    for path in directory.iterdir():
        match = _SHARD_FILE.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


class ShardedStore:
    """The shard stores of the partitions this worker is assigned, opened and closed with them."""

    def __init__(
        self,
        directory: Path,
        backoff: Backoff = SHARD_OPEN_BACKOFF,
        *,
        memory_limit_mib: int | None = None,
    ) -> None:
        """`memory_limit_mib` bounds the DuckDB memory of each open shard."""
        self.directory = directory
        self._backoff = backoff
        self._memory_limit_mib = memory_limit_mib
        self._stores: dict[int, EventStore] = {}
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def owned(self) -> frozenset[int]:
        """The partitions whose shard is open here."""
        with self._lock:
            return frozenset(self._stores)

    def stores(self) -> dict[int, EventStore]:
        """The open shard stores, by partition."""
        with self._lock:
            return dict(self._stores)

    def follow(self, assignment: frozenset[int]) -> None:
        """Close the shards of revoked partitions, then open those of newly assigned ones."""
        with self._lock:
            revoked = set(self._stores) - assignment
            for partition in sorted(revoked):
                self._stores.pop(partition).close()
            added = sorted(assignment - set(self._stores))
        if revoked:
            log.info("closed shards of revoked partitions %s", sorted(revoked))
        for partition in added:
            store = self._open(partition)
            with self._lock:
                self._stores[partition] = store
        if added:
            log.info("opened shards of assigned partitions %s", added)

    def _open(self, partition: int) -> EventStore:
        path = shard_path(self.directory, partition)
        return self._backoff.run(
            f"opening shard {path}",
            lambda: EventStore(path, memory_limit_mib=self._memory_limit_mib),
            (StoreInUseError,),
        )

    def owned_messages(self, messages: Iterable[Message]) -> list[Message]:
        """The messages of partitions whose shard is open; the rest belong to another worker."""
        owned = self.owned
        return [m for m in messages if m.partition in owned]

    def write_batch_by_type(
        self, events: list[CloudEvent], *, raw: list[bytes], partitions: list[int]
    ) -> dict[str, int]:
        """Store each event in the shard of the partition it came from; new events per type."""
        by_partition: dict[int, tuple[list[CloudEvent], list[bytes]]] = {}
        for event, body, partition in zip(events, raw, partitions, strict=True):
            shard_events, shard_raw = by_partition.setdefault(partition, ([], []))
            shard_events.append(event)
            shard_raw.append(body)
        stores = self.stores()
        stored: Counter[str] = Counter()
        for partition, (shard_events, shard_raw) in sorted(by_partition.items()):
            if partition not in stores:
                raise StoreError(f"no shard open for partition {partition}: not assigned here")
            stored.update(stores[partition].write_batch_by_type(shard_events, raw=shard_raw))
        return dict(stored)

    def counts_by_type(self) -> dict[str, int]:
        """Distinct events per type across the open shards."""
        total: Counter[str] = Counter()
        for store in self.stores().values():
            total.update(store.counts_by_type())
        return dict(total)

    def memory_bytes(self) -> int:
        """DuckDB's memory in use across the open shards."""
        return sum(store.memory_bytes() for store in self.stores().values())

    def close(self) -> None:
        """Close every open shard."""
        with self._lock:
            stores, self._stores = self._stores, {}
        for store in stores.values():
            store.close()


def services_by_shard(
    services: Iterable[str], partition_of: Callable[[str], int]
) -> dict[int, list[str]]:
    """The configured services grouped by the partition their key hashes to."""
    grouped: dict[int, list[str]] = {}
    for service in services:
        grouped.setdefault(partition_of(service), []).append(service)
    return grouped


class ShardUnion(EventStore):
    """Every shard under a directory, read as one store (read-only, workers stopped).

    Services never span shards, so each table is the plain concatenation of the shards'.
    """

    def __init__(self, directory: Path) -> None:
        # Not EventStore.__init__: there is no file of its own to open and migrate.
        files = shard_files(directory)
        if not files:
            raise StoreError(f"{directory}: no shard stores (partition-NNN.duckdb) there")
        self.path = str(directory)
        self.read_only = True
        self._lock = threading.RLock()
        self._table_schemas = {}
        connection = duckdb.connect(":memory:")
        try:
            connection.execute("SET TimeZone = 'UTC'")
            for partition, path in files.items():
                connection.execute(f"ATTACH '{sql_literal(path)}' AS shard_{partition} (READ_ONLY)")
                self._check_shard(connection, partition, path)
            tables = connection.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_catalog = $catalog AND table_schema = 'main'",
                {"catalog": f"shard_{next(iter(files))}"},
            ).fetchall()
            for (table,) in tables:
                parts = " UNION ALL ".join(f'SELECT * FROM shard_{p}."{table}"' for p in files)
                connection.execute(f'CREATE VIEW "{table}" AS {parts}')
        except duckdb.Error as exc:
            connection.close()
            raise _union_error(directory, exc) from exc
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        self.schema_version = LATEST_VERSION
        self.shards: Mapping[int, Path] = files

    @staticmethod
    def _check_shard(connection: duckdb.DuckDBPyConnection, partition: int, path: Path) -> None:
        row = connection.execute(f"SELECT max(version) FROM shard_{partition}.schema_version")
        version = row.fetchone()
        if version is None or version[0] != LATEST_VERSION:
            raise StoreError(
                f"shard {path} has schema version {version and version[0]}, not "
                f"{LATEST_VERSION}: open it writable once (start its worker) to migrate it"
            )


def _union_error(directory: Path, exc: duckdb.Error) -> StoreError:
    if "lock" in str(exc).lower():
        return StoreInUseError(
            f"the shards under {directory} are in use by running pipeline workers: stop them, "
            "or read the Parquet export instead"
        )
    return StoreError(f"cannot read the shards under {directory}: {exc}")
