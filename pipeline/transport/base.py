"""The transport contract shared by the Kafka and the embedded implementation."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from sla.errors import TransportError

log = logging.getLogger(__name__)

T = TypeVar("T")

# While Kafka is down every record fails: one warning per interval, with a count, is enough.
FAILURE_LOG_INTERVAL_S = 10.0

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Message:
    """One record as a consumer yields it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = field(default_factory=list)


class RecordRejectedError(TransportError):
    """The transport refused records for good (too large, invalid): resending them cannot help."""


class Producer(Protocol):
    """Sends records; `flush` blocks until every record sent so far is acknowledged."""

    @property
    def failed_deliveries(self) -> int:
        """How many records were sent but never acknowledged, since the producer was made."""

    def send(
        self, topic: str, key: str | None, value: bytes, headers: Headers | None = None
    ) -> None:
        """Queue one record; records with the same key land in the same partition, in order.

        Raises `RecordRejectedError` when the record can never be sent, e.g. it is too large.
        """

    def flush(self, timeout: float | None = None) -> None:
        """Wait for every queued record; raise `TransportError` if any could not be delivered.

        The error is a `RecordRejectedError` when every failure since the last flush was final.
        """

    def close(self) -> None:
        """Flush what is queued and release the connection."""

    def discard(self) -> None:
        """Drop every record not acknowledged yet and release the connection.

        For a producer given up after a failure, whose records go again through another:
        none of them may be delivered later.
        """


class Consumer(Protocol):
    """A member of a consumer group that commits offsets only when told to."""

    def poll_batch(self, max_records: int, timeout_s: float) -> list[Message]:
        """Return up to `max_records` records, waiting at most `timeout_s` for the first one."""

    def commit(self) -> None:
        """Commit the position after every record returned so far."""

    def assignment(self) -> frozenset[int]:
        """The partition numbers assigned to this member, the same in every topic.

        Raises `TransportError` when the topics are not co-partitioned (a member holds
        partition k of one topic but not of another), which breaks sharding by service.
        """

    def close(self) -> None:
        """Leave the group without committing."""


class Transport(Protocol):
    """A factory of producers and consumers over one cluster (or one process)."""

    def producer(self, *, idempotent: bool = True) -> Producer:
        """A new producer.

        An idempotent producer never duplicates a record, but Kafka's stops for good once the
        broker refuses one; `idempotent=False` suits a sender that must carry on and can
        live with duplicates, such as the dead-letter queue.
        """

    def consumer(
        self, group_id: str, topics: list[str], *, instance_id: str | None = None
    ) -> Consumer:
        """A new consumer of `topics` in group `group_id`, starting at the committed offsets.

        With `instance_id` the member is static (Kafka's `group.instance.id`): restarted
        under the same id it takes its partitions back without a rebalance.
        """

    def ensure_topics(self, topics: list[str]) -> None:
        """Create the topics that do not exist yet."""

    def partition_of(self, key: str) -> int:
        """The partition a record keyed `key` goes to, in a topic this transport created."""


def fenced(group_id: str, instance_id: str | None) -> TransportError:
    """The error of a static member pushed out by another joining under its instance id."""
    return TransportError(
        f"another consumer joined group {group_id!r} under instance id {instance_id!r}: "
        "give each pipeline worker its own pipeline.instance_id"
    )


def same_partitions(assigned: dict[str, set[int]]) -> frozenset[int]:
    """The partition numbers assigned in every topic; `TransportError` if topics differ."""
    sets = list(assigned.values())
    if any(partitions != sets[0] for partitions in sets[1:]):
        raise TransportError(
            "the family topics are not co-partitioned in this consumer's assignment "
            f"({ {topic: sorted(p) for topic, p in assigned.items()} }): give every topic the "
            "same number of partitions and use the range assignor"
        )
    return frozenset(sets[0]) if sets else frozenset()


class DeliveryFailures:
    """The records a producer could not deliver: counted, logged sparingly, raised by flush.

    Failures since the last flush are summarised (count, first error, whether all were
    final), so that an outage cannot grow memory. Safe to call from client callback threads.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._lock = threading.Lock()
        self._total = 0
        self._unflushed = 0
        self._first_unflushed: BaseException | None = None
        self._all_unflushed_final = True
        # Failures since the last warning, logged at most once per FAILURE_LOG_INTERVAL_S.
        self._unlogged = 0
        self._next_warning_at = 0.0

    @property
    def total(self) -> int:
        """How many records failed since the producer was made."""
        with self._lock:
            return self._total

    def record(self, exc: BaseException, *, final: bool) -> None:
        """Count one record that was not delivered; `final` when resending cannot help."""
        now = time.monotonic()
        with self._lock:
            self._total += 1
            self._unflushed += 1
            if self._first_unflushed is None:
                self._first_unflushed = exc
            self._all_unflushed_final &= final
            self._unlogged += 1
            if now < self._next_warning_at:
                return
            count, self._unlogged = self._unlogged, 0
            self._next_warning_at = now + FAILURE_LOG_INTERVAL_S
        self._log.warning("%d records not delivered to Kafka, latest: %r", count, exc)

    def raise_unflushed(self) -> None:
        """Forget the failures since the last call, raising `TransportError` if there were any.

        The error is a `RecordRejectedError` when every one of them was final.
        """
        with self._lock:
            failures, first, final = (
                self._unflushed,
                self._first_unflushed,
                self._all_unflushed_final,
            )
            self._unflushed, self._first_unflushed = 0, None
            self._all_unflushed_final = True
        if failures:
            error = RecordRejectedError if final else TransportError
            raise error(f"{failures} records were not delivered to Kafka, first: {first!r}")


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff that gives up with `TransportError` after `deadline_s`.

    `attempt_timeout_s` bounds one blocking attempt (connecting, committing), so that a dead
    broker costs a few logged attempts rather than one silent hang.
    """

    deadline_s: float = 60.0
    attempt_timeout_s: float = 10.0
    initial_s: float = 0.2
    max_s: float = 5.0

    @property
    def max_ms(self) -> int:
        """`max_s` in milliseconds, for the client's own reconnect backoff."""
        return int(self.max_s * 1000)

    @property
    def attempt_timeout_ms(self) -> int:
        """`attempt_timeout_s` in milliseconds, never beyond the deadline."""
        return int(min(self.attempt_timeout_s, self.deadline_s) * 1000)

    def run(
        self,
        what: str,
        attempt: Callable[[], T],
        retriable: tuple[type[BaseException], ...],
    ) -> T:
        """Call `attempt` until it succeeds, logging each failure; give up at the deadline."""
        give_up_at = time.monotonic() + self.deadline_s
        delay = self.initial_s
        failures = 0
        while True:
            try:
                return attempt()
            except retriable as exc:
                failures += 1
                remaining = give_up_at - time.monotonic()
                if remaining <= 0:
                    raise TransportError(
                        f"{what} failed {failures} times over {self.deadline_s:g}s: {exc!r}"
                    ) from exc
                pause = min(delay, remaining)
                log.warning(
                    "%s failed (attempt %d), retrying in %.1fs: %r", what, failures, pause, exc
                )
                time.sleep(pause)
                delay = min(delay * 2, self.max_s)
