"""The DuckDB event store: typed tables, idempotent batches, migrations and failures.

Exactly once without a key index: repeats across batches and restarts, late replays, an id
again at another time, stores migrated from the primary-key ledger, DuckDB's memory limit.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from collectors.records import RecordKind, record_event
from pipeline.migrations import LATEST_VERSION, MIGRATIONS, Migration, current_version, migrate
from pipeline.store import EventStore, _time_ranges
from pipeline.transport.embedded import EmbeddedTransport
from sla.config import SlamonConfig, StoreConfig
from sla.errors import StoreError
from sla.events import CloudEvent, new_event
from slamon.app import PipelineService

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))


def probe(n: int, service: str = "checkout", ok: bool = True) -> CloudEvent:
    """The n-th probe of a service, n seconds after T0, with a predictable id."""
    return new_event(
        "slamon.probe.v1",
        service,
        {"check": "health", "ok": ok, "latency_ms": 10.0 + n, "status_code": 200},
        source="collector/http/checkout-health",
        time=T0 + timedelta(seconds=n),
        id=f"probe-{service}-{n}",
    )


def one_of_each_type() -> list[CloudEvent]:
    """One event of each of the eight types, all for service `checkout`."""
    payloads: dict[str, dict[str, Any]] = {
        "slamon.probe.v1": {
            "check": "health",
            "ok": False,
            "latency_ms": 5000.0,
            "error": "timeout",
        },
        "slamon.status.v1": {"state": "down", "reason": "alert firing"},
        "slamon.outage.v1": {
            "outage_id": "o-1",
            "start": T0,
            "planned": False,
            "impact": "partial",
        },
        "slamon.maintenance.v1": {
            "window_id": "w-1",
            "start": T0,
            "end": T0 + timedelta(hours=1),
            "reason": "db upgrade",
            "change_ref": "CHG-7",
        },
        "slamon.capacity.v1": {
            "resource": "cpu",
            "used": 3.5,
            "capacity": 4.0,
            "unit": "cores",
            "host": "node-1",
        },
        "slamon.ticket.v1": {
            "ticket_id": "INC-1",
            "kind": "incident",
            "priority": "P1",
            "status": "open",
            "responded": True,
        },
        "slamon.change.v1": {
            "change_id": "CHG-7",
            "kind": "normal",
            "status": "implemented",
            "start": T0,
            "end": T0 + timedelta(minutes=30),
        },
        # Given in +02:00: stored as the same instants in UTC.
        "slamon.continuity.v1": {
            "test_id": "dr-1",
            "scenario": "region-failover",
            "invoked_at": datetime(2026, 3, 1, 14, 0, tzinfo=CEST),
            "restored_at": datetime(2026, 3, 1, 15, 30, tzinfo=CEST),
            "data_restored_to": datetime(2026, 3, 1, 13, 50, tzinfo=CEST),
            "outcome": "passed",
        },
    }
    return [
        new_event(type_, "checkout", data, source="test", time=T0, id=f"e-{type_}")
        for type_, data in payloads.items()
    ]


@pytest.fixture
def store() -> EventStore:
    """A fresh in-memory store."""
    return EventStore(":memory:")


def test_each_type_lands_in_its_typed_table(store: EventStore) -> None:
    assert store.write_batch(one_of_each_type()) == 8
    assert store.counts_by_type() == {
        "slamon.probe.v1": 1,
        "slamon.status.v1": 1,
        "slamon.outage.v1": 1,
        "slamon.maintenance.v1": 1,
        "slamon.capacity.v1": 1,
        "slamon.ticket.v1": 1,
        "slamon.change.v1": 1,
        "slamon.continuity.v1": 1,
    }
    probes = store.query(
        'SELECT event_id, service, "check", ok, latency_ms, status_code, error FROM probes'
    )
    assert probes.rows() == [
        ("e-slamon.probe.v1", "checkout", "health", False, 5000.0, None, "timeout")
    ]
    outage = store.query('SELECT outage_id, start, "end", planned, impact, ref FROM outages')
    assert outage.rows() == [("o-1", T0, None, False, "partial", None)]
    ticket = store.query(
        "SELECT ticket_id, kind, priority, status, responded, customer FROM tickets"
    )
    assert ticket.rows() == [("INC-1", "incident", "P1", "open", True, None)]
    capacity = store.query("SELECT resource, used, capacity, unit, host FROM capacity")
    assert capacity.rows() == [("cpu", 3.5, 4.0, "cores", "node-1")]
    # 14:00+02:00 is 12:00Z; the achieved RTO is 90 minutes, the RPO 10 minutes.
    continuity = store.query(
        "SELECT invoked_at, epoch(restored_at - invoked_at) AS rto, "
        "epoch(invoked_at - data_restored_to) AS rpo FROM continuity"
    )
    assert continuity.rows() == [(T0, 5400.0, 600.0)]
    for table in ("statuses", "maintenance", "changes"):
        assert store.query(f"SELECT count(*) AS n FROM {table}")["n"].to_list() == [1]


def test_the_ledger_keeps_envelope_and_raw_json(store: EventStore) -> None:
    event = probe(1)
    store.write_batch([event])
    ledger = store.query("SELECT id, type, source, subject, time, raw FROM events")
    assert ledger.rows() == [
        (
            "probe-checkout-1",
            "slamon.probe.v1",
            "collector/http/checkout-health",
            "checkout",
            T0 + timedelta(seconds=1),
            event.to_json().decode(),
        )
    ]
    (ingested,) = store.query("SELECT ingested_at FROM events")["ingested_at"].to_list()
    assert ingested >= T0


def test_raw_bytes_given_are_stored_as_they_arrived(store: EventStore) -> None:
    event = probe(1)
    arrived = b'{"note": "as received", "id": "probe-checkout-1"}'
    store.write_batch([event], raw=[arrived])
    assert store.query("SELECT raw::VARCHAR AS raw FROM events")["raw"].to_list() == [
        arrived.decode()
    ]


def test_replaying_a_batch_changes_nothing(store: EventStore) -> None:
    batch = [probe(n) for n in range(100)]
    assert store.write_batch(batch) == 100
    assert store.write_batch(batch) == 0
    # 50 already stored + 30 new, the new ones partly twice in the same batch: 30 are new.
    mixed = batch[:50] + [probe(n) for n in range(100, 130)] + [probe(n) for n in range(100, 110)]
    assert store.write_batch(mixed) == 30
    assert store.write_batch(mixed) == 0
    assert store.counts_by_type() == {"slamon.probe.v1": 130}
    assert store.query("SELECT count(*) AS n FROM probes")["n"].to_list() == [130]


def test_duplicates_inside_one_batch_count_once_and_the_first_wins(store: EventStore) -> None:
    first, second = probe(1, ok=True), probe(1, ok=False)  # same id, different data
    assert store.write_batch_by_type([first, second, probe(2)]) == {"slamon.probe.v1": 2}
    oks = store.query("SELECT ok FROM probes WHERE event_id = ?", ["probe-checkout-1"])
    assert oks["ok"].to_list() == [True]


def test_service_ids_are_stored_and_queried_verbatim(store: EventStore) -> None:
    hostile = "o'brien\"; DROP TABLE events; --"
    store.write_batch([probe(1, service=hostile), probe(1, service="plain")])
    found = store.query("SELECT service FROM probes WHERE service = $svc", {"svc": hostile})
    assert found["service"].to_list() == [hostile]
    assert sum(store.counts_by_type().values()) == 2


def test_every_outage_event_is_kept_and_the_latest_one_wins(store: EventStore) -> None:
    def outage(id_: str, at: datetime, end: datetime | None) -> CloudEvent:
        return new_event(
            "slamon.outage.v1",
            "checkout",
            {"outage_id": "o-9", "start": T0, "end": end},
            source="test",
            time=at,
            id=id_,
        )

    end = T0 + timedelta(minutes=20)
    # The end arrives before the start (e.g. from another partition): time decides, not arrival.
    store.write_batch([outage("closed", end, end)])
    store.write_batch([outage("opened", T0, None)])
    assert store.query("SELECT count(*) AS n FROM outages")["n"].to_list() == [2]
    latest = store.query('SELECT event_id, "end" FROM outages_latest')
    assert latest.rows() == [("closed", end)]


def test_a_file_store_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "slamon.duckdb"
    with EventStore(path) as store:
        store.write_batch([probe(n) for n in range(10)])
    with EventStore(path) as store:
        assert store.schema_version == LATEST_VERSION
        assert store.write_batch([probe(n) for n in range(12)]) == 2
        assert store.counts_by_type() == {"slamon.probe.v1": 12}


def test_a_version_0_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE TABLE unrelated (x INTEGER)")  # no schema_version: version 0
        assert current_version(connection) == 0
    with EventStore(path) as store:
        assert store.schema_version == LATEST_VERSION
        versions = store.query("SELECT version, description FROM schema_version ORDER BY 1")
        assert versions.rows() == [(m.version, m.description) for m in MIGRATIONS]
        assert store.write_batch(one_of_each_type()) == 8


def test_migrations_run_forward_once_each(tmp_path: Path) -> None:
    extra = Migration(
        LATEST_VERSION + 1, "probe region", "ALTER TABLE probes ADD COLUMN region VARCHAR"
    )
    with duckdb.connect(str(tmp_path / "s.duckdb")) as connection:
        assert migrate(connection) == LATEST_VERSION
        assert migrate(connection, (*MIGRATIONS, extra)) == LATEST_VERSION + 1
        # Already applied: running them again is a no-op, not an error.
        assert migrate(connection, (*MIGRATIONS, extra)) == LATEST_VERSION + 1


def test_a_failing_migration_leaves_the_previous_version_intact(tmp_path: Path) -> None:
    broken = Migration(
        LATEST_VERSION + 1,
        "broken",
        "CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1)",
    )
    with duckdb.connect(str(tmp_path / "s.duckdb")) as connection:
        migrate(connection)
        with pytest.raises(StoreError, match="broken"):
            migrate(connection, (*MIGRATIONS, broken))
        assert current_version(connection) == LATEST_VERSION
        # The table created before the failing statement was rolled back with it.
        tables = connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        assert ("half",) not in tables


def test_a_store_from_a_newer_slamon_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.duckdb"
    with EventStore(path) as store:
        store.query(
            "INSERT INTO schema_version (version, description) VALUES (?, ?)",
            [LATEST_VERSION + 5, "from the future"],
        )
    with pytest.raises(StoreError, match=f"schema version {LATEST_VERSION + 5}, newer"):
        EventStore(path)


def test_a_read_only_store_reads_but_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with EventStore(path) as store:
        store.write_batch([probe(1)])
    with EventStore(path, read_only=True) as reader:
        assert reader.counts_by_type() == {"slamon.probe.v1": 1}
        with pytest.raises(StoreError, match="writing a batch"):
            reader.write_batch([probe(2)])
        assert reader.counts_by_type() == {"slamon.probe.v1": 1}


def test_a_closed_store_raises_store_error(store: EventStore) -> None:
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.write_batch([probe(1)])
    with pytest.raises(StoreError, match="closed"):
        store.query("SELECT 1")


def test_an_unopenable_path_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        EventStore(tmp_path / "missing-dir" / "s.duckdb")


def test_an_empty_batch_writes_nothing(store: EventStore) -> None:
    assert store.write_batch([]) == 0
    assert store.counts_by_type() == {}


def store_at_version(path: Path, version: int, sql: str, rows: list[list[Any]]) -> Path:
    """A store file migrated up to `version` only, with `rows` inserted by `sql`."""
    with duckdb.connect(str(path)) as connection:
        assert migrate(connection, MIGRATIONS[:version]) == version
        connection.executemany(sql, rows)
    return path


def test_a_version_1_store_gains_the_certificate_expiry_of_probes(tmp_path: Path) -> None:
    path = store_at_version(
        tmp_path / "v1.duckdb",
        1,
        "INSERT INTO probes VALUES ('old', 'checkout', ?, 'health', true, 12.0, 200, NULL)",
        [[T0]],
    )
    expires = datetime(2026, 6, 1, tzinfo=UTC)
    https = new_event(
        "slamon.probe.v1",
        "checkout",
        {"check": "tls", "ok": True, "latency_ms": 30.0, "cert_expires_at": expires},
        source="collector/http/checkout-tls",
        time=T0 + timedelta(minutes=1),
        id="new",
    )
    with EventStore(path) as store:
        assert store.schema_version == LATEST_VERSION >= 2
        assert store.write_batch([https, probe(2)]) == 2
        rows = store.query("SELECT event_id, cert_expires_at FROM probes ORDER BY time").rows()
    # The row written at version 1 has no expiry; of the new ones only the TLS check has one.
    assert rows == [("old", None), ("probe-checkout-2", None), ("new", expires)]


def test_a_version_5_store_gains_the_signatures_of_its_tickets(tmp_path: Path) -> None:
    path = store_at_version(
        tmp_path / "v5.duckdb",
        5,
        "INSERT INTO tickets (event_id, service, time, ticket_id) VALUES (?, 'web', ?, 'T1')",
        [["t1", T0], ["t2", T0 + timedelta(seconds=90)]],
    )
    with EventStore(path) as store:
        assert store.schema_version == LATEST_VERSION >= 6
        signatures = store.query("SELECT * FROM ticket_signatures").rows()
    assert signatures == [("web", "T1", 2, int(T0.timestamp() + 90) * 1_000_000)]


def test_a_version_6_store_gains_the_source_of_its_status_changes(tmp_path: Path) -> None:
    # Two monitors of one service at version 6: the source was only in the ledger.
    path = store_at_version(
        tmp_path / "v6.duckdb",
        6,
        "INSERT INTO events VALUES (?, 'slamon.status.v1', ?, 'web', ?, ?, '{}')",
        [["s1", "alertmanager", T0, T0], ["s2", "statuspage", T0, T0]],
    )
    with duckdb.connect(str(path)) as connection:
        connection.executemany(
            "INSERT INTO statuses VALUES (?, 'web', ?, ?, NULL)",
            [["s1", T0, "down"], ["s2", T0, "up"]],
        )
    later = new_event(
        "slamon.status.v1",
        "web",
        {"state": "up"},
        source="alertmanager",
        time=T0 + timedelta(minutes=5),
        id="s3",
    )
    with EventStore(path) as store:
        assert store.schema_version == LATEST_VERSION >= 7
        assert store.write_batch([later]) == 1
        rows = store.query("SELECT event_id, source, state FROM statuses ORDER BY event_id")
    assert rows.rows() == [
        ("s1", "alertmanager", "down"),
        ("s2", "statuspage", "up"),
        ("s3", "alertmanager", "up"),
    ]


# More than one DuckDB row group (122,880 rows): old events then sit in row groups that the
# time ranges of later batches skip.
MANY = 130_000


# Every ledger column, instants as epoch microseconds (no time zone package needed).
LEDGER_ROWS = (
    "SELECT id, type, source, subject, epoch_us(time), epoch_us(ingested_at), raw "
    "FROM events ORDER BY id"
)


def ledger_facts(store: EventStore) -> tuple[int, int, int]:
    """Ledger rows, distinct ledger ids and probe rows."""
    ((rows, distinct),) = store.query("SELECT count(*), count(DISTINCT id) FROM events").rows()
    ((probes,),) = store.query("SELECT count(*) FROM probes").rows()
    return rows, distinct, probes


def write_in_batches(store: EventStore, events: list[CloudEvent], size: int = 10_000) -> int:
    """Store `events` in batches of `size`; how many were new."""
    return sum(store.write_batch(events[i : i + size]) for i in range(0, len(events), size))


def change(time_offset: timedelta, change_id: str = "CHG-1") -> CloudEvent:
    """A change recorded without a `time`: its id is the same whenever it is sent."""
    return record_event(
        RecordKind.CHANGE,
        {
            "service": "checkout",
            "change_id": change_id,
            "kind": "normal",
            "status": "implemented",
            "start": T0.isoformat(),
            "end": (T0 + timedelta(minutes=30)).isoformat(),
        },
        services={"checkout"},
        received_at=T0 + time_offset,
        source="record/changes",
    )


def test_repeats_across_batches_and_restarts_are_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    first = [probe(n) for n in range(0, 3_000)]
    with EventStore(path) as store:
        assert write_in_batches(store, first, 500) == 3_000
        # A consumer restarted from an older offset sends the last 1,000 again, in other batches.
        assert write_in_batches(store, first[2_000:], 300) == 0
    rng = random.Random(7)
    later = [probe(n) for n in range(3_000, 4_000)]
    replayed = rng.sample(first, 1_500) + later + rng.sample(later, 200)
    rng.shuffle(replayed)
    with EventStore(path) as store:
        assert write_in_batches(store, replayed, 700) == 1_000
        assert write_in_batches(store, first + later, 1_000) == 0
        assert ledger_facts(store) == (4_000, 4_000, 4_000)


def test_an_old_event_replayed_after_many_newer_ones_is_not_stored_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.duckdb"
    old = probe(0)
    newer = [probe(n) for n in range(1, MANY)]
    with EventStore(path) as store:
        assert store.write_batch([old]) == 1
        assert write_in_batches(store, newer) == MANY - 1
    with EventStore(path) as store:
        # Alone, and in a batch of events a day newer, whose range would not reach it.
        assert store.write_batch([old]) == 0
        fresh = [probe(n) for n in range(MANY + 86_400, MANY + 86_500)]
        assert store.write_batch([*fresh[:50], old, *fresh[50:]]) == 100
        assert store.write_batch([newer[0], *fresh, newer[-1]]) == 0
        assert ledger_facts(store) == (MANY + 100, MANY + 100, MANY + 100)


def test_a_record_sent_again_later_with_another_time_is_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    first, again = change(timedelta(0)), change(timedelta(days=3))
    assert first.id == again.id and first.time != again.time
    with EventStore(path) as store:
        assert store.write_batch([first]) == 1
        # Many events in between, so the first copy's row group is not in the later ranges.
        assert write_in_batches(store, [probe(n) for n in range(1, MANY)]) == MANY - 1
    with EventStore(path) as store:
        assert store.write_batch([again, change(timedelta(days=3), "CHG-2")]) == 1
        changes = store.query("SELECT change_id, time FROM changes ORDER BY change_id").rows()
    assert changes == [("CHG-1", first.time), ("CHG-2", again.time)]


def test_a_probe_id_again_at_a_time_within_the_batch_is_stored_once(store: EventStore) -> None:
    stored = probe(5)
    store.write_batch([probe(n) for n in range(10)])
    moved = stored.model_copy(update={"time": stored.time + timedelta(seconds=2)})
    # The batch spans 1 s to 20 s after T0: the copy stored at 5 s is found.
    assert store.write_batch([moved, probe(1), probe(20)]) == 1
    rows = store.query("SELECT time FROM events WHERE id = ?", [stored.id]).rows()
    assert rows == [(stored.time,)]


def test_a_probe_id_again_far_from_its_time_is_a_documented_gap(store: EventStore) -> None:
    """Probe and capacity ids are looked up only in the batch's time ranges: producers never
    reuse them for another time (docs/reliability.md), so such a copy is stored again."""
    stored = probe(5)
    store.write_batch([stored])
    moved = stored.model_copy(update={"time": stored.time + timedelta(days=1)})
    assert store.write_batch([moved]) == 1


@pytest.mark.parametrize("version", [3, 4])
def test_a_store_with_the_keyed_ledger_migrates_keeping_rows_and_dedupe(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / f"v{version}.duckdb"
    events = [probe(n) for n in range(300)]
    rng = random.Random(version)
    shuffled = rng.sample(events, len(events))  # stored out of time order
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        assert migrate(con, tuple(m for m in MIGRATIONS if m.version <= version)) == version
        for event in shuffled:
            con.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, current_timestamp, ?)",
                [event.id, event.type, event.source, event.subject, event.time, event.to_json()],
            )
            con.execute(
                'INSERT INTO probes (event_id, service, time, "check", ok, latency_ms) '
                "VALUES (?, ?, ?, 'health', true, 1.0)",
                [event.id, event.subject, event.time],
            )
        before = con.execute(LEDGER_ROWS).fetchall()
    with EventStore(path) as store:
        assert store.schema_version == MIGRATIONS[-1].version >= 5
        after = store.query(LEDGER_ROWS).rows()
        in_order = store.query("SELECT id FROM events").rows()
        keys = store.query(
            "SELECT count(*) FROM duckdb_constraints() "
            "WHERE table_name = 'events' AND constraint_type = 'PRIMARY KEY'"
        ).rows()
        assert store.write_batch(events) == 0
        assert store.write_batch([*events[:10], probe(300)]) == 1
        assert ledger_facts(store) == (301, 301, 301)
        with pytest.raises(StoreError, match="NOT NULL"):
            store.query("INSERT INTO events (id) VALUES (NULL)")
    assert after == before
    assert in_order == [(event.id,) for event in events]  # rewritten in time order
    assert keys == [(0,)]


def test_the_memory_limit_reaches_duckdb(tmp_path: Path) -> None:
    with EventStore(tmp_path / "s.duckdb", memory_limit_mib=96) as store:
        assert store.query("SELECT current_setting('memory_limit') AS m")["m"].to_list() == [
            "96.0 MiB"
        ]


def test_the_pipeline_opens_its_store_with_the_configured_limit(tmp_path: Path) -> None:
    config = SlamonConfig.model_validate(
        {"store": {"path": str(tmp_path / "s.duckdb"), "memory_limit_mib": 80}}
    )
    service = PipelineService(config, EmbeddedTransport(), CollectorRegistry())
    try:
        assert isinstance(service.store, EventStore)
        limit = service.store.query("SELECT current_setting('memory_limit') AS m")
        assert limit["m"].to_list() == ["80.0 MiB"]
    finally:
        service.close()


def test_the_memory_limit_setting_is_validated() -> None:
    assert StoreConfig().memory_limit_mib == 256
    for bad in (63, 0, -1, "lots"):
        with pytest.raises(ValidationError, match="memory_limit_mib"):
            StoreConfig.model_validate({"memory_limit_mib": bad})


def test_running_out_of_duckdb_memory_is_one_store_error_line(tmp_path: Path) -> None:
    with EventStore(tmp_path / "s.duckdb", memory_limit_mib=64) as store:
        # A list aggregate cannot spill to disk: 20 M integers need ~160 MB.
        with pytest.raises(StoreError) as caught:
            store.query("SELECT list(range) FROM range(20000000)")
        # The store still works after it.
        assert store.write_batch([probe(1)]) == 1
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("a query failed in ")
    assert "Out of Memory" in message
    assert message.endswith("DuckDB may use 64 MiB here (store.memory_limit_mib)")


def test_new_event_ids_are_not_confused_with_stored_ones_of_other_types(
    store: EventStore,
) -> None:
    capacity = new_event(
        "slamon.capacity.v1",
        "checkout",
        {"resource": "cpu", "used": 1.0, "capacity": 2.0, "unit": "cores"},
        source="test",
        time=T0,
        id="cap-1",
    )
    assert store.write_batch([capacity, change(timedelta(0))]) == 2
    assert store.write_batch([change(timedelta(hours=5)), capacity]) == 0
    assert store.counts_by_type() == {"slamon.capacity.v1": 1, "slamon.change.v1": 1}


@settings(max_examples=200, deadline=None)
# Instants within ten hours, so that most batches have more wide gaps than ranges.
@given(
    st.lists(st.tuples(st.integers(0, 600), st.integers(0, 59_999_999)), min_size=1, max_size=60)
)
def test_a_batch_is_looked_up_in_ranges_split_at_its_widest_gaps(
    offsets: list[tuple[int, int]],
) -> None:
    times = [T0 + timedelta(minutes=minute, microseconds=us) for minute, us in offsets]
    ranges = _time_ranges(pa.array(times, pa.timestamp("us", tz="UTC")))
    instants = sorted(set(times))
    gaps = [b - a for a, b in pairwise(instants)]
    wide = sorted(gap for gap in gaps if gap > timedelta(minutes=10))
    assert len(ranges) == min(8, 1 + len(wide))
    assert ranges[0][0] == instants[0] and ranges[-1][1] == instants[-1]
    assert all(any(start <= t <= end for start, end in ranges) for t in times)
    # Between ranges lie exactly the widest gaps: no range spans a wider one.
    split = [after[0] - before[1] for before, after in pairwise(ranges)]
    assert sorted(split) == wide[len(wide) - len(split) :]
    assert all(start in instants and end in instants for start, end in ranges)
