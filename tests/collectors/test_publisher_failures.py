"""Delivery failures of the publisher are logged and counted as they happen, not at shutdown."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import kafka
import pytest

from collectors.publisher import EventPublisher
from pipeline.transport import KAFKA_CLIENTS
from sla.errors import TransportError
from sla.events import CloudEvent, EventType, new_event, topic_for

AT = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


def probe(n: int) -> CloudEvent:
    return new_event(
        EventType.PROBE,
        "checkout",
        {"check": "health", "ok": True, "latency_ms": 12.5},
        source="collector/http/checkout-health",
        time=AT + timedelta(seconds=n),
    )


@pytest.fixture
def refusing_publisher(
    kafka_bootstrap: str, kafka_client: str, unique_name: str
) -> Iterator[EventPublisher]:
    """A publisher whose every probe event the broker refuses, as good as a broker that is gone.

    Its availability topic takes at most 100 bytes per record batch, which no probe event fits;
    it flushes at every publish, so each failure surfaces at once.
    """
    admin = kafka.KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics(
            {
                topic_for(unique_name, "availability"): {
                    "num_partitions": 1,
                    "configs": {"max.message.bytes": "100"},
                }
            },
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    publisher = EventPublisher(
        KAFKA_CLIENTS[kafka_client](kafka_bootstrap).producer(), unique_name, flush_interval_s=0.0
    )
    yield publisher
    with contextlib.suppress(TransportError):
        publisher.close()


@pytest.mark.kafka
def test_undeliverable_events_are_logged_and_counted_without_raising(
    refusing_publisher: EventPublisher, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = refusing_publisher
    with caplog.at_level(logging.WARNING):
        for n in range(3):
            publisher.publish(probe(n))
    assert publisher.failed_deliveries == 3
    # Each periodic flush warned about its lost event, with the running count.
    lost = [r.getMessage() for r in caplog.records if r.name == "collectors.publisher"]
    assert [message.split(")")[0] for message in lost] == [
        f"events not delivered ({n} so far" for n in (1, 2, 3)
    ]
    # The producer's own warning is rate-limited: one in the first 10 seconds.
    producer_warnings = [
        r for r in caplog.records if "not delivered to Kafka, latest" in r.getMessage()
    ]
    assert len(producer_warnings) == 1


@pytest.mark.kafka
def test_flush_raises_for_failures_a_periodic_flush_only_logged(
    refusing_publisher: EventPublisher,
) -> None:
    publisher = refusing_publisher
    for n in range(3):
        publisher.publish(probe(n))
    # Each periodic flush logged its failure; a batch caller's final flush must still raise.
    with pytest.raises(TransportError, match="3 events were not delivered"):
        publisher.flush()
    # Reported once: nothing failed since.
    publisher.flush()


@pytest.mark.kafka
def test_publish_all_raises_at_the_first_batch_not_delivered(
    refusing_publisher: EventPublisher,
) -> None:
    publisher = refusing_publisher
    sent: list[int] = []

    def events() -> Iterator[CloudEvent]:
        for n in range(10):
            sent.append(n)
            yield probe(n)

    # Ten events in batches of four: the first batch is refused, nothing after it is sent.
    with pytest.raises(TransportError, match="not delivered after 0 acknowledged ones"):
        publisher.publish_all(events(), batch=4)
    assert sent == [0, 1, 2, 3]
