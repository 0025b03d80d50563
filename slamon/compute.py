"""`slamon compute`: the SLA engine over a store or a JSONL file, without Kafka."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.engine import BATCH_SERVICES, COUNTED_BATCH_SERVICES, services_with_inputs
from pipeline.shards import ShardUnion
from pipeline.store import EventStore
from sla.calendar import Calendars
from sla.config import SlamonConfig
from sla.continuity import ContinuitySummary
from sla.errors import ConfigError, InvalidEventError, StoreError
from sla.events import CloudEvent, parse_event
from sla.inputs import epoch_seconds
from sla.intervals import Interval
from sla.service_levels import ServiceFigures, rfc3339, service_figures

LOAD_BATCH = 50_000


def parse_instant(text: str, option: str) -> int:
    """`2026-10-01` (00:00 UTC) or an RFC 3339 time with offset, as Unix seconds."""
    try:
        if len(text) == 10:
            return epoch_seconds(
                datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            )
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{option} {text!r}: expected a date (2026-10-01) or a time with offset "
            "(2026-10-01T00:00:00+02:00)"
        ) from None
    if instant.tzinfo is None:
        raise ConfigError(f"{option} {text!r}: add a UTC offset, e.g. {text}Z")
    return epoch_seconds(instant)


def _parsed(path: Path, max_bytes: int, console: Console) -> Iterator[CloudEvent]:
    """The valid events of a JSONL file; invalid lines are reported with their line number."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield parse_event(line, max_bytes=max_bytes)
        except InvalidEventError as error:
            console.print(
                f"{escape(str(path))}:{number}: skipped: {error.code}: {escape(error.reason)}"
            )


def store_from_events(path: Path, config: SlamonConfig, console: Console) -> EventStore:
    """An in-memory store holding the valid events of a JSONL file (duplicates once)."""
    store = EventStore(":memory:")
    batch: list[CloudEvent] = []
    for event in _parsed(path, config.pipeline.max_event_bytes, console):
        batch.append(event)
        if len(batch) == LOAD_BATCH:
            store.write_batch(batch)
            batch = []
    store.write_batch(batch)
    return store


def open_store(path: Path) -> EventStore:
    """An existing store, opened read-only (DuckDB lets one process at a time open a file).

    A directory is a sharded store, read as one across all its shards.
    """
    if path.is_dir():
        return ShardUnion(path)
    if not path.exists():
        raise StoreError(f"{path}: no event store there")
    return EventStore(path, read_only=True)


def default_batch_services(listed: bool) -> int:
    """Services reduced at a time: fewer when every clock is listed (it holds the month)."""
    return BATCH_SERVICES if listed else COUNTED_BATCH_SERVICES


def figures_in_batches(
    config: SlamonConfig,
    store: EventStore,
    window: Interval,
    now: int,
    batch_services: int | None = None,
    *,
    settled: bool = True,
    listed: bool = True,
) -> Iterator[ServiceFigures]:
    """Every configured service's figures over `window`, as of min(now, window end), in
    config order, reduced `batch_services` services at a time (by default
    `default_batch_services(listed)`).

    Memory follows the batch: a caller that writes each service's figures out before asking
    for the next never holds the month of a whole estate. `settled` as in
    `pipeline.engine.inputs_from_store`. With `listed` false, the stopped clocks of settled
    tickets and the changes are counted in the store instead of listed, as the live figures
    are: every figure is the same, but `tickets.clocks` then holds only the running clocks,
    so only summaries may be written from them.
    """
    at = min(now, window.end)
    calendars = Calendars(config.calendars)
    count_in = None if listed else {s.id: [window] for s in config.services}
    if batch_services is None:
        batch_services = default_batch_services(listed)
    for service, inputs in services_with_inputs(
        store, config, window.start, at, batch_services, settled=settled, count_in=count_in
    ):
        yield service_figures(service, calendars, inputs, window, at)


def compute(
    config: SlamonConfig, store: EventStore, window: Interval, now: int
) -> dict[str, ServiceFigures]:
    """Every configured service's figures over `window`, as of min(now, window end)."""
    return {f.service: f for f in figures_in_batches(config, store, window, now)}


def render_json(figures: Mapping[str, ServiceFigures], window: Interval, at: int) -> str:
    """The documented JSON shape, byte-identical for identical inputs."""
    out = io.StringIO()
    write_json(figures.values(), window, at, out)
    return out.getvalue()


