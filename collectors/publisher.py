"""Publish CloudEvents to their family's topic, keyed by service so each service stays ordered."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pipeline.transport import Producer
from sla.errors import TransportError
from sla.events import CloudEvent, topic_for

log = logging.getLogger(__name__)

# Flushing this often surfaces delivery failures while Kafka is down, not only at shutdown.
FLUSH_INTERVAL_S = 5.0
# A periodic flush waits at most this long, so an outage slows publishing but cannot stall it.
FLUSH_TIMEOUT_S = 5.0


class EventPublisher:
    """Sends events through a transport producer; every collector publishes through one."""

    def __init__(
        self,
        producer: Producer,
        topic_prefix: str,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        flush_timeout_s: float = FLUSH_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._producer = producer
        self._prefix = topic_prefix
        self._flush_interval_s = flush_interval_s
        self._flush_timeout_s = flush_timeout_s
        self._clock = clock
        self._next_flush_at = clock() + flush_interval_s

    @property
    def failed_deliveries(self) -> int:
        """How many published events never reached the transport."""
        return self._producer.failed_deliveries

    def publish(self, event: CloudEvent) -> None:
        """Queue `event` on `<prefix>.<family>` with the service id as key.

        Every `flush_interval_s` this also waits up to `flush_timeout_s` for what was queued and
        logs, rather than raises, what was lost: one lost probe result must not stop the rest.
        """
        self._producer.send(topic_for(self._prefix, event.type), event.subject, event.to_json())
        if self._clock() < self._next_flush_at:
            return
        try:
            self._producer.flush(timeout=self._flush_timeout_s)
        except TransportError as exc:
            log.warning("events not delivered (%d so far): %s", self.failed_deliveries, exc)
        self._next_flush_at = self._clock() + self._flush_interval_s

    def flush(self) -> None:
        """Block until every event published so far is delivered; raise if any was not."""
        self._producer.flush()
