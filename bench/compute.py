"""The SLA engine benchmark: the full monthly computation against a bare DuckDB scan.

`python -m bench.compute --store var/bench/month.duckdb --config var/bench/month.yaml`
measures, in one run and each in its own child process (for its peak RSS):

- baseline: ``SELECT service, count(*), sum(ok::INT) FROM probes GROUP BY service`` and
  ``SELECT service, count(*) FROM tickets GROUP BY service``;
- full: ``inputs_from_store`` and ``service_figures`` for every configured service over the
  month, as ``slamon compute`` runs them (the config is parsed before the clock starts).

Each child runs once to warm up, then `--repeat` times; the best wall time counts. The
numbers go to `--json` and, with `--write-docs`, into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml
from rich.console import Console

from bench.common import machine, machine_lines, write_section
from pipeline.engine import inputs_from_store
from pipeline.store import EventStore
from sla.calendar import Calendars
from sla.config import SlamonConfig
from sla.intervals import Interval
from sla.service_levels import service_figures

GOAL_SECONDS = 3.0
GOAL_RSS_BYTES = 2 * 1024**3
GOAL_RATIO = 5.0

BASELINE_SQL = (
    "SELECT service, count(*), sum(ok::INT) FROM probes GROUP BY service",
    "SELECT service, count(*) FROM tickets GROUP BY service",
)


def month_window(store: Path) -> tuple[int, int]:
    """The calendar month (UTC) of the store's earliest probe result, as Unix seconds."""
    with duckdb.connect(str(store), read_only=True) as con:
        row = con.execute("SELECT epoch(min(time))::BIGINT FROM probes").fetchone()
    if row is None or row[0] is None:
        raise SystemExit(f"{store}: no probe results to benchmark")
    first = datetime.fromtimestamp(row[0], UTC)
    start = datetime(first.year, first.month, 1, tzinfo=UTC)
    end = datetime(first.year + first.month // 12, first.month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()), int(end.timestamp())


def _baseline(store: Path) -> Callable[[], object]:
    con = duckdb.connect(str(store), read_only=True)
    return lambda: [con.sql(sql).pl() for sql in BASELINE_SQL]


def _full(store: Path, config: Path) -> Callable[[], object]:
    loaded = SlamonConfig.model_validate(yaml.load(config.read_text(), Loader=yaml.CSafeLoader))
    since, until = month_window(store)
    event_store = EventStore(store, read_only=True)
    window = Interval(since, until)

    def run() -> object:
        inputs = inputs_from_store(event_store, loaded, since, until)
        calendars = Calendars(loaded.calendars)
        return [
            service_figures(service, calendars, inputs[service.id], window, until)
            for service in loaded.services
        ]

    return run


def child(kind: str, store: Path, config: Path, repeat: int) -> None:
    """Run one measurement in this process and print its wall times as JSON."""
    work = _baseline(store) if kind == "baseline" else _full(store, config)
    work()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    print(json.dumps({"seconds": times}))


def measure(kind: str, store: Path, config: Path, repeat: int) -> dict[str, Any]:
    """One child process of `kind`: its wall times and its own peak RSS (from wait4)."""
    command = [sys.executable, "-m", "bench.compute", "--child", kind]
    command += ["--store", str(store), "--config", str(config), "--repeat", str(repeat)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"the {kind} measurement failed with exit code {process.returncode}")
    seconds: list[float] = json.loads(output)["seconds"]
    # ru_maxrss is in KiB on Linux.
    return {
        "seconds": seconds,
        "best_seconds": min(seconds),
        "peak_rss_bytes": usage.ru_maxrss * 1024,
    }


def event_counts(store: Path) -> dict[str, int]:
    """Stored events per type."""
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute(
            "SELECT type, count(*) FROM events GROUP BY type ORDER BY type"
        ).fetchall()
    return {str(type_): int(count) for type_, count in rows}


def report(store: Path, config: Path, repeat: int) -> dict[str, Any]:
    """Both measurements, the ratio and the verdict against the goals."""
    baseline = measure("baseline", store, config, repeat)
    full = measure("full", store, config, repeat)
    ratio = full["best_seconds"] / baseline["best_seconds"]
    return {
        "machine": machine(),
        "store": str(store),
        "events": event_counts(store),
        "repeat": repeat,
        "baseline": baseline,
        "full": full,
        "ratio": ratio,
        "goals": {
            "seconds": full["best_seconds"] <= GOAL_SECONDS,
            "peak_rss": full["peak_rss_bytes"] <= GOAL_RSS_BYTES,
            "ratio": ratio <= GOAL_RATIO,
        },
    }


def render_markdown(result: dict[str, Any], command: str) -> str:
    """The generated section of docs/benchmarks.md: machine, command, numbers, verdict."""
    box, base, full = result["machine"], result["baseline"], result["full"]

    def verdict(met: bool) -> str:
        return "met" if met else "**missed**"

    def times(numbers: dict[str, Any]) -> str:
        return ", ".join(f"{s:.3f}" for s in numbers["seconds"])

    lines = [
        f"Measured {box['date']} with `{command}`.",
        "",
        *machine_lines(box),
        "- Events: " + ", ".join(f"{t} {n:,}" for t, n in result["events"].items()),
        "",
        "| measurement | best wall time | runs (s) | peak RSS |",
        "|---|---|---|---|",
        f"| baseline: bare DuckDB `GROUP BY service` scans | {base['best_seconds']:.3f} s "
        f"| {times(base)} | {base['peak_rss_bytes'] / 1024**2:,.0f} MiB |",
        f"| full: `inputs_from_store` + `service_figures`, all services | "
        f"{full['best_seconds']:.3f} s | {times(full)} | "
        f"{full['peak_rss_bytes'] / 1024**2:,.0f} MiB |",
        "",
        "| goal | target | measured | |",
        "|---|---|---|---|",
        f"| wall time | ≤ {GOAL_SECONDS:g} s | {full['best_seconds']:.2f} s "
        f"| {verdict(result['goals']['seconds'])} |",
        f"| peak memory | ≤ {GOAL_RSS_BYTES / 1024**3:g} GiB | "
        f"{full['peak_rss_bytes'] / 1024**3:.2f} GiB | {verdict(result['goals']['peak_rss'])} |",
        f"| full / baseline | ≤ {GOAL_RATIO:g}x | {result['ratio']:.0f}x "
        f"| {verdict(result['goals']['ratio'])} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """The command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.compute", description=__doc__)
    parser.add_argument("--store", type=Path, default=Path("var/bench/month.duckdb"))
    parser.add_argument("--config", type=Path, default=Path("var/bench/month.yaml"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("var/bench/compute.json"))
    parser.add_argument("--write-docs", type=Path, help="Markdown file to put the numbers in.")
    parser.add_argument("--child", choices=("baseline", "full"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.store, args.config, args.repeat)
        return
    console = Console()
    with console.status("measuring the baseline scan and the full computation"):
        result = report(args.store, args.config, args.repeat)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    for kind in ("baseline", "full"):
        numbers = result[kind]
        console.print(
            f"{kind:8} best {numbers['best_seconds']:.3f} s of "
            f"{', '.join(f'{s:.3f}' for s in numbers['seconds'])}; "
            f"peak RSS {numbers['peak_rss_bytes'] / 1024**2:,.0f} MiB"
        )
    console.print(f"ratio full/baseline {result['ratio']:.1f} x; goals met: {result['goals']}")
    console.print(f"raw numbers in {args.json}")
    if args.write_docs:
        command = "python -m bench.compute " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(args.write_docs, "bench.compute", render_markdown(result, command))
        console.print(f"numbers written to {args.write_docs}")


if __name__ == "__main__":
    main()
