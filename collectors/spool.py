"""A bounded on-disk FIFO of transport records, kept while Kafka is unreachable.

Records are appended as frames (`<u32 length><u32 crc32><payload>`) to segment files named by
their number (`00000000000000000042.seg`); the `cursor` file holds the position after the
last acknowledged record. Appends are fsynced before they return, so a record the spool
took survives a crash of the process or the machine; a frame torn by such a crash fails its
CRC and is cut off when the spool is opened again, never served.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pipeline.transport import Headers
from sla.config import SpoolConfig
from sla.errors import SlamonError

log = logging.getLogger(__name__)

MIB = 1024 * 1024
SEGMENT_SUFFIX = ".seg"
CURSOR_NAME = "cursor"
LOCK_NAME = "lock"

# Payload length and CRC32 of the payload.
_FRAME = struct.Struct("<II")
# Topic length, key length (-1 for no key), value length, header count.
_RECORD = struct.Struct("<HiIH")
# Header name length, header value length.
_HEADER = struct.Struct("<HI")
# Segment number and byte offset of the first unacknowledged frame.
_CURSOR = struct.Struct("<QQ")


class SpoolError(SlamonError):
    """The spool could not be opened, written or read."""


class SpoolFullError(SpoolError):
    """The spool holds `max_bytes` already: the records were not taken and must be refused."""


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One record as the transport sends it."""

    topic: str
    key: str | None
    value: bytes
    headers: Headers = field(default_factory=list)


def encode_record(record: SpoolRecord) -> bytes:
    """The frame payload of `record`."""
    topic = record.topic.encode()
    key = None if record.key is None else record.key.encode()
    parts = [
        _RECORD.pack(
            len(topic), -1 if key is None else len(key), len(record.value), len(record.headers)
        ),
        topic,
        key or b"",
        record.value,
    ]
    for name, value in record.headers:
        encoded = name.encode()
        parts += [_HEADER.pack(len(encoded), len(value)), encoded, value]
    return b"".join(parts)


def decode_record(payload: bytes) -> SpoolRecord:
    """The record `encode_record` turned into `payload`."""
    topic_len, key_len, value_len, header_count = _RECORD.unpack_from(payload)
    at = _RECORD.size
    topic = payload[at : at + topic_len].decode()
    at += topic_len
    key = None
    if key_len >= 0:
        key = payload[at : at + key_len].decode()
        at += key_len
    value = payload[at : at + value_len]
    at += value_len
    headers: Headers = []
    for _ in range(header_count):
        name_len, header_len = _HEADER.unpack_from(payload, at)
        at += _HEADER.size
        name = payload[at : at + name_len].decode()
        at += name_len
        headers.append((name, payload[at : at + header_len]))
        at += header_len
    return SpoolRecord(topic, key, value, headers)


def _frame(record: SpoolRecord) -> bytes:
    payload = encode_record(record)
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _read_frame(file: BinaryIO, max_payload: int) -> bytes | None:
    """The next intact payload of `file`, or None at its end or at a torn or corrupt frame."""
    head = file.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    length, crc = _FRAME.unpack(head)
    if length > max_payload:
        return None
    payload = file.read(length)
    if len(payload) < length or zlib.crc32(payload) != crc:
        return None
    return payload


