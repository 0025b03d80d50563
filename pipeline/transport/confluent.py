"""The Kafka transport on confluent-kafka (librdkafka): the same contract as `kafka.py`, faster.

librdkafka fetches and sends on its own threads, outside the GIL; a consumer of it reads an
order of magnitude more records per second than kafka-python's pure-Python protocol code.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from pipeline.heap import collection_paused
from pipeline.transport.base import (
    Backoff,
    DeliveryFailures,
    Headers,
    Message,
    RecordRejectedError,
    fenced,
    same_partitions,
)
from pipeline.transport.kafka import (
    LINGER_MS,
    MAX_RECORD_BYTES,
    KafkaCluster,
    delivery_timeout_ms,
)
from sla.errors import TransportError

log = logging.getLogger(__name__)

# Delivery errors that resending cannot cure; librdkafka marks no delivery error retriable,
# so the codes are listed (anything else, timeouts and lost brokers above all, may pass).
FINAL_CODES = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,
        KafkaError._INVALID_ARG,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
    }
)
# What a commit meets when the group is (or was) rebalancing.
REBALANCE_CODES = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)
# Commit and admin failures worth another attempt (coordinator moving, broker gone a while).
RETRIABLE_CODES = frozenset(
    {
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_CONTROLLER,
        KafkaError.LEADER_NOT_AVAILABLE,
    }
)
# How long `send` waits for room in a full local queue before trying again.
QUEUE_FULL_WAIT_S = 0.05
# Consumer errors reported between records (broker gone, topic not created yet) that the
# client recovers from by itself; they are logged at most once per interval.
ERROR_LOG_INTERVAL_S = 10.0


class _RetriableError(Exception):
    """A client error worth another attempt under `Backoff.run`."""


def _kafka_error(exc: KafkaException) -> KafkaError:
    error: KafkaError = exc.args[0]
    return error


def _connect(client: Any, attempt_timeout_s: float) -> None:
    """Fetch cluster metadata once: librdkafka connects lazily and never raises on its own."""
    try:
        client.list_topics(timeout=attempt_timeout_s)
    except KafkaException as exc:
        raise _RetriableError(f"no Kafka broker answered: {_kafka_error(exc)}") from exc


class ConfluentProducer:
    """A producer with `acks=all`, idempotent (`enable.idempotence`) unless told otherwise."""

    def __init__(
        self, bootstrap: str, client_id: str, backoff: Backoff, *, idempotent: bool = True
    ) -> None:
        settings: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "enable.idempotence": idempotent,
            "acks": "all",
            "linger.ms": LINGER_MS,
            "message.max.bytes": MAX_RECORD_BYTES,
            # The Java client's partitioner, so a key lands where kafka-python puts it.
            "partitioner": "murmur2_random",
            "reconnect.backoff.max.ms": backoff.max_ms,
            # A record not acknowledged by then is reported failed, as with kafka-python.
            "message.timeout.ms": delivery_timeout_ms(backoff),
            # librdkafka's own log lines go through logging, not straight to stderr.
            "logger": log,
        }
        self._producer = confluent_kafka.Producer(settings)
        backoff.run(
            f"connecting a Kafka producer to {bootstrap}",
            lambda: _connect(self._producer, backoff.attempt_timeout_s),
            (_RetriableError,),
        )
        self._failures = DeliveryFailures(log)

    @property
    def failed_deliveries(self) -> int:
        """How many records were sent but never acknowledged, since the producer was made."""
        return self._failures.total

    def _delivered(self, error: KafkaError | None, _message: object) -> None:
        if error is not None:
            self._failures.record(KafkaException(error), final=error.code() in FINAL_CODES)

    def send(
        self, topic: str, key: str | None, value: bytes, headers: Headers | None = None
    ) -> None:
        """Queue one record; delivery failures are logged, counted and raised by `flush`."""
        while True:
            try:
                self._producer.produce(
                    topic, value, key, headers=cast(Any, headers), on_delivery=self._delivered
                )
                break
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self._producer.poll(QUEUE_FULL_WAIT_S)
            except KafkaException as exc:
                problem = f"cannot send to Kafka topic {topic!r}: {_kafka_error(exc)}"
                if _kafka_error(exc).code() in FINAL_CODES:
                    raise RecordRejectedError(problem) from exc
                raise TransportError(problem) from exc
        # Serves the delivery reports of earlier records without waiting.
        self._producer.poll(0)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every queued record is acknowledged; raise if any was not delivered."""
        left = self._producer.flush() if timeout is None else self._producer.flush(timeout)
        if left:
            raise TransportError(f"Kafka flush did not complete: {left} records still queued")
        self._failures.raise_unflushed()

    def close(self) -> None:
        """Flush; librdkafka disconnects when the producer is collected."""
        self._producer.flush()

    def discard(self) -> None:
        """Purge the queued and in-flight records, which librdkafka would deliver later."""
        self._producer.purge(in_queue=True, in_flight=True, blocking=True)
        # Serves the purged records' reports; nobody reads this producer's failures again.
        self._producer.flush(0)


