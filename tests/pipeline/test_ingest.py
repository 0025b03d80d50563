"""The ingest loop over Kafka and the embedded transport: store, commit, redeliver, stop."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from pipeline.heap import collection_paused
from pipeline.ingest import BatchResult, IngestLoop
from pipeline.store import EventStore
from pipeline.transport import (
    KAFKA_CLIENTS,
    Backoff,
    Consumer,
    EmbeddedTransport,
    Message,
    Producer,
    Transport,
)
from sla.config import PipelineConfig
from sla.errors import StoreError, TransportError
from sla.events import CloudEvent, new_event, topic_for

if TYPE_CHECKING:
    from conftest import LocalBroker


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def config(group: str) -> PipelineConfig:
    """Small batches and short polls, so tests see several cycles quickly."""
    return PipelineConfig(group_id=group, batch_size=50, poll_timeout=0.3)


def probes(services: list[str], count: int) -> list[CloudEvent]:
    """`count` probe results per service, one per second from T0."""
    return [
        new_event(
            "slamon.probe.v1",
            service,
            {"check": "health", "ok": n % 5 != 0, "latency_ms": 20.0},
            source="collector/http/health",
            time=T0 + timedelta(seconds=n),
            id=f"{service}-{n}",
        )
        for service in services
        for n in range(count)
    ]


def publish(transport: Transport, prefix: str, events: list[CloudEvent]) -> None:
    """Send events to their family topics keyed by service, as collectors do."""
    producer = transport.producer()
    for event in events:
        producer.send(topic_for(prefix, event.type), event.subject, event.to_json())
    producer.flush(10)
    producer.close()


def run_until(loop: IngestLoop, polled: int, timeout_s: float = 30.0) -> list[BatchResult]:
    """Run cycles until `polled` messages went through (or the timeout), then one more."""
    results: list[BatchResult] = []
    deadline = time.monotonic() + timeout_s
    while sum(r.polled for r in results) < polled and time.monotonic() < deadline:
        results.append(loop.run_once())
    results.append(loop.run_once())
    return results


def test_events_are_stored_once_and_offsets_committed(
    transport: Transport, unique_name: str
) -> None:
    store = EventStore(":memory:")
    seen: list[BatchResult] = []
    loop = IngestLoop(transport, store, config(unique_name), unique_name, on_batch=seen.append)
    events = probes(["checkout", "search", "o'brien"], 40)
    publish(transport, unique_name, events)

    results = run_until(loop, 120)
    assert sum(r.polled for r in results) == 120
    assert sum(r.stored for r in results) == 120
    assert all(r.duplicates == 0 and r.rejected_by_code == {} for r in results)
    assert sum(r.ingested_by_type.get("slamon.probe.v1", 0) for r in results) == 120
    assert max(r.polled for r in results) <= 50  # batch_size
    assert seen == results  # on_batch saw every cycle, the empty last one too
    loop.close()

    # The same events published again (a collector retrying) are polled but not stored twice.
    publish(transport, unique_name, events[:30])
    again = IngestLoop(transport, store, config(unique_name), unique_name)
    replay = run_until(again, 30)
    # Committed offsets: the new member of the group polls only the 30 republished messages.
    assert sum(r.polled for r in replay) == 30
    assert sum(r.stored for r in replay) == 0
    assert sum(r.duplicates for r in replay) == 30
    again.close()
    assert store.counts_by_type() == {"slamon.probe.v1": 120}


def test_a_store_failure_commits_nothing_and_the_batch_is_redelivered(
    transport: Transport, unique_name: str
) -> None:
    broken = EventStore(":memory:")
    broken.close()
    failing = IngestLoop(transport, broken, config(unique_name), unique_name)
    publish(transport, unique_name, probes(["checkout"], 20))
    with pytest.raises(StoreError):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            failing.run_once()
    failing.close()

    # A restarted loop in the same group gets all 20 again, the failed batch included.
    store = EventStore(":memory:")
    restarted = IngestLoop(transport, store, config(unique_name), unique_name)
    results = run_until(restarted, 20)
    restarted.close()
    assert sum(r.polled for r in results) == 20
    assert store.counts_by_type() == {"slamon.probe.v1": 20}


def test_run_returns_when_stop_is_set(unique_name: str) -> None:
    transport = EmbeddedTransport()
    store = EventStore(":memory:")
    loop = IngestLoop(transport, store, config(unique_name), unique_name)
    stop = threading.Event()
    runner = threading.Thread(target=loop.run, args=(stop,))
    runner.start()
    publish(transport, unique_name, probes(["checkout"], 10))
    deadline = time.monotonic() + 10
    while store.counts_by_type() != {"slamon.probe.v1": 10} and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    runner.join(timeout=5)
    assert not runner.is_alive()
    assert store.counts_by_type() == {"slamon.probe.v1": 10}


@pytest.mark.kafka
def test_the_loop_rides_out_a_broker_restart(
    kafka_broker: LocalBroker, kafka_client: str, unique_name: str
) -> None:
    transport = KAFKA_CLIENTS[kafka_client](
        kafka_broker.bootstrap, backoff=Backoff(deadline_s=60.0)
    )
    store = EventStore(":memory:")
    loop = IngestLoop(transport, store, config(unique_name), unique_name)
    publish(transport, unique_name, probes(["checkout"], 10))
    assert sum(r.stored for r in run_until(loop, 10)) == 10

    kafka_broker.stop()
    # While the broker is gone, cycles come back empty instead of failing.
    assert [loop.run_once().polled for _ in range(3)] == [0, 0, 0]
    kafka_broker.start()  # same port, same data

    publish(transport, unique_name, probes(["search"], 10))
    assert sum(r.stored for r in run_until(loop, 10, timeout_s=60)) == 10
    loop.close()
    assert store.counts_by_type() == {"slamon.probe.v1": 20}


class DelegatingConsumer:
    """A real consumer behind a wrapper; test doubles override what they watch or break."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def poll_batch(self, max_records: int, timeout_s: float) -> list[Message]:
        return self._consumer.poll_batch(max_records, timeout_s)

    def commit(self) -> None:
        self._consumer.commit()

    def assignment(self) -> frozenset[int]:
        return self._consumer.assignment()

    def close(self) -> None:
        self._consumer.close()


