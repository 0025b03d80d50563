"""Sharded stores: one file per partition, opened and closed with the assignment."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.ingest import IngestLoop
from pipeline.shards import ShardedStore, ShardUnion, shard_files, shard_path
from pipeline.store import EventStore
from pipeline.transport import Backoff, EmbeddedTransport, Message
from pipeline.transport.base import same_partitions
from sla.config import PipelineConfig
from sla.errors import StoreError, StoreInUseError, TransportError
from sla.events import PROBE, TICKET, CloudEvent, new_event, topic_for

START = datetime(2026, 10, 1, tzinfo=UTC)


def probe(service: str, n: int, ok: bool = True) -> CloudEvent:
    """The n-th probe result of `service`, one a minute."""
    data = {"check": "health", "ok": ok, "latency_ms": 5.0}
    return new_event(PROBE, service, data, source="test/probe", time=START + timedelta(minutes=n))


def test_follow_opens_assigned_shards_and_closes_revoked_ones(tmp_path: Path) -> None:
    shards = ShardedStore(tmp_path)
    shards.follow(frozenset({0, 2}))
    assert shards.owned == {0, 2}
    assert sorted(shard_files(tmp_path)) == [0, 2]
    kept = shards.stores()[2]
    shards.follow(frozenset({2, 3}))
    assert shards.owned == {2, 3}
    # The kept shard stays the same open store; the revoked one is closed.
    assert shards.stores()[2] is kept
    assert sorted(shard_files(tmp_path)) == [0, 2, 3]
    # Closed: another process may open it now.
    EventStore(shard_path(tmp_path, 0), read_only=True).close()
    shards.close()


def test_writes_go_to_the_shard_of_their_partition_and_others_are_refused(
    tmp_path: Path,
) -> None:
    shards = ShardedStore(tmp_path)
    shards.follow(frozenset({0, 1}))
    events = [probe("a", 0), probe("b", 0), probe("a", 1)]
    stored = shards.write_batch_by_type(
        events, raw=[e.to_json() for e in events], partitions=[0, 1, 0]
    )
    assert stored == {PROBE: 3}
    assert shards.stores()[0].counts_by_type() == {PROBE: 2}
    assert shards.stores()[1].counts_by_type() == {PROBE: 1}
    assert shards.counts_by_type() == {PROBE: 3}
    # A repeat is stored once, in the same shard.
    assert shards.write_batch_by_type(events[:1], raw=[events[0].to_json()], partitions=[0]) == {}
    with pytest.raises(StoreError, match="no shard open for partition 5"):
        shards.write_batch_by_type([probe("c", 0)], raw=[b"{}"], partitions=[5])
    messages = [Message("t", p, 0, None, b"") for p in (0, 1, 2)]
    assert [m.partition for m in shards.owned_messages(messages)] == [0, 1]
    shards.close()


HOLD_SHARD = """
import sys, time
from pipeline.store import EventStore
store = EventStore(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
store.close()
"""


@contextmanager
def shard_held(path: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the store at `path` open for `seconds`, then exiting."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SHARD, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_a_new_owner_waits_until_the_previous_one_lets_the_shard_go(tmp_path: Path) -> None:
    with shard_held(shard_path(tmp_path, 4), 2) as holder:
        shards = ShardedStore(tmp_path, Backoff(deadline_s=30, initial_s=0.1, max_s=0.5))
        shards.follow(frozenset({4}))
        # Opened only once the holder had exited and released its lock.
        assert holder.poll() is not None
    assert shards.owned == {4}
    shards.close()


def test_a_shard_held_past_the_deadline_is_a_clear_error(tmp_path: Path) -> None:
    with shard_held(shard_path(tmp_path, 1), 30):
        shards = ShardedStore(tmp_path, Backoff(deadline_s=1, initial_s=0.1, max_s=0.2))
        with pytest.raises(TransportError, match=r"opening shard .*partition-001\.duckdb failed"):
            shards.follow(frozenset({1}))
        assert shards.owned == frozenset()


def test_ingest_into_shards_then_read_them_as_one(tmp_path: Path) -> None:
    transport = EmbeddedTransport(partitions=4)
    producer = transport.producer()
    services = [f"svc-{n}" for n in range(12)]
    sent = []
    for n in range(20):
        for service in services:
            event = probe(service, n, ok=n % 7 != 3)
            sent.append(event)
            producer.send(topic_for("t", PROBE), service, event.to_json())
    ticket = new_event(
        TICKET,
        "svc-1",
        {"ticket_id": "T-1", "kind": "incident", "priority": "P1", "status": "new"},
        source="test/tickets",
        time=START,
    )
    producer.send(topic_for("t", TICKET), "svc-1", ticket.to_json())
    shards = ShardedStore(tmp_path / "shards")
    loop = IngestLoop(transport, shards, PipelineConfig(group_id="g", poll_timeout=0.05), "t")
    while loop.run_once().polled:
        pass
    loop.close()
    # Every service's events sit in the shard of the partition its key hashes to.
    for partition, store in shards.stores().items():
        held = {s for (s,) in store.query("SELECT DISTINCT subject FROM events").rows()}
        assert held == {s for s in services if transport.partition_of(s) == partition}
    shards.close()

    union = ShardUnion(tmp_path / "shards")
    assert union.counts_by_type() == {PROBE: len(sent), TICKET: 1}
    ((failed,),) = union.query("SELECT count(*) FROM probes WHERE NOT ok").rows()
    assert failed == 3 * len(services)  # n = 3, 10 and 17
    ((islands,),) = union.query("SELECT count(*) FROM probe_islands").rows()
    assert islands == 7 * len(services)  # ok, failed, ok, failed, ok, failed, ok
    union.close()
    with pytest.raises(StoreError, match="is closed"):
        union.counts_by_type()


def test_reading_shards_needs_some_and_a_free_lock(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no shard stores"):
        ShardUnion(tmp_path)
    with (
        shard_held(shard_path(tmp_path, 0), 30),
        pytest.raises(StoreInUseError, match="in use by running pipeline workers"),
    ):
        ShardUnion(tmp_path)


def test_topics_assigned_unevenly_are_refused() -> None:
    assert same_partitions({"a": {0, 3}, "b": {3, 0}}) == {0, 3}
    assert same_partitions({}) == frozenset()
    with pytest.raises(TransportError, match="not co-partitioned"):
        same_partitions({"a": {0, 3}, "b": {0}})