def _log_assigned(_consumer: object, partitions: list[Any]) -> None:
    log.info("assigned %s", sorted((p.topic, p.partition) for p in partitions))


def _log_revoked(_consumer: object, partitions: list[Any]) -> None:
    log.info("revoked %s", sorted((p.topic, p.partition) for p in partitions))


class ConfluentConsumer:
    """A consumer group member with auto-commit off, starting at the earliest offset.

    Takes the arguments of `KafkaTransportConsumer`, as `KafkaCluster.consumer` passes them.
    """

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
        settings: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": session_timeout_s * 1000,
            # Kafka's rule of thumb: heartbeat at most a third of the session timeout.
            "heartbeat.interval.ms": session_timeout_s * 1000 // 3,
            # The range assignor gives a member partition k of every topic (co-partitioning).
            "partition.assignment.strategy": "range",
            "reconnect.backoff.max.ms": backoff.max_ms,
            "logger": log,
        }
        if instance_id is not None:
            settings["group.instance.id"] = instance_id
        self._consumer = confluent_kafka.Consumer(settings)
        backoff.run(
            f"connecting a Kafka consumer of group {group_id!r} to {bootstrap}",
            lambda: _connect(self._consumer, backoff.attempt_timeout_s),
            (_RetriableError,),
        )
        # With callbacks librdkafka hands assignments over inside poll, as kafka-python does,
        # so `assignment()` changes only while this member polls (sharded stores follow it).
        self._consumer.subscribe(topics, on_assign=_log_assigned, on_revoke=_log_revoked)
        self._next_error_log_at = 0.0

    def poll_batch(self, max_records: int, timeout_s: float) -> list[Message]:
        """Wait up to `timeout_s` for a record, then take what was fetched, up to `max_records`.

        What the client has fetched already is taken without waiting for more, so a batch is
        never held back to fill up. While the broker is unreachable polls come back empty and
        the client reconnects by itself.
        """
        first = self._consumer.poll(timeout_s)
        if first is None:
            return []
        # The rest is taken without waiting; its records are the batch, alive until stored.
        with collection_paused():
            polled: list[Any] = [first]
            while len(polled) < max_records:
                more = self._consumer.consume(min(max_records - len(polled), 100_000), 0)
                if not more:
                    break
                polled.extend(more)
            batch: list[Message] = []
            for record in polled:
                error = record.error()
                if error is not None:
                    self._client_error(error)
                    continue
                # A tombstone (null value) becomes an empty value, which the loop dead-letters.
                batch.append(
                    Message(
                        record.topic(),
                        record.partition(),
                        record.offset(),
                        record.key(),
                        record.value() or b"",
                        list(record.headers() or ()),
                    )
                )
        return batch

    def _client_error(self, error: KafkaError) -> None:
        # librdkafka reports a fatal error as a _FATAL event whose fatal() is false, and keeps
        # the cause (such as a fenced instance id) only in its text.
        if error.fatal() or error.code() == KafkaError._FATAL:
            if self._instance_id is not None and "fenced" in error.str():
                raise fenced(self._group_id, self._instance_id)
            raise TransportError(f"Kafka consumer failed: {error.str()}")
        now = time.monotonic()
        if now >= self._next_error_log_at:
            self._next_error_log_at = now + ERROR_LOG_INTERVAL_S
            log.warning("Kafka consumer: %s", error)

    def commit(self) -> None:
        """Commit the positions after every record polled, retrying transient failures."""
        try:
            self._backoff.run("committing Kafka offsets", self._commit, (_RetriableError,))
        except KafkaException as exc:
            if _kafka_error(exc).code() == KafkaError.FENCED_INSTANCE_ID:
                raise fenced(self._group_id, self._instance_id) from exc
            if _kafka_error(exc).code() not in REBALANCE_CODES:
                raise TransportError(f"Kafka commit failed: {_kafka_error(exc)}") from exc
            # The group rebalanced: the new owner of the partitions gets these records again
            # and the idempotent store ignores them, so this is not worth stopping for.
            log.warning("Kafka offsets not committed during a rebalance: %s", _kafka_error(exc))

    def _commit(self) -> None:
        try:
            committed = self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            error = _kafka_error(exc)
            if error.code() == KafkaError._NO_OFFSET:
                return  # nothing polled since the last commit
            if error.retriable() or error.code() in RETRIABLE_CODES:
                raise _RetriableError(str(error)) from exc
            raise
        for partition in committed or ():
            if partition.error is not None:
                raise KafkaException(partition.error)

    def assignment(self) -> frozenset[int]:
        """The partitions assigned to this member; see `Consumer.assignment`."""
        assigned: dict[str, set[int]] = {}
        for tp in self._consumer.assignment():
            assigned.setdefault(tp.topic, set()).add(tp.partition)
        return same_partitions(assigned)

    def close(self) -> None:
        """Leave the group without committing (auto-commit is off)."""
        self._consumer.close()


