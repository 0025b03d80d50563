"""An in-process transport with Kafka's semantics: partitioned logs and committed offsets."""

from __future__ import annotations

import threading
import time
import zlib
from collections import Counter

from pipeline.transport.base import Headers, Message
from sla.errors import TransportError

DEFAULT_PARTITIONS = 4

TopicPartition = tuple[str, int]


class _Broker:
    """The shared state of one embedded transport, guarded by one condition."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        # Each partition is an append-only list whose index is the offset.
        self.topics: dict[str, list[list[Message]]] = {}
        self.committed: dict[tuple[str, str, int], int] = {}
        self.changed = threading.Condition()
        self._round_robin: Counter[str] = Counter()

    def create(self, topic: str) -> list[list[Message]]:
        """Return the partitions of `topic`, creating them; the caller holds the lock."""
        if topic not in self.topics:
            self.topics[topic] = [[] for _ in range(self.partitions)]
        return self.topics[topic]

    @staticmethod
    def partition_of(key: str, partitions: int) -> int:
        """The partition of `key`: crc32, stable across processes unlike hash()."""
        return zlib.crc32(key.encode()) % partitions

    def append(self, topic: str, key: str | None, value: bytes, headers: Headers) -> None:
        """Append one record to the partition its key hashes to (round robin without a key)."""
        key_bytes = None if key is None else key.encode()
        with self.changed:
            logs = self.create(topic)
            if key is None:
                partition = self._round_robin[topic] % len(logs)
                self._round_robin[topic] += 1
            else:
                partition = self.partition_of(key, len(logs))
            records = logs[partition]
            records.append(
                Message(topic, partition, len(records), key_bytes, bytes(value), list(headers))
            )
            self.changed.notify_all()


class EmbeddedProducer:
    """Appends records to the in-process logs; every send is acknowledged at once."""

    def __init__(self, broker: _Broker) -> None:
        self._broker = broker
        self._closed = False

    @property
    def failed_deliveries(self) -> int:
        """Always 0: a record is in the log once `send` returns, or `send` raised."""
        return 0

    def send(
        self, topic: str, key: str | None, value: bytes, headers: Headers | None = None
    ) -> None:
        """Append one record to its partition."""
        if self._closed:
            raise TransportError("send on a closed producer")
        self._broker.append(topic, key, value, headers or [])

    def flush(self, timeout: float | None = None) -> None:
        """Nothing is buffered: records are in the log once `send` returns."""

    def close(self) -> None:
        """Refuse further sends."""
        self._closed = True

    def discard(self) -> None:
        """Refuse further sends: every record sent is in the log already."""
        self.close()


class EmbeddedConsumer:
    """Reads every partition of its topics from the group's committed offsets.

    Unlike Kafka, partitions are not split between members of a group: each member reads all
    of them. Committed offsets are shared per group, so a new member resumes where the last
    commit left off and sees every uncommitted record again.
    """

    def __init__(self, broker: _Broker, group_id: str, topics: list[str]) -> None:
        self._broker = broker
        self._group = group_id
        self._topics = list(topics)
        self._positions: dict[TopicPartition, int] = {}
        self._turn = 0
        self._closed = False

    def _position(self, tp: TopicPartition) -> int:
        if tp not in self._positions:
            self._positions[tp] = self._broker.committed.get((self._group, *tp), 0)
        return self._positions[tp]

    def _take(self, max_records: int) -> list[Message]:
        """Collect available records across partitions; the caller holds the lock."""
        partitions = [
            (topic, partition)
            for topic in self._topics
            for partition in range(len(self._broker.topics.get(topic, ())))
        ]
        # Start after the partition served first last time, so no partition starves.
        self._turn = (self._turn + 1) % max(len(partitions), 1)
        batch: list[Message] = []
        for topic, partition in partitions[self._turn :] + partitions[: self._turn]:
            start = self._position((topic, partition))
            taken = self._broker.topics[topic][partition][start : start + max_records - len(batch)]
            batch.extend(taken)
            self._positions[(topic, partition)] = start + len(taken)
            if len(batch) >= max_records:
                break
        return batch

    def poll_batch(self, max_records: int, timeout_s: float) -> list[Message]:
        """Return up to `max_records` records, waiting at most `timeout_s` for the first."""
        if self._closed:
            raise TransportError("poll on a closed consumer")
        deadline = time.monotonic() + timeout_s
        with self._broker.changed:
            while True:
                batch = self._take(max_records)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0:
                    return batch
                self._broker.changed.wait(remaining)

    def commit(self) -> None:
        """Store the position after each record returned so far as the group's offset."""
        if self._closed:
            raise TransportError("commit on a closed consumer")
        with self._broker.changed:
            for (topic, partition), position in self._positions.items():
                self._broker.committed[(self._group, topic, partition)] = position

    def assignment(self) -> frozenset[int]:
        """Every partition: the only member of its group as far as partitions go."""
        return frozenset(range(self._broker.partitions))

    def close(self) -> None:
        """Stop consuming; uncommitted positions are forgotten."""
        self._closed = True


class EmbeddedTransport:
    """An in-process transport: thread-safe partitioned logs and per-group committed offsets."""

    def __init__(self, partitions: int = DEFAULT_PARTITIONS) -> None:
        self._broker = _Broker(partitions)

    def producer(self, *, idempotent: bool = True) -> EmbeddedProducer:
        """A producer appending to this transport's logs, each record exactly once."""
        return EmbeddedProducer(self._broker)

    def consumer(
        self, group_id: str, topics: list[str], *, instance_id: str | None = None
    ) -> EmbeddedConsumer:
        """A consumer in `group_id` starting at the group's committed offsets.

        `instance_id` changes nothing here: members of a group do not split partitions.
        """
        return EmbeddedConsumer(self._broker, group_id, topics)

    def partition_of(self, key: str) -> int:
        """The partition records keyed `key` are appended to."""
        return self._broker.partition_of(key, self._broker.partitions)

    def ensure_topics(self, topics: list[str]) -> None:
        """Create the missing topics with the configured number of partitions."""
        with self._broker.changed:
            for topic in topics:
                self._broker.create(topic)
