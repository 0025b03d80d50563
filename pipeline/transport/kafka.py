"""The Kafka transport on kafka-python: idempotent producer, manually committed consumer group."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

import kafka
from kafka import errors as kafka_errors
from kafka.partitioner.default import murmur2

from pipeline.heap import collection_paused
from pipeline.transport.base import (
    Backoff,
    Consumer,
    DeliveryFailures,
    Headers,
    Message,
    Producer,
    RecordRejectedError,
    fenced,
    same_partitions,
)
from sla.errors import TransportError

log = logging.getLogger(__name__)

# Transient failures (no broker, leader moving, timeouts) worth another attempt.
RETRIABLE: tuple[type[BaseException], ...] = (kafka_errors.RetriableError, OSError)

# What a commit raises when the group is (or was) rebalancing; kafka-python wraps some of them
# in CommitFailedError, but raises RebalanceInProgressError while this member is rejoining.
REBALANCE_ERRORS: tuple[type[BaseException], ...] = (
    kafka_errors.CommitFailedError,
    kafka_errors.RebalanceInProgressError,
    kafka_errors.IllegalGenerationError,
    kafka_errors.UnknownMemberIdError,
)

# A small linger batches the records of one poll cycle without delaying a lone probe result.
LINGER_MS = 5
# No compression: lz4/zstd/snappy need native wheels, and CloudEvents on loopback gain little.
COMPRESSION = None
# kafka-python's default, named because the delivery timeout must exceed linger + request.
REQUEST_TIMEOUT_MS = 30_000
# Kafka's default limit on a record (the broker's message.max.bytes is a few bytes more), set
# explicitly because the dead-letter topic truncates bodies to stay below it.
MAX_RECORD_BYTES = 1_048_576
# How long `discard` waits for the sender thread to fail the pending records and stop.
DISCARD_WAIT_S = 5.0
# How long a poll keeps draining records that are already on their way once some arrived,
# and how long it drains in all: a steady trickle must not hold a batch back to fill it up.
DRAIN_TIMEOUT_MS = 20
DRAIN_WINDOW_S = 0.1


def delivery_timeout_ms(backoff: Backoff) -> int:
    """How long a record may wait for its acknowledgement before it is reported failed.

    The backoff's deadline, but never less than one request's timeout: the spooling
    publisher must give up on a producer (and discard it) before any record fails alone,
    since the producer goes on delivering later records of the partition after one fails.
    """
    return max(int(backoff.deadline_s * 1000), LINGER_MS + REQUEST_TIMEOUT_MS)


class KafkaTransportProducer:
    """A producer with `acks=all`, idempotent (`enable_idempotence`) unless told otherwise."""

    def __init__(
        self, bootstrap: str, client_id: str, backoff: Backoff, *, idempotent: bool = True
    ) -> None:
        deadline_ms = int(backoff.deadline_s * 1000)
        self._producer: Any = backoff.run(
            f"connecting a Kafka producer to {bootstrap}",
            lambda: kafka.KafkaProducer(
                bootstrap_servers=bootstrap,
                client_id=client_id,
                enable_idempotence=idempotent,
                acks="all",
                linger_ms=LINGER_MS,
                compression_type=COMPRESSION,
                max_request_size=MAX_RECORD_BYTES,
                bootstrap_timeout_ms=backoff.attempt_timeout_ms,
                reconnect_backoff_max_ms=backoff.max_ms,
                max_block_ms=deadline_ms,
                request_timeout_ms=REQUEST_TIMEOUT_MS,
                delivery_timeout_ms=delivery_timeout_ms(backoff),
            ),
            RETRIABLE,
        )
        self._failures = DeliveryFailures(log)

    @property
    def failed_deliveries(self) -> int:
        """How many records were sent but never acknowledged, since the producer was made."""
        return self._failures.total

    def _record_failure(self, exc: BaseException) -> None:
        self._failures.record(exc, final=not getattr(exc, "retriable", False))

    def send(
        self, topic: str, key: str | None, value: bytes, headers: Headers | None = None
    ) -> None:
        """Queue one record; delivery failures are logged, counted and raised by `flush`."""
        try:
            future = self._producer.send(
                topic, value=value, key=None if key is None else key.encode(), headers=headers
            )
        except kafka_errors.KafkaError as exc:
            problem = f"cannot send to Kafka topic {topic!r}: {exc!r}"
            if exc.retriable:
                raise TransportError(problem) from exc
            raise RecordRejectedError(problem) from exc
        future.add_errback(self._record_failure)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every queued record is acknowledged; raise if any was not delivered."""
        try:
            self._producer.flush(timeout=timeout)
        except kafka_errors.KafkaError as exc:
            raise TransportError(f"Kafka flush did not complete: {exc!r}") from exc
        self._failures.raise_unflushed()

    def close(self) -> None:
        """Flush and disconnect."""
        self._producer.close()

    def discard(self) -> None:
        """Disconnect at once, failing the records not acknowledged yet."""
        # kafka-python 3 flushes inside close() and, when a flush of 0 s leaves records
        # pending, raises before it forces the sender to stop; so force it first, as that
        # close would, and let its thread fail what is pending.
        sender = getattr(self._producer, "_sender", None)
        if sender is not None:
            sender.force_close()
            sender.join(DISCARD_WAIT_S)
        with contextlib.suppress(kafka_errors.KafkaError):
            self._producer.close(timeout=0)