class ConfluentTransport(KafkaCluster):
    """Producers, consumers and topic administration against one Kafka cluster (librdkafka)."""

    producer_class = ConfluentProducer
    consumer_class = ConfluentConsumer

    def ensure_topics(self, topics: list[str]) -> None:
        """Create missing topics; a topic that exists already (or appears meanwhile) is fine."""
        settings: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "client.id": self.client_id,
            "reconnect.backoff.max.ms": self.backoff.max_ms,
            "logger": log,
        }
        admin = AdminClient(settings)
        self.backoff.run(
            f"connecting a Kafka admin client to {self.bootstrap}",
            lambda: _connect(admin, self.backoff.attempt_timeout_s),
            (_RetriableError,),
        )
        self.backoff.run(
            f"creating Kafka topics {topics}",
            lambda: self._create(admin, topics),
            (_RetriableError,),
        )

    def _create(self, admin: AdminClient, topics: list[str]) -> None:
        timeout_s = self.backoff.attempt_timeout_s
        futures = admin.create_topics(
            [NewTopic(topic, self.partitions, self.replication_factor) for topic in topics],
            operation_timeout=timeout_s,
            request_timeout=timeout_s,
        )
        created = []
        for topic, future in futures.items():
            try:
                future.result()
                created.append(topic)
            except KafkaException as exc:
                error = _kafka_error(exc)
                if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                problem = f"creating Kafka topic {topic!r}: {error}"
                if error.retriable() or error.code() in RETRIABLE_CODES:
                    raise _RetriableError(problem) from exc
                raise TransportError(problem) from exc
        if created:
            log.info("created Kafka topics %s", created)
            self._wait_for_leaders(admin, created, timeout_s)

    @staticmethod
    def _wait_for_leaders(admin: AdminClient, topics: list[str], timeout_s: float) -> None:
        """Producers fail fast on a topic the broker does not list yet: wait for leaders."""
        deadline = time.monotonic() + timeout_s
        while True:
            listed = admin.list_topics(timeout=timeout_s).topics
            if all(
                topic in listed
                and listed[topic].error is None
                and listed[topic].partitions
                and all(p.leader >= 0 for p in listed[topic].partitions.values())
                for topic in topics
            ):
                return
            if time.monotonic() >= deadline:
                raise _RetriableError(f"Kafka topics {topics} have no leaders yet")
            time.sleep(0.05)
