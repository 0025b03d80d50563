"""The Kafka transport on kafka-python: idempotent producer, manually committed consumer group."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import kafka
from kafka import errors as kafka_errors

from pipeline.transport.base import Backoff, Headers, Message, RecordRejectedError
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
# While Kafka is down every record fails: one warning per interval, with a count, is enough.
FAILURE_LOG_INTERVAL_S = 10.0
# How long a poll keeps draining records that are already on their way once some arrived.
DRAIN_TIMEOUT_MS = 20


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
                delivery_timeout_ms=max(deadline_ms, LINGER_MS + REQUEST_TIMEOUT_MS),
            ),
            RETRIABLE,
        )
        self._lock = threading.Lock()
        self._failed_deliveries = 0
        # Failures since the last flush, summarised so an outage cannot grow memory.
        self._unflushed_failures = 0
        self._first_unflushed: BaseException | None = None
        self._all_unflushed_final = True
        # Failures since the last warning, logged at most once per FAILURE_LOG_INTERVAL_S.
        self._unlogged_failures = 0
        self._next_warning_at = 0.0

    @property
    def failed_deliveries(self) -> int:
        """How many records were sent but never acknowledged, since the producer was made."""
        with self._lock:
            return self._failed_deliveries

    def _record_failure(self, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self._failed_deliveries += 1
            self._unflushed_failures += 1
            if self._first_unflushed is None:
                self._first_unflushed = exc
            self._all_unflushed_final &= not getattr(exc, "retriable", False)
            self._unlogged_failures += 1
            if now < self._next_warning_at:
                return
            count, self._unlogged_failures = self._unlogged_failures, 0
            self._next_warning_at = now + FAILURE_LOG_INTERVAL_S
        log.warning("%d records not delivered to Kafka, latest: %r", count, exc)

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
        with self._lock:
            failures, first, final = (
                self._unflushed_failures,
                self._first_unflushed,
                self._all_unflushed_final,
            )
            self._unflushed_failures, self._first_unflushed = 0, None
            self._all_unflushed_final = True
        if failures:
            error = RecordRejectedError if final else TransportError
            raise error(f"{failures} records were not delivered to Kafka, first: {first!r}")

    def close(self) -> None:
        """Flush and disconnect."""
        self._producer.close()


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
    ) -> None:
        self._backoff = backoff
        self._consumer: Any = backoff.run(
            f"connecting a Kafka consumer of group {group_id!r} to {bootstrap}",
            lambda: kafka.KafkaConsumer(
                *topics,
                bootstrap_servers=bootstrap,
                client_id=client_id,
                group_id=group_id,
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
        while len(batch) < max_records:
            try:
                polled = self._consumer.poll(
                    timeout_ms=timeout_ms, max_records=max_records - len(batch)
                )
            except kafka_errors.KafkaError as exc:
                raise TransportError(f"Kafka poll failed: {exc!r}") from exc
            if not polled:
                break
            for records in polled.values():
                # A tombstone (null value) becomes an empty value, which the loop dead-letters.
                batch.extend(
                    Message(r.topic, r.partition, r.offset, r.key, r.value or b"", list(r.headers))
                    for r in records
                )
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
        except kafka_errors.KafkaError as exc:
            raise TransportError(f"Kafka commit failed: {exc!r}") from exc

    def close(self) -> None:
        """Leave the group without committing."""
        self._consumer.close(autocommit=False)


class KafkaTransport:
    """Producers, consumers and topic administration against one Kafka cluster."""

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

    def producer(self, *, idempotent: bool = True) -> KafkaTransportProducer:
        """A new producer; see `Transport.producer` for when not to be idempotent."""
        return KafkaTransportProducer(
            self.bootstrap, self.client_id, self.backoff, idempotent=idempotent
        )

    def consumer(self, group_id: str, topics: list[str]) -> KafkaTransportConsumer:
        """A new member of `group_id` subscribed to `topics`."""
        return KafkaTransportConsumer(
            self.bootstrap,
            self.client_id,
            group_id,
            topics,
            backoff=self.backoff,
            session_timeout_s=self.session_timeout_s,
        )

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
