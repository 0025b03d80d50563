"""A deterministic synthetic month in an event store, for the SLA engine benchmark.

`python -m bench.generate --out var/bench/month.duckdb --services 1000 --probes 10000000
--tickets 1000000 --seed 7` writes the store (the exact schema of pipeline/migrations.py,
ledger and probe islands included) and `month.yaml` next to it, a config `slamon validate`
accepts.

Probe results, the bulk, are generated inside DuckDB from a hash of (seed, row): a
CloudEvent object per row would cost minutes. Everything else is drawn in Python from
`random.Random(seed)` and bulk-loaded as Arrow tables. Same seed, same sizes: same store.

Out of core: probe results, their ledger rows and their islands are written a batch of
services at a time (about `BATCH_PROBES` results each), tickets a million events at a time,
and DuckDB works within `--memory-limit`, spilling to a directory next to the store. A
100 M-result month (`--services 10000 --probes 100000000 --tickets 10000000
--capacity-services 1000`) is then written within a few GiB of memory.
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.migrations import ENVELOPE_COLUMNS, TABLE_OF_TYPE, migrate
from pipeline.probe_islands import rebuild_probe_islands, service_batches
from pipeline.settled_tickets import REBUILD_TICKET_SIGNATURES

SOURCE = "bench"
CHECKS = ("http", "tcp")
PRIORITIES = ("P1", "P2", "P3", "P4")
PRIORITY_WEIGHTS = (5, 15, 40, 40)
_SECOND = 1_000_000
_HOUR = 3_600 * _SECOND
_DAY = 24 * _HOUR
_TYPE_OF_TABLE = {table: type_ for type_, table in TABLE_OF_TYPE.items()}
# Probe results per generated batch, and ticket events per bulk load: bounds on memory.
BATCH_PROBES = 5_000_000
BATCH_TICKET_EVENTS = 1_000_000

# Working hours of the business calendars; services alternate between them and 24x7.
CALENDARS: dict[str, dict[str, Any]] = {
    "office-berlin": {
        "timezone": "Europe/Berlin",
        "hours": {d: ["08:00-18:00"] for d in ("mon", "tue", "wed", "thu")}
        | {"fri": ["08:00-12:30", "13:30-16:00"]},
        "holidays": ["2026-01-01", "2026-04-03", "2026-04-06", "2026-05-01", "2026-12-25"],
    },
    "us-east": {
        "timezone": "America/New_York",
        "hours": {d: ["07:00-19:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": ["2026-01-01", "2026-05-25", "2026-07-03", "2026-12-25"],
    },
    "store-hours": {
        "timezone": "Asia/Tokyo",
        "hours": {d: ["10:00-21:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")},
    },
}
_HOURS = ("24x7", "24x7", *CALENDARS)

# Goals per priority (response, resolution) for 24x7 and business-time ticket policies.
GOALS = {
    "24x7": {"P1": ("15m", "4h"), "P2": ("30m", "8h"), "P3": ("4h", "3d"), "P4": ("8h", "5d")},
    "business": {"P1": ("30m", "8h"), "P2": ("1h", "2d"), "P3": ("4h", "5d"), "P4": ("1d", "10d")},
}

# Both are inserted BY NAME: columns later migrations add (probes.cert_expires_at) stay NULL.
PROBES_SQL = """
WITH grid AS (
    SELECT s.i AS service_no, c.j AS check_no, k.k AS slot
    FROM range($first, $last) s(i), range($checks) c(j), range($per_check + 1) k(k)
    WHERE k.k < $per_check + CASE WHEN s.i * $checks + c.j < $extra THEN 1 ELSE 0 END
), timed AS (
    SELECT service_no, check_no, slot,
           $start + slot * $interval
             + hash($seed, 'offset', service_no, check_no) % ($interval - 2000000)
             + hash($seed, 'jitter', service_no, check_no, slot) % 2000000 AS t,
           hash($seed, 'sporadic', service_no, check_no, slot) % 10000 AS draw
    FROM grid
)
SELECT printf('p%d-%d-%d', service_no, check_no, slot) AS event_id,
       printf('svc-%04d', service_no) AS service,
       make_timestamp(t::BIGINT)::TIMESTAMPTZ AS time,
       $check_names[check_no + 1] AS "check",
       ok,
       CASE WHEN ok THEN 20 + draw % 180 ELSE 2000 + draw % 3000 END::DOUBLE AS latency_ms,
       CASE WHEN check_no = 0 THEN CASE WHEN ok THEN 200 ELSE 503 END END AS status_code,
       CASE WHEN NOT ok THEN 'unhealthy' END AS error
