"""The event store's schema as ordered forward migrations.

Tables (all times are ``TIMESTAMPTZ``, stored as UTC instants):

``schema_version(version, description, applied_at)``
    one row per applied migration; the store's version is ``max(version)``, 0 when empty.
``events(id, type, source, subject, time, ingested_at, raw JSON)``
    the ledger: every distinct event once, by its CloudEvent ``id`` (the dedupe key; a
    primary key until version 5, since then unindexed, see `pipeline.store`); ``time`` is
    when it happened, ``ingested_at`` when the store committed it, ``raw`` the CloudEvent
    as JSON.

One typed table per event type, each starting with ``event_id`` (→ ``events.id``),
``service`` (the CloudEvent ``subject``) and ``time``, followed by the type's data fields
under their wire names (quote ``"check"`` and ``"end"`` in SQL, they are keywords):

==========================  ===============  ==================================================
type                        table            data columns
==========================  ===============  ==================================================
``slamon.probe.v1``         ``probes``       check, ok, latency_ms, status_code, error,
                                             cert_expires_at (since version 2)
``slamon.status.v1``        ``statuses``     state, reason; and ``source`` (since
                                             version 7), the CloudEvent's
``slamon.outage.v1``        ``outages``      outage_id, start, end, planned, impact, ref
``slamon.maintenance.v1``   ``maintenance``  window_id, start, end, reason, change_ref
``slamon.capacity.v1``      ``capacity``     resource, used, capacity, unit, host
``slamon.ticket.v1``        ``tickets``      ticket_id, kind, priority, status, responded,
                                             customer
``slamon.change.v1``        ``changes``      change_id, kind, status, start, end,
                                             caused_incident
``slamon.continuity.v1``    ``continuity``   test_id, scenario, invoked_at, restored_at,
                                             data_restored_to, outcome
==========================  ===============  ==================================================

``probe_islands(service, check, ok, start_us, start_id, end_us, end_id, n)`` (since
version 3) holds the runs of equal outcomes of each check, maintained with every batch of
probe results: see `pipeline.probe_islands`.

``settled_tickets`` and ``settled_clocks`` (since version 4) keep the clocks of tickets
whose every clock has stopped, for the engine to read instead of recomputing them: see
`pipeline.settled_tickets`. ``ticket_signatures`` (since version 6) holds the number of
updates of every stored ticket and the last one's instant, maintained with every batch of
ticket events, so that the engine need not group all ticket events to find the settled
tickets still current.

Typed tables keep every event, including the several events of one outage (its start, then
its end); the view ``outages_latest`` holds the latest event per (service, outage_id) by
event time, which is what readers of outages want.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pipeline.probe_islands import CREATE_PROBE_ISLANDS, REBUILD_PROBE_ISLANDS
from pipeline.settled_tickets import (
    CREATE_SETTLED_TICKETS,
    CREATE_TICKET_SIGNATURES,
    REBUILD_TICKET_SIGNATURES,
)
from sla.errors import StoreError

TABLE_OF_TYPE: dict[str, str] = {
    "slamon.probe.v1": "probes",
    "slamon.status.v1": "statuses",
    "slamon.outage.v1": "outages",
    "slamon.maintenance.v1": "maintenance",
    "slamon.capacity.v1": "capacity",
    "slamon.ticket.v1": "tickets",
    "slamon.change.v1": "changes",
    "slamon.continuity.v1": "continuity",
}

# Typed columns taken from the CloudEvent's envelope (its ledger column), not from its data:
# every typed table starts with the first three.
ENVELOPE_COLUMNS = {"event_id": "id", "service": "subject", "time": "time", "source": "source"}


@dataclass(frozen=True)
class Migration:
    """One forward step of the schema; applied in one transaction together with its version row."""

    version: int
    description: str
    sql: str


CREATE_SCHEMA_VERSION = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
)
"""