def _fsync_dir(path: Path) -> None:
    """Make file creations, renames and removals in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """A FIFO of records on disk, bounded by `max_bytes` of unacknowledged frames.

    `peek` returns the oldest records without removing them; `ack` removes them once they
    were delivered. One process at a time may open a spool directory; its methods are
    thread-safe.
    """

    def __init__(
        self, path: Path, *, max_bytes: int = 256 * MIB, segment_bytes: int = 8 * MIB
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot open the spool {path}: {exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolError(f"the spool {path} is in use by another process") from None
        # Segment number -> size in bytes of its intact frames.
        self._sizes: dict[int, int] = {}
        self._records = 0
        self._read = (0, 0)
        # Positions after each record the last peek returned, for ack.
        self._peeked: list[tuple[int, int]] = []
        try:
            self._recover()
            self._tail = max(self._sizes)
            self._tail_fd = os.open(self._segment(self._tail), os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            os.close(self._lock_fd)
            raise SpoolError(f"cannot open the spool {path}: {exc}") from exc

    @classmethod
    def from_config(cls, config: SpoolConfig) -> Spool:
        """The spool `config` describes; a relative path is taken from the working directory."""
        return cls(
            Path(config.path), max_bytes=config.max_bytes, segment_bytes=config.segment_bytes
        )

    def __len__(self) -> int:
        """How many records wait to be acknowledged."""
        with self._lock:
            return self._records

    @property
    def pending_bytes(self) -> int:
        """Bytes of frames that wait to be acknowledged; appends fail beyond `max_bytes`."""
        with self._lock:
            return self._pending_bytes()

    def _pending_bytes(self) -> int:
        segment, offset = self._read
        return sum(size for number, size in self._sizes.items() if number >= segment) - offset

    def _segment(self, number: int) -> Path:
        return self.path / f"{number:020d}{SEGMENT_SUFFIX}"

    def _recover(self) -> None:
        """Load the cursor, drop acknowledged segments and cut torn frames off the rest."""
        numbers = sorted(
            int(p.name.removesuffix(SEGMENT_SUFFIX))
            for p in self.path.glob(f"*{SEGMENT_SUFFIX}")
            if p.name.removesuffix(SEGMENT_SUFFIX).isdigit()
        )
        cursor = self.path / CURSOR_NAME
        raw = cursor.read_bytes() if cursor.exists() else b""
        segment, offset = _CURSOR.unpack(raw) if len(raw) == _CURSOR.size else (0, 0)
        for number in numbers:
            if number < segment:
                self._segment(number).unlink()
        live = [number for number in numbers if number >= segment]
        if not live or live[0] != segment:
            # The cursor's segment is gone (or was never written): start at the next one.
            segment, offset = (live[0] if live else segment), 0
        if not live:
            self._segment(segment).touch()
            _fsync_dir(self.path)
            live = [segment]
        for number in live:
            self._sizes[number] = self._scan(number, offset if number == segment else 0)
        self._read = (segment, min(offset, self._sizes[segment]))

    def _scan(self, number: int, start: int) -> int:
        """Count the intact frames of a segment from `start`; truncate what follows them."""
        path = self._segment(number)
        with path.open("rb+") as file:
            # A cursor beyond the end means the segment was cut short outside the spool.
            start = min(start, file.seek(0, os.SEEK_END))
            file.seek(start)
            end = start
            while _read_frame(file, self.max_bytes) is not None:
                self._records += 1
                end = file.tell()
            size = file.seek(0, os.SEEK_END)
            if size > end:
                log.warning(
                    "spool %s: cutting %d bytes of a torn or corrupt frame off %s",
                    self.path,
                    size - end,
                    path.name,
                )
                file.truncate(end)
                os.fsync(file.fileno())
        return end

    def append(self, records: Sequence[SpoolRecord]) -> None:
        """Add `records` at the end; they are on disk (fsynced) when this returns.

        Raises `SpoolFullError`, taking none of them, when they do not fit in `max_bytes`.
        """
        frames = [_frame(record) for record in records]
        with self._lock:
            needed = sum(len(frame) for frame in frames)
            pending = self._pending_bytes()
            if pending + needed > self.max_bytes:
                raise SpoolFullError(
                    f"the spool {self.path} is full: {pending} bytes pending, {needed} more "
                    f"would exceed {self.max_bytes}"
                )
            try:
                for frame in frames:
                    self._write(frame)
                os.fsync(self._tail_fd)
            except OSError as exc:
                self._cut_tail()
                raise SpoolError(f"cannot write to the spool {self.path}: {exc}") from exc

    def _write(self, frame: bytes) -> None:
        size = self._sizes[self._tail]
        if size and size + len(frame) > self.segment_bytes:
            self._roll()
        view = memoryview(frame)
        while view:
            view = view[os.write(self._tail_fd, view) :]
        self._sizes[self._tail] += len(frame)
        self._records += 1

    def _roll(self) -> None:
        """Start a new tail segment once the current one is durable."""
        os.fsync(self._tail_fd)
        os.close(self._tail_fd)
        self._tail += 1
        self._tail_fd = os.open(
            self._segment(self._tail), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600
        )
        self._sizes[self._tail] = 0
        _fsync_dir(self.path)

    def _cut_tail(self) -> None:
        """Drop a partly written frame after a failed write, so it cannot corrupt later ones."""
        try:
            os.ftruncate(self._tail_fd, self._sizes[self._tail])
        except OSError:
            log.exception("spool %s: cannot truncate %s", self.path, self._segment(self._tail))

    def peek(self, n: int) -> list[SpoolRecord]:
        """The oldest `n` (or fewer) records, left in the spool until `ack`."""
        with self._lock:
            records: list[SpoolRecord] = []
            self._peeked = []
            segment, offset = self._read
            while len(records) < n and segment <= self._tail:
                end = self._sizes[segment]
                if offset < end:
                    with self._segment(segment).open("rb") as file:
                        file.seek(offset)
                        while len(records) < n and offset < end:
                            payload = _read_frame(file, self.max_bytes)
                            if payload is None:
                                raise SpoolError(
                                    f"spool {self.path}: corrupt frame in {file.name} at {offset}"
                                )
                            records.append(decode_record(payload))
                            offset = file.tell()
                            self._peeked.append((segment, offset))
                if offset >= end:
                    segment, offset = segment + 1, 0
            return records

    def ack(self, n: int) -> None:
        """Remove the first `n` records the last `peek` returned; a reopened spool skips them."""
        with self._lock:
            if not 0 <= n <= len(self._peeked):
                raise ValueError(
                    f"cannot ack {n} records: the last peek returned {len(self._peeked)}"
                )
            if n == 0:
                return
            segment, offset = self._peeked[n - 1]
            while segment < self._tail and offset >= self._sizes[segment]:
                segment, offset = segment + 1, 0
            try:
                self._write_cursor(segment, offset)
            except OSError as exc:
                # Nothing moved: the same records can be peeked, re-sent and acked again.
                raise SpoolError(f"cannot advance the spool {self.path}: {exc}") from exc
            del self._peeked[:n]
            self._read = (segment, offset)
            self._records -= n
            for number in [number for number in self._sizes if number < segment]:
                del self._sizes[number]
                try:
                    self._segment(number).unlink()
                except OSError:
                    # Behind the cursor it is never read again; the next opening removes it.
                    log.exception("spool %s: cannot remove %s", self.path, self._segment(number))

    def _write_cursor(self, segment: int, offset: int) -> None:
        """Replace the cursor atomically: a crash leaves the old or the new one, never half."""
        staging = self.path / f"{CURSOR_NAME}.tmp"
        with staging.open("wb") as file:
            file.write(_CURSOR.pack(segment, offset))
            file.flush()
            os.fsync(file.fileno())
        staging.replace(self.path / CURSOR_NAME)
        _fsync_dir(self.path)

    def close(self) -> None:
        """Release the files and the lock; appended records stay for the next opening."""
        with self._lock:
            os.close(self._tail_fd)
            os.close(self._lock_fd)