def write_json(figures: Iterable[ServiceFigures], window: Interval, at: int, out: TextIO) -> None:
    """`render_json` of `figures`, written service by service as they come.

    The bytes are those of ``json.dumps(document, indent=2)`` for the whole document.
    """

    def dumped(value: Any, depth: int) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + "  " * depth)

    head = {"from": rfc3339(window.start), "to": rfc3339(window.end)}
    out.write(f'{{\n  "window": {dumped(head, 1)},\n  "at": {dumped(rfc3339(at), 1)},\n')
    out.write('  "services": {')
    separator = "\n"
    for f in figures:
        out.write(f"{separator}    {dumped(f.service, 2)}: {dumped(f.to_dict(), 2)}")
        separator = ",\n"
    out.write("\n  }\n}\n" if separator == ",\n" else "}\n}\n")


SUMMARY_COLUMNS = (
    "service",
    "agreed_seconds",
    "downtime_seconds",
    "availability_ratio",
    "availability_24x7_ratio",
    "outages",
    "mtbf_seconds",
    "mtrs_seconds",
    "error_budget_remaining_ratio",
    "credit_percent",
    "tickets_met",
    "tickets_breached",
    "tickets_in_flight",
    "ticket_compliance_ratio",
    "changes",
    "change_success_ratio",
    "continuity_last_test_passed",
    "continuity_overdue",
)


def summary_row(figures: ServiceFigures) -> dict[str, Any]:
    """One line of figures per service, the shape of the CSV and the table."""
    a = figures.availability
    rows = figures.tickets.compliance
    met = sum(r.met for r in rows)
    breached = sum(r.breached for r in rows)
    last = figures.continuity.last_test
    return {
        "service": figures.service,
        "agreed_seconds": a and a.agreed_seconds,
        "downtime_seconds": a and a.downtime_seconds,
        "availability_ratio": a and a.ratio,
        "availability_24x7_ratio": a and a.ratio_24x7,
        "outages": a and a.outages,
        "mtbf_seconds": a and a.mtbf_seconds,
        "mtrs_seconds": a and a.mtrs_seconds,
        "error_budget_remaining_ratio": figures.error_budget
        and figures.error_budget.remaining_ratio,
        "credit_percent": figures.credit and figures.credit.percent,
        "tickets_met": met,
        "tickets_breached": breached,
        "tickets_in_flight": sum(r.in_flight for r in rows),
        "ticket_compliance_ratio": met / (met + breached) if met + breached else None,
        "changes": figures.changes.total,
        "change_success_ratio": figures.changes.success_ratio,
        "continuity_last_test_passed": last and last.passed,
        "continuity_overdue": figures.continuity.overdue,
    }


def _cell(value: Any) -> Any:
    """CSV cells: empty for undefined, booleans spelled as in the JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def write_csv(figures: Iterable[ServiceFigures], out: TextIO) -> None:
    """The per-service summary as CSV (empty cells where a figure is not defined)."""
    writer = csv.DictWriter(out, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for f in figures:
        writer.writerow({k: _cell(v) for k, v in summary_row(f).items()})


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4%}"


def _continuity(summary: ContinuitySummary) -> str:
    if summary.overdue:
        return "overdue"
    if summary.last_test is None:
        return ""
    passed = summary.last_test.passed
    return "not judged" if passed is None else "passed" if passed else "failed"


def render_table(figures: Iterable[ServiceFigures], window: Interval) -> Table:
    """The per-service summary for a terminal."""
    table = Table(title=f"{rfc3339(window.start)} to {rfc3339(window.end)}", title_justify="left")
    for column in (
        "service",
        "availability",
        "downtime",
        "outages",
        "budget left",
        "credit",
        "tickets met/breached",
        "changes ok",
        "continuity",
    ):
        table.add_column(column, justify="left" if column == "service" else "right")
    for f in figures:
        row = summary_row(f)
        table.add_row(
            f.service,
            _percent(row["availability_ratio"]),
            "" if row["downtime_seconds"] is None else f"{row['downtime_seconds']} s",
            "" if row["outages"] is None else str(row["outages"]),
            _percent(row["error_budget_remaining_ratio"]),
            "" if row["credit_percent"] is None else f"{row['credit_percent']:g} %",
            f"{row['tickets_met']}/{row['tickets_breached']}",
            _percent(row["change_success_ratio"]),
            _continuity(f.continuity),
        )
    return table
