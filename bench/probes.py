"""The probe collector benchmark: thousands of targets on local servers, sustained on one core.

`python -m bench.probes --targets 5000 --interval 30 --intervals 2` starts aiohttp HTTP
servers on `--http-ports` ports and plain TCP listeners on `--tcp-ports` ports in a child
process pinned to every CPU but the collector's, writes a slamon config whose services check
them (four HTTP probes and one TCP probe per service), and measures, each in its own child
pinned to `--cpu`:

- bare: one aiohttp session GETs every HTTP target once and connects to every TCP target once,
  `--concurrency` at a time, a fresh connection each as in the collector: the ceiling of the
  HTTP client itself;
- burst: the collector's `ProbeScheduler.run_once` over every target, events built and
  serialized by the real `EventPublisher` into a counting producer;
- sustained: `ProbeScheduler.run` for `--intervals` intervals, the same publisher; how many
  probes completed per second, how late runs started against their schedule, CPU per probe.

The numbers go to `--json` and, with `--write-docs`, into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from itertools import takewhile
from pathlib import Path
from typing import IO, Any

import aiohttp
import psutil
import yaml
from aiohttp import web
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench.common import machine, machine_lines, save_results
from collectors.probes import ProbeScheduler, run_times
from collectors.publisher import EventPublisher
from pipeline.transport import Headers
from sla.config import ProbeConfig, SlamonConfig, split_host_port

GOAL_TARGETS = 5000
GOAL_INTERVAL_S = 30
# Completed probes may fall short of the schedule only by the runs cut off at the end.
GOAL_RATE_SHARE = 0.99
GOAL_LAG_P99_S = 1.0
# The p99 lag of the last interval may exceed the first's by this much: more means it grows.
GOAL_LAG_GROWTH_S = 0.1
HTTP_PER_SERVICE = 4
# The event loop's responsiveness is sampled by a task sleeping this long, over and over.
TICK_S = 0.05
LATENCY = re.compile(rb'"latency_ms":([0-9.]+)')

Target = tuple[str, ProbeConfig]


# --- the local servers -------------------------------------------------------------------


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _serve(http_ports: int, tcp_ports: int, out: IO[str]) -> None:
    """Listen on the ports, print them as one JSON line, and serve until stdin closes."""
    app = web.Application()
    app.router.add_get("/{path:.*}", _ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for _ in range(http_ports):
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
    listeners = [
        await asyncio.start_server(_hang_up, "127.0.0.1", 0, backlog=1024) for _ in range(tcp_ports)
    ]
    ports = {
        "http": [address[1] for address in runner.addresses],
        "tcp": [listener.sockets[0].getsockname()[1] for listener in listeners],
    }
    out.write(json.dumps(ports) + "\n")
    out.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for listener in listeners:
        listener.close()
    await runner.cleanup()


class Servers:
    """The server child process, pinned away from the collector's CPU."""

    def __init__(self, http_ports: int, tcp_ports: int, collector_cpu: int) -> None:
        command = [sys.executable, "-m", "bench.probes", "--child", "servers"]
        command += ["--http-ports", str(http_ports), "--tcp-ports", str(tcp_ports)]
        command += ["--cpu", str(collector_cpu)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the benchmark servers did not start")
        ports = json.loads(line)
        self.http: list[int] = ports["http"]
        self.tcp: list[int] = ports["tcp"]
        self.usage = psutil.Process(self.process.pid)

    def cpu_s(self) -> float:
        """CPU seconds the servers used so far."""
        times = self.usage.cpu_times()
        return float(times.user + times.system)

    def close(self) -> None:
        """Stop the servers: they exit once their stdin closes."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def pin(cpus: set[int]) -> None:
    """Run this process on `cpus` only (no-op on a single-CPU machine)."""
    if cpus:
        os.sched_setaffinity(0, cpus)


def other_cpus(cpu: int) -> set[int]:
    """Every CPU this process may use except `cpu`; empty when there is no other."""
    return os.sched_getaffinity(0) - {cpu}


# --- the config ---------------------------------------------------------------------------


def make_config(
    targets: int, interval: int, jitter: int, http_ports: list[int], tcp_ports: list[int]
) -> dict[str, Any]:
    """A slamon config of `targets` probes: per service four HTTP checks and one TCP check."""
    per_service = HTTP_PER_SERVICE + 1
    services = []
    for index in range(-(-targets // per_service)):
        probes: list[dict[str, Any]] = []
        for check in range(min(per_service, targets - index * per_service)):
            probe: dict[str, Any] = {"interval": f"{interval}s", "timeout": "5s"}
            probe["jitter"] = f"{jitter}s"
            if check < HTTP_PER_SERVICE:
                port = http_ports[(index * HTTP_PER_SERVICE + check) % len(http_ports)]
                probe |= {
                    "name": f"http-{check}",
                    "http": f"http://127.0.0.1:{port}/s{index}/{check}",
                }
            else:
                probe |= {"name": "tcp", "tcp": f"127.0.0.1:{tcp_ports[index % len(tcp_ports)]}"}
            probes.append(probe)
        services.append({"id": f"svc-{index:05d}", "name": f"Service {index}", "probes": probes})
    return {"transport": {"kind": "embedded"}, "services": services}


def load_targets(path: Path) -> tuple[list[Target], str]:
    """The probe targets of the config at `path`, as `slamon run` builds them, and its prefix."""
    config = SlamonConfig.model_validate(yaml.load(path.read_text(), Loader=yaml.CSafeLoader))
    targets = [(service.id, probe) for service in config.services for probe in service.probes]
    return targets, config.transport.topic_prefix


# --- the measured children ----------------------------------------------------------------


class CountingProducer:
    """A transport producer that counts records, bytes and passing results, notes latencies."""

    def __init__(self) -> None:
        self.records = 0
        self.bytes = 0
        self.ok = 0
        self.latencies_s: list[float] = []

    @property
    def failed_deliveries(self) -> int:
        """Always 0: every record is counted once sent."""
        return 0

    def send(
        self, topic: str, key: str | None, value: bytes, headers: Headers | None = None
    ) -> None:
        """Count one record; a search of the serialized data says whether the probe passed."""
        self.records += 1
        self.bytes += len(value)
        self.ok += b'"ok":true' in value
        latency = LATENCY.search(value)
        if latency is not None:
            self.latencies_s.append(float(latency[1]) / 1000)

    def flush(self, timeout: float | None = None) -> None:
        """Nothing to wait for."""

    def close(self) -> None:
        """Nothing to release."""

    def discard(self) -> None:
        """Nothing to drop."""


def timed(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`work`'s own numbers plus its wall time and the CPU time of this process meanwhile."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    numbers = work()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**numbers, "wall_s": wall, "cpu_s": cpu}


async def _bare(targets: list[Target], concurrency: int) -> dict[str, Any]:
    """GET every HTTP target and connect to every TCP target once, `concurrency` at a time."""
    limit = asyncio.Semaphore(concurrency)
    # A connection per request, as the collector's probes make.
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def get(url: str) -> bool:
            async with limit, session.get(url) as response:
                await response.read()
                return response.status < 400

        async def connect(address: str) -> bool:
            async with limit:
                _, writer = await asyncio.open_connection(*split_host_port(address))
                writer.close()
                await writer.wait_closed()
                return True

        checks: list[Awaitable[bool]] = [
            get(config.http) if config.http is not None else connect(str(config.tcp))
            for _, config in targets
        ]
        results = await asyncio.gather(*checks, return_exceptions=True)
    return {"probes": len(results), "ok": sum(result is True for result in results)}


def _burst(targets: list[Target], prefix: str, concurrency: int) -> dict[str, Any]:
    producer = CountingProducer()
    publisher = EventPublisher(producer, prefix)
    scheduler = ProbeScheduler(targets, publisher.publish, concurrency=concurrency)
    asyncio.run(scheduler.run_once())
    return {"probes": producer.records, "ok": producer.ok, "bytes": producer.bytes}


def _sustained(
    targets: list[Target], prefix: str, concurrency: int, seconds: float, interval: float
) -> dict[str, Any]:
    producer = CountingProducer()
    publisher = EventPublisher(producer, prefix)
    lags: list[tuple[float, float]] = []
    scheduler = ProbeScheduler(
        targets,
        publisher.publish,
        concurrency=concurrency,
        observe_lag=lambda lag: lags.append((time.monotonic(), lag)),
    )
    oversleeps: list[tuple[float, float]] = []

    async def tick() -> None:
        # How much later than asked a sleep ends: the loop busy, or the CPU taken by others.
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(TICK_S)
            oversleeps.append((time.monotonic(), loop.time() - asked - TICK_S))

    async def run() -> float:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.call_later(seconds, stop.set)
        ticker = asyncio.create_task(tick())
        started = loop.time()
        await scheduler.run(stop)
        ticker.cancel()
        return started

    started = asyncio.run(run())
    intervals = max(1, round(seconds / interval))

    def by_interval(samples: list[tuple[float, float]]) -> list[dict[str, float]]:
        parts: list[list[float]] = [[] for _ in range(intervals)]
        for at, value in samples:
            parts[min(int((at - started) // interval), intervals - 1)].append(value)
        return [spread(part) for part in parts]

    # The runs the schedule holds per interval (the scheduler's origin is a moment later).
    planned = [0] * intervals
    for target in targets:
        for at in takewhile(lambda at: at < started + seconds, run_times(*target, started)):
            planned[min(int((at - started) // interval), len(planned) - 1)] += 1
    return {
        "probes": producer.records,
        "ok": producer.ok,
        "bytes": producer.bytes,
        "seconds": seconds,
        "planned_runs": sum(planned),
        "planned_by_interval": planned,
        "skipped_runs": scheduler.skipped_runs,
        "lag": spread([lag for _, lag in lags]),
        "lag_by_interval": by_interval(lags),
        "loop_delay": spread([delay for _, delay in oversleeps]),
        "loop_delay_by_interval": by_interval(oversleeps),
        "latency": spread(producer.latencies_s),
    }


def spread(values: list[float]) -> dict[str, float]:
    """How many values, their p50, p99 and maximum (seconds)."""
    if len(values) < 2:
        return {"runs": len(values), "p50_s": 0.0, "p99_s": 0.0, "max_s": max(values, default=0.0)}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"runs": len(values), "p50_s": cuts[49], "p99_s": cuts[98], "max_s": max(values)}


def child(kind: str, args: argparse.Namespace) -> None:
    """Run one measurement in this process, pinned to `--cpu`, and print its numbers as JSON."""
    if kind == "servers":
        pin(other_cpus(args.cpu))
        asyncio.run(_serve(args.http_ports, args.tcp_ports, sys.stdout))
        return
    pin({args.cpu})
    targets, prefix = load_targets(args.config)
    if kind == "bare":
        numbers = timed(lambda: asyncio.run(_bare(targets, args.concurrency)))
    elif kind == "burst":
        numbers = timed(lambda: _burst(targets, prefix, args.concurrency))
    else:
        seconds = args.intervals * args.interval
        numbers = timed(
            lambda: _sustained(targets, prefix, args.concurrency, seconds, args.interval)
        )
    print(json.dumps(numbers))


def measure(kind: str, args: argparse.Namespace, servers: Servers, progress: Progress) -> Any:
    """One child process of `kind`: its numbers, its peak RSS (from wait4), the servers' CPU."""
    command = [sys.executable, "-m", "bench.probes", "--child", kind, "--config", str(args.config)]
    command += ["--cpu", str(args.cpu), "--concurrency", str(args.concurrency)]
    command += ["--interval", str(args.interval), "--intervals", str(args.intervals)]
    server_cpu = servers.cpu_s()
    expected = args.intervals * args.interval if kind == "sustained" else None
    task = progress.add_task(kind, total=expected)
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    started = time.monotonic()
    # wait4 rather than poll: it reaps the child with its resource usage.
    while not (reaped := os.wait4(process.pid, os.WNOHANG))[0]:
        progress.update(task, completed=time.monotonic() - started)
        time.sleep(0.5)
    process.returncode = 0
    output = process.stdout.read()
    _, status, usage = reaped
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"the {kind} measurement failed")
    progress.update(task, completed=expected or 1, total=expected or 1)
    numbers: dict[str, Any] = json.loads(output)
    # ru_maxrss is in KiB on Linux.
    numbers["peak_rss_bytes"] = usage.ru_maxrss * 1024
    numbers["server_cpu_s"] = servers.cpu_s() - server_cpu
    numbers["probes_per_s"] = numbers["probes"] / numbers.get("seconds", numbers["wall_s"])
    numbers["cpu_ms_per_probe"] = numbers["cpu_s"] / max(numbers["probes"], 1) * 1000
    numbers["core_busy"] = numbers["cpu_s"] / numbers["wall_s"]
    return numbers


