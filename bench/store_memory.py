"""Memory of the event store as it grows: the soak's event mix written through `EventStore`.

`python -m bench.store_memory --events 3000000` writes `--events` events of the soak mix
(`bench.soak.EventMix`, `--rate` events a second of event time, so batches cover what the
pipeline's batches cover) into a fresh on-disk store in batches of `--batch`, re-sending
every `--replay-every`-th batch once more right after it (at-least-once delivery). Every
`--sample-every` events it records this process's RSS (psutil), DuckDB's own accounting
(`duckdb_memory()` by tag), the store's size on disk and the mean time `write_batch` took
per event since the previous sample. At the end it times three late replays: the first
batch written, one from the middle, and the last one again, which must all store nothing.

The store gets `--memory-limit-mib` (the pipeline's `store.memory_limit_mib`; 0 leaves
DuckDB's default of 80 % of the machine's memory). Samples go to `--json`.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from bench.soak import EventMix, service_ids
from pipeline.store import EventStore
from sla.config import StoreConfig
from sla.events import CloudEvent

Batch = tuple[list[CloudEvent], list[bytes]]


def make_batch(mix: EventMix, start: datetime, first: int, size: int, rate: int) -> Batch:
    """Events `first` to `first + size` of the mix, the n-th at `start + n / rate` seconds."""
    events = [mix.take(start + timedelta(seconds=(first + n) / rate)) for n in range(size)]
    return events, [event.to_json() for event in events]


def duckdb_memory(store: EventStore) -> dict[str, int]:
    """DuckDB's memory in use by tag (only tags using any)."""
    rows = store.query(
        "SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0"
    ).rows()
    return {str(tag): int(used) for tag, used in rows}


def timed_write(store: EventStore, batch: Batch) -> tuple[int, float]:
    """How many events `write_batch` stored, and the seconds it took."""
    started = time.perf_counter()
    stored = store.write_batch(batch[0], raw=batch[1])
    return stored, time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Write the stream, sampling as it goes; then the late replays."""
    path: Path = args.store
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    limit = args.memory_limit_mib or None
    store = EventStore(path, memory_limit_mib=limit)
    process = psutil.Process()
    mix = EventMix(service_ids(args.services), seed=args.seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    samples: list[dict[str, Any]] = []
    kept: dict[str, Batch] = {}
    written = stored = 0
    write_s, write_events = 0.0, 0
    batches = 0
    try:
        while written < args.events:
            size = min(args.batch, args.events - written)
            batch = make_batch(mix, start, written, size, args.rate)
            batches += 1
            count, seconds = timed_write(store, batch)
            stored += count
            written += size
            write_s, write_events = write_s + seconds, write_events + size
            if args.replay_every and batches % args.replay_every == 0:
                count, seconds = timed_write(store, batch)
                stored += count
                write_s, write_events = write_s + seconds, write_events + size
            if batches == 1:
                kept["first"] = batch
            elif written >= args.events // 2 and "middle" not in kept:
                kept["middle"] = batch
            kept["last"] = batch
            if written % args.sample_every < size or written == args.events:
                memory = duckdb_memory(store)
                sample = {
                    "events": written,
                    "stored": stored,
                    "rss_bytes": process.memory_info().rss,
                    "duckdb_bytes": sum(memory.values()),
                    "duckdb_by_tag": memory,
                    "store_bytes": sum(p.stat().st_size for p in path.parent.glob(path.name + "*")),
                    "write_us_per_event": 1e6 * write_s / max(write_events, 1),
                }
                samples.append(sample)
                write_s, write_events = 0.0, 0
                tags = ", ".join(f"{tag} {used / 2**20:.0f}" for tag, used in memory.items())
                print(
                    f"{written:>10,} events  RSS {sample['rss_bytes'] / 2**20:7.1f} MiB  "
                    f"DuckDB {sample['duckdb_bytes'] / 2**20:6.1f} MiB ({tags})  "
                    f"{sample['write_us_per_event']:5.1f} us/event",
                    flush=True,
                )
        replays = {}
        for name, batch in kept.items():
            count, seconds = timed_write(store, batch)
            replays[name] = {"stored": count, "ms": round(seconds * 1000, 1)}
        ((rows, distinct),) = store.query("SELECT count(*), count(DISTINCT id) FROM events").rows()
    finally:
        store.close()
    print(f"late replays: {replays}; {rows:,} rows, {distinct:,} distinct ids")
    return {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "samples": samples,
        "replays": replays,
        "rows": rows,
        "distinct_ids": distinct,
    }


def main(argv: list[str] | None = None) -> None:
    """The command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.store_memory", description=__doc__)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=2000, help="Events a second of event time.")
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--replay-every", type=int, default=50)
    parser.add_argument("--sample-every", type=int, default=250_000)
    parser.add_argument("--memory-limit-mib", type=int, default=StoreConfig().memory_limit_mib)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", type=Path, default=Path("var/bench/store-memory.duckdb"))
    parser.add_argument("--json", type=Path, default=Path("var/bench/store-memory.json"))
    args = parser.parse_args(argv)
    args.store.parent.mkdir(parents=True, exist_ok=True)
    result = run(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
