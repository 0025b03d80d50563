"""Bad messages go to the dead-letter topic with reasons in headers; good ones beside them land."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import kafka
import pytest

from pipeline.ingest import (
    MAX_DEAD_LETTER_BYTES,
    ORIGINAL_OFFSET_HEADER,
    ORIGINAL_PARTITION_HEADER,
    ORIGINAL_SIZE_HEADER,
    TRUNCATED_HEADER,
    IngestLoop,
)
from pipeline.store import EventStore
from pipeline.transport import KAFKA_CLIENTS, Backoff, Message, Transport
from sla.config import PipelineConfig
from sla.events import (
    DLQ_ERROR_CODE_HEADER,
    DLQ_ERROR_REASON_HEADER,
    DLQ_ORIGINAL_TOPIC_HEADER,
    REJECTION_CODES,
    dlq_topic,
    new_event,
    topic_for,
)

MAX_EVENT_BYTES = 2048
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def envelope(**changes: Any) -> bytes:
    """A valid probe event as JSON, with top-level fields replaced (None removes one)."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "bad",
        "source": "test",
        "type": "slamon.probe.v1",
        "time": "2026-03-01T12:00:00Z",
        "subject": "checkout",
        "data": {"check": "health", "ok": True, "latency_ms": 3.0},
    }
    event.update(changes)
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


# Each bad message with the code parse_event gives it (see REJECTION_CODES in sla/events.py).
BAD_MESSAGES: list[tuple[bytes, str]] = [
    (b"x" * (MAX_EVENT_BYTES + 1), "too_large"),
    (b"this is not json", "not_json"),
    (b"\xff\xfe\x00 not utf-8", "not_json"),
    (b"", "not_json"),
    (b"[1, 2, 3]", "not_object"),
    (b'"a string"', "not_object"),
    (envelope(specversion="0.3"), "bad_specversion"),
    (envelope(type="slamon.nonsense.v1"), "unknown_type"),
    (envelope(subject=None), "missing_field"),
    (envelope(data={"check": "health", "latency_ms": 3.0}), "missing_field"),  # no `ok`
    (envelope(data={"check": "health", "ok": True, "latency_ms": -1.0}), "invalid_field"),
    (envelope(data={"check": "health", "ok": "yes", "latency_ms": 3.0}), "invalid_field"),
    (envelope(time="2026-03-01T12:00:00"), "naive_time"),
    (
        envelope(
            type="slamon.outage.v1",
            data={"outage_id": "o", "start": "2026-03-01T12:00:00Z", "end": "2026-03-01T11:00:00Z"},
        ),
        "invalid_field",  # ends before it starts
    ),
]


def test_bad_messages_are_dead_lettered_with_reasons_and_good_ones_stored(
    transport: Transport, unique_name: str
) -> None:
    store = EventStore(":memory:")
    pipeline = PipelineConfig(
        group_id=unique_name, batch_size=8, poll_timeout=0.3, max_event_bytes=MAX_EVENT_BYTES
    )
    loop = IngestLoop(transport, store, pipeline, unique_name)
    availability = topic_for(unique_name, "availability")
    producer = transport.producer()
    # Good and bad alternate, so every batch of 8 mixes both.
    for n, (bad, _) in enumerate(BAD_MESSAGES):
        good = new_event(
            "slamon.status.v1",
            "checkout",
            {"state": "up" if n % 2 else "down"},
            source="test",
            time=T0 + timedelta(minutes=n),
            id=f"good-{n}",
        )
        producer.send(availability, "checkout", good.to_json())
        producer.send(availability, "checkout", bad)
    producer.flush(10)

    total = 2 * len(BAD_MESSAGES)
    polled = rejected = 0
    deadline = time.monotonic() + 30
    while polled < total and time.monotonic() < deadline:
        result = loop.run_once()
        polled += result.polled
        rejected += sum(result.rejected_by_code.values())
    loop.close()
    assert (polled, rejected) == (total, len(BAD_MESSAGES))
    assert store.counts_by_type() == {"slamon.status.v1": len(BAD_MESSAGES)}

    consumer = transport.consumer(f"{unique_name}-dlq-reader", [dlq_topic(unique_name)])
    letters: list[Message] = []
    deadline = time.monotonic() + 30
    while len(letters) < len(BAD_MESSAGES) and time.monotonic() < deadline:
        letters.extend(consumer.poll_batch(100, 0.5))
    consumer.close()

    assert sorted(m.value for m in letters) == sorted(bad for bad, _ in BAD_MESSAGES)
    expected_code = dict(BAD_MESSAGES)
    for letter in letters:
        headers = dict(letter.headers)
        assert letter.key == b"checkout"
        assert headers[DLQ_ERROR_CODE_HEADER].decode() == expected_code[letter.value]
        assert headers[DLQ_ERROR_REASON_HEADER]  # a human-readable reason
        assert headers[DLQ_ORIGINAL_TOPIC_HEADER] == availability.encode()
        # Every message went to checkout's one partition, good and bad alternating from
        # offset 0, so the bad ones sit at the odd offsets 1, 3, 5, ...
        assert int(headers[ORIGINAL_OFFSET_HEADER]) % 2 == 1
        assert int(headers[ORIGINAL_PARTITION_HEADER]) in range(3)
    # Between them the bad messages hit every rejection code there is.
    assert {dict(m.headers)[DLQ_ERROR_CODE_HEADER].decode() for m in letters} == set(
        REJECTION_CODES
    )
    too_large = next(m for m in letters if m.value == BAD_MESSAGES[0][0])
    assert dict(too_large.headers)[DLQ_ERROR_REASON_HEADER] == (
        b"message is 2049 bytes, over the limit of 2048 bytes"
    )


