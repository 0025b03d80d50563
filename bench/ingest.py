"""The ingest benchmark: Kafka to DuckDB throughput against the raw consumer, and freshness.

`python -m bench.ingest --bootstrap HOST:PORT` measures, in one run against a real broker:

- produce: `--events` valid CloudEvents (mostly probe results, some capacity samples and
  tickets, from `--services` services) built with `new_event` and sent by the collectors'
  `EventPublisher` (key = service, topic = `<prefix>.<family>`);
- for each Kafka client (`--clients`): the raw ceiling, a consumer group that only polls
  and discards, then the real ingest, `IngestLoop` into a fresh on-disk `EventStore` with
  offsets committed after the store commits, until every event is stored; both in events/s
  from the first record returned to the last one discarded or committed;
- freshness: a child process publishes at `--rate` events/s for `--seconds`, while a real
  `PipelineService` (as `slamon pipeline` runs it, default client) ingests them; for every
  event, the time from its `time` to the moment the pipeline set its Prometheus gauges
  (`slamon_pipeline_last_batch_timestamp_seconds`, `slamon_pipeline_lag_seconds`) for the
  batch holding it, read back from the registry.

Numbers go to `--json` and, with `--write-docs`, into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress

from bench import workers
from bench.common import kafka_transport, machine, machine_lines, save_results
from collectors.publisher import EventPublisher
from pipeline.ingest import BatchResult, IngestLoop
from pipeline.store import EventStore
from pipeline.transport import KAFKA_CLIENTS, Transport, open_transport
from sla.config import KafkaTransportConfig, PipelineConfig, SlamonConfig
from sla.events import FAMILIES, CloudEvent, new_event, topic_for
from slamon.app import PipelineService

GOAL_EVENTS_PER_S = 100_000
GOAL_RATIO = 0.80
GOAL_P99_S = 1.0
DEFAULT_CLIENT: str = KafkaTransportConfig().client.value
# Which share of the generated events is of each kind (the rest are probe results).
CAPACITY_SHARE = 0.06
TICKET_SHARE = 0.02
CHECKS = ("health", "login")
RESOURCES = ("cpu", "memory")
# A run that does not finish in this long is reported as such rather than waited for.
PHASE_TIMEOUT_S = 900.0
# The freshness producer sends in ticks of this long, each with its share of the rate.
TICK_S = 0.01


def _probe(service: str, check: str, at: datetime, rng: random.Random) -> CloudEvent:
    ok = rng.random() > 0.01
    data: dict[str, Any] = {"check": check, "ok": ok, "latency_ms": round(rng.uniform(5, 250), 1)}
    data["status_code"] = 200 if ok else 503
    if not ok:
        data["error"] = "HTTP 503"
    return new_event(
        "slamon.probe.v1", service, data, source=f"collector/http/{service}-{check}", time=at
    )


def _capacity(service: str, n: int, at: datetime, rng: random.Random) -> CloudEvent:
    data = {
        "resource": RESOURCES[n % len(RESOURCES)],
        "used": round(rng.uniform(0.5, 7.5), 2),
        "capacity": 8.0,
        "unit": "cores",
        "host": f"{service}-{n % 3}",
    }
    return new_event("slamon.capacity.v1", service, data, source="collector/host", time=at)


def _ticket(service: str, n: int, at: datetime) -> CloudEvent:
    data = {
        "ticket_id": f"INC-{service}-{n // 3}",
        "kind": "incident",
        "priority": ("P1", "P2", "P3")[n % 3],
        "status": ("new", "open", "resolved")[n % 3],
        "responded": n % 3 == 1,
    }
    return new_event("slamon.ticket.v1", service, data, source="servicedesk/webhook", time=at)


def generate(count: int, services: int, seed: int, end: datetime) -> Iterator[CloudEvent]:
    """`count` events of `services` services, in time order, ending at `end`.

    Every service's checks report once per step, round robin, as probe collectors do;
    capacity samples and ticket changes are interleaved at their shares.
    """
    rng = random.Random(seed)
    names = [f"svc-{i:04d}" for i in range(services)]
    step = timedelta(seconds=60) / (services * len(CHECKS))
    start = end - step * count
    for n in range(count):
        at = start + step * n
        service = names[n % services]
        draw = rng.random()
        if draw < CAPACITY_SHARE:
            yield _capacity(service, n, at, rng)
        elif draw < CAPACITY_SHARE + TICKET_SHARE:
            yield _ticket(service, n, at)
        else:
            yield _probe(service, CHECKS[(n // services) % len(CHECKS)], at, rng)


def _progress(console: Console) -> Progress:
    return Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=console)


def produce(
    transport: Transport, prefix: str, events: Iterator[CloudEvent], tick: Callable[[], None]
) -> dict[str, Any]:
    """Publish `events` through the collectors' publisher and wait until all are acknowledged."""
    transport.ensure_topics([topic_for(prefix, family) for family in FAMILIES])
    publisher = EventPublisher(transport.producer(), prefix)
    by_type: dict[str, int] = {}
    started = time.perf_counter()
    for event in events:
        publisher.publish(event)
        by_type[event.type] = by_type.get(event.type, 0) + 1
        tick()
    publisher.flush()
    publisher.close()
    seconds = time.perf_counter() - started
    return {"by_type": by_type, "seconds": seconds, "events_per_s": sum(by_type.values()) / seconds}


