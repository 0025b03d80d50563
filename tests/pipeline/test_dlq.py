"""Bad messages go to the dead-letter topic with reasons in headers; good ones beside them land."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.ingest import ORIGINAL_OFFSET_HEADER, ORIGINAL_PARTITION_HEADER, IngestLoop
from pipeline.store import EventStore
from pipeline.transport import Message, Transport
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