def create_topic(bootstrap: str, topic: str, max_message_bytes: int) -> None:
    """Create `topic` with one partition and its own limit on a record batch."""
    admin = kafka.KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            {
                topic: {
                    "num_partitions": 1,
                    "replication_factor": 1,
                    "configs": {"max.message.bytes": str(max_message_bytes)},
                }
            },
            wait_for_metadata=True,
        )
    finally:
        admin.close()


def good_probe(n: int) -> bytes:
    """A valid probe event numbered `n`."""
    return new_event(
        "slamon.probe.v1",
        "checkout",
        {"check": "health", "ok": True, "latency_ms": 3.0},
        source="test",
        time=T0 + timedelta(seconds=n),
        id=f"good-{n}",
    ).to_json()


def ingest_all(loop: IngestLoop, polled: int) -> tuple[int, int]:
    """Run cycles until `polled` messages went through; return (stored, rejected)."""
    stored = rejected = seen = 0
    deadline = time.monotonic() + 60
    while seen < polled and time.monotonic() < deadline:
        result = loop.run_once()
        seen += result.polled
        stored += result.stored
        rejected += sum(result.rejected_by_code.values())
    return stored, rejected


def read_letters(transport: Transport, prefix: str, expected: int) -> list[Message]:
    """The first `expected` letters of the dead-letter topic (fewer after 30 s)."""
    consumer = transport.consumer(f"{prefix}-dlq-reader", [dlq_topic(prefix)])
    letters: list[Message] = []
    deadline = time.monotonic() + 30
    while len(letters) < expected and time.monotonic() < deadline:
        letters.extend(consumer.poll_batch(100, 0.5))
    consumer.close()
    return letters


@pytest.mark.kafka
def test_bad_messages_too_large_to_dead_letter_are_truncated_and_committed(
    kafka_bootstrap: str, kafka_client: str, unique_name: str
) -> None:
    availability = topic_for(unique_name, "availability")
    # Only a topic with a higher limit can hold a 2 MB message at all.
    create_topic(kafka_bootstrap, availability, 4 * 1024 * 1024)
    # 1,048,376 bytes fit Kafka's default 1 MiB limit, but not with dead-letter headers added.
    sizes = [2_000_000, 1_048_376]
    bad = [bytes([ord("a") + n]) * size for n, size in enumerate(sizes)]
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=4 << 20)
    for value in [good_probe(0), bad[0], good_probe(1), bad[1], good_probe(2)]:
        producer.send(availability, key=b"checkout", value=value)
    producer.flush(30)
    producer.close()

    transport = KAFKA_CLIENTS[kafka_client](kafka_bootstrap, backoff=Backoff(deadline_s=30.0))
    store = EventStore(":memory:")
    loop = IngestLoop(transport, store, PipelineConfig(group_id=unique_name), unique_name)
    assert ingest_all(loop, 5) == (3, 2)
    loop.close()
    assert store.counts_by_type() == {"slamon.probe.v1": 3}

    # The offsets were committed: a restarted loop of the group finds nothing left.
    again = IngestLoop(transport, store, PipelineConfig(group_id=unique_name), unique_name)
    assert again.run_once().polled == 0
    again.close()

    letters = read_letters(transport, unique_name, 2)
    assert len(letters) == 2
    for letter, value in zip(sorted(letters, key=lambda m: m.value), bad, strict=True):
        headers = dict(letter.headers)
        assert letter.value == value[:MAX_DEAD_LETTER_BYTES]
        assert headers[TRUNCATED_HEADER] == b"true"
        assert headers[ORIGINAL_SIZE_HEADER] == str(len(value)).encode()
        assert headers[DLQ_ERROR_CODE_HEADER] == b"too_large"


@pytest.mark.kafka
def test_a_dead_letter_the_broker_refuses_is_sent_without_its_body(
    kafka_bootstrap: str, kafka_client: str, unique_name: str
) -> None:
    # A dead-letter topic that refuses any record batch over 4 KiB.
    create_topic(kafka_bootstrap, dlq_topic(unique_name), 4096)
    transport = KAFKA_CLIENTS[kafka_client](kafka_bootstrap, backoff=Backoff(deadline_s=30.0))
    store = EventStore(":memory:")
    loop = IngestLoop(transport, store, PipelineConfig(group_id=unique_name), unique_name)
    not_json = b"<" * 10_000  # under the 512 KiB truncation, over the topic's limit
    producer = transport.producer()
    for value in [good_probe(0), not_json, good_probe(1)]:
        producer.send(topic_for(unique_name, "availability"), "checkout", value)
    producer.flush(10)
    producer.close()

    assert ingest_all(loop, 3) == (2, 1)
    assert loop.run_once().polled == 0
    loop.close()
    [letter] = read_letters(transport, unique_name, 1)
    headers = dict(letter.headers)
    assert letter.value == b""
    assert (headers[TRUNCATED_HEADER], headers[ORIGINAL_SIZE_HEADER]) == (b"true", b"10000")
    assert headers[DLQ_ERROR_CODE_HEADER] == b"not_json"
