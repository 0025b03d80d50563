"""Capacity samples of the host slamon runs on (cpu, memory, disks, network links) via psutil."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psutil

from collectors.probes import Clock, Publish, utc_now
from sla.config import HostCapacityConfig
from sla.events import CapacityData, CloudEvent, EventType, new_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Counters:
    """Cumulative counters at one instant; rates come from the difference of two."""

    at: float
    cpu_busy: float
    cpu_total: float
    network: dict[str, tuple[int, int]]
    """Interface -> (bytes received, bytes sent)."""

    @classmethod
    def now(cls) -> _Counters:
        """Read the counters."""
        times = psutil.cpu_times()
        # Linux counts guest time inside user and nice time as well: count it once.
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        # iowait is time the CPU had nothing to run: idle, not busy.
        idle = times.idle + getattr(times, "iowait", 0.0)
        nics = psutil.net_io_counters(pernic=True)
        network = {name: (nic.bytes_recv, nic.bytes_sent) for name, nic in nics.items()}
        return cls(time.monotonic(), total - idle, total, network)


class HostCapacityCollector:
    """Publishes this host's utilization for each configured service every `interval`.

    cpu is a ratio of all cores; memory is bytes in use (total - available); disk is bytes used
    per mount out of used + free (what non-root users can fill); network is the busier
    direction's bytes/s of each configured interface out of its link capacity. Rates cover the
    time since the previous sample (since construction for the first); a window too short for
    the kernel's cpu counters to tick has no cpu sample.
    """

    def __init__(
        self, config: HostCapacityConfig, publish: Publish, clock: Clock = utc_now
    ) -> None:
        self._config = config
        self._publish = publish
        self._clock = clock
        self._host = config.host or socket.gethostname()
        self._previous = _Counters.now()
        self._missing: set[str] = set()

    @property
    def host(self) -> str:
        """The host name the events carry."""
        return self._host

    def run_once(self) -> list[CloudEvent]:
        """Take one sample, publish an event per service and resource, and return them."""
        at = self._clock()
        events = [
            new_event(
                EventType.CAPACITY,
                service_id,
                data,
                source=f"collector/host/{self._host}",
                time=at,
            )
            for data in self._sample()
            for service_id in self._config.services
        ]
        for event in events:
            self._publish(event)
        return events

    def run(self, stop: threading.Event) -> None:
        """Sample every `interval` until `stop` is set."""
        while not stop.wait(self._config.interval):
            self.run_once()

    def _sample(self) -> Iterator[CapacityData]:
        current = _Counters.now()
        previous, self._previous = self._previous, current
        busy, total = current.cpu_busy - previous.cpu_busy, current.cpu_total - previous.cpu_total
        if total > 0:
            yield self._data("cpu", min(1.0, max(0.0, busy / total)), 1.0, "ratio")
        memory = psutil.virtual_memory()
        yield self._data("memory", memory.total - memory.available, memory.total, "bytes")
        for mount in self._config.mounts:
            try:
                disk = psutil.disk_usage(mount)
            except OSError as exc:
                self._warn_once(mount, f"disk usage of {mount!r} unavailable: {exc}")
                continue
            yield self._data("disk", disk.used, disk.used + disk.free, "bytes", mount)
        elapsed = current.at - previous.at
        for interface, link in self._config.network.items():
            if interface not in current.network or interface not in previous.network:
                self._warn_once(interface, f"no network interface {interface!r} on {self._host}")
                continue
            received, sent = (
                now - before
                for now, before in zip(
                    current.network[interface], previous.network[interface], strict=True
                )
            )
            if elapsed > 0:
                rate = max(received, sent, 0) / elapsed
                yield self._data("network", rate, link, "bytes/s", interface)

    def _data(
        self, resource: str, used: float, capacity: float, unit: str, part: str | None = None
    ) -> CapacityData:
        # Several disks or links of one host are told apart by the host, as resources carry
        # the service's thresholds (`capacity: {disk: ...}`).
        host = self._host if part is None else f"{self._host}:{part}"
        return CapacityData(resource=resource, used=used, capacity=capacity, unit=unit, host=host)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._missing:
            self._missing.add(key)
            log.warning(message)