class KafkaTransportConsumer:
    """A consumer group member with auto-commit off, starting at the earliest offset."""

    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        group_id: str,
        topics: list[str],
        *,
        backoff: Backoff,
        session_timeout_s: int,
        instance_id: str | None = None,
    ) -> None:
        self._backoff = backoff
        self._group_id, self._instance_id = group_id, instance_id
        self._consumer: Any = backoff.run(
            f"connecting a Kafka consumer of group {group_id!r} to {bootstrap}",
            lambda: kafka.KafkaConsumer(
                *topics,
                bootstrap_servers=bootstrap,
                client_id=client_id,
                group_id=group_id,
                group_instance_id=instance_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=session_timeout_s * 1000,
                # Kafka's rule of thumb: heartbeat at most a third of the session timeout.
                heartbeat_interval_ms=session_timeout_s * 1000 // 3,
                bootstrap_timeout_ms=backoff.attempt_timeout_ms,
                reconnect_backoff_max_ms=backoff.max_ms,
            ),
            RETRIABLE,
        )

    def poll_batch(self, max_records: int, timeout_s: float) -> list[Message]:
        """Wait up to `timeout_s` for records, then drain what is in flight up to `max_records`.

        While the broker is unreachable polls come back empty and the client reconnects with
        capped backoff, so a consuming loop resumes by itself when the broker returns.
        """
        batch: list[Message] = []
        timeout_ms = int(timeout_s * 1000)
        drain_until: float | None = None
        while len(batch) < max_records:
            try:
                polled = self._consumer.poll(
                    timeout_ms=timeout_ms, max_records=max_records - len(batch)
                )
            except kafka_errors.FencedInstanceIdError as exc:
                raise fenced(self._group_id, self._instance_id) from exc
            except kafka_errors.KafkaError as exc:
                raise TransportError(f"Kafka poll failed: {exc!r}") from exc
            if not polled:
                break
            with collection_paused():
                for records in polled.values():
                    # A tombstone (null value) becomes an empty value, which the loop
                    # dead-letters.
                    batch.extend(
                        Message(
                            r.topic, r.partition, r.offset, r.key, r.value or b"", list(r.headers)
                        )
                        for r in records
                    )
            if drain_until is None:
                drain_until = time.monotonic() + DRAIN_WINDOW_S
            elif time.monotonic() >= drain_until:
                break
            timeout_ms = DRAIN_TIMEOUT_MS
        return batch

    def commit(self) -> None:
        """Commit the positions after every record polled, retrying transient failures."""
        try:
            self._backoff.run(
                "committing Kafka offsets",
                lambda: self._consumer.commit(timeout_ms=self._backoff.attempt_timeout_ms),
                RETRIABLE,
            )
        except REBALANCE_ERRORS as exc:
            # The group rebalanced: the new owner of the partitions gets these records again
            # and the idempotent store ignores them, so this is not worth stopping for.
            log.warning("Kafka offsets not committed during a rebalance: %r", exc)
        except kafka_errors.FencedInstanceIdError as exc:
            raise fenced(self._group_id, self._instance_id) from exc
        except kafka_errors.KafkaError as exc:
            raise TransportError(f"Kafka commit failed: {exc!r}") from exc

    def assignment(self) -> frozenset[int]:
        """The partitions assigned to this member; see `Consumer.assignment`."""
        assigned: dict[str, set[int]] = {}
        for tp in self._consumer.assignment():
            assigned.setdefault(tp.topic, set()).add(tp.partition)
        return same_partitions(assigned)

    def close(self) -> None:
        """Leave the group without committing."""
        self._consumer.close(autocommit=False)


