"""The spool drain outlives a failing spool: it retries, and readiness says while it fails."""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collectors.publisher import SpooledPublisher, record_of
from collectors.spool import Spool
from pipeline.transport import EmbeddedTransport
from sla.events import CloudEvent, EventType, new_event, parse_event, topic_for

AT = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
PREFIX = "drain"


class DiskFullSpool(Spool):
    """A real spool whose cursor cannot be written while `disk_full` is set."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.disk_full = threading.Event()
        self.failed_acks = 0

    def _write_cursor(self, segment: int, offset: int) -> None:
        if self.disk_full.is_set():
            self.failed_acks += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        super()._write_cursor(segment, offset)


def probe(n: int) -> CloudEvent:
    return new_event(
        EventType.PROBE,
        "checkout",
        {"check": "health", "ok": True, "latency_ms": 10.0},
        source="collector/test",
        time=AT + timedelta(seconds=n),
        id=f"event-{n}",
    )


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def test_a_failed_ack_is_retried_and_the_publisher_is_not_ready_meanwhile(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    transport = EmbeddedTransport()
    topic = topic_for(PREFIX, "availability")
    transport.ensure_topics([topic])
    spool = DiskFullSpool(tmp_path / "spool")
    # Three events left by an earlier run, whose acknowledgement the full disk refuses.
    spool.append([record_of(probe(n), PREFIX) for n in range(3)])
    spool.disk_full.set()
    with caplog.at_level(logging.ERROR, logger="collectors.publisher"):
        publisher = SpooledPublisher(transport.producer, PREFIX, spool, retry_interval_s=0.02)
        try:
            wait_until(lambda: spool.failed_acks >= 3, "the drain retried the ack twice")
            assert publisher.spooling
            assert not publisher.ready
            # Retries every 20 ms, but one error per 10 s logging interval.
            assert len(caplog.records) == 1
            assert "No space left on device" in caplog.records[0].getMessage()

            spool.disk_full.clear()
            wait_until(lambda: not publisher.spooling, "the drain handed back to direct sends")
            assert publisher.ready
            assert publisher.spool_records == 0
            publisher.publish(probe(3))
            publisher.flush()
            assert publisher.spooled == 0
        finally:
            publisher.close()
    consumer = transport.consumer("check", [topic])
    ids = [parse_event(m.value).id for m in consumer.poll_batch(100, timeout_s=0.2)]
    # Each failed ack re-sent the three spooled events (the store drops the duplicates); the
    # one published afterwards went straight to the transport, behind them.
    assert set(ids) == {"event-0", "event-1", "event-2", "event-3"}
    assert ids[-1] == "event-3"
