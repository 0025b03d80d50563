"""EventPublisher routes each event to its family's topic, keyed by service."""

from __future__ import annotations

from datetime import UTC, datetime

from collectors.publisher import EventPublisher
from pipeline.transport import EmbeddedTransport
from sla.events import EventType, new_event, parse_event

AT = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


def test_events_go_to_their_family_topic_keyed_by_service() -> None:
    transport = EmbeddedTransport()
    transport.ensure_topics(["demo.availability", "demo.capacity"])
    publisher = EventPublisher(transport.producer(), "demo")
    probe = new_event(
        EventType.PROBE,
        "checkout",
        {"check": "health", "ok": True, "latency_ms": 12.5},
        source="collector/http/checkout-health",
        time=AT,
    )
    sample = new_event(
        EventType.CAPACITY,
        "payments",
        {"resource": "cpu", "used": 3.0, "capacity": 8.0, "unit": "cores"},
        source="collector/test",
        time=AT,
    )
    publisher.publish(probe)
    publisher.publish(sample)
    publisher.flush()

    consumer = transport.consumer("test", ["demo.availability", "demo.capacity"])
    messages = consumer.poll_batch(10, timeout_s=1.0)
    routed = {(m.topic, m.key, parse_event(m.value).id) for m in messages}
    assert routed == {
        ("demo.availability", b"checkout", probe.id),
        ("demo.capacity", b"payments", sample.id),
    }


def test_publish_all_sends_every_event_in_acknowledged_batches() -> None:
    transport = EmbeddedTransport()
    transport.ensure_topics(["demo.availability"])
    publisher = EventPublisher(transport.producer(), "demo")
    events = [
        new_event(
            EventType.PROBE,
            "checkout",
            {"check": "health", "ok": True, "latency_ms": 12.5},
            source="collector/http/checkout-health",
            time=AT,
            id=f"probe-{n}",
        )
        for n in range(5)
    ]
    # Five events in batches of two: 2 + 2 + 1, all published, in order.
    assert publisher.publish_all(iter(events), batch=2) == 5
    consumer = transport.consumer("test", ["demo.availability"])
    messages = consumer.poll_batch(10, timeout_s=1.0)
    assert [parse_event(m.value).id for m in messages] == [f"probe-{n}" for n in range(5)]
