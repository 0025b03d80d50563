"""The spool is a bounded, crash-safe FIFO of records on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from collectors.spool import Spool, SpoolError, SpoolFullError, SpoolRecord
from sla.config import SpoolConfig


def record(n: int, service: str = "checkout") -> SpoolRecord:
    return SpoolRecord("slamon.availability", service, f'{{"n": {n}}}'.encode())


def segments(path: Path) -> list[Path]:
    return sorted(path.glob("*.seg"))


def test_records_come_back_in_order_with_key_headers_and_value(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    odd = SpoolRecord("t.x", None, b"", [("a", b"1"), ("b", b"\x00\xff")])
    spool.append([record(1), odd])
    spool.append([record(2, "payments")])
    assert spool.peek(10) == [record(1), odd, record(2, "payments")]
    # peek leaves them: a second look sees the same records.
    assert spool.peek(2) == [record(1), odd]
    spool.ack(1)
    assert spool.peek(10) == [odd, record(2, "payments")]
    assert len(spool) == 2


def test_a_reopened_spool_resumes_after_the_last_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([record(n) for n in range(5)])
    spool.peek(3)
    spool.ack(2)
    spool.close()
    reopened = Spool(tmp_path)
    assert len(reopened) == 3
    assert reopened.peek(10) == [record(n) for n in (2, 3, 4)]


def test_acked_segments_are_deleted_and_records_span_segments(tmp_path: Path) -> None:
    # Each frame is 8 bytes of frame head + 12 of record head + 19 topic + 8 key + 8 value
    # = 55 bytes, so a 120-byte segment holds two frames and six records take three files.
    spool = Spool(tmp_path, segment_bytes=120)
    spool.append([record(n) for n in range(6)])
    assert len(segments(tmp_path)) == 3
    assert spool.pending_bytes == 6 * 55
    assert spool.peek(4) == [record(n) for n in range(4)]
    spool.ack(4)
    # The first two segments were consumed whole.
    assert len(segments(tmp_path)) == 1
    assert spool.pending_bytes == 2 * 55
    spool.close()
    assert Spool(tmp_path, segment_bytes=120).peek(10) == [record(4), record(5)]


def test_a_torn_final_frame_is_cut_off_never_served(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([record(1), record(2)])
    spool.close()
    (tail,) = segments(tmp_path)
    intact = tail.stat().st_size
    # A crash in the middle of writing the third frame: its head and part of the payload.
    with tail.open("ab") as file:
        file.write(b"\x37\x00\x00\x00\x12\x34\x56\x78" + b"\x0d\x00\xff\xff")
    reopened = Spool(tmp_path)
    assert reopened.peek(10) == [record(1), record(2)]
    assert tail.stat().st_size == intact
    # New records follow the intact ones, not the torn bytes.
    reopened.append([record(3)])
    reopened.close()
    assert Spool(tmp_path).peek(10) == [record(1), record(2), record(3)]


def test_a_frame_with_a_bad_checksum_is_cut_off(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([record(1), record(2)])
    spool.close()
    (tail,) = segments(tmp_path)
    data = bytearray(tail.read_bytes())
    data[-1] ^= 0xFF  # the last byte of record 2's value
    tail.write_bytes(bytes(data))
    assert Spool(tmp_path).peek(10) == [record(1)]


def test_a_full_spool_refuses_the_whole_append(tmp_path: Path) -> None:
    # 55-byte frames (see above): three fit in 170 bytes, a fourth does not.
    spool = Spool(tmp_path, max_bytes=170)
    spool.append([record(1), record(2)])
    with pytest.raises(SpoolFullError, match="full"):
        spool.append([record(3), record(4)])
    assert spool.peek(10) == [record(1), record(2)]
    spool.append([record(3)])
    spool.peek(1)
    spool.ack(1)
    # Acknowledged records free their space.
    spool.append([record(4)])
    assert spool.peek(10) == [record(2), record(3), record(4)]


def test_ack_beyond_the_last_peek_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([record(1), record(2)])
    spool.peek(1)
    with pytest.raises(ValueError, match="last peek returned 1"):
        spool.ack(2)


def test_one_process_at_a_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path)
    spool.close()
    Spool(tmp_path).close()


def test_the_config_keeps_segments_within_the_limit(tmp_path: Path) -> None:
    # A small max_bytes needs a smaller segment_bytes than the 8 MiB default too.
    with pytest.raises(ValidationError) as raised:
        SpoolConfig(path=str(tmp_path), max_bytes=100_000)
    assert [error["loc"] for error in raised.value.errors()] == [("segment_bytes",)]
    config = SpoolConfig(path=str(tmp_path / "s"), max_bytes=100_000, segment_bytes=10_000)
    spool = Spool.from_config(config)
    assert (spool.path, spool.max_bytes, spool.segment_bytes) == (tmp_path / "s", 100_000, 10_000)
    spool.close()
