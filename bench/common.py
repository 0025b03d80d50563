"""What every benchmark shares: the machine it ran on and its generated docs section."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from rich.console import Console

from pipeline.transport import Transport, open_transport
from sla.config import KafkaTransportConfig


def machine() -> dict[str, Any]:
    """What the numbers were measured on, and the load beside them."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_bytes": memory_kib * 1024,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "polars": pl.__version__,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def machine_lines(box: dict[str, Any]) -> list[str]:
    """The Markdown bullet list describing `machine()`."""
    return [
        f"- Machine: {box['cpus']} CPUs ({box['cpu_model']}), "
        f"{box['memory_bytes'] / 1024**3:.1f} GiB memory",
        f"- Python {box['python']}, DuckDB {box['duckdb']}, polars {box['polars']}",
        f"- Load average at the start: {box['load_average']}",
    ]


def write_section(path: Path, name: str, body: str) -> None:
    """Replace benchmark `name`'s generated section of `path` (append it when there is none)."""
    begin = f"<!-- {name}: generated section, begin -->"
    end = f"<!-- {name}: generated section, end -->"
    section = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        # Only the marker's own line end goes: the blank line after a section stays.
        text = head + section + rest.split(end, 1)[1].removeprefix("\n")
    else:
        text = text + ("\n" if text else "") + section
    path.write_text(text)


def save_results(
    name: str,
    result: dict[str, Any],
    args: argparse.Namespace,
    *,
    argv: list[str] | None,
    render: Callable[[dict[str, Any], str], str],
    console: Console,
) -> None:
    """Write `result` to `args.json` and, with `args.write_docs`, benchmark `name`'s section."""
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"raw numbers in {args.json}")
    if args.write_docs:
        command = f"python -m bench.{name} " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(args.write_docs, f"bench.{name}", render(result, command))
        console.print(f"numbers written to {args.write_docs}")


def kafka_transport(bootstrap: str, prefix: str, client: str, partitions: int) -> Transport:
    """The transport `slamon` opens for this bootstrap, prefix and client."""
    config = KafkaTransportConfig.model_validate(
        {
            "bootstrap": bootstrap,
            "topic_prefix": prefix,
            "client": client,
            "partitions": partitions,
        }
    )
    return open_transport(config)
