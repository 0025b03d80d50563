"""Per-target jitter: reproducible, within bounds, never bunching, and followed by the scheduler."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time

import pytest

from collectors.probes import ProbeScheduler, run_times, stagger_s
from sla.config import ProbeConfig
from sla.events import CloudEvent


def _tcp(port: int = 5432, interval: int = 30, jitter: int = 10) -> ProbeConfig:
    return ProbeConfig(
        name="db", tcp=f"127.0.0.1:{port}", interval=interval, timeout=1, jitter=jitter
    )


def test_runs_stay_within_jitter_of_their_slots_and_never_bunch() -> None:
    config = _tcp(interval=30, jitter=10)
    starts = list(itertools.islice(run_times("erp", config, 1000.0), 500))
    # Slots begin one jitter after the start, so that no run is due before it.
    first_slot = 1000.0 + 10 + stagger_s("erp", config)
    for index, start in enumerate(starts):
        assert abs(start - (first_slot + 30 * index)) <= 10
    # Two runs are at least interval - 2 x jitter = 10 s apart.
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 10
    # The jitter is spread, not a constant shift.
    offsets = [start - (first_slot + 30 * index) for index, start in enumerate(starts)]
    assert min(offsets) < -8 and max(offsets) > 8


def test_jitter_is_reproducible_per_target_and_differs_between_targets() -> None:
    config = _tcp()
    first = list(itertools.islice(run_times("erp", config, 0.0), 20))
    again = list(itertools.islice(run_times("erp", config, 0.0), 20))
    other = list(itertools.islice(run_times("crm", config, 0.0), 20))
    assert first == again
    assert [b - a for a, b in zip(first, other, strict=True)] != [other[0] - first[0]] * 20


def test_no_run_is_due_before_the_scheduler_starts() -> None:
    config = _tcp(interval=30, jitter=10)
    firsts = [next(run_times(f"svc{i}", config, 1000.0)) for i in range(1000)]
    assert min(firsts) >= 1000.0
    # Still spread over an interval and both jitters, not bunched at the start.
    assert max(firsts) - min(firsts) > 40
    assert sum(first < 1001.0 for first in firsts) < 20


def test_without_jitter_runs_fall_exactly_on_their_slots() -> None:
    config = _tcp(jitter=0)
    starts = list(itertools.islice(run_times("erp", config, 0.0), 3))
    offset = stagger_s("erp", config)
    assert starts == [offset, offset + 30, offset + 60]


def test_jitter_of_half_the_interval_or_more_is_rejected() -> None:
    with pytest.raises(ValueError, match="jitter 15s must be under half the interval 30s"):
        _tcp(interval=30, jitter=15)


def test_scheduler_starts_runs_at_the_jittered_times() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        config = _tcp(port, interval=3, jitter=1)
        # A service whose first two runs both start within 3.5 s, so the test stays short.
        service = next(
            name
            for name in (f"svc{i}" for i in range(1000))
            if list(itertools.islice(run_times(name, config, 0.0), 2))[1] < 3.5
        )
        planned = list(itertools.islice(run_times(service, config, 0.0), 2))
        published: list[CloudEvent] = []
        lags: list[float] = []
        scheduler = ProbeScheduler([(service, config)], published.append, observe_lag=lags.append)
        begin = time.time()
        asyncio.run(_run_for(scheduler, 3.8))
    started = [event.time.timestamp() - begin for event in published]
    assert started == pytest.approx(planned, abs=0.15)
    # Each run reports how late it started: on time, give or take the event loop.
    assert len(lags) == 2
    assert all(0 <= lag < 0.15 for lag in lags)
    assert scheduler.skipped_runs == 0


def test_a_run_outlasting_its_interval_skips_the_next_slot_and_counts_it() -> None:
    # A listener that never accepts: the kernel completes the handshake, no answer comes.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        config = ProbeConfig(name="hang", http=f"http://127.0.0.1:{port}/", interval=1, timeout=1)
        published: list[CloudEvent] = []
        lags: list[float] = []
        scheduler = ProbeScheduler([("erp", config)], published.append, observe_lag=lags.append)
        asyncio.run(_run_for(scheduler, stagger_s("erp", config) + 2.5))
    # The run at the stagger times out after 1 s, when the next slot is due: that slot is
    # skipped rather than run late, and the one after starts on time (and is cut off).
    assert scheduler.skipped_runs == 1
    assert [getattr(event.data, "error", None) for event in published] == ["timeout"]
    assert len(lags) == 2
    assert all(0 <= lag < 0.15 for lag in lags)


async def _run_for(scheduler: ProbeScheduler, seconds: float) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    await scheduler.run(stop)
