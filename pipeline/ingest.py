"""The ingest loop: poll, dead-letter what is invalid, store the rest, then commit offsets."""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from pipeline.store import EventStore
from pipeline.transport.base import Consumer, Headers, Message, Producer, Transport
from sla.config import PipelineConfig
from sla.errors import InvalidEventError
from sla.events import (
    DLQ_ERROR_CODE_HEADER,
    DLQ_ERROR_REASON_HEADER,
    DLQ_ORIGINAL_TOPIC_HEADER,
    FAMILIES,
    CloudEvent,
    dlq_topic,
    parse_event,
    topic_for,
)

log = logging.getLogger(__name__)

ORIGINAL_PARTITION_HEADER = "slamon-original-partition"
ORIGINAL_OFFSET_HEADER = "slamon-original-offset"


@dataclass
class BatchResult:
    """What one poll cycle did."""

    polled: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected_by_code: dict[str, int] = field(default_factory=dict)
    ingested_by_type: dict[str, int] = field(default_factory=dict)
    newest_event_time: float | None = None
    """Unix time of the newest valid event in the batch, for the pipeline lag gauge."""


def dead_letter_headers(
    error: InvalidEventError, origin: str, partition: int | None, offset: int
) -> Headers:
    """The headers that tell why a message went to the dead-letter topic and where it came from.

    `origin` is the topic it was consumed from, or `file:PATH` for an imported file, whose
    line number is then the offset.
    """
    headers = [
        (DLQ_ERROR_CODE_HEADER, error.code.encode()),
        (DLQ_ERROR_REASON_HEADER, error.reason.encode()),
        (DLQ_ORIGINAL_TOPIC_HEADER, origin.encode()),
        (ORIGINAL_OFFSET_HEADER, str(offset).encode()),
    ]
    if partition is not None:
        headers.append((ORIGINAL_PARTITION_HEADER, str(partition).encode()))
    return headers


class IngestLoop:
    """Moves events from the family topics into the store, at least once, effectively once."""

    def __init__(
        self,
        transport: Transport,
        store: EventStore,
        pipeline_config: PipelineConfig,
        topic_prefix: str,
        on_batch: Callable[[BatchResult], None] | None = None,
    ) -> None:
        self.store = store
        self.config = pipeline_config
        self.topics = sorted({topic_for(topic_prefix, family) for family in FAMILIES})
        self.dlq_topic = dlq_topic(topic_prefix)
        self.on_batch = on_batch
        transport.ensure_topics([*self.topics, self.dlq_topic])
        self._consumer: Consumer = transport.consumer(pipeline_config.group_id, self.topics)
        self._dlq: Producer = transport.producer()

    def run_once(self) -> BatchResult:
        """Process one batch and report it to `on_batch` (also when the poll came back empty).

        Offsets are committed only once the store has committed the batch.

        A `StoreError` propagates with the offsets uncommitted, so a restarted loop gets the
        same messages again and the store's dedupe on event id makes the replay harmless.
        """
        messages = self._consumer.poll_batch(self.config.batch_size, self.config.poll_timeout)
        result = BatchResult(polled=len(messages))
        if messages:
            self._process(messages, result)
        if self.on_batch is not None:
            self.on_batch(result)
        return result

    def _process(self, messages: list[Message], result: BatchResult) -> None:
        events: list[CloudEvent] = []
        raw: list[bytes] = []
        rejected: Counter[str] = Counter()
        for message in messages:
            try:
                events.append(parse_event(message.value, max_bytes=self.config.max_event_bytes))
                raw.append(message.value)
            except InvalidEventError as error:
                rejected[error.code] += 1
                key = None if message.key is None else message.key.decode(errors="replace")
                self._dlq.send(
                    self.dlq_topic,
                    key,
                    message.value,
                    dead_letter_headers(error, message.topic, message.partition, message.offset),
                )
        if rejected:
            # Dead letters must be durable before the offsets that skip them are committed;
            # after a failure below they are dead-lettered again on redelivery.
            self._dlq.flush()
            log.warning("dead-lettered %d messages: %s", rejected.total(), dict(rejected))
        by_type = self.store.write_batch_by_type(events, raw=raw)
        self._consumer.commit()
        result.stored = sum(by_type.values())
        result.duplicates = len(events) - result.stored
        result.rejected_by_code = dict(rejected)
        result.ingested_by_type = by_type
        if events:
            result.newest_event_time = max(event.time for event in events).timestamp()

    def run(self, stop: threading.Event) -> None:
        """Process batches until `stop` is set; the batch in progress is finished first."""
        while not stop.is_set():
            self.run_once()

    def close(self) -> None:
        """Leave the consumer group and flush the dead-letter producer."""
        self._consumer.close()
        self._dlq.close()


def install_sigterm_handler(stop: threading.Event) -> None:
    """Make SIGTERM set `stop`, so `IngestLoop.run` finishes its batch and returns."""

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("SIGTERM received: finishing the current batch")
        stop.set()

    signal.signal(signal.SIGTERM, handle)