class _Rate:
    """Events per second after the first batch: joining the group and the first fetch are
    start-up, not throughput, and the raw consumer and the ingest loop are timed alike."""

    def __init__(self) -> None:
        self.first_at: float | None = None
        self.first_cpu = 0.0
        self.first_count = 0
        self.last_at = 0.0
        self.last_cpu = 0.0
        self.count = 0

    def add(self, count: int) -> None:
        # Process CPU time counts every thread: librdkafka's and DuckDB's as well as Python's.
        now, cpu = time.perf_counter(), time.process_time()
        self.count += count
        if count and self.first_at is None:
            self.first_at, self.first_cpu, self.first_count = now, cpu, count
        self.last_at, self.last_cpu = now, cpu

    def result(self, expected: int) -> dict[str, Any]:
        seconds = self.last_at - (self.first_at or self.last_at)
        timed = self.count - self.first_count
        cpu = self.last_cpu - self.first_cpu
        return {
            "events": self.count,
            "complete": self.count >= expected,
            "seconds": seconds,
            "events_per_s": timed / seconds if seconds else 0.0,
            "cpu_seconds": cpu,
            "cpu_us_per_event": cpu / timed * 1e6 if timed else 0.0,
        }


def raw_ceiling(
    transport: Transport, prefix: str, expected: int, batch_size: int, tick: Callable[[int], None]
) -> dict[str, Any]:
    """A consumer group that polls every record of the family topics and discards it."""
    topics = [topic_for(prefix, family) for family in FAMILIES]
    consumer = transport.consumer(f"{prefix}-raw-{uuid.uuid4().hex[:6]}", topics)
    rate = _Rate()
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while rate.count < expected and time.monotonic() < deadline:
        batch = consumer.poll_batch(batch_size, 1.0)
        rate.add(len(batch))
        tick(len(batch))
    consumer.close()
    return rate.result(expected)


def ingest(
    transport: Transport,
    prefix: str,
    expected: int,
    store_path: Path,
    *,
    pipeline: PipelineConfig,
    tick: Callable[[int], None],
) -> dict[str, Any]:
    """The real ingest loop into a fresh store until `expected` events are committed."""
    store_path.unlink(missing_ok=True)
    store = EventStore(store_path)
    config = pipeline.model_copy(update={"group_id": f"{prefix}-ingest-{uuid.uuid4().hex[:6]}"})
    loop = IngestLoop(transport, store, config, prefix)
    rate = _Rate()
    batches = 0
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while rate.count < expected and time.monotonic() < deadline:
        result = loop.run_once()
        rate.add(result.stored)
        batches += bool(result.polled)
        tick(result.stored)
    loop.close()
    stored = store.counts_by_type()
    store.close()
    return {**rate.result(expected), "batches": batches, "stored_by_type": stored}


class RecordingClock:
    """`time.time` that remembers every reading, to find when the gauges were set."""

    def __init__(self) -> None:
        self.readings: list[float] = []

    def __call__(self) -> float:
        now = time.time()
        self.readings.append(now)
        return now


def _freshness_config(bootstrap: str, prefix: str, store: Path, services: int) -> SlamonConfig:
    return SlamonConfig.model_validate(
        {
            "transport": {"kind": "kafka", "bootstrap": bootstrap, "topic_prefix": prefix},
            "store": {"path": str(store)},
            "services": [
                {"id": f"svc-{i:04d}", "name": f"Service {i}", "objectives": {"availability": 99.9}}
                for i in range(services)
            ],
        }
    )


