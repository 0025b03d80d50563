"""Publish CloudEvents to their family's topic, keyed by service so each service stays ordered."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import islice

from collectors.spool import Spool, SpoolError, SpoolRecord
from pipeline.transport import Producer, RecordRejectedError
from sla.errors import TransportError
from sla.events import CloudEvent, topic_for

log = logging.getLogger(__name__)

# Flushing this often surfaces delivery failures while Kafka is down, not only at shutdown.
FLUSH_INTERVAL_S = 5.0
# A periodic flush waits at most this long, so an outage slows publishing but cannot stall it.
FLUSH_TIMEOUT_S = 5.0
# Sent records are kept until a flush confirms them, to spool them if it fails; this many
# unconfirmed records trigger a flush early, which bounds the memory a burst can take.
MAX_UNCONFIRMED = 10_000
# Records re-sent from the spool per flush and acknowledgement.
DRAIN_BATCH = 500
# How long a drain flush may wait: longer than a periodic one, as nothing waits on it.
DRAIN_FLUSH_TIMEOUT_S = 10.0
# The pause between attempts to reach Kafka again while it does not answer.
RETRY_INTERVAL_S = 1.0
# How long a new producer waits for the old ones' discards (a forced close takes up to 5 s).
DISCARD_WAIT_S = 10.0
# While the spool refuses events, or cannot be drained, one error per interval is enough.
LOSS_LOG_INTERVAL_S = 10.0
# Events `publish_all` sends before it waits for their delivery, which bounds its memory.
PUBLISH_BATCH = 1_000

ProducerFactory = Callable[[], Producer]
"""Makes a fresh producer: Kafka's idempotent one is useless after some failures."""


def record_of(event: CloudEvent, topic_prefix: str) -> SpoolRecord:
    """The transport record of `event`: on `<prefix>.<family>`, keyed by its service."""
    return SpoolRecord(topic_for(topic_prefix, event.type), event.subject, event.to_json())


class EventPublisher:
    """Sends events through a transport producer; safe to share between collector threads."""

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
        # Failed deliveries `flush` has raised for; periodic flushes only log theirs.
        self._reported_failures = producer.failed_deliveries
        # Producers are thread-safe; the flush schedule and the failure count are not.
        self._schedule = threading.Lock()

    @property
    def failed_deliveries(self) -> int:
        """How many published events never reached the transport."""
        return self._producer.failed_deliveries

    def publish(self, event: CloudEvent) -> None:
        """Queue `event` on `<prefix>.<family>` with the service id as key.

        Every `flush_interval_s` this also waits up to `flush_timeout_s` for what was queued and
        logs, rather than raises, what was lost: one lost probe result must not stop the rest.
        """
        record = record_of(event, self._prefix)
        self._producer.send(record.topic, record.key, record.value)
        with self._schedule:
            if self._clock() < self._next_flush_at:
                return
            self._next_flush_at = self._clock() + self._flush_interval_s
        try:
            self._producer.flush(timeout=self._flush_timeout_s)
        except TransportError as exc:
            log.warning("events not delivered (%d so far): %s", self.failed_deliveries, exc)

    def flush(self) -> None:
        """Block until every event published so far is delivered; raise if any was not.

        Raises `TransportError` also for deliveries that failed before, which a periodic
        flush of `publish` only logged: a batch caller must not report them as published.
        """
        try:
            self._producer.flush()
        finally:
            failed = self.failed_deliveries
            with self._schedule:
                unreported, self._reported_failures = failed - self._reported_failures, failed
        if unreported:
            raise TransportError(f"{unreported} events were not delivered since the last flush")

    def publish_durably(self, events: Sequence[CloudEvent]) -> None:
        """Publish `events` and return once the transport acknowledged them all."""
        for event in events:
            record = record_of(event, self._prefix)
            self._producer.send(record.topic, record.key, record.value)
        self.flush()

    def publish_all(self, events: Iterable[CloudEvent], batch: int = PUBLISH_BATCH) -> int:
        """Publish `events` in batches of `batch`, each acknowledged before the next is sent.

        Returns how many were published; raises `TransportError` at the first batch that was
        not delivered in full, saying how many events before it were.
        """
        published = 0
        iterator = iter(events)
        while chunk := list(islice(iterator, batch)):
            try:
                self.publish_durably(chunk)
            except TransportError as exc:
                raise TransportError(
                    f"events not delivered after {published} acknowledged ones: {exc}"
                ) from exc
            published += len(chunk)
        return published

    def close(self) -> None:
        """Deliver what is queued and release the producer."""
        try:
            self._producer.flush()
        finally:
            self._producer.close()