def report(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Start the servers, write the config, run the three measurements, judge the goals."""
    box = machine()
    servers = Servers(args.http_ports, args.tcp_ports, args.cpu)
    try:
        config = make_config(args.targets, args.interval, args.jitter, servers.http, servers.tcp)
        args.config.parent.mkdir(parents=True, exist_ok=True)
        args.config.write_text(yaml.safe_dump(config, sort_keys=False))
        load_targets(args.config)  # a config error once here, not in every child
        runs: dict[str, Any] = {}
        columns = (TextColumn("{task.description:10}"), BarColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            for kind in ("bare", "burst", "sustained"):
                runs[kind] = measure(kind, args, servers, progress)
    finally:
        servers.close()
    sustained = runs["sustained"]
    planned = args.targets / args.interval
    lag_first, lag_last = sustained["lag_by_interval"][0], sustained["lag_by_interval"][-1]
    return {
        "machine": box,
        "setup": {
            "targets": args.targets,
            "http_targets": sum(1 for s in config["services"] for p in s["probes"] if "http" in p),
            "http_ports": len(servers.http),
            "tcp_ports": len(servers.tcp),
            "interval_s": args.interval,
            "intervals": args.intervals,
            "jitter_s": args.jitter,
            "concurrency": args.concurrency,
            "collector_cpu": args.cpu,
            "server_cpus": sorted(other_cpus(args.cpu)),
        },
        "planned_probes_per_s": planned,
        **runs,
        "ratios": {
            "cpu_per_probe_collector_over_bare": sustained["cpu_ms_per_probe"]
            / runs["bare"]["cpu_ms_per_probe"],
            "burst_rate_collector_over_bare": runs["burst"]["probes_per_s"]
            / runs["bare"]["probes_per_s"],
        },
        "steady_probes_per_s": lag_last["runs"] / args.interval,
        "goals": {
            "rate": lag_last["runs"] / args.interval >= GOAL_RATE_SHARE * planned,
            "on_schedule": all(
                stats["runs"] >= GOAL_RATE_SHARE * runs
                for stats, runs in zip(
                    sustained["lag_by_interval"], sustained["planned_by_interval"], strict=True
                )
            ),
            "completed": sustained["probes"] >= GOAL_RATE_SHARE * sustained["planned_runs"],
            "skipped": sustained["skipped_runs"] == 0,
            "lag_p99": sustained["lag"]["p99_s"] <= GOAL_LAG_P99_S,
            "lag_growth": lag_last["p99_s"] - lag_first["p99_s"] <= GOAL_LAG_GROWTH_S,
            "failures": sustained["ok"] == sustained["probes"],
        },
    }


def render_markdown(result: dict[str, Any], command: str) -> str:
    """The generated section of docs/benchmarks.md: machine, setup, runs, lag, verdict."""
    setup, sustained = result["setup"], result["sustained"]

    def verdict(met: bool) -> str:
        return "met" if met else "**missed**"

    def row(label: str, run: dict[str, Any]) -> str:
        return (
            f"| {label} | {run['probes']:,} ({run['probes'] - run['ok']:,} failed) "
            f"| {run['wall_s']:.1f} s | {run['probes_per_s']:,.0f} | {run['cpu_s']:.2f} s "
            f"| {run['cpu_ms_per_probe']:.2f} ms | {run['core_busy']:.0%} "
            f"| {run['server_cpu_s']:.1f} s | {run['peak_rss_bytes'] / 1024**2:,.0f} MiB |"
        )

    lag_rows = [
        f"| {index + 1} | {runs:,} | {stats['runs']:,} | {stats['runs'] / setup['interval_s']:.1f} "
        f"| {' | '.join(_ms(stats))} | {_ms(loop)[2]} |"
        for index, (stats, runs, loop) in enumerate(
            zip(
                sustained["lag_by_interval"],
                sustained["planned_by_interval"],
                sustained["loop_delay_by_interval"],
                strict=True,
            )
        )
    ]
    lag, goals, ratios = sustained["lag"], result["goals"], result["ratios"]
    growth = sustained["lag_by_interval"][-1]["p99_s"] - sustained["lag_by_interval"][0]["p99_s"]
    planned = result["planned_probes_per_s"]
    lines = [
        f"Measured {result['machine']['date']} with `{command}`.",
        "",
        *machine_lines(result["machine"]),
        f"- Targets: {setup['targets']:,} ({setup['http_targets']:,} HTTP GET over "
        f"{setup['http_ports']:,} aiohttp ports, the rest TCP connects over {setup['tcp_ports']} "
        f"listeners), every {setup['interval_s']:g} s with ±{setup['jitter_s']:g} s jitter, "
        f"concurrency {setup['concurrency']}",
        f"- Collector pinned to CPU {setup['collector_cpu']}; servers pinned to CPUs "
        f"{', '.join(str(cpu) for cpu in setup['server_cpus']) or '(none: one CPU)'}",
        "",
        "| run | probes | wall | probes/s | CPU | CPU per probe | core busy | server CPU "
        "| peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
        row("bare aiohttp: each target once (client ceiling)", result["bare"]),
        row("collector burst: `run_once`, events published", result["burst"]),
        row(
            f"collector sustained: `run`, {setup['intervals']} x {setup['interval_s']:g} s",
            sustained,
        ),
        "",
        "Schedule lag of the sustained run (start of a run minus its planned time), "
        f"{sustained['skipped_runs']} runs skipped:",
        "",
        "| interval | runs planned | runs started | started per second | lag p50 | lag p99 "
        "| lag max | loop oversleep max |",
        "|---|---|---|---|---|---|---|---|",
        *lag_rows,
        "",
        f"Loop oversleep: how much longer than asked a task sleeping {TICK_S * 1000:.0f} ms "
        "again and again slept; CPU taken by other processes shows here "
        f"({_prose(sustained['loop_delay'])} over the run). "
        f"Probe latency: {_prose(sustained['latency'])}.",
        "",
        f"Collector / bare aiohttp: {ratios['cpu_per_probe_collector_over_bare']:.1f}x the CPU "
        f"per probe; burst rate {ratios['burst_rate_collector_over_bare']:.2f}x.",
        "",
        "| goal | target | measured | |",
        "|---|---|---|---|",
        f"| probes per second, last interval | ≥ {GOAL_RATE_SHARE:.0%} of {planned:.1f} "
        f"| {result['steady_probes_per_s']:.1f} | {verdict(goals['rate'])} |",
        f"| runs started of those planned, every interval | ≥ {GOAL_RATE_SHARE:.0%} "
        f"| {', '.join(str(stats['runs']) for stats in sustained['lag_by_interval'])} of "
        f"{', '.join(str(runs) for runs in sustained['planned_by_interval'])} "
        f"| {verdict(goals['on_schedule'])} |",
        f"| probes completed of the runs planned in the window | ≥ {GOAL_RATE_SHARE:.0%} "
        f"| {sustained['probes']:,} of {sustained['planned_runs']:,} "
        f"| {verdict(goals['completed'])} |",
        f"| runs skipped | 0 | {sustained['skipped_runs']} | {verdict(goals['skipped'])} |",
        f"| schedule lag p99 | ≤ {GOAL_LAG_P99_S * 1000:.0f} ms | {lag['p99_s'] * 1000:.1f} ms "
        f"| {verdict(goals['lag_p99'])} |",
        f"| lag growth (p99, last minus first interval) | ≤ {GOAL_LAG_GROWTH_S * 1000:.0f} ms "
        f"| {growth * 1000:+.1f} ms | {verdict(goals['lag_growth'])} |",
        f"| failed probes | 0 | {sustained['probes'] - sustained['ok']:,} "
        f"| {verdict(goals['failures'])} |",
    ]
    return "\n".join(lines) + "\n"


def _ms(stats: dict[str, float]) -> list[str]:
    """p50, p99 and maximum of a `spread`, in milliseconds."""
    return [f"{stats[key] * 1000:.1f} ms" for key in ("p50_s", "p99_s", "max_s")]


def _prose(stats: dict[str, float]) -> str:
    """A `spread` for a sentence."""
    p50, p99, most = _ms(stats)
    return f"p50 {p50}, p99 {p99}, max {most}"


def main(argv: list[str] | None = None) -> None:
    """The command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.probes", description=__doc__)
    parser.add_argument("--targets", type=int, default=GOAL_TARGETS)
    parser.add_argument("--interval", type=int, default=GOAL_INTERVAL_S, help="Seconds.")
    # Three: the first runs spread over an interval plus both jitters, so the last is steady.
    parser.add_argument("--intervals", type=int, default=3, help="Sustained run length.")
    parser.add_argument("--jitter", type=int, default=5, help="Seconds.")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--http-ports", type=int, default=1000)
    parser.add_argument("--tcp-ports", type=int, default=10)
    parser.add_argument("--cpu", type=int, default=0, help="The collector's CPU.")
    parser.add_argument("--config", type=Path, default=Path("var/bench/probes.yaml"))
    parser.add_argument("--json", type=Path, default=Path("var/bench/probes.json"))
    parser.add_argument("--write-docs", type=Path, help="Markdown file to put the numbers in.")
    parser.add_argument("--child", choices=("servers", "bare", "burst", "sustained"))
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args)
        return
    console = Console()
    result = report(args, console)
    for kind in ("bare", "burst", "sustained"):
        run = result[kind]
        console.print(
            f"{kind:9} {run['probes']:,} probes ({run['probes'] - run['ok']} failed) "
            f"in {run['wall_s']:.1f} s: {run['probes_per_s']:,.0f}/s, "
            f"{run['cpu_ms_per_probe']:.2f} ms CPU each, core {run['core_busy']:.0%}, "
            f"RSS {run['peak_rss_bytes'] / 1024**2:,.0f} MiB"
        )
    lag = result["sustained"]["lag"]
    console.print(
        f"lag p50 {lag['p50_s'] * 1000:.1f} ms, p99 {lag['p99_s'] * 1000:.1f} ms, "
        f"skipped {result['sustained']['skipped_runs']}; goals met: {result['goals']}"
    )
    save_results("probes", result, args, argv=argv, render=render_markdown, console=console)


if __name__ == "__main__":
    main()
