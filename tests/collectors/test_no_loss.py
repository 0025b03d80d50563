"""No event is lost while Kafka is down: the publisher spools, then drains in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from collectors.publisher import SpooledPublisher
from collectors.spool import Spool, SpoolFullError
from pipeline.transport import KAFKA_CLIENTS, Backoff, KafkaTransport
from sla.events import CloudEvent, EventType, new_event, parse_event, topic_for

if TYPE_CHECKING:
    from conftest import LocalBroker

AT = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
# Short enough that an unreachable broker is noticed within about a second.
QUICK = Backoff(deadline_s=1.0, attempt_timeout_s=0.5, initial_s=0.1, max_s=0.5)
SERVICES = [f"svc-{n}" for n in range(5)]


def probe(n: int) -> CloudEvent:
    """The n-th event of a stream spread round robin over the services; the same in any process."""
    return new_event(
        EventType.PROBE,
        SERVICES[n % len(SERVICES)],
        {"check": "health", "ok": True, "latency_ms": 10.0},
        source="collector/test",
        time=AT + timedelta(milliseconds=n),
        id=f"event-{n:05d}",
    )


def publisher(
    bootstrap: str, prefix: str, spool_dir: Path, client: str = "kafka-python", **spool: int
) -> SpooledPublisher:
    transport = KAFKA_CLIENTS[client](bootstrap, partitions=3, backoff=QUICK)
    return SpooledPublisher(
        transport.producer,
        prefix,
        Spool(spool_dir, **spool),
        flush_interval_s=0.2,
        flush_timeout_s=1.0,
        drain_flush_timeout_s=3.0,
        retry_interval_s=0.3,
    )


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    give_up_at = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > give_up_at:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.1)


def consume(bootstrap: str, topic: str, expected: set[str], timeout_s: float) -> list[CloudEvent]:
    """Every event of `topic` in partition order, once all `expected` ids were seen."""
    consumer = KafkaTransport(bootstrap, backoff=QUICK).consumer(f"check-{topic}", [topic])
    events: list[CloudEvent] = []
    give_up_at = time.monotonic() + timeout_s
    try:
        while not expected <= {event.id for event in events}:
            if time.monotonic() > give_up_at:
                break
            batch = consumer.poll_batch(1000, 1.0)
            events += [parse_event(message.value) for message in batch]
    finally:
        consumer.close()
    return events


def assert_all_once_in_order(events: list[CloudEvent], published: list[CloudEvent]) -> None:
    """Every published id arrived; per service, first arrivals keep publishing order."""
    position = {event.id: n for n, event in enumerate(published)}
    missing = set(position) - {event.id for event in events}
    assert not missing, f"{len(missing)} of {len(published)} events lost"
    first_seen: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for event in events:
        if event.id not in seen:
            seen.add(event.id)
            first_seen[event.subject].append(position[event.id])
    for service, order in first_seen.items():
        assert order == sorted(order), f"{service} events out of order"


def test_publish_durably_returns_once_the_events_are_fsynced_to_the_spool(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    # Nothing listens on the port: Kafka is unreachable from the first send.
    sink = publisher(f"127.0.0.1:{free_port()}", "nl", tmp_path)
    events = [probe(n) for n in range(3)]
    sink.publish_durably(events)
    # Back from the call, each event is in a spool file already (read with plain file I/O).
    on_disk = b"".join(path.read_bytes() for path in tmp_path.glob("*.seg"))
    assert all(event.to_json() in on_disk for event in events)
    assert (sink.spooling, sink.spooled, sink.spool_records) == (True, 3, 3)
    sink.close()


def test_a_full_spool_refuses_durable_events_and_counts_lost_probes(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    one = len(probe(0).to_json())
    # Room for one event's frame (payload plus about 100 bytes of framing), not two.
    sink = publisher(f"127.0.0.1:{free_port()}", "nl", tmp_path, max_bytes=one + 100)
    sink.publish_durably([probe(0)])
    with pytest.raises(SpoolFullError):
        sink.publish_durably([probe(1)])
    # A probe result cannot be refused to anyone: it is counted, not raised.
    sink.publish(probe(2))
    assert (sink.spooled, sink.lost) == (1, 2)
    sink.close()


@pytest.mark.kafka
def test_a_broker_restart_mid_stream_loses_no_event(
    kafka_broker: LocalBroker, kafka_client: str, tmp_path: Path, unique_name: str
) -> None:
    bootstrap = kafka_broker.bootstrap
    topic = topic_for(unique_name, "availability")
    KafkaTransport(bootstrap, partitions=3).ensure_topics([topic])
    sink = publisher(bootstrap, unique_name, tmp_path / "spool", kafka_client)

    def outage() -> None:
        time.sleep(2.0)
        kafka_broker.stop()
        time.sleep(3.0)
        kafka_broker.start()

    # 2,000 events at 200 a second: the stream runs for 10 s, across the outage.
    events = [probe(n) for n in range(2000)]
    broker_control = threading.Thread(target=outage)
    broker_control.start()
    started = time.monotonic()
    for n, event in enumerate(events):
        time.sleep(max(0.0, started + n / 200 - time.monotonic()))
        sink.publish(event)
    broker_control.join()
    wait_until(lambda: not sink.spooling, 60, "the spool to drain")
    sink.flush()
    assert sink.spooled > 0, "the outage never made the publisher spool"
    assert (sink.drained, sink.spool_records, sink.lost) == (sink.spooled, 0, 0)
    sink.close()
    print(f"spooled and drained {sink.spooled} of {len(events)} events")

    received = consume(bootstrap, topic, {event.id for event in events}, timeout_s=30)
    assert_all_once_in_order(received, events)


# Publishes COUNT events durably to an unreachable broker, then waits to be killed.
KILLED_PUBLISHER = """
import sys, time
from pathlib import Path
from tests_no_loss_helpers import publisher, probe
sink = publisher(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
sink.publish_durably([probe(n) for n in range(int(sys.argv[4]))])
print("spooled", flush=True)
time.sleep(600)
"""


@pytest.mark.kafka
def test_a_publisher_killed_with_a_spool_left_drains_it_after_a_restart(
    kafka_bootstrap: str, tmp_path: Path, unique_name: str, free_port: Callable[[], int]
) -> None:
    topic = topic_for(unique_name, "availability")
    KafkaTransport(kafka_bootstrap, partitions=3).ensure_topics([topic])
    spool_dir = tmp_path / "spool"
    # The child imports this module's helpers under a name of its own.
    (tmp_path / "tests_no_loss_helpers.py").symlink_to(Path(__file__))
    unreachable = f"127.0.0.1:{free_port()}"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_PUBLISHER, unreachable, unique_name, str(spool_dir), "300"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "spooled"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()

    # The restarted publisher reaches the broker and sends the spool left behind.
    sink = publisher(kafka_bootstrap, unique_name, spool_dir)
    assert sink.spooling
    wait_until(lambda: not sink.spooling, 30, "the spool to drain")
    assert (sink.drained, sink.spool_records) == (300, 0)
    sink.close()

    events = [probe(n) for n in range(300)]
    received = consume(kafka_bootstrap, topic, {event.id for event in events}, timeout_s=30)
    assert_all_once_in_order(received, events)