FROM (
    SELECT timed.*, NOT (t < i.end_us AND i.end_us IS NOT NULL) AND draw >= $sporadic AS ok
    FROM timed ASOF LEFT JOIN _incidents i
      ON timed.service_no = i.service_no AND timed.check_no = i.check_no AND timed.t >= i.start_us
)
"""

CAPACITY_SQL = """
WITH grid AS (
    SELECT s.i AS service_no, r.j AS resource_no, h.h AS host_no, k.k AS slot
    FROM range($services) s(i), range(2) r(j), range($hosts) h(h), range($samples) k(k)
), drawn AS (
    SELECT *, $start + slot * $interval + hash($seed, 'cap', service_no, host_no) % 60000000 AS t,
           hash($seed, 'use', service_no, resource_no, host_no, slot) % 1000 AS noise
    FROM grid
)
SELECT printf('c%d-%d-%d-%d', service_no, resource_no, host_no, slot) AS event_id,
       printf('svc-%04d', service_no) AS service,
       make_timestamp(t::BIGINT)::TIMESTAMPTZ AS time,
       ['cpu', 'disk'][resource_no + 1] AS resource,
       CASE WHEN resource_no = 0
            -- cpu: a daily wave with noise, over warn and crit on busy afternoons
            THEN round(16 * (0.45 + 0.3 * sin(2 * pi() * (t % 86400000000) / 86400000000)
                             + noise / 4000), 2)
            -- disk: a slow fill from 40 % to near 80 % over the month
            ELSE round(500 * (0.4 + 0.4 * slot / $samples + noise / 50000), 1)
       END::DOUBLE AS used,
       CASE WHEN resource_no = 0 THEN 16.0 ELSE 500.0 END AS capacity,
       ['cores', 'GiB'][resource_no + 1] AS unit,
       printf('host-%d', host_no) AS host
FROM drawn
"""


@dataclass(frozen=True)
class MonthSpec:
    """What to generate."""

    month: date
    services: int
    probes: int
    tickets: int
    seed: int
    capacity_services: int = 100
    capacity_hosts: int = 1

    @property
    def start_us(self) -> int:
        """Microseconds of the month's first instant (UTC)."""
        return _us(datetime(self.month.year, self.month.month, 1, tzinfo=UTC))

    @property
    def end_us(self) -> int:
        """Microseconds of the next month's first instant (UTC)."""
        year, month = divmod(self.month.year * 12 + self.month.month, 12)
        return _us(datetime(year, month + 1, 1, tzinfo=UTC))


def _us(instant: datetime) -> int:
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // datetime.resolution


def service_id(number: int) -> str:
    """The id of service `number` (0-based)."""
    return f"svc-{number:04d}"


