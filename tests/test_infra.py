"""The test infrastructure itself: the local Kafka broker and the Prometheus binaries."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

if TYPE_CHECKING:
    from conftest import LocalBroker

Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


def create_topic(bootstrap: str, topic: str) -> None:
    """Create a one-partition topic (the broker does not auto-create topics)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, records: list[Record]) -> None:
    """Send records with the producer settings slamon uses: idempotent, acks from all replicas."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        for key, value, headers in records:
            producer.send(topic, key=key, value=value, headers=headers).get(timeout=30)
    finally:
        producer.close()


def consume(bootstrap: str, topic: str, group: str, expected: int) -> list[Record]:
    """Read `expected` records from the start of the topic and commit them for `group`."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    received: list[Record] = []
    deadline = time.monotonic() + 30
    try:
        while len(received) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                received.extend((msg.key, msg.value, list(msg.headers)) for msg in batch)
        consumer.commit()
    finally:
        consumer.close()
    return received


@pytest.mark.kafka
def test_broker_round_trip(kafka_bootstrap: str, unique_name: str) -> None:
    records: list[Record] = [
        (b"checkout", b'{"n": 1}', [("slamon-test", b"a")]),
        (b"checkout", b'{"n": 2}', []),
        (None, b'{"n": 3}', []),
    ]
    create_topic(kafka_bootstrap, unique_name)
    produce(kafka_bootstrap, unique_name, records)

    # One partition keeps the send order; keys and headers come back unchanged.
    assert consume(kafka_bootstrap, unique_name, f"{unique_name}-g", expected=3) == records


@pytest.mark.kafka
def test_broker_restart_keeps_messages(kafka_broker: LocalBroker, unique_name: str) -> None:
    records: list[Record] = [(b"checkout", b"before restart", [])]
    create_topic(kafka_broker.bootstrap, unique_name)
    produce(kafka_broker.bootstrap, unique_name, records)
    bootstrap_before = kafka_broker.bootstrap

    kafka_broker.stop()
    assert kafka_broker.start() == bootstrap_before

    # A fresh group reads from the earliest offset, so it sees what was written before the stop.
    assert consume(kafka_broker.bootstrap, unique_name, f"{unique_name}-g", expected=1) == records


@pytest.mark.prometheus
@pytest.mark.parametrize("name", ["prometheus", "promtool", "alertmanager", "amtool"])
def test_prometheus_binary_prints_version(prometheus_binaries: dict[str, Path], name: str) -> None:
    done = subprocess.run(
        [str(prometheus_binaries[name]), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    # The Prometheus tools print e.g. "promtool, version 2.42.0+ds (branch: ...)", some on stderr.
    assert (done.stdout + done.stderr).startswith(f"{name}, version ")
