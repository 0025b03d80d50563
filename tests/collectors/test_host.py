"""Host capacity from real psutil readings of this machine."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from typing import Any

import pytest

from collectors.host import HostCapacityCollector
from sla.config import HostCapacityConfig
from sla.events import CapacityData, CloudEvent, EventType

MIB = 1 << 20
LOOPBACK_BYTES = 8 * MIB
LINK = 125_000_000.0  # 1 Gbit/s in bytes per second


def _collector(**options: Any) -> tuple[HostCapacityCollector, list[CloudEvent]]:
    config = HostCapacityConfig.model_validate({"services": ["shop", "cart"], **options})
    published: list[CloudEvent] = []
    return HostCapacityCollector(config, published.append), published


def _by_resource(events: list[CloudEvent], service: str) -> dict[str, CapacityData]:
    found: dict[str, CapacityData] = {}
    for event in events:
        assert isinstance(event.data, CapacityData)
        if event.subject == service:
            found[event.data.resource] = event.data
    return found


def test_one_event_per_service_and_resource_with_the_host_name() -> None:
    collector, published = _collector()
    time.sleep(0.05)  # cpu counters tick every 10 ms: a shorter window has no cpu sample
    events = collector.run_once()
    assert events == published
    assert collector.host == socket.gethostname()
    assert {e.type for e in events} == {EventType.CAPACITY}
    assert {e.source for e in events} == {f"collector/host/{collector.host}"}
    shop = _by_resource(events, "shop")
    # cpu, memory and the disk of "/" (the default mount) for each of the two services.
    assert sorted(shop) == ["cpu", "disk", "memory"]
    assert len(events) == 6
    assert shop == _by_resource(events, "cart")
    assert shop["cpu"].host == shop["memory"].host == collector.host
    assert shop["disk"].host == f"{collector.host}:/"


def test_values_lie_in_range_and_disk_matches_shutil() -> None:
    collector, _ = _collector()
    time.sleep(0.05)
    shop = _by_resource(collector.run_once(), "shop")
    expected = shutil.disk_usage("/")

    assert (shop["cpu"].unit, shop["cpu"].capacity) == ("ratio", 1.0)
    assert 0 <= shop["cpu"].used <= 1
    memory = shop["memory"]
    assert memory.unit == "bytes"
    assert 0 < memory.used < memory.capacity
    disk = shop["disk"]
    # Other processes may write between the two readings: allow 64 MiB of drift.
    assert disk.used == pytest.approx(expected.used, abs=64 * MIB)
    assert disk.capacity == pytest.approx(expected.used + expected.free, abs=64 * MIB)


def test_a_busy_core_shows_in_the_cpu_ratio() -> None:
    collector, _ = _collector()
    deadline = time.process_time() + 0.5
    while time.process_time() < deadline:  # keep one core busy for 0.5 s of CPU time
        pass
    cpu = _by_resource(collector.run_once(), "shop")["cpu"].used
    # One of os.cpu_count() cores was busy for nearly the whole window; allow for scheduling.
    assert cpu >= 0.5 / (os.cpu_count() or 1)


def test_network_rate_counts_loopback_traffic_against_the_link_capacity() -> None:
    collector, _ = _collector(network={"lo": LINK})
    began = time.monotonic()
    _send_over_loopback(LOOPBACK_BYTES)
    network = _by_resource(collector.run_once(), "shop")["network"]
    window = time.monotonic() - began
    assert (network.unit, network.capacity, network.host) == (
        "bytes/s",
        LINK,
        f"{collector.host}:lo",
    )
    # At least the bytes we sent, spread over at most the time since the collector started.
    assert network.used >= LOOPBACK_BYTES / (window + 0.5)


def test_missing_mount_and_interface_are_warned_about_once_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector, _ = _collector(mounts=["/", "/no/such/mount"], network={"nosuchnic0": LINK})
    time.sleep(0.05)  # cpu counters tick every 10 ms: a shorter window has no cpu sample
    with caplog.at_level(logging.WARNING, logger="collectors.host"):
        first = _by_resource(collector.run_once(), "shop")
        collector.run_once()
    assert sorted(first) == ["cpu", "disk", "memory"]
    messages = sorted(record.getMessage() for record in caplog.records)
    assert len(messages) == 2
    assert messages[0].startswith("disk usage of '/no/such/mount' unavailable")
    assert messages[1].startswith("no network interface 'nosuchnic0'")


def test_run_samples_every_interval_until_stopped() -> None:
    collector, published = _collector(interval=1)
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    collector.run(stop)
    # The first sample after one interval (so rates span a whole one), stopped before the second.
    assert len(published) == 6


def test_host_override_and_unknown_config_keys() -> None:
    collector, _ = _collector(host="web1")
    assert {e.data.host for e in collector.run_once() if isinstance(e.data, CapacityData)} == {
        "web1",
        "web1:/",
    }
    with pytest.raises(ValueError, match="link capacity must be a positive number"):
        HostCapacityConfig.model_validate({"services": ["shop"], "network": {"lo": 0}})


def _send_over_loopback(size: int) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        with client, peer:
            reader = threading.Thread(target=_drain, args=(peer, size))
            reader.start()
            client.sendall(b"x" * size)
            reader.join()


def _drain(sock: socket.socket, size: int) -> None:
    while size > 0:
        size -= len(sock.recv(1 << 16))
