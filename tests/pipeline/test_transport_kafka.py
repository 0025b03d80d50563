"""The transport contract on the real Kafka broker, and on the embedded transport for parity."""

from __future__ import annotations

import gc
import logging
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

import kafka
import pytest

from pipeline.transport import (
    KAFKA_CLIENTS,
    Backoff,
    Consumer,
    KafkaTransport,
    Message,
    Producer,
    Transport,
    open_transport,
)
from sla.config import KafkaTransportConfig
from sla.errors import TransportError

if TYPE_CHECKING:
    from conftest import LocalBroker

PARTITIONS = 3


def drain(consumer: Consumer, expected: int, timeout_s: float = 30.0) -> list[Message]:
    """Poll until `expected` records arrived (or the timeout), then once more for strays."""
    received: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(received) < expected and time.monotonic() < deadline:
        received.extend(consumer.poll_batch(1000, 0.5))
    received.extend(consumer.poll_batch(1000, 0.2))
    return received


def test_round_trip_keeps_each_key_in_one_partition_in_order(
    transport: Transport, unique_name: str
) -> None:
    topic = f"{unique_name}.availability"
    transport.ensure_topics([topic])
    # Service ids as keys, one with a quote; 6 events each, numbered to check the order.
    services = ["checkout", "search", "o'brien-api", "billing", "auth"]
    producer = transport.producer()
    for seq in range(6):
        for service in services:
            producer.send(topic, service, f"{service}#{seq}".encode(), [("seq", str(seq).encode())])
    producer.flush(10)
    producer.close()

    consumer = transport.consumer(f"{unique_name}-g", [topic])
    received = drain(consumer, 30)
    consumer.close()

    assert len(received) == 30
    by_key: dict[bytes, list[Message]] = defaultdict(list)
    for message in received:
        assert message.key is not None
        by_key[message.key].append(message)
    assert sorted(by_key) == sorted(s.encode() for s in services)
    for key, messages in by_key.items():
        assert len({m.partition for m in messages}) == 1, key
        assert all(m.topic == topic and 0 <= m.partition < PARTITIONS for m in messages)
        # Within a partition the offsets grow in send order: values come back as #0..#5.
        ordered = sorted(messages, key=lambda m: m.offset)
        assert [m.value for m in ordered] == [f"{key.decode()}#{i}".encode() for i in range(6)]
        assert [m.headers for m in ordered] == [[("seq", str(i).encode())] for i in range(6)]


def test_records_land_in_the_partition_the_transport_names_for_their_key(
    transport: Transport, unique_name: str
) -> None:
    # Both Kafka clients place keys as the Java client does, so mixed processes agree.
    topic = f"{unique_name}.availability"
    transport.ensure_topics([topic])
    keys = [f"svc-{n}" for n in range(30)]
    producer = transport.producer()
    for key in keys:
        producer.send(topic, key, key.encode())
    producer.flush(10)
    consumer = transport.consumer(f"{unique_name}-g", [topic])
    received = drain(consumer, len(keys))
    consumer.close()
    assert sorted(m.value for m in received) == sorted(k.encode() for k in keys)
    assert all(m.partition == transport.partition_of(m.value.decode()) for m in received)
    assert len({m.partition for m in received}) == PARTITIONS


def test_ensure_topics_is_idempotent_and_tolerates_races(
    transport: Transport,
    unique_name: str,
    in_threads: Callable[[Callable[[], object], int], list[BaseException]],
) -> None:
    topics = [f"{unique_name}.availability", f"{unique_name}.dlq"]
    transport.ensure_topics(topics)
    transport.ensure_topics(topics)
    errors = in_threads(lambda: transport.ensure_topics([*topics, f"{unique_name}.tickets"]), 3)
    assert errors == []

    producer = transport.producer()
    producer.send(f"{unique_name}.tickets", "checkout", b"x")
    producer.flush(10)
    consumer = transport.consumer(f"{unique_name}-g", [f"{unique_name}.tickets"])
    assert [m.value for m in drain(consumer, 1)] == [b"x"]
    consumer.close()


