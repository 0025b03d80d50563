"""Delivery failures of the publisher are logged and counted as they happen, not at shutdown."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import kafka
import pytest

from collectors.publisher import EventPublisher
from pipeline.transport import KafkaTransport
from sla.events import EventType, new_event, topic_for

AT = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


@pytest.mark.kafka
def test_undeliverable_events_are_logged_and_counted_without_raising(
    kafka_bootstrap: str, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A topic whose limit (100 bytes per record batch) no probe event fits: the broker
    # refuses each one, as good as a broker that is gone.
    availability = topic_for(unique_name, "availability")
    admin = kafka.KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics(
            {availability: {"num_partitions": 1, "configs": {"max.message.bytes": "100"}}},
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    # Flush at every publish, so each failure surfaces at once.
    publisher = EventPublisher(
        KafkaTransport(kafka_bootstrap).producer(), unique_name, flush_interval_s=0.0
    )
    with caplog.at_level(logging.WARNING):
        for n in range(3):
            publisher.publish(
                new_event(
                    EventType.PROBE,
                    "checkout",
                    {"check": "health", "ok": True, "latency_ms": 12.5},
                    source="collector/http/checkout-health",
                    time=AT + timedelta(seconds=n),
                )
            )
    assert publisher.failed_deliveries == 3
    # Each periodic flush warned about its lost event, with the running count.
    lost = [r.getMessage() for r in caplog.records if r.name == "collectors.publisher"]
    assert [message.split(")")[0] for message in lost] == [
        f"events not delivered ({n} so far" for n in (1, 2, 3)
    ]
    # The producer's own warning is rate-limited: one in the first 10 seconds.
    producer_warnings = [r for r in caplog.records if r.name == "pipeline.transport.kafka"]
    assert len(producer_warnings) == 1