def _discard_quietly(producer: Producer) -> None:
    """Discard `producer`, logging rather than raising when that fails too."""
    try:
        producer.discard()
    except Exception:
        log.debug("discarding a producer failed", exc_info=True)


class SpooledPublisher:
    """Sends events to Kafka while it answers and to the on-disk spool while it does not.

    After a failed send or flush every new event goes to the spool, behind the ones already
    there, so none overtakes another; a drain thread re-sends the spool in order once Kafka
    answers again and then hands back to direct sends. Delivery is at least once: records a
    failed flush may still have delivered are spooled too, and the store ignores duplicates.
    """

    def __init__(
        self,
        producer_factory: ProducerFactory,
        topic_prefix: str,
        spool: Spool,
        *,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        flush_timeout_s: float = FLUSH_TIMEOUT_S,
        drain_batch: int = DRAIN_BATCH,
        drain_flush_timeout_s: float = DRAIN_FLUSH_TIMEOUT_S,
        retry_interval_s: float = RETRY_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._producer_factory = producer_factory
        self._prefix = topic_prefix
        self._spool = spool
        self._flush_interval_s = flush_interval_s
        self._flush_timeout_s = flush_timeout_s
        self._drain_batch = drain_batch
        self._drain_flush_timeout_s = drain_flush_timeout_s
        self._retry_interval_s = retry_interval_s
        self._clock = clock
        # Guards the mode, the producer while sending directly and the unconfirmed records.
        self._lock = threading.Lock()
        self._producer: Producer | None = None
        self._unconfirmed: list[SpoolRecord] = []
        self._next_flush_at = clock() + flush_interval_s
        self._spooled = 0
        self._drained = 0
        self._lost = 0
        self._next_loss_log_at = 0.0
        self._closing = threading.Event()
        self._drainer: threading.Thread | None = None
        # Producers being discarded: no new producer sends before they are done.
        self._discarding: list[threading.Thread] = []
        # The last drain attempt failed on the spool itself (not on Kafka): it keeps retrying.
        self._drain_failing = False
        self._next_drain_log_at = 0.0
        # Records left by an earlier run go out before anything new.
        self._spooling = len(spool) > 0
        if self._spooling:
            self._start_drain()

    @property
    def spooling(self) -> bool:
        """True while new events go to the spool rather than straight to Kafka."""
        return self._spooling

    @property
    def ready(self) -> bool:
        """True while events can be taken: the spool has room and, if used, drains."""
        if self._spool.pending_bytes >= self._spool.max_bytes or self._drain_failing:
            return False
        drainer = self._drainer
        return not self._spooling or (drainer is not None and drainer.is_alive())

    @property
    def spooled(self) -> int:
        """Events written to the spool since this publisher was made."""
        return self._spooled

    @property
    def drained(self) -> int:
        """Spooled events re-sent and acknowledged by Kafka since this publisher was made."""
        return self._drained

    @property
    def lost(self) -> int:
        """Events neither delivered nor spooled: the spool was full, or Kafka refused them."""
        return self._lost

    @property
    def spool_bytes(self) -> int:
        """Bytes of spooled events not yet re-sent."""
        return self._spool.pending_bytes

    @property
    def spool_records(self) -> int:
        """Spooled events not yet re-sent."""
        return len(self._spool)

    def publish(self, event: CloudEvent) -> None:
        """Send or spool `event`; one the spool cannot take is logged and counted as lost.

        Probe results cannot be refused to anyone, so this never raises for a lost event.
        """
        try:
            self._publish([record_of(event, self._prefix)], confirm=False)
        except (SpoolError, RecordRejectedError) as exc:
            self._log_loss(exc)

    def publish_durably(self, events: Sequence[CloudEvent]) -> None:
        """Return once every event is acknowledged by Kafka or fsynced to the spool.

        Raises `SpoolFullError` (or another `SpoolError`) when Kafka is unreachable and the
        spool cannot take them, and `RecordRejectedError` for an event Kafka can never take:
        the caller must then refuse the events (a webhook answers 503).
        """
        self._publish([record_of(event, self._prefix) for event in events], confirm=True)

    def flush(self) -> None:
        """Block until every event published so far is acknowledged by Kafka or spooled."""
        with self._lock:
            if not self._spooling and self._unconfirmed:
                self._confirm()

    def close(self) -> None:
        """Confirm or spool what was published, stop draining and release the spool.

        What is still spooled stays on disk and is drained by the next publisher of the spool.
        """
        self._closing.set()
        drainer = self._drainer
        if drainer is not None:
            drainer.join()
        with self._lock:
            try:
                if not self._spooling and self._unconfirmed:
                    self._confirm()
            except SpoolError as exc:
                self._log_loss(exc)
            finally:
                self._retire_producer()
                self._spool.close()

    def _publish(self, records: list[SpoolRecord], *, confirm: bool) -> None:
        with self._lock:
            if self._spooling:
                self._append(records)
                return
            try:
                self._send(records)
            except RecordRejectedError:
                raise
            except TransportError as exc:
                self._fall_back(exc)
                return
            due = self._clock() >= self._next_flush_at
            if confirm or due or len(self._unconfirmed) >= MAX_UNCONFIRMED:
                self._confirm()

    def _send(self, records: list[SpoolRecord]) -> None:
        """Send directly, keeping each record until confirmed.

        On a `TransportError` every record is among the unconfirmed ones, sent or not; on a
        `RecordRejectedError` the refused record and those after it are not.
        """
        if self._producer is None:
            try:
                self._producer = self._new_producer()
            except TransportError:
                self._unconfirmed += records
                raise
        for index, record in enumerate(records):
            try:
                self._producer.send(record.topic, record.key, record.value, record.headers)
            except RecordRejectedError:
                self._lost += 1
                raise
            except TransportError:
                self._unconfirmed += records[index:]
                raise
            self._unconfirmed.append(record)

    def _confirm(self) -> None:
        """Flush the producer; spool every unconfirmed record if that fails."""
        if self._producer is not None:
            try:
                self._producer.flush(timeout=self._flush_timeout_s)
            except TransportError as exc:
                # Even a refusal is spooled: the drain sends records one by one with a fresh
                # producer after a failure, which tells a refused record from a dead producer.
                self._fall_back(exc)
                return
        self._unconfirmed = []
        self._next_flush_at = self._clock() + self._flush_interval_s

    def _fall_back(self, exc: TransportError) -> None:
        """Switch to spooling, starting with every record not confirmed yet."""
        log.warning(
            "Kafka is unreachable, spooling events to %s until it answers: %s",
            self._spool.path,
            exc,
        )
        records, self._unconfirmed = self._unconfirmed, []
        self._retire_producer()
        self._spooling = True
        self._start_drain()
        self._append(records)

    def _append(self, records: list[SpoolRecord]) -> None:
        try:
            self._spool.append(records)
        except SpoolError:
            self._lost += len(records)
            raise
        self._spooled += len(records)

    def _retire_producer(self) -> None:
        """Drop the producer, discarding what it has not delivered, on a thread of its own.

        Every record not confirmed is spooled: one the old producer delivered after the
        broker came back could land before the spooled copies of earlier records. The
        discard may wait for Kafka, so it runs apart; `_new_producer` waits for it.
        """
        producer, self._producer = self._producer, None
        if producer is not None:
            discard = threading.Thread(
                target=_discard_quietly,
                args=(producer,),
                name="slamon-producer-discard",
                daemon=True,
            )
            self._discarding = [t for t in self._discarding if t.is_alive()] + [discard]
            discard.start()

    def _new_producer(self) -> Producer:
        """A fresh producer, once the producers being discarded can no longer deliver."""
        for discard in list(self._discarding):
            discard.join(DISCARD_WAIT_S)
        return self._producer_factory()

    def _start_drain(self) -> None:
        if self._drainer is None and not self._closing.is_set():
            self._drainer = threading.Thread(
                target=self._drain, name="slamon-spool-drain", daemon=True
            )
            self._drainer.start()

    def _drain(self) -> None:
        """Drain until the spool is empty or the publisher closes, whatever the spool does."""
        while not self._closing.is_set():
            try:
                self._drain_spool()
                return
            except SpoolError as exc:
                # A failed ack (disk full writing the cursor) moved nothing: the same records
                # are re-sent on the next attempt, and the store ignores the duplicates.
                self._drain_failing = True
                now = self._clock()
                if now >= self._next_drain_log_at:
                    self._next_drain_log_at = now + LOSS_LOG_INTERVAL_S
                    log.error(
                        "draining the spool %s failed, retrying every %gs: %s",
                        self._spool.path,
                        self._retry_interval_s,
                        exc,
                    )
                self._closing.wait(self._retry_interval_s)

    def _drain_spool(self) -> None:
        """Re-send the spool in order until it is empty, then hand back to direct sends."""
        batch = self._drain_batch
        while not self._closing.is_set():
            records = self._spool.peek(batch)
            if not records:
                with self._lock:
                    # Appends happen under the lock: an empty spool now stays empty.
                    if len(self._spool) == 0:
                        self._spooling = False
                        self._drain_failing = False
                        self._drainer = None
                        self._next_flush_at = self._clock() + self._flush_interval_s
                        log.info(
                            "spool drained (%d events so far), sending directly", self._drained
                        )
                        return
                continue
            try:
                self._resend(records)
            except RecordRejectedError as exc:
                self._retire_producer()
                if len(records) == 1:
                    # A fresh producer refused this one record: no retry can deliver it.
                    log.error("Kafka refused a spooled event for good, dropping it: %s", exc)
                    self._spool.ack(1)
                    with self._lock:
                        self._lost += 1
                # Go one record at a time, to find the refused one.
                batch = 1
                continue
            except TransportError as exc:
                log.debug("Kafka still unreachable, %d events spooled: %s", len(self._spool), exc)
                self._retire_producer()
                # One record at a time finds out cheaply when Kafka is back.
                batch = 1
                self._closing.wait(self._retry_interval_s)
                continue
            self._spool.ack(len(records))
            self._drained += len(records)
            if self._drain_failing:
                self._drain_failing = False
                log.info("draining the spool %s works again", self._spool.path)
            batch = self._drain_batch

    def _resend(self, records: list[SpoolRecord]) -> None:
        """Send `records` with the drain's producer and wait until Kafka acknowledged them."""
        if self._producer is None:
            self._producer = self._new_producer()
        for record in records:
            self._producer.send(record.topic, record.key, record.value, record.headers)
        self._producer.flush(timeout=self._drain_flush_timeout_s)

    def _log_loss(self, exc: Exception) -> None:
        now = self._clock()
        if now >= self._next_loss_log_at:
            self._next_loss_log_at = now + LOSS_LOG_INTERVAL_S
            log.error("events lost (%d so far): %s", self._lost, exc)