class CommitFailsOnce(DelegatingConsumer):
    """A real consumer whose first commit raises, as when the broker drops after the store."""

    def __init__(self, consumer: Consumer) -> None:
        super().__init__(consumer)
        self.failed = False

    def commit(self) -> None:
        if not self.failed:
            self.failed = True
            raise TransportError("commit lost: broker gone")
        super().commit()


class WrappedTransport:
    """A real transport whose consumers come wrapped by `wrap` (a test double's class)."""

    def __init__(self, transport: Transport, wrap: Callable[[Consumer], Consumer]) -> None:
        self._transport = transport
        self._wrap = wrap
        self.consumers: list[Consumer] = []

    def producer(self, *, idempotent: bool = True) -> Producer:
        return self._transport.producer(idempotent=idempotent)

    def consumer(
        self, group_id: str, topics: list[str], *, instance_id: str | None = None
    ) -> Consumer:
        consumer = self._transport.consumer(group_id, topics, instance_id=instance_id)
        self.consumers.append(self._wrap(consumer))
        return self.consumers[-1]

    def ensure_topics(self, topics: list[str]) -> None:
        self._transport.ensure_topics(topics)


def wrapped_loop(
    transport: Transport, name: str, wrap: Callable[[Consumer], Consumer]
) -> tuple[IngestLoop, EventStore, WrappedTransport]:
    """A loop into a fresh in-memory store whose consumer is wrapped by `wrap`."""
    store = EventStore(":memory:")
    wrapped = WrappedTransport(transport, wrap)
    return IngestLoop(wrapped, store, config(name), name), store, wrapped


def test_a_batch_stored_but_not_committed_is_redelivered_and_counted_as_duplicates(
    transport: Transport, unique_name: str
) -> None:
    loop, store, _ = wrapped_loop(transport, unique_name, CommitFailsOnce)
    publish(transport, unique_name, probes(["checkout"], 20))
    # Cycles until the first non-empty batch: the store commits it, the offset commit fails.
    with pytest.raises(TransportError, match="commit lost"):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            loop.run_once()
    loop.close()
    stored_before = store.counts_by_type().get("slamon.probe.v1", 0)
    assert 0 < stored_before <= 20  # one batch of at most batch_size = 50

    # The restarted loop gets that batch again: all 20 polled, only the rest is new.
    restarted = IngestLoop(transport, store, config(unique_name), unique_name)
    results = run_until(restarted, 20)
    restarted.close()
    assert sum(r.polled for r in results) == 20
    assert sum(r.duplicates for r in results) == stored_before
    assert sum(r.stored for r in results) == 20 - stored_before
    assert store.counts_by_type() == {"slamon.probe.v1": 20}


def test_the_collector_pause_restores_what_it_found() -> None:
    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()  # someone else's pause is not ended early
    finally:
        gc.enable()


class CommitWatcher(DelegatingConsumer):
    """A real consumer that notes, at each commit, whether the collector runs and how many
    parsed events are still alive."""

    def __init__(self, consumer: Consumer) -> None:
        super().__init__(consumer)
        self.seen: list[tuple[bool, int]] = []

    def commit(self) -> None:
        self.seen.append((gc.isenabled(), live_events()))
        super().commit()


def live_events() -> int:
    """How many CloudEvent objects the process holds."""
    return sum(isinstance(obj, CloudEvent) for obj in gc.get_objects())


def test_the_collector_runs_at_commit_and_finds_the_batch_freed(
    transport: Transport, unique_name: str
) -> None:
    # Resuming the collector with a batch's events alive made it scan them all, every batch.
    loop, _, watched = wrapped_loop(transport, unique_name, CommitWatcher)
    publish(transport, unique_name, probes(["checkout", "billing"], 60))
    gc.collect()  # earlier tests' garbage, which a collection could free mid-test
    before = live_events()
    results = run_until(loop, 120)
    loop.close()
    assert sum(r.stored for r in results) == 120
    (watcher,) = watched.consumers
    assert isinstance(watcher, CommitWatcher)
    assert len(watcher.seen) >= 3  # batches of at most 50
    assert watcher.seen == [(True, before)] * len(watcher.seen)