def freshness(
    bootstrap: str, prefix: str, store: Path, args: argparse.Namespace, console: Console
) -> dict[str, Any]:
    """Event time to gauge update for every event published at a steady rate."""
    store.unlink(missing_ok=True)
    config = _freshness_config(bootstrap, prefix, store, args.fresh_services)
    transport = open_transport(config.transport)
    transport.ensure_topics([topic_for(prefix, family) for family in FAMILIES])
    registry = CollectorRegistry()
    clock = RecordingClock()
    service = PipelineService(config, transport, registry, clock, write_reports=False)
    gauge_times: list[tuple[float, int]] = []
    mismatches = 0
    publish_gauges = service.loop.on_batch
    assert publish_gauges is not None

    def observed(result: BatchResult) -> None:
        nonlocal mismatches
        readings = len(clock.readings)
        publish_gauges(result)
        if result.stored:
            # PipelineService reads its clock first and sets the gauges with that reading.
            set_at = clock.readings[readings]
            shown = registry.get_sample_value("slamon_pipeline_last_batch_timestamp_seconds")
            mismatches += shown != set_at
            gauge_times.append((set_at, result.stored))

    service.loop.on_batch = observed
    stop = threading.Event()
    runner = threading.Thread(target=service.run, args=(stop,), name="pipeline")
    runner.start()
    command = [sys.executable, "-m", "bench.ingest", "--child-produce", "--bootstrap", bootstrap]
    command += ["--prefix", prefix, "--rate", str(args.rate), "--seconds", str(args.seconds)]
    command += ["--fresh-services", str(args.fresh_services)]
    with console.status(f"freshness: {args.rate:,} events/s for {args.seconds:g} s"):
        child = subprocess.run(command, capture_output=True, text=True, check=False)
        if child.returncode:
            raise SystemExit(f"the freshness producer failed:\n{child.stderr}")
        produced: int = json.loads(child.stdout)["events"]
        deadline = time.monotonic() + 60
        while sum(service.store.counts_by_type().values()) < produced:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    stop.set()
    runner.join()
    service.close()
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute(
            "SELECT epoch_us(ingested_at) AS batch, epoch_us(time) / 1e6 AS at FROM events "
            "ORDER BY batch"
        ).fetchall()
    return _latencies(rows, gauge_times, produced, mismatches, args)