def test_commit_decides_what_the_next_member_of_the_group_sees(
    transport: Transport, unique_name: str
) -> None:
    topic = f"{unique_name}.availability"
    group = f"{unique_name}-g"
    transport.ensure_topics([topic])
    producer = transport.producer()
    for i in range(10):
        producer.send(topic, f"svc-{i % 4}", f"old-{i}".encode())
    producer.flush(10)

    first = transport.consumer(group, [topic])
    assert len(drain(first, 10)) == 10
    first.commit()
    first.close()

    for i in range(5):
        producer.send(topic, f"svc-{i % 4}", f"new-{i}".encode())
    producer.flush(10)

    # After the commit a new member sees only the 5 records produced since.
    second = transport.consumer(group, [topic])
    seen = drain(second, 5)
    assert sorted(m.value for m in seen) == sorted(f"new-{i}".encode() for i in range(5))
    second.close()  # without commit

    # Nothing was committed by the second member: the third one gets the same 5 again.
    third = transport.consumer(group, [topic])
    again = drain(third, 5)
    assert sorted(m.value for m in again) == sorted(m.value for m in seen)
    third.commit()
    third.close()

    # Another group has offsets of its own and reads all 15 from the start.
    other = transport.consumer(f"{unique_name}-other", [topic])
    assert len(drain(other, 15)) == 15
    other.close()
    producer.close()


def test_poll_batch_returns_at_most_max_records(transport: Transport, unique_name: str) -> None:
    topic = f"{unique_name}.capacity"
    transport.ensure_topics([topic])
    producer = transport.producer()
    for i in range(50):
        producer.send(topic, "db", str(i).encode())
    producer.flush(10)
    consumer = transport.consumer(f"{unique_name}-g", [topic])
    batches: list[int] = []
    deadline = time.monotonic() + 30
    while sum(batches) < 50 and time.monotonic() < deadline:
        batch = consumer.poll_batch(7, 0.5)
        if batch:
            batches.append(len(batch))
    consumer.close()
    assert sum(batches) == 50
    assert max(batches) <= 7


@pytest.mark.kafka
def test_ensure_topics_creates_the_configured_partitions(
    kafka_bootstrap: str, kafka_client: str, unique_name: str
) -> None:
    topic = f"{unique_name}.changes"
    KAFKA_CLIENTS[kafka_client](kafka_bootstrap, partitions=5).ensure_topics([topic])
    # A topic that exists keeps its partitions when asked for again with another count.
    KAFKA_CLIENTS[kafka_client](kafka_bootstrap, partitions=2).ensure_topics([topic])
    admin = kafka.KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    assert len(described["partitions"]) == 5


def test_unreachable_broker_is_retried_then_reported(
    free_port: Callable[[], int], kafka_client: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on a fresh free port; 0.5 s attempts within a 2 s deadline.
    port = free_port()
    transport = KAFKA_CLIENTS[kafka_client](
        f"127.0.0.1:{port}", backoff=Backoff(deadline_s=2.0, attempt_timeout_s=0.5, initial_s=0.1)
    )
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="pipeline.transport"),
        pytest.raises(TransportError, match="connecting a Kafka producer"),
    ):
        transport.producer()
    elapsed = time.monotonic() - started
    retries = [r for r in caplog.records if r.name == "pipeline.transport.base"]
    # Attempts of 0.5 s separated by 0.1, 0.2, 0.4 s pauses fit 2-3 failures into 2 s.
    assert len(retries) >= 2
    assert 2.0 <= elapsed < 4.0