_V1 = """
CREATE TABLE events (
    id VARCHAR PRIMARY KEY,
    type VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    subject VARCHAR NOT NULL,
    time TIMESTAMPTZ NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    raw JSON NOT NULL
);
CREATE TABLE probes (
    event_id VARCHAR NOT NULL, service VARCHAR NOT NULL, time TIMESTAMPTZ NOT NULL,
    "check" VARCHAR, ok BOOLEAN, latency_ms DOUBLE, status_code INTEGER, error VARCHAR
);
CREATE TABLE statuses (
    event_id VARCHAR NOT NULL, service VARCHAR NOT NULL, time TIMESTAMPTZ NOT NULL,
    state VARCHAR, reason VARCHAR
);
CREATE TABLE outages (
    event_id VARCHAR NOT NULL, service VARCHAR NOT NULL, time TIMESTAMPTZ NOT NULL,
    outage_id VARCHAR, start TIMESTAMPTZ, "end" TIMESTAMPTZ, planned BOOLEAN,
    impact VARCHAR, ref VARCHAR
);
CREATE TABLE maintenance (
    event_id VARCHAR NOT NULL, service VARCHAR NOT NULL, time TIMESTAMPTZ NOT NULL,
    window_id VARCHAR, start TIMESTAMPTZ, "end" TIMESTAMPTZ, reason VARCHAR,
    change_ref VARCHAR
);
CREATE TABLE capacity (
    event_id VARCHAR NOT NULL, service VARCHAR NOT NULL, time TIMESTAMPTZ NOT NULL,
    resource VARCHAR, used DOUBLE, capacity DOUBLE, unit VARCHAR, host VARCHAR
);
CREATE TABLE tickets (
    event_id VARCHAR NOT NULL, service VARCHAR NOT NULL, time TIMESTAMPTZ NOT NULL,
    ticket_id VARCHAR, kind VARCHAR, priority VARCHAR, status VARCHAR, responded BOOLEAN,
    customer VARCHAR
);
CREATE TABLE changes (
    event_id VARCHAR NOT NULL, service VARCHAR NOT NULL, time TIMESTAMPTZ NOT NULL,
    change_id VARCHAR, kind VARCHAR, status VARCHAR, start TIMESTAMPTZ, "end" TIMESTAMPTZ,
    caused_incident VARCHAR
);
CREATE TABLE continuity (
    event_id VARCHAR NOT NULL, service VARCHAR NOT NULL, time TIMESTAMPTZ NOT NULL,
    test_id VARCHAR, scenario VARCHAR, invoked_at TIMESTAMPTZ, restored_at TIMESTAMPTZ,
    data_restored_to TIMESTAMPTZ, outcome VARCHAR
);
CREATE VIEW outages_latest AS
    SELECT * FROM outages
    QUALIFY row_number() OVER (
        PARTITION BY service, outage_id ORDER BY time DESC, event_id DESC
    ) = 1;
"""

# Added columns go last: the store fills typed tables by column name, in catalog order.
_V2 = "ALTER TABLE probes ADD COLUMN cert_expires_at TIMESTAMPTZ"


def _copied(table: str, select: str, not_null: tuple[str, ...]) -> str:
    """Replace `table` with the rows of `select` (from ``{table}``), `not_null` columns set
    NOT NULL again (a table created from a query has no constraints)."""
    return "\n".join(
        [
            f"CREATE TABLE {table}_copy AS {select.format(table=table)};",
            f"DROP TABLE {table};",
            f"ALTER TABLE {table}_copy RENAME TO {table};",
            *(f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;" for column in not_null),
        ]
    )


# The primary-key index of the ledger grew by ~88 bytes an event and stayed in memory for
# good. DuckDB cannot drop a key, so the ledger is copied without it, in time order: the
# store finds stored ids by time ranges, which the zone maps of time-ordered row groups prune.
_V5 = _copied(
    "events",
    "SELECT * FROM {table} ORDER BY time",
    ("id", "type", "source", "subject", "time", "ingested_at", "raw"),
)

# A status change belongs to its monitor, the CloudEvent source: with it in the typed table,
# the engine no longer joins the whole ledger for it (400 ms and 600 MiB on a 100 M month).
# Copied, not updated: DuckDB cannot add NOT NULL to a column updated in the same transaction.
_V7 = _copied(
    "statuses",
    "SELECT s.*, e.source FROM {table} s LEFT JOIN events e ON e.id = s.event_id",
    ("event_id", "service", "time", "source"),
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events ledger and one typed table per event type", _V1),
    Migration(2, "probes: TLS certificate expiry", _V2),
    Migration(3, "probe islands", CREATE_PROBE_ISLANDS + REBUILD_PROBE_ISLANDS),
    Migration(4, "settled ticket clocks", CREATE_SETTLED_TICKETS),
    Migration(5, "events ledger without its primary-key index, in time order", _V5),
    Migration(6, "ticket signatures", CREATE_TICKET_SIGNATURES + REBUILD_TICKET_SIGNATURES),
    Migration(7, "statuses: the CloudEvent source", _V7),
)

LATEST_VERSION = MIGRATIONS[-1].version


def current_version(connection: duckdb.DuckDBPyConnection) -> int:
    """The schema version of an open database: 0 for one slamon never migrated."""
    exists = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_version'"
    ).fetchone()
    if not exists or not exists[0]:
        return 0
    row = connection.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(
    connection: duckdb.DuckDBPyConnection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> int:
    """Apply the migrations newer than the database, each in one transaction; return the version.

    Raises `StoreError` when the database is newer than the last migration (written by a
    newer slamon) or when a migration fails, leaving the database at the last good version.
    """
    version = current_version(connection)
    latest = migrations[-1].version if migrations else 0
    if version > latest:
        raise StoreError(
            f"the event store has schema version {version}, newer than the {latest} this "
            "slamon knows: upgrade slamon or point it at another store"
        )
    for migration in migrations:
        if migration.version <= version:
            continue
        try:
            connection.begin()
            connection.execute(CREATE_SCHEMA_VERSION)
            connection.execute(migration.sql)
            connection.execute(
                "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                [migration.version, migration.description],
            )
            connection.commit()
        except duckdb.Error as exc:
            connection.rollback()
            raise StoreError(
                f"migrating the event store to version {migration.version} "
                f"({migration.description}) failed: {exc}"
            ) from exc
        version = migration.version
    return version
