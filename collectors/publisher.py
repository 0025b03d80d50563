"""Publish CloudEvents to their family's topic, keyed by service so each service stays ordered."""

from __future__ import annotations

from pipeline.transport import Producer
from sla.events import CloudEvent, topic_for


class EventPublisher:
    """Sends events through a transport producer; every collector publishes through one."""

    def __init__(self, producer: Producer, topic_prefix: str) -> None:
        self._producer = producer
        self._prefix = topic_prefix

    def publish(self, event: CloudEvent) -> None:
        """Queue `event` on `<prefix>.<family>` with the service id as key."""
        self._producer.send(topic_for(self._prefix, event.type), event.subject, event.to_json())

    def flush(self) -> None:
        """Block until every event published so far is delivered."""
        self._producer.flush()