def test_open_transport_builds_kafka_from_its_config(kafka_client: str) -> None:
    config = KafkaTransportConfig.model_validate(
        {
            "bootstrap": "127.0.0.1:9999",
            "partitions": 4,
            "client_id": "edge",
            "client": kafka_client,
        }
    )
    transport = open_transport(config)
    assert isinstance(transport, KAFKA_CLIENTS[kafka_client])
    assert (transport.bootstrap, transport.partitions, transport.client_id) == (
        "127.0.0.1:9999",
        4,
        "edge",
    )


@pytest.mark.kafka
def test_a_commit_during_a_rebalance_is_logged_not_raised(
    kafka_bootstrap: str, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # kafka-python rejoins inside poll, so its commits can meet a rebalance; librdkafka
    # rejoins on its own thread and commits through it, so this cannot be staged with it.
    topic = f"{unique_name}.availability"
    group = f"{unique_name}-g"
    # A 6 s session (the broker's minimum) heartbeats every 2 s, so the rebalance shows soon.
    transport = KafkaTransport(kafka_bootstrap, partitions=PARTITIONS, session_timeout_s=6)
    transport.ensure_topics([topic])
    producer = transport.producer()
    for i in range(10):
        producer.send(topic, f"svc-{i}", b"x")
    producer.flush(10)
    producer.close()
    member = transport.consumer(group, [topic])
    assert len(drain(member, 10)) == 10
    member.commit()

    # A second member that joins and then stops polling: when a newcomer makes the group
    # rebalance, the broker waits for it to rejoin, so the first member's rejoin (inside its
    # short polls) stays pending and its commits meet RebalanceInProgressError.
    stalled = transport.consumer(group, [topic])
    stalled.poll_batch(100, 8.0)
    newcomer = transport.consumer(group, [topic])
    joining = threading.Thread(target=newcomer.poll_batch, args=(100, 8.0))
    joining.start()
    deadline = time.monotonic() + 20
    with caplog.at_level(logging.WARNING, logger="pipeline.transport.kafka"):
        while time.monotonic() < deadline and "during a rebalance" not in caplog.text:
            member.poll_batch(100, 0.3)
            member.commit()
    joining.join()
    for consumer in (newcomer, stalled, member):
        consumer.close()
    assert "Kafka offsets not committed during a rebalance" in caplog.text


@pytest.mark.kafka
def test_a_discarded_producer_delivers_nothing_once_the_broker_is_back(
    kafka_broker: LocalBroker, kafka_client: str, unique_name: str
) -> None:
    transport = KAFKA_CLIENTS[kafka_client](kafka_broker.bootstrap, partitions=1)
    topic = f"{unique_name}.records"
    transport.ensure_topics([topic])
    kept, dropped = transport.producer(), transport.producer()
    # Each learns where the topic lives first: a send then only queues while the broker is down.
    for producer, name in ((kept, "kept"), (dropped, "dropped")):
        producer.send(topic, "k", f"{name}-before".encode())
        producer.flush(timeout=30)
    kafka_broker.stop()
    for n in range(5):
        kept.send(topic, "k", f"kept-{n}".encode())
        dropped.send(topic, "k", f"dropped-{n}".encode())
    dropped.discard()
    kafka_broker.start()  # same port, same data
    # What a producer left alone does: it delivers the queued records once the broker is back.
    kept.flush(timeout=60)
    kept.close()
    consumer = transport.consumer(f"{unique_name}-check", [topic])
    received = drain(consumer, expected=7, timeout_s=60)
    # The discarded producer had as long to deliver as the kept one; give it longer still.
    received += consumer.poll_batch(1000, 3.0)
    consumer.close()
    assert sorted(m.value.decode() for m in received) == sorted(
        ["kept-before", "dropped-before", *(f"kept-{n}" for n in range(5))]
    )


def test_the_garbage_collector_runs_while_a_poll_waits(
    transport: Transport, unique_name: str
) -> None:
    # Records are taken with the collector paused, but other threads allocate meanwhile: a
    # wait on the broker must leave it on.
    topic = f"{unique_name}.availability"
    transport.ensure_topics([topic])
    consumer = transport.consumer(f"{unique_name}-g", [topic])
    seen: set[bool] = set()
    polling = threading.Event()

    def sample() -> None:
        while polling.is_set():
            seen.add(gc.isenabled())
            time.sleep(0.01)

    polling.set()
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        assert consumer.poll_batch(100, 1.5) == []
    finally:
        polling.clear()
        sampler.join()
    producer = transport.producer()
    producer.send(topic, "checkout", b"{}")
    producer.flush(10)
    producer.close()
    received = drain(consumer, 1)
    consumer.close()
    assert seen == {True}
    assert [m.value for m in received] == [b"{}"]
    assert gc.isenabled()


# A member of `group` that reads the 10 records of `topic`, commits, says so and waits to be
# killed: a crash that leaves no LeaveGroup behind.
STATIC_MEMBER = """
import sys, time
from pipeline.transport import KAFKA_CLIENTS
bootstrap, client, group, topic, instance = sys.argv[1:]
transport = KAFKA_CLIENTS[client](bootstrap, partitions=3, session_timeout_s=60)
member = transport.consumer(group, [topic], instance_id=instance)
read = 0
while read < 10:
    read += len(member.poll_batch(100, 0.5))
member.commit()
print("committed", flush=True)
time.sleep(600)
"""


def static_group(
    bootstrap: str, client: str, name: str, session_timeout_s: int
) -> tuple[Transport, Producer, str, str]:
    """A transport on `client`, a producer, and a fresh topic and group for static members."""
    transport = KAFKA_CLIENTS[client](
        bootstrap, partitions=PARTITIONS, session_timeout_s=session_timeout_s
    )
    topic = f"{name}.availability"
    transport.ensure_topics([topic])
    return transport, transport.producer(), topic, f"{name}-g"


@pytest.mark.kafka
def test_a_static_member_killed_and_restarted_resumes_without_waiting_out_its_session(
    kafka_bootstrap: str, kafka_client: str, unique_name: str
) -> None:
    transport, producer, topic, group = static_group(kafka_bootstrap, kafka_client, unique_name, 60)
    for i in range(10):
        producer.send(topic, f"svc-{i}", f"old-{i}".encode())
    producer.flush(10)
    child = subprocess.Popen(
        [sys.executable, "-c", STATIC_MEMBER, kafka_bootstrap, kafka_client, group, topic, "w1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "committed\n"
    finally:
        child.kill()
        child.wait()
    for i in range(5):
        producer.send(topic, f"svc-{i}", f"new-{i}".encode())
    producer.flush(10)
    producer.close()

    # A new dynamic member would wait out the dead one's 60 s session before the group
    # rebalanced; under the same instance id it takes the partitions over at once.
    restarted = transport.consumer(group, [topic], instance_id="w1")
    seen = drain(restarted, 5, timeout_s=30)
    restarted.close()
    assert sorted(m.value for m in seen) == sorted(f"new-{i}".encode() for i in range(5))


@pytest.mark.kafka
def test_a_second_member_under_the_same_instance_id_fences_the_first(
    kafka_bootstrap: str, kafka_client: str, unique_name: str
) -> None:
    transport, producer, topic, group = static_group(kafka_bootstrap, kafka_client, unique_name, 10)
    producer.send(topic, "svc", b"x")
    producer.flush(10)
    producer.close()
    first = transport.consumer(group, [topic], instance_id="w1")
    assert len(drain(first, 1)) == 1
    second = transport.consumer(group, [topic], instance_id="w1")
    second.poll_batch(100, 3.0)
    # Two processes given one id: the older one stops with an error, not silently.
    with pytest.raises(TransportError, match=r"another consumer joined .* instance id .w1."):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            first.poll_batch(100, 0.5)
            first.commit()
    second.close()
    first.close()
