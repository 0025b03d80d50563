"""The soak: the real pipeline for an hour at a steady event rate, watching its memory.

`python -m bench.soak --bootstrap HOST:PORT --minutes 60 --rate 2000` writes a config of
`--services` services, starts `slamon pipeline` on it and publishes, from this process, a
steady mix of events into real Kafka at `--rate` per second (probe results with an outage
every ten minutes for one service in ten, capacity samples, ticket lifecycles, changes).
Every `--sample-interval` seconds it records the pipeline's RSS and CPU (psutil), the events
acknowledged by Kafka and those the pipeline stored (its `slamon_events_ingested_total`).

At the end it waits (up to 10 minutes) for the pipeline to store the whole stream, stops it,
checks that the store holds each produced event exactly once, and judges memory: the median
RSS of the last ten minutes against the median of minutes 10 to 20 must grow less than 5 %
(windows scale with `--minutes`). The first ten minutes are warm-up: DuckDB's cache and the
windows' working set fill up (every earlier soak rose steadily until minute 9, then moved
in a saw-tooth of checkpoints). The least-squares trend of RSS from minute 10 on is
reported beside the check. Raw samples go to `--out`/soak.json; with `--write-docs`
the summary becomes the `soak` section of that Markdown file. Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench.common import machine, machine_lines, write_section
from collectors.publisher import EventPublisher
from pipeline.store import EventStore
from pipeline.transport import open_transport
from sla.config import KafkaTransportConfig
from sla.events import CloudEvent, EventType, new_event

GOAL_RSS_GROWTH = 0.05
# The windows compared, in minutes of a 60-minute run; shorter runs scale them.
BASELINE_WINDOW = (10.0, 20.0)
LAST_WINDOW_MINUTES = 10.0
FULL_RUN_MINUTES = 60.0
# Events per second are sent in ticks of this length, so the rate stays steady within a second.
TICK_S = 0.1
CATCH_UP_TIMEOUT_S = 600.0
CHECKS = ("health", "login")
PRIORITIES = ("P1", "P2", "P3")
SOURCE = "bench/soak"
STREAM_SPAN = timedelta(days=2)


class EventMix:
    """A deterministic stream of realistic events: the n-th event depends only on n and its time.

    Out of every 100 events 92 are probe results, 5 capacity samples, 2 ticket updates and 1
    a change. One service in ten fails its checks for `outage_s` of every `period_s`, so the
    engine has outages to find.
    """

    def __init__(
        self, services: list[str], seed: int = 7, outage_s: int = 20, period_s: int = 600
    ) -> None:
        self.services = services
        self._outage_s = outage_s
        self._period_s = period_s
        self._rng = random.Random(seed)
        self._n = 0
        self._tickets = itertools.count()
        # Tickets in progress, oldest first, with the status they reached.
        self._open: deque[tuple[str, str, str, str]] = deque()

    def take(self, at: datetime) -> CloudEvent:
        """The next event of the stream, happening at `at`."""
        n, self._n = self._n, self._n + 1
        kind = n % 100
        if kind < 92:
            return self._probe(n, at)
        if kind < 97:
            service = self.services[n % len(self.services)]
            data = {"resource": "cpu", "used": self._rng.random(), "capacity": 1.0, "unit": "ratio"}
            return new_event(EventType.CAPACITY, service, data, source=SOURCE, time=at)
        if kind < 99:
            return self._ticket(n, at)
        service = self.services[n % len(self.services)]
        change = {
            "change_id": f"CHG-{n}",
            "kind": "normal",
            "status": "implemented" if n % 3 else "failed",
            "start": (at - timedelta(minutes=10)).isoformat(),
            "end": at.isoformat(),
        }
        return new_event(EventType.CHANGE, service, change, source=SOURCE, time=at)

    def _probe(self, n: int, at: datetime) -> CloudEvent:
        index = (n // len(CHECKS)) % len(self.services)
        phase = (int(at.timestamp()) + index * 37) % self._period_s
        failing = index % 10 == 0 and phase < self._outage_s
        data: dict[str, Any] = {
            "check": CHECKS[n % len(CHECKS)],
            "ok": not failing,
            "latency_ms": round(self._rng.uniform(1.0, 90.0), 3),
        }
        if failing:
            data["error"] = "connection refused"
        return new_event(EventType.PROBE, self.services[index], data, source=SOURCE, time=at)

    def _ticket(self, n: int, at: datetime) -> CloudEvent:
        """Open a ticket, or move the oldest open one on: new, in progress, resolved, closed."""
        if not self._open or (len(self._open) < 20 and (n // 100) % 2 == 0):
            ticket = f"INC-{next(self._tickets)}"
            service = self.services[n % len(self.services)]
            priority = PRIORITIES[n % len(PRIORITIES)]
            self._open.append((ticket, service, priority, "new"))
            status, responded = "new", False
        else:
            ticket, service, priority, last = self._open.popleft()
            status = {"new": "in_progress", "in_progress": "resolved"}.get(last, "closed")
            responded = status == "in_progress"
            if status != "closed":
                self._open.append((ticket, service, priority, status))
        data = {
            "ticket_id": ticket,
            "kind": "incident",
            "priority": priority,
            "status": status,
            "responded": responded,
        }
        return new_event(EventType.TICKET, service, data, source=SOURCE, time=at)


def service_configs(services: list[str]) -> list[dict[str, Any]]:
    """The services of the mix: availability from probes, ticket goals, capacity thresholds."""
    return [
        {
            "id": service,
            "name": f"Service {service}",
            "objectives": {"availability": 99.5},
            "outage_from_probes": {"failures": 3, "recoveries": 1},
            "capacity": {"cpu": {"warn": 0.8, "crit": 0.95}},
            "tickets": {
                "goals": {
                    "P1": {"response": "15m", "resolution": "4h"},
                    "P2": {"response": "1h", "resolution": "8h"},
                    "P3": {"response": "4h", "resolution": "3d"},
                }
            },
            "credits": [{"below": 99.5, "credit": 5}],
        }
        for service in services
    ]


def write_stream(
    path: Path, distinct: int, duplicates: int, services: int, seed: int
) -> dict[str, Any]:
    """A JSONL file of the mix over two days ending two whole hours ago, for the fault suite.

    `distinct` events, plus `duplicates` byte-identical repeats of earlier lines (what a
    producer retrying after a lost acknowledgement sends). One service in ten fails for 3
    minutes of every hour. Returns what a store of it must hold, and its services' config.
    """
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    start = end - STREAM_SPAN
    ids = service_ids(services)
    mix = EventMix(ids, seed=seed, outage_s=180, period_s=3600)
    step = STREAM_SPAN / distinct
    total = distinct + duplicates
    repeats = set(rng.sample(range(1, total), duplicates))
    lines: list[bytes] = []
    by_type: Counter[str] = Counter()
    for position in range(total):
        if position in repeats:
            lines.append(rng.choice(lines))
            continue
        event = mix.take(start + step * by_type.total())
        by_type[event.type] += 1
        lines.append(event.to_json())
    path.write_bytes(b"\n".join(lines) + b"\n")
    return {
        "lines": total,
        "by_type": dict(by_type),
        "window": [int(start.timestamp()), int(end.timestamp())],
        "services": service_configs(ids),
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_ids(count: int) -> list[str]:
    """`svc-000`, `svc-001`, ..."""
    return [f"svc-{n:03d}" for n in range(count)]


class Soak:
    """One soak run: the config, the pipeline process, the producer and the samples."""

    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args = args
        self.console = console
        self.out: Path = args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.store = self.out / "soak.duckdb"
        for stale in (self.store, self.store.with_name(self.store.name + ".wal")):
            stale.unlink(missing_ok=True)
        self.prefix = f"soak-{int(time.time())}"
        self.metrics_port = args.metrics_port or free_port()
        self.services = service_ids(args.services)
        self.config = self.out / "soak.yaml"
        self.config.write_text(yaml.safe_dump(self._config_document(), sort_keys=False))
        self.samples: list[dict[str, Any]] = []
        self.produced = 0

    def _config_document(self) -> dict[str, Any]:
        return {
            "transport": {
                "kind": "kafka",
                "bootstrap": self.args.bootstrap,
                "topic_prefix": self.prefix,
                "partitions": 6,
            },
            "store": {"path": str(self.store)},
            "exporter": {"listen": f"127.0.0.1:{self.metrics_port}"},
            "pipeline": {"group_id": self.prefix},
            "services": service_configs(self.services),
        }

    def _metrics(self) -> str:
        """The pipeline's /metrics page ("" until it serves it)."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return ""

    def stored(self, metrics: str | None = None) -> int:
        """The pipeline's own count of stored events, from `metrics` or a fresh scrape."""
        text = self._metrics() if metrics is None else metrics
        return int(metric_sum(text, "slamon_events_ingested_total"))

    def run(self) -> dict[str, Any]:
        """Produce for `--minutes`, sample, let the pipeline catch up, check the store."""
        box = machine()
        log_file = (self.out / "pipeline.log").open("wb")
        pipeline = subprocess.Popen(
            [sys.executable, "-m", "slamon", "pipeline", "--config", str(self.config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            process = psutil.Process(pipeline.pid)
            process.cpu_percent(None)
            self._produce(pipeline, process)
            caught_up = self._catch_up(pipeline)
            pipeline.send_signal(signal.SIGTERM)
            exit_code = pipeline.wait(timeout=120)
        finally:
            if pipeline.poll() is None:
                pipeline.kill()
                pipeline.wait()
            log_file.close()
        with EventStore(self.store, read_only=True) as store:
            ((ledger, distinct),) = store.query(
                "SELECT count(*), count(DISTINCT id) FROM events"
            ).rows()
        return self._result(box, caught_up, exit_code, ledger, distinct)

    def _produce(self, pipeline: subprocess.Popen[bytes], process: psutil.Process) -> None:
        transport = open_transport(
            KafkaTransportConfig(bootstrap=self.args.bootstrap, topic_prefix=self.prefix)
        )
        publisher = EventPublisher(transport.producer(), self.prefix)
        mix = EventMix(self.services, seed=self.args.seed)
        duration_s = self.args.minutes * 60
        per_tick = self.args.rate * TICK_S
        started = time.monotonic()
        next_sample = started + self.args.sample_interval
        sent = 0.0
        columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console) as progress:
            task = progress.add_task("soaking", total=duration_s)
            for tick in itertools.count(1):
                now = time.monotonic()
                if now - started >= duration_s:
                    break
                if pipeline.poll() is not None:
                    raise SystemExit(f"slamon pipeline exited {pipeline.returncode} mid-soak")
                sent += per_tick
                at = datetime.now(UTC)
                while self.produced < int(sent):
                    publisher.publish(mix.take(at))
                    self.produced += 1
                if now >= next_sample:
                    publisher.flush()
                    self._sample(process, now - started)
                    next_sample += self.args.sample_interval
                progress.update(task, completed=now - started)
                time.sleep(max(0.0, started + tick * TICK_S - time.monotonic()))
        publisher.close()

    def _sample(self, process: psutil.Process, elapsed_s: float) -> None:
        metrics = self._metrics()
        stored = self.stored(metrics)
        rss = process.memory_info().rss
        sample: dict[str, Any] = {
            "t_s": round(elapsed_s, 1),
            "rss_bytes": rss,
            "store_memory_bytes": int(metric_sum(metrics, "slamon_store_memory_bytes")),
            "cpu_percent": process.cpu_percent(None),
            "produced": self.produced,
            "stored": stored,
            "store_bytes": sum(
                path.stat().st_size for path in self.out.glob("soak.duckdb*") if path.exists()
            ),
            "load_average": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        }
        self.samples.append(sample)
        self.console.print(
            f"{elapsed_s / 60:6.1f} min  RSS {rss / 1024**2:7.1f} MiB  "
            f"DuckDB {sample['store_memory_bytes'] / 1024**2:6.1f} MiB  "
            f"CPU {sample['cpu_percent']:5.1f} %  produced {self.produced:,}  stored {stored:,}  "
            f"load {sample['load_average']}",
            soft_wrap=True,
        )

    def _catch_up(self, pipeline: subprocess.Popen[bytes]) -> bool:
        """Wait until the pipeline stored everything produced; False after the timeout."""
        give_up_at = time.monotonic() + CATCH_UP_TIMEOUT_S
        with self.console.status("waiting for the pipeline to store the rest of the stream"):
            while self.stored() < self.produced:
                if time.monotonic() > give_up_at or pipeline.poll() is not None:
                    return False
                time.sleep(1.0)
        return True

    def _result(
        self, box: dict[str, Any], caught_up: bool, exit_code: int, ledger: int, distinct: int
    ) -> dict[str, Any]:
        minutes = self.args.minutes
        low, high, last_from = memory_windows(minutes)
        baseline = [s["rss_bytes"] for s in self.samples if low <= s["t_s"] / 60 < high]
        last = [s["rss_bytes"] for s in self.samples if s["t_s"] / 60 >= last_from]
        if not baseline or not last:
            raise SystemExit("too few samples to compare: lower --sample-interval")
        baseline_median = statistics.median(baseline)
        last_median = statistics.median(last)
        growth = last_median / baseline_median - 1
        after_warm_up = [s for s in self.samples if s["t_s"] / 60 >= low]
        checks = {
            "rss_growth": growth < GOAL_RSS_GROWTH,
            "caught_up": caught_up,
            "clean_exit": exit_code == 0,
            "no_duplicates": ledger == distinct,
            "all_stored": distinct == self.produced,
        }
        return {
            "machine": box,
            "settings": {
                "minutes": minutes,
                "rate": self.args.rate,
                "services": self.args.services,
                "sample_interval_s": self.args.sample_interval,
                "baseline_window_min": [low, high],
                "last_window_from_min": last_from,
            },
            "samples": self.samples,
            "produced": self.produced,
            "stored_rows": ledger,
            "stored_distinct_ids": distinct,
            "achieved_rate": self.produced / (minutes * 60),
            "rss_baseline_median_bytes": baseline_median,
            "rss_last_median_bytes": last_median,
            "rss_growth": growth,
            "rss_trend_bytes_per_hour": trend_per_hour(after_warm_up),
            "checks": checks,
            "passed": all(checks.values()),
        }


def memory_windows(minutes: float) -> tuple[float, float, float]:
    """The minutes whose RSS is compared: the baseline window [low, high) and the last one
    from its start to the end, scaled from an hour's."""
    scale = minutes / FULL_RUN_MINUTES
    low, high = (bound * scale for bound in BASELINE_WINDOW)
    return low, high, minutes - LAST_WINDOW_MINUTES * scale


def sampling_gap(minutes: float, sample_interval: float) -> str | None:
    """Why sampling every `sample_interval` s could not judge a soak of `minutes`, or None.

    Samples are taken every interval, before the end: each window must hold one.
    """
    low, high, last_from = memory_windows(minutes)
    times = [k * sample_interval / 60 for k in range(1, math.ceil(minutes * 60 / sample_interval))]
    for name, start, end in (("baseline", low, high), ("last", last_from, minutes)):
        if not any(start <= t < end for t in times):
            return (
                f"a sample every {sample_interval:g} s misses the {name} window of a "
                f"{minutes:g}-minute soak (minutes {start:g} to {end:g}): lower --sample-interval"
            )
    return None


def metric_sum(metrics: str, sample: str) -> float:
    """The sum over all label sets of the samples named `sample` on a /metrics page."""
    return sum(
        point.value
        for family in text_string_to_metric_families(metrics)
        for point in family.samples
        if point.name == sample
    )


def trend_per_hour(samples: list[dict[str, Any]]) -> float | None:
    """The least-squares slope of RSS over `samples`, in bytes an hour (None for fewer than 2)."""
    if len(samples) < 2:
        return None
    slope, _ = statistics.linear_regression(
        [s["t_s"] / 3600 for s in samples], [float(s["rss_bytes"]) for s in samples]
    )
    return slope


def render_markdown(result: dict[str, Any], command: str) -> str:
    """The generated `soak` section of docs/reliability.md."""
    settings, box = result["settings"], result["machine"]

    def mib(value: float) -> str:
        return f"{value / 1024**2:,.1f} MiB"

    def verdict(met: bool) -> str:
        return "met" if met else "**missed**"

    checks = result["checks"]
    samples = result["samples"]
    # About a dozen rows whatever the run's length.
    step = max(1, len(samples) // 12)
    shown = samples[::step] if samples[-1] in samples[::step] else [*samples[::step], samples[-1]]
    low, high = settings["baseline_window_min"]
    last_minutes = settings["minutes"] - settings["last_window_from_min"]
    lines = [
        "## Soak",
        "",
        f"Measured {box['date']} with `{command}` (`make soak`): the real `slamon pipeline` "
        f"consuming a steady {settings['rate']:,} events/s from a real Kafka broker for "
        f"{settings['minutes']:g} minutes, {settings['services']} services, RSS sampled every "
        f"{settings['sample_interval_s']:g} s with psutil. Raw samples: var/soak/soak.json.",
        "",
        *machine_lines(box),
        "",
        "| minute | pipeline RSS | of which DuckDB | pipeline CPU | produced | stored "
        "| store on disk | load |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {s['t_s'] / 60:.1f} | {mib(s['rss_bytes'])} "
            f"| {mib(s['store_memory_bytes']) if 'store_memory_bytes' in s else ''} "
            f"| {s['cpu_percent']:.0f} % "
            f"| {s['produced']:,} | {s['stored']:,} | {mib(s['store_bytes'])} "
            f"| {s['load_average']} |"
            for s in shown
        ),
        "",
        "| check | target | measured | |",
        "|---|---|---|---|",
        f"| RSS growth, median of the last {last_minutes:.3g} min vs minutes {low:.3g}-{high:.3g} "
        f"| < {GOAL_RSS_GROWTH:.0%} "
        f"| {result['rss_growth']:+.2%} ({mib(result['rss_baseline_median_bytes'])} to "
        f"{mib(result['rss_last_median_bytes'])}) | {verdict(checks['rss_growth'])} |",
        *(
            [
                f"| RSS trend from minute {low:.3g} on (least squares) | | "
                f"{trend / 1024**2:+,.1f} MiB an hour | |"
            ]
            if (trend := result.get("rss_trend_bytes_per_hour")) is not None
            else []
        ),
        f"| no event stored twice | rows = distinct ids | {result['stored_rows']:,} rows, "
        f"{result['stored_distinct_ids']:,} ids | {verdict(checks['no_duplicates'])} |",
        f"| every event stored | {result['produced']:,} produced "
        f"| {result['stored_distinct_ids']:,} stored when stopped "
        f"| {verdict(checks['all_stored'])} |",
        f"| pipeline kept up | stored all within {CATCH_UP_TIMEOUT_S:g} s of the end "
        f"| {result['achieved_rate']:,.0f} events/s produced; "
        f"{samples[-1]['produced'] - samples[-1]['stored']:,} behind at the last sample "
        f"| {verdict(checks['caught_up'])} |",
        f"| clean shutdown | exit 0 on SIGTERM | | {verdict(checks['clean_exit'])} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """The command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("SLAMON_KAFKA_BOOTSTRAP"))
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=2000, help="Events per second.")
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--sample-interval", type=float, default=60.0, help="Seconds.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--metrics-port", type=int, default=0, help="Default: a free port.")
    parser.add_argument("--out", type=Path, default=Path("var/soak"))
    parser.add_argument("--write-docs", type=Path, help="Markdown file to put the summary in.")
    parser.add_argument(
        "--write-stream",
        type=Path,
        help="Instead of soaking, write --events events (plus --duplicates repeats) of the mix "
        "as JSONL and print what a store of them holds, as JSON (the fault suite's input).",
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--duplicates", type=int, default=0)
    args = parser.parse_args(argv)
    if args.write_stream:
        facts = write_stream(
            args.write_stream, args.events, args.duplicates, args.services, args.seed
        )
        sys.stdout.write(json.dumps(facts) + "\n")
        return
    if not args.bootstrap:
        parser.error("give --bootstrap HOST:PORT (or set SLAMON_KAFKA_BOOTSTRAP)")
    if gap := sampling_gap(args.minutes, args.sample_interval):
        parser.error(gap)
    console = Console()
    result = Soak(args, console).run()
    path = args.out / "soak.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    console.print(
        f"RSS growth {result['rss_growth']:+.2%}; produced {result['produced']:,}, stored "
        f"{result['stored_rows']:,} ({result['stored_distinct_ids']:,} distinct); "
        f"checks {result['checks']}; raw numbers in {path}"
    )
    if args.write_docs:
        command = "python -m bench.soak " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(args.write_docs, "soak", render_markdown(result, command))
        console.print(f"summary written to {args.write_docs}")
    if not result["passed"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
