"""Ingest with N pipeline workers in one consumer group: how the scale-out grows on one machine.

`measure(...)` starts N child processes (`python -m bench.workers`), each an `IngestLoop`
into a sharded store (one DuckDB file per partition, as `store.sharded: true` runs it) in
one consumer group on topics that already hold the events. Every child joins, opens its
consumer and store, says it is ready and waits at a gate; the gate opens for all at once,
and each child prints its running count of newly stored events with the time. The rate is
every event over the time from the gate to the last commit: joining the group, the
rebalance as the members arrive and the shards moving with it are part of what N workers
cost. Records redelivered after a rebalance land in the same shard and count once.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

from bench.common import kafka_transport
from pipeline.ingest import IngestLoop
from pipeline.shards import ShardedStore
from sla.config import PipelineConfig

READY = "ready"
REPO = Path(__file__).resolve().parents[1]
# How long the coordinator waits for all events before it gives up on a run.
RUN_TIMEOUT_S = 900.0


def measure(
    bootstrap: str,
    prefix: str,
    *,
    client: str,
    partitions: int,
    workers: int,
    expected: int,
    directory: Path,
) -> dict[str, Any]:
    """Ingest the `expected` events under `prefix` with `workers` processes; their rate."""
    gate = directory / "gate"
    spec = {
        "bootstrap": bootstrap,
        "prefix": prefix,
        "client": client,
        "partitions": partitions,
        "group": f"{prefix}-workers{workers}-{uuid.uuid4().hex[:6]}",
        "directory": str(directory),
        "gate": str(gate),
    }
    directory.mkdir(parents=True, exist_ok=True)
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.workers", json.dumps(spec)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    try:
        for child in children:
            if _stdout(child).readline().strip() != READY:
                raise SystemExit(f"a worker exited before it was ready ({child.wait()})")
        gate.touch()
        opened = time.time()
        stored, last_at = _follow(children, expected)
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=120)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    seconds = last_at - opened
    return {
        "workers": workers,
        "events": sum(stored.values()),
        "complete": sum(stored.values()) >= expected,
        "seconds": seconds,
        "events_per_s": sum(stored.values()) / seconds if seconds > 0 else 0.0,
    }


def _stdout(child: subprocess.Popen[str]) -> IO[str]:
    if child.stdout is None:
        raise RuntimeError("a worker without a pipe")
    return child.stdout


def _follow(children: list[subprocess.Popen[str]], expected: int) -> tuple[dict[int, int], float]:
    """Read the children's counts until they add up to `expected`; the counts, last time."""
    stored = {child.pid: 0 for child in children}
    partial = {child.pid: b"" for child in children}
    last_at = time.time()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    with selectors.DefaultSelector() as selector:
        for child in children:
            # The raw descriptor: a buffered reader could hold lines the selector never
            # reports again.
            selector.register(_stdout(child).fileno(), selectors.EVENT_READ, child.pid)
        while sum(stored.values()) < expected and time.monotonic() < deadline:
            if not selector.get_map():
                break  # every worker has exited
            for key, _ in selector.select(timeout=1.0):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                *lines, partial[key.data] = (partial[key.data] + chunk).split(b"\n")
                for line in lines:
                    at, count = line.split()
                    stored[key.data] = int(count)
                    last_at = max(last_at, float(at))
    return stored, last_at


def work(spec: dict[str, Any]) -> None:
    """One worker: join, wait at the gate, ingest until SIGTERM, printing its count."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    transport = kafka_transport(
        spec["bootstrap"], spec["prefix"], spec["client"], spec["partitions"]
    )
    store = ShardedStore(Path(spec["directory"]))
    loop = IngestLoop(transport, store, PipelineConfig(group_id=spec["group"]), spec["prefix"])
    print(READY, flush=True)
    gate = Path(spec["gate"])
    while not gate.exists() and not stop.is_set():
        time.sleep(0.005)
    stored = 0
    try:
        while not stop.is_set():
            result = loop.run_once()
            if result.stored:
                stored += result.stored
                print(f"{time.time():.6f} {stored}", flush=True)
    finally:
        loop.close()
        store.close()


if __name__ == "__main__":
    work(json.loads(sys.argv[1]))