def _latencies(
    rows: list[tuple[int, float]],
    gauge_times: list[tuple[float, int]],
    produced: int,
    mismatches: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Match events to batches (one store transaction, one `ingested_at`, per batch)."""
    batches: dict[int, list[float]] = {}
    for batch, at in rows:
        batches.setdefault(batch, []).append(at)
    ordered = [batches[key] for key in sorted(batches)]
    if [len(times) for times in ordered] != [stored for _, stored in gauge_times]:
        raise SystemExit("stored batches do not line up with the gauge updates")
    latencies = sorted(
        set_at - at for (set_at, _), times in zip(gauge_times, ordered, strict=True) for at in times
    )

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {
        "rate": args.rate,
        "seconds": args.seconds,
        "produced": produced,
        "stored": len(latencies),
        "batches": len(gauge_times),
        "gauge_mismatches": mismatches,
        "p50_s": quantile(0.50),
        "p90_s": quantile(0.90),
        "p99_s": quantile(0.99),
        "max_s": latencies[-1],
    }


def child_produce(args: argparse.Namespace) -> None:
    """Publish fresh events at `--rate` per second for `--seconds`; print how many."""
    transport = kafka_transport(args.bootstrap, args.prefix, DEFAULT_CLIENT, args.partitions)
    publisher = EventPublisher(transport.producer(), args.prefix)
    rng = random.Random(args.seed)
    started = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - started) < args.seconds:
        due = int((elapsed + TICK_S) * args.rate)
        now = datetime.now(UTC)
        for n in range(sent, due):
            service = f"svc-{n % args.fresh_services:04d}"
            if n % 50 == 0:
                event = _capacity(service, n, now, rng)
            else:
                event = _probe(service, CHECKS[n % len(CHECKS)], now, rng)
            publisher.publish(event)
        sent = max(sent, due)
        time.sleep(TICK_S)
    publisher.flush()
    publisher.close()
    print(json.dumps({"events": sent}))


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Every measurement of the module docstring, in one run."""
    box = machine()
    prefix = args.prefix or f"bench-{uuid.uuid4().hex[:8]}"
    work_dir = args.json.parent
    work_dir.mkdir(parents=True, exist_ok=True)
    pipeline = PipelineConfig()
    end = datetime.now(UTC).replace(microsecond=0)
    producer = kafka_transport(args.bootstrap, prefix, DEFAULT_CLIENT, args.partitions)
    with _progress(console) as progress:
        task = progress.add_task("produce", total=args.events)
        produced = produce(
            producer,
            prefix,
            generate(args.events, args.services, args.seed, end),
            lambda: progress.advance(task),
        )
        clients: dict[str, Any] = {}
        for client in args.clients:
            transport = kafka_transport(args.bootstrap, prefix, client, args.partitions)
            raw_task = progress.add_task(f"{client}: raw consume", total=args.events)
            ceiling = raw_ceiling(
                transport,
                prefix,
                args.events,
                pipeline.batch_size,
                functools.partial(progress.advance, raw_task),
            )
            ingest_task = progress.add_task(f"{client}: ingest", total=args.events)
            loaded = ingest(
                transport,
                prefix,
                args.events,
                work_dir / f"ingest-{client}.duckdb",
                pipeline=pipeline,
                tick=functools.partial(progress.advance, ingest_task),
            )
            (work_dir / f"ingest-{client}.duckdb").unlink(missing_ok=True)
            clients[client] = {
                "ceiling": ceiling,
                "ingest": loaded,
                "ratio": loaded["events_per_s"] / ceiling["events_per_s"],
            }
    scale_out = [
        workers.measure(
            args.bootstrap,
            prefix,
            client=DEFAULT_CLIENT,
            partitions=args.partitions,
            workers=count,
            expected=args.events,
            directory=work_dir / f"ingest-workers-{count}",
        )
        for count in args.workers
        if count > 0
    ]
    for count in args.workers:
        shutil.rmtree(work_dir / f"ingest-workers-{count}", ignore_errors=True)
    fresh = None
    if args.seconds > 0:
        fresh_store = work_dir / "ingest-freshness.duckdb"
        fresh = freshness(args.bootstrap, f"{prefix}-fresh", fresh_store, args, console)
        fresh_store.unlink(missing_ok=True)
    default = clients.get(DEFAULT_CLIENT)
    goals: dict[str, bool] = {}
    if default is not None:
        goals["events_per_s"] = default["ingest"]["events_per_s"] >= GOAL_EVENTS_PER_S
        goals["ratio"] = default["ratio"] >= GOAL_RATIO
    if fresh is not None:
        goals["p99"] = fresh["p99_s"] <= GOAL_P99_S
    return {
        "machine": box,
        "load_average_end": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "events": args.events,
        "services": args.services,
        "partitions": args.partitions,
        "batch_size": pipeline.batch_size,
        "default_client": DEFAULT_CLIENT,
        "produce": produced,
        "clients": clients,
        "workers": scale_out,
        "freshness": fresh,
        "goals": goals,
    }


def render_markdown(result: dict[str, Any], command: str) -> str:
    """The generated section of docs/benchmarks.md: machine, command, numbers, verdict."""
    box = result["machine"]

    def verdict(met: bool | None) -> str:
        return "" if met is None else ("met" if met else "**missed**")

    produced = result["produce"]
    lines = [
        f"Measured {box['date']} with `{command}`.",
        "",
        *machine_lines(box),
        f"- Load average at the end: {result['load_average_end']}",
        f"- Events: {result['events']:,} from {result['services']:,} services on "
        f"{result['partitions']} partitions per family topic: "
        + ", ".join(f"{t} {n:,}" for t, n in sorted(produced["by_type"].items())),
        f"- Ingest batch size (`pipeline.batch_size`): {result['batch_size']:,}; default "
        f"client: {result['default_client']}",
        "",
        "CPU is the process's (all threads) per event: on a shared machine it tells the cost "
        "where the wall-clock rate tells mostly the load.",
        "",
        "| client | raw consume (poll and discard) | CPU | ingest into DuckDB, committed "
        "| CPU | ingest / raw |",
        "|---|---|---|---|---|---|",
    ]
    for client, numbers in result["clients"].items():
        ceiling, loaded = numbers["ceiling"], numbers["ingest"]
        lines.append(
            f"| {client} | {ceiling['events_per_s']:,.0f} events/s ({ceiling['seconds']:.1f} s) "
            f"| {ceiling['cpu_us_per_event']:.1f} µs "
            f"| {loaded['events_per_s']:,.0f} events/s ({loaded['seconds']:.1f} s, "
            f"{loaded['batches']:,} batches) | {loaded['cpu_us_per_event']:.1f} µs "
            f"| {numbers['ratio']:.0%} |"
        )
    scale_out = result.get("workers") or []
    if scale_out:
        single = next((run["events_per_s"] for run in scale_out if run["workers"] == 1), None)
        lines += [
            "",
            f"Scale-out ({result['default_client']}): worker processes in one consumer group, "
            "each with its own shard stores (`store.sharded`), from the moment all may start "
            "(joining the group and its rebalances included) to the last commit.",
            "",
            "| workers | ingest into DuckDB, committed | vs 1 worker |",
            "|---|---|---|",
            *(
                f"| {run['workers']} | {run['events_per_s']:,.0f} events/s "
                f"({run['seconds']:.1f} s{'' if run['complete'] else ', incomplete'}) "
                f"| {run['events_per_s'] / single:.2f}x |"
                if single
                else f"| {run['workers']} | {run['events_per_s']:,.0f} events/s | |"
                for run in scale_out
            ),
        ]
    fresh = result["freshness"]
    if fresh is not None:
        lines += [
            "",
            f"Freshness: {fresh['produced']:,} events at {fresh['rate']:,} events/s for "
            f"{fresh['seconds']:g} s, {fresh['batches']:,} batches; from each event's time to "
            "the gauge update of its batch: "
            f"p50 {fresh['p50_s'] * 1000:,.0f} ms, p90 {fresh['p90_s'] * 1000:,.0f} ms, "
            f"p99 {fresh['p99_s'] * 1000:,.0f} ms, max {fresh['max_s'] * 1000:,.0f} ms.",
        ]
    goals = result["goals"]
    default = result["clients"].get(result["default_client"])
    lines += ["", "| goal | target | measured | |", "|---|---|---|---|"]
    if default is not None:
        lines += [
            f"| ingest throughput ({result['default_client']}) | ≥ {GOAL_EVENTS_PER_S:,} "
            f"events/s | {default['ingest']['events_per_s']:,.0f} events/s "
            f"| {verdict(goals.get('events_per_s'))} |",
            f"| ingest / raw client ceiling | ≥ {GOAL_RATIO:.0%} | {default['ratio']:.0%} "
            f"| {verdict(goals.get('ratio'))} |",
        ]
    if fresh is not None:
        lines.append(
            f"| freshness p99 | ≤ {GOAL_P99_S:g} s | {fresh['p99_s']:.2f} s "
            f"| {verdict(goals.get('p99'))} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """The command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="host:port of the Kafka broker")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=KafkaTransportConfig().partitions)
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=sorted(KAFKA_CLIENTS),
        default=[DEFAULT_CLIENT, *sorted(set(KAFKA_CLIENTS) - {DEFAULT_CLIENT})],
    )
    parser.add_argument(
        "--workers",
        nargs="+",
        type=int,
        default=[1, 2],
        help="scale-out: ingest again with each of these numbers of worker processes on "
        "sharded stores, default client (0 skips it)",
    )
    parser.add_argument("--rate", type=int, default=5000, help="freshness: events per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="freshness: 0 skips it")
    parser.add_argument("--fresh-services", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--prefix", help="topic prefix (default: a fresh one per run)")
    parser.add_argument("--json", type=Path, default=Path("var/bench/ingest.json"))
    parser.add_argument("--write-docs", type=Path, help="Markdown file to put the numbers in.")
    parser.add_argument("--child-produce", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_produce:
        child_produce(args)
        return
    console = Console()
    result = run(args, console)
    for client, numbers in result["clients"].items():
        console.print(
            f"{client:16} raw {numbers['ceiling']['events_per_s']:>10,.0f} events/s  "
            f"ingest {numbers['ingest']['events_per_s']:>10,.0f} events/s  "
            f"ratio {numbers['ratio']:.0%}"
        )
    if result["freshness"] is not None:
        fresh = result["freshness"]
        console.print(
            f"freshness p50 {fresh['p50_s']:.3f} s  p99 {fresh['p99_s']:.3f} s  "
            f"max {fresh['max_s']:.3f} s"
        )
    console.print(f"goals met: {result['goals']}")
    save_results("ingest", result, args, argv=argv, render=render_markdown, console=console)


if __name__ == "__main__":
    main()