class KafkaCluster:
    """Where a Kafka transport connects and how it makes producers and consumers.

    The base of both Kafka transports: a subclass names its client's producer and consumer
    classes, which take the same arguments, and adds `ensure_topics`.
    """

    producer_class: ClassVar[Callable[..., Producer]]
    consumer_class: ClassVar[Callable[..., Consumer]]

    def __init__(
        self,
        bootstrap: str,
        *,
        partitions: int = 3,
        replication_factor: int = 1,
        client_id: str = "slamon",
        session_timeout_s: int = 10,
        backoff: Backoff | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.session_timeout_s = session_timeout_s
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.client_id = client_id
        self.backoff = backoff or Backoff()

    def producer(self, *, idempotent: bool = True) -> Producer:
        """A new producer; see `Transport.producer` for when not to be idempotent."""
        return self.producer_class(
            self.bootstrap, self.client_id, self.backoff, idempotent=idempotent
        )

    def consumer(
        self, group_id: str, topics: list[str], *, instance_id: str | None = None
    ) -> Consumer:
        """A new member of `group_id` subscribed to `topics`; static with `instance_id`."""
        return self.consumer_class(
            self.bootstrap,
            self.client_id,
            group_id,
            topics,
            backoff=self.backoff,
            session_timeout_s=self.session_timeout_s,
            instance_id=instance_id,
        )

    def partition_of(self, key: str) -> int:
        """The Java client's default partition of `key`: murmur2 of its bytes, made positive."""
        return int(murmur2(key.encode()) & 0x7FFFFFFF) % self.partitions


class KafkaTransport(KafkaCluster):
    """Producers, consumers and topic administration against one Kafka cluster (kafka-python)."""

    producer_class = KafkaTransportProducer
    consumer_class = KafkaTransportConsumer

    def ensure_topics(self, topics: list[str]) -> None:
        """Create missing topics; a topic that exists already (or appears meanwhile) is fine."""
        admin: Any = self.backoff.run(
            f"connecting a Kafka admin client to {self.bootstrap}",
            lambda: kafka.KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                bootstrap_timeout_ms=self.backoff.attempt_timeout_ms,
                reconnect_backoff_max_ms=self.backoff.max_ms,
            ),
            RETRIABLE,
        )
        try:
            self.backoff.run(
                f"creating Kafka topics {topics}", lambda: self._create(admin, topics), RETRIABLE
            )
        finally:
            admin.close()

    def _create(self, admin: Any, topics: list[str]) -> None:
        spec = {"num_partitions": self.partitions, "replication_factor": self.replication_factor}
        result = admin.create_topics(
            {topic: dict(spec) for topic in topics},
            timeout_ms=self.backoff.attempt_timeout_ms,
            raise_errors=False,
        )
        created = []
        for outcome in result["topics"]:
            error = kafka_errors.for_code(outcome["error_code"])
            if error is kafka_errors.NoError:
                created.append(outcome["name"])
            elif error is not kafka_errors.TopicAlreadyExistsError:
                problem = (
                    f"creating Kafka topic {outcome['name']!r}: {error.__name__} "
                    f"{outcome.get('error_message') or ''}"
                )
                if issubclass(error, kafka_errors.RetriableError):
                    raise error(problem)
                raise TransportError(problem)
        if created:
            log.info("created Kafka topics %s", created)
            # Producers fail fast on a topic the broker does not list yet: wait for leaders.
            admin.wait_for_topics(created, timeout_ms=self.backoff.attempt_timeout_ms)