def probe_interval(spec: MonthSpec) -> int:
    """Seconds between two results of one check, so the month holds `spec.probes` of them."""
    per_check = max(1, spec.probes // (spec.services * len(CHECKS)))
    return max(10, (spec.end_us - spec.start_us) // _SECOND // per_check)


def service_config(number: int, spec: MonthSpec) -> dict[str, Any]:
    """One service of the config: calendars, checks, goals and credits rotate by number."""
    hours = _HOURS[number % len(_HOURS)]
    interval = f"{probe_interval(spec)}s"
    business = number % 3 == 2
    goals = GOALS["business" if business else "24x7"]
    # Business-time tickets follow the service hours, or the office when those are 24x7.
    ticket_calendar = (hours if hours != "24x7" else "office-berlin") if business else "24x7"
    service: dict[str, Any] = {
        "id": service_id(number),
        "name": f"Service {number}",
        "customer": f"customer-{number % 40:02d}",
        "service_hours": hours,
        "objectives": {
            "availability": (99.9, 99.5, 99.0)[number % 3],
            "rto": "4h",
            "rpo": "15m",
            "continuity_test_interval": "92d",
        },
        "outage_from_probes": {"failures": 3, "recoveries": 1 + number % 2},
        "probes": [
            {
                "name": "http",
                "http": f"http://svc-{number}.bench.invalid/health",
                "interval": interval,
            },
            {"name": "tcp", "tcp": f"svc-{number}.bench.invalid:5432", "interval": interval},
        ],
        "tickets": {
            "calendar": ticket_calendar,
            "pause": {"statuses": ["pending"], "clocks": ["resolution"]},
            "reopen": ("continue", "new_cycle")[number % 2],
            "goals": {p: {"response": r, "resolution": s} for p, (r, s) in goals.items()},
        },
        "credits": [{"below": 99.9, "credit": 5}, {"below": 99.0, "credit": 10}],
    }
    if number < spec.capacity_services:
        service["capacity"] = {
            "cpu": {"warn": 0.7, "crit": 0.85},
            "disk": {"warn": 0.8, "crit": 0.9, "trend_window": "7d"},
        }
    return service


def config_document(spec: MonthSpec, store: Path) -> dict[str, Any]:
    """The config of the generated month."""
    return {
        "transport": {"kind": "embedded", "topic_prefix": "bench"},
        "store": {"path": str(store)},
        "calendars": CALENDARS,
        "services": [service_config(n, spec) for n in range(spec.services)],
    }


@dataclass
class Rows:
    """Columns of one typed table, filled row by row."""

    columns: dict[str, list[Any]]

    @classmethod
    def of(cls, *names: str) -> Rows:
        """Empty columns `event_id, service, time, *names` (given once)."""
        return cls({name: [] for name in dict.fromkeys(("event_id", "service", "time", *names))})

    def add(self, **values: Any) -> None:
        """Append one row (every column given)."""
        for name, column in self.columns.items():
            column.append(values[name])

    def __len__(self) -> int:
        return len(self.columns["event_id"])


class Month:
    """Draws the events of one month from `spec.seed`."""

    def __init__(self, spec: MonthSpec) -> None:
        self.spec = spec
        self.random = random.Random(spec.seed)

    def _instant(self, lead: int = 0) -> int:
        """A uniform instant in the month, or up to `lead` microseconds before it."""
        return self.random.randrange(self.spec.start_us - lead, self.spec.end_us)

    def incidents(self) -> pa.Table:
        """Failure runs per (service, check), non-overlapping: mostly both checks at once."""
        rows: dict[str, list[int]] = {
            "service_no": [],
            "check_no": [],
            "start_us": [],
            "end_us": [],
        }
        for service in range(self.spec.services):
            starts = sorted(self._instant() for _ in range(self.random.randrange(0, 5)))
            previous_end = [self.spec.start_us] * len(CHECKS)
            for start in starts:
                # Log-normal run lengths: mostly minutes, now and then hours.
                length = int(self.random.lognormvariate(7.0, 1.2) * _SECOND)
                checks = (
                    range(len(CHECKS))
                    if self.random.random() < 0.7
                    else [self.random.randrange(len(CHECKS))]
                )
                for check in checks:
                    begin = max(start, previous_end[check])
                    rows["service_no"].append(service)
                    rows["check_no"].append(check)
                    rows["start_us"].append(begin)
                    rows["end_us"].append(begin + length)
                    previous_end[check] = begin + length
        return pa.table({k: pa.array(v, pa.int64()) for k, v in rows.items()})

    def tickets(self, batch: int = BATCH_TICKET_EVENTS) -> Iterator[Rows]:
        """Ticket lifecycles until `spec.tickets` events: response, work, pauses, priority
        changes, resolution, reopening, closing; some still open at the month's end.

        In batches of about `batch` events (a ticket's events stay in one), the same draws
        whatever the batch size.
        """
        rows = Rows.of("ticket_id", "kind", "priority", "status", "responded", "customer")
        total = 0
        for number in itertools.count():
            if total + len(rows) >= self.spec.tickets:
                break
            if len(rows) >= batch:
                total += len(rows)
                yield rows
                rows = Rows.of(*rows.columns)
            service = self.random.randrange(self.spec.services)
            for n, (t, status, priority, responded, kind) in enumerate(self._lifecycle()):
                if total + len(rows) >= self.spec.tickets or t >= self.spec.end_us:
                    break
                rows.add(
                    event_id=f"t{number}-{n}",
                    service=service_id(service),
                    time=t,
                    ticket_id=f"T{number:07d}",
                    kind=kind,
                    priority=priority,
                    status=status,
                    responded=responded,
                    customer=f"customer-{service % 40:02d}",
                )
        if len(rows):
            yield rows

    def _lifecycle(self) -> Iterator[tuple[int, str, str, bool, str]]:
        """(time, status, priority, responded, kind) of one ticket's events, in time order."""
        rnd = self.random
        kind = rnd.choices(("incident", "request", "problem"), (60, 35, 5))[0]
        priority = rnd.choices(PRIORITIES, PRIORITY_WEIGHTS)[0]
        scale = (PRIORITIES.index(priority) + 1) * _HOUR
        t = self._instant(lead=7 * _DAY)
        yield t, "new", priority, False, kind

        def later(mean: float) -> int:
            nonlocal t
            t += int(rnd.expovariate(1 / mean)) + _SECOND
            return t

        yield later(scale / 4), "open", priority, True, kind
        if rnd.random() < 0.1:
            priority = rnd.choice(PRIORITIES)
            yield later(scale / 2), "open", priority, True, kind
        yield later(scale / 2), "in_progress", priority, True, kind
        for _ in range(rnd.choices((0, 1, 2), (65, 28, 7))[0]):
            yield later(scale), "pending", priority, True, kind
            yield later(scale * 2), "in_progress", priority, True, kind
        yield later(scale * 3), "resolved", priority, True, kind
        if rnd.random() < 0.08:
            yield later(scale * 6), "open", priority, True, kind
            yield later(scale * 2), "resolved", priority, True, kind
        if rnd.random() < 0.7:
            yield later(2 * _DAY), "closed", priority, True, kind

    def statuses(self) -> Rows:
        """Reported down/up pairs of every tenth service, after an initial 'up'."""
        rows = Rows.of("state", "reason", "source")
        for service in range(0, self.spec.services, 10):
            t = self.spec.start_us - _DAY
            rows.add(
                event_id=f"s{service}-0",
                service=service_id(service),
                time=t,
                state="up",
                reason=None,
                source=SOURCE,
            )
            for n in range(1, 1 + 2 * self.random.randrange(0, 4), 2):
                t = max(t + _SECOND, self._instant())
                for k, (state, reason) in enumerate((("down", "health check"), ("up", None))):
                    rows.add(
                        event_id=f"s{service}-{n + k}",
                        service=service_id(service),
                        time=t,
                        state=state,
                        reason=reason,
                        source=SOURCE,
                    )
                    t += int(self.random.expovariate(1 / (20 * 60)) * _SECOND) + _SECOND
        return rows

    def outages(self) -> Rows:
        """Reported outages of every fifth service: an open report, then its end."""
        rows = Rows.of("outage_id", "start", "end", "planned", "impact", "ref")
        for service in range(0, self.spec.services, 5):
            for n in range(self.random.randrange(0, 3)):
                start = self._instant()
                end = start + int(self.random.lognormvariate(8.0, 1.0) * _SECOND)
                fields = {
                    "service": service_id(service),
                    "outage_id": f"OUT-{service}-{n}",
                    "start": start,
                    "planned": self.random.random() < 0.1,
                    "impact": "partial" if self.random.random() < 0.2 else "full",
                    "ref": f"T-{service}-{n}",
                }
                rows.add(event_id=f"o{service}-{n}-a", time=start, end=None, **fields)
                if end < self.spec.end_us:
                    rows.add(event_id=f"o{service}-{n}-b", time=end, end=end, **fields)
        return rows

    def maintenance(self) -> Rows:
        """A weekend window for every fourth service."""
        rows = Rows.of("window_id", "start", "end", "reason", "change_ref")
        for service in range(0, self.spec.services, 4):
            start = self._instant()
            rows.add(
                event_id=f"m{service}",
                service=service_id(service),
                time=start - 3 * _DAY,
                window_id=f"MW-{service}",
                start=start,
                end=start + 2 * _HOUR,
                reason="patching",
                change_ref=f"CHG-{service}-0",
            )
        return rows

    def changes(self) -> Rows:
        """Two or three changes per service: scheduled, then implemented, failed or rolled back."""
        rows = Rows.of("change_id", "kind", "status", "start", "end", "caused_incident")
        for service in range(self.spec.services):
            for n in range(self.random.randrange(2, 4)):
                start = self._instant()
                kind = self.random.choices(("standard", "normal", "emergency"), (50, 40, 10))[0]
                outcome = self.random.choices(("implemented", "failed", "rolled_back"), (90, 5, 5))[
                    0
                ]
                fields = {
                    "service": service_id(service),
                    "change_id": f"CHG-{service}-{n}",
                    "kind": kind,
                    "start": start,
                    "end": start + _HOUR,
                }
                rows.add(
                    event_id=f"g{service}-{n}-a",
                    time=start - _DAY,
                    status="scheduled",
                    caused_incident=None,
                    **fields,
                )
                caused = f"T-{service}-{n}" if self.random.random() < 0.05 else None
                rows.add(
                    event_id=f"g{service}-{n}-b",
                    time=start + _HOUR,
                    status=outcome,
                    caused_incident=caused,
                    **fields,
                )
        return rows

    def continuity(self) -> Rows:
        """A recovery test for every tenth service."""
        rows = Rows.of(
            "test_id", "scenario", "invoked_at", "restored_at", "data_restored_to", "outcome"
        )
        for service in range(0, self.spec.services, 10):
            invoked = self._instant()
            restored = invoked + self.random.randrange(1, 6 * 3_600) * _SECOND
            rows.add(
                event_id=f"d{service}",
                service=service_id(service),
                time=restored,
                test_id=f"DR-{service}",
                scenario="region failover",
                invoked_at=invoked,
                restored_at=restored,
                data_restored_to=invoked - self.random.randrange(0, 1_800) * _SECOND,
                outcome="passed",
            )
        return rows


def _load(con: duckdb.DuckDBPyConnection, table: str, rows: Rows) -> None:
    """Bulk-insert `rows` into a typed table, timestamps from integer microseconds."""
    if not len(rows):
        return
    schema = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    arrow = pa.table(
        {
            name: pa.array(rows.columns[name], pa.int64())
            if data_type.startswith("TIMESTAMP")
            else pa.array(rows.columns[name])
            for name, data_type in schema
        }
    )
    con.register("_bench_rows", arrow)
    casts = ", ".join(
        f'make_timestamp("{name}")' if data_type.startswith("TIMESTAMP") else f'"{name}"'
        for name, data_type in schema
    )
    con.execute(f'INSERT INTO "{table}" SELECT {casts} FROM _bench_rows')
    con.unregister("_bench_rows")


# Typed columns that are not data fields (as SQL string literals).
_ENVELOPE = ", ".join(f"'{name}'" for name in ENVELOPE_COLUMNS)


def _ledger(con: duckdb.DuckDBPyConnection, table: str, where: str = "true") -> None:
    """The ledger rows of a typed table (those `where` selects), with each event's
    CloudEvent JSON as `raw`."""
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_name = ? AND column_name NOT IN ({_ENVELOPE}) "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    rfc3339 = "strftime({}, '%Y-%m-%dT%H:%M:%S.%fZ')"
    data = ", ".join(
        f"'{name}', "
        + (rfc3339.format(f'"{name}"') if kind.startswith("TIMESTAMP") else f'"{name}"')
        for name, kind in columns
    )
    type_ = _TYPE_OF_TABLE[table]
    con.execute(
        f"""
        INSERT INTO events
        SELECT event_id, '{type_}', '{SOURCE}', service, time, time,
               json_object('specversion', '1.0', 'id', event_id, 'source', '{SOURCE}',
                           'type', '{type_}', 'subject', service,
                           'time', {rfc3339.format("time")},
                           'datacontenttype', 'application/json',
                           'data', json_object({data}))
        FROM "{table}" WHERE {where}
        """
    )


def service_chunks(spec: MonthSpec) -> list[tuple[int, int]]:
    """Runs [first, last) of service numbers with about `BATCH_PROBES` results each."""
    size = _batch_services(spec)
    return [(n, min(n + size, spec.services)) for n in range(0, spec.services, size)]


def generate(
    spec: MonthSpec, out: Path, progress: Progress | None = None, memory_limit: str = "4GB"
) -> Path:
    """Write the month's store at `out` (replacing it) and its config; return the config path.

    DuckDB keeps within `memory_limit`, spilling to `<out>.tmp/` (removed at the end). The
    store is written as `<out>.partial` and renamed when complete, so an interrupted run
    leaves no store that looks finished (make would not regenerate it).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    partial = out.with_name(out.name + ".partial")
    for stale in (partial, partial.with_name(partial.name + ".wal")):
        stale.unlink(missing_ok=True)
    config = out.with_suffix(".yaml")
    config.write_text(yaml.safe_dump(config_document(spec, out), sort_keys=False))
    month = Month(spec)
    incidents = month.incidents()
    chunks = service_chunks(spec)
    steps: list[tuple[str, Callable[[duckdb.DuckDBPyConnection], None]]] = [
        *(
            (f"probe results of services {a:,}-{b - 1:,}", _probes_step(spec, incidents, a, b))
            for a, b in chunks
        ),
        ("ledger: probes", _probe_ledger_step(spec)),
        ("probe islands", _islands_step(spec)),
        ("capacity samples", lambda con: _capacity(con, spec)),
        ("tickets", lambda con: _tickets(con, month)),
        ("statuses", lambda con: _load(con, "statuses", month.statuses())),
        ("outages", lambda con: _load(con, "outages", month.outages())),
        ("maintenance", lambda con: _load(con, "maintenance", month.maintenance())),
        ("changes", lambda con: _load(con, "changes", month.changes())),
        ("continuity tests", lambda con: _load(con, "continuity", month.continuity())),
        *(
            (f"ledger: {table}", _ledger_step(table))
            for table in TABLE_OF_TYPE.values()
            if table != "probes"
        ),
        ("checkpoint", _checkpoint),
    ]
    spill = out.with_name(out.name + ".tmp")
    with duckdb.connect(str(partial)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET memory_limit = ?", [memory_limit])
        con.execute("SET temp_directory = ?", [str(spill)])
        migrate(con)
        task = progress.add_task("generating", total=len(steps)) if progress else None
        for name, step in steps:
            if progress is not None and task is not None:
                progress.update(task, description=name)
            step(con)
            if progress is not None and task is not None:
                progress.advance(task)
    shutil.rmtree(spill, ignore_errors=True)
    partial.rename(out)
    return config


def _checkpoint(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CHECKPOINT")


def _ledger_step(table: str) -> Callable[[duckdb.DuckDBPyConnection], None]:
    return lambda con: _ledger(con, table)


def _batch_services(spec: MonthSpec) -> int:
    """Services with about `BATCH_PROBES` results."""
    return max(1, BATCH_PROBES * spec.services // max(1, spec.probes))


def _probe_ledger_step(spec: MonthSpec) -> Callable[[duckdb.DuckDBPyConnection], None]:
    def step(con: duckdb.DuckDBPyConnection) -> None:
        for first, last in service_batches(con, _batch_services(spec)):
            _ledger(con, "probes", f"service BETWEEN '{first}' AND '{last}'")

    return step


def _islands_step(spec: MonthSpec) -> Callable[[duckdb.DuckDBPyConnection], None]:
    return lambda con: rebuild_probe_islands(con, _batch_services(spec))


def _tickets(con: duckdb.DuckDBPyConnection, month: Month) -> None:
    for rows in month.tickets():
        _load(con, "tickets", rows)
    con.execute(REBUILD_TICKET_SIGNATURES)


def _probes_step(
    spec: MonthSpec, incidents: pa.Table, first: int, last: int
) -> Callable[[duckdb.DuckDBPyConnection], None]:
    return lambda con: _probes(con, spec, incidents, first, last)


def _probes(
    con: duckdb.DuckDBPyConnection, spec: MonthSpec, incidents: pa.Table, first: int, last: int
) -> None:
    """The probe results of services [first, last)."""
    pairs = spec.services * len(CHECKS)
    con.register("_incidents", incidents)
    con.execute(
        f"INSERT INTO probes BY NAME {PROBES_SQL}",
        {
            "first": first,
            "last": last,
            "checks": len(CHECKS),
            "per_check": spec.probes // pairs,
            "extra": spec.probes % pairs,
            "start": spec.start_us,
            "interval": probe_interval(spec) * _SECOND,
            "seed": spec.seed,
            # One result in 400 fails alone: never three in a row, so never an outage.
            "sporadic": 25,
            "check_names": list(CHECKS),
        },
    )
    con.unregister("_incidents")


def _capacity(con: duckdb.DuckDBPyConnection, spec: MonthSpec) -> None:
    interval = 30 * 60 * _SECOND
    con.execute(
        f"INSERT INTO capacity BY NAME {CAPACITY_SQL}",
        {
            "services": min(spec.capacity_services, spec.services),
            "hosts": spec.capacity_hosts,
            "samples": (spec.end_us - spec.start_us) // interval,
            "start": spec.start_us,
            "interval": interval,
            "seed": spec.seed,
        },
    )


def main(argv: list[str] | None = None) -> None:
    """The command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("var/bench/month.duckdb"))
    parser.add_argument("--month", type=date.fromisoformat, default=date(2026, 3, 1))
    parser.add_argument("--services", type=int, default=1_000)
    parser.add_argument("--probes", type=int, default=10_000_000)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--capacity-services", type=int, default=100)
    parser.add_argument("--capacity-hosts", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--memory-limit", default="4GB", help="DuckDB memory_limit while generating (4GB)."
    )
    args = parser.parse_args(argv)
    spec = MonthSpec(
        args.month,
        args.services,
        args.probes,
        args.tickets,
        args.seed,
        args.capacity_services,
        args.capacity_hosts,
    )
    console = Console()
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        config = generate(spec, args.out, progress, args.memory_limit)
    with duckdb.connect(str(args.out), read_only=True) as con:
        counts = con.execute(
            "SELECT type, count(*) FROM events GROUP BY type ORDER BY type"
        ).fetchall()
    for type_, count in counts:
        console.print(f"{type_:24} {count:>12,}")
    console.print(f"store {args.out}, config {config}")


if __name__ == "__main__":
    main()
