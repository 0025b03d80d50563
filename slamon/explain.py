"""`slamon compute --explain SERVICE[:FIGURE]`: the stored events behind a service's figures.

Availability: each outage of the outage list with the events that produced it (the failed
probe results of the check whose run opened it and the result that closed it, the state
changes of the monitor, the versions of the reported outage), and the maintenance windows
that took time out of the agreed service time. Tickets: the events of each ticket whose
clocks the window counts. Everything is read with parameterised SQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from pipeline.store import EventStore
from sla.availability import OutageReport
from sla.calendar import Calendars
from sla.config import ServiceConfig, SlamonConfig
from sla.errors import ConfigError
from sla.intervals import Interval, intersect, total
from sla.service_levels import ServiceFigures, plain, rfc3339
from slamon.compute import compute
from slamon.report.provenance import rfc3339_us

FIGURES = ("availability", "tickets")

# The failed results of each check of the service inside [start, until) µs, for the checks
# whose failing run began in the outage's first second: the run that opened it.
_FAILED_PROBES = """
SELECT "check", count(*) AS n,
       min({'us': epoch_us(time), 'id': event_id}) AS first,
       max({'us': epoch_us(time), 'id': event_id}) AS last
FROM probes
WHERE service = $service AND NOT ok
  AND epoch_us(time) >= $start AND epoch_us(time) < $until
GROUP BY "check"
HAVING min(epoch_us(time)) < $start + 1000000
ORDER BY "check"
"""

# The first successful result of a check in the second an outage ended: what closed it.
_RECOVERY = """
SELECT event_id, epoch_us(time) AS us FROM probes
WHERE service = $service AND "check" = $check AND ok
  AND epoch_us(time) >= $end AND epoch_us(time) < $end + 1000000
ORDER BY time, event_id LIMIT 1
"""

_SOURCES = "SELECT id, source FROM events WHERE id IN (SELECT unnest($ids))"

_STATUS_EVENTS = """
SELECT event_id, source, epoch_us(time) AS us, state
FROM statuses
WHERE service = $service AND epoch_us(time) >= $start AND epoch_us(time) < $until
ORDER BY time, event_id
"""

_OUTAGE_EVENTS = """
SELECT o.event_id, e.source, epoch_us(o.time) AS us, epoch_us(o.start) AS start_us,
       epoch_us(o."end") AS end_us, o.planned, o.impact, o.ref
FROM outages o JOIN events e ON e.id = o.event_id
WHERE o.service = $service AND o.outage_id = $outage_id AND o.time < to_timestamp($at + 1)
ORDER BY o.time, o.event_id
"""

# The newest version of each window known at $at that overlaps the window, as the engine.
_MAINTENANCE = """
WITH latest AS (
    SELECT m.*, e.source FROM maintenance m JOIN events e ON e.id = m.event_id
    WHERE m.service = $service AND m.time < to_timestamp($at + 1)
    QUALIFY row_number() OVER (PARTITION BY m.window_id ORDER BY m.time DESC, m.event_id DESC) = 1
)
SELECT window_id, epoch_us(start) // 1000000 AS start, epoch_us("end") // 1000000 AS "end",
       reason, change_ref, event_id, source, epoch_us(time) AS us
FROM latest
WHERE epoch_us(start) // 1000000 <= $at AND epoch_us("end") // 1000000 > $since
ORDER BY start, window_id
"""

_TICKET_EVENTS = """
SELECT t.ticket_id, t.event_id, e.source, epoch_us(t.time) AS us, t.status, t.priority,
       t.kind, t.responded
FROM tickets t JOIN events e ON e.id = t.event_id
WHERE t.service = $service AND t.ticket_id IN (SELECT unnest($tickets))
  AND t.time < to_timestamp($at + 1)
ORDER BY t.ticket_id, t.time, t.event_id
"""


@dataclass(frozen=True)
class ExplainTarget:
    """The service and the figures to explain."""

    service: ServiceConfig
    figures: tuple[str, ...]


def parse_target(text: str, config: SlamonConfig) -> ExplainTarget:
    """``SERVICE`` (every figure) or ``SERVICE:FIGURE`` with FIGURE in `FIGURES`."""
    service_id, _, figure = text.partition(":")
    try:
        service = config.service(service_id)
    except KeyError:
        known = ", ".join(s.id for s in config.services) or "none"
        raise ConfigError(
            f"--explain {text!r}: no service {service_id!r} (known: {known})"
        ) from None
    if not figure:
        return ExplainTarget(service, FIGURES)
    if figure not in FIGURES:
        raise ConfigError(
            f"--explain {text!r}: no figure {figure!r} to explain (use {', '.join(FIGURES)})"
        )
    return ExplainTarget(service, (figure,))


def _event(event_id: str, source: str | None, us: int) -> dict[str, Any]:
    return {"id": event_id, "source": source, "time": rfc3339_us(us)}


class _Explainer:
    """The evidence queries for one service over one window, as of `at`."""

    def __init__(self, store: EventStore, service: ServiceConfig, window: Interval, at: int):
        self._store = store
        self._service = service.id
        self._window = window
        self._at = at

    def _query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._store.query(
            sql, {"service": self._service, **params}
        ).to_dicts()
        return rows

    def _until_us(self, outage: OutageReport) -> int:
        """Just after the outage's last second (`at` while it is ongoing), in µs."""
        return ((self._at if outage.end is None else outage.end) + 1) * 1_000_000

    def outage(self, outage: OutageReport) -> list[dict[str, Any]]:
        """The events that produced one outage of the list."""
        if outage.source == "probes":
            return self._probes(outage)
        if outage.source == "status":
            return self._status(outage)
        events = self._query(_OUTAGE_EVENTS, outage_id=outage.outage_id, at=self._at)
        return [
            {
                "kind": "outage",
                "outage_id": outage.outage_id,
                "events": [
                    {
                        **_event(e["event_id"], e["source"], e["us"]),
                        "start": rfc3339_us(e["start_us"]),
                        "end": None if e["end_us"] is None else rfc3339_us(e["end_us"]),
                        "planned": e["planned"],
                        "impact": e["impact"],
                        "ref": e["ref"],
                    }
                    for e in events
                ],
            }
        ]

    def _probes(self, outage: OutageReport) -> list[dict[str, Any]]:
        start = outage.start * 1_000_000
        runs = self._query(_FAILED_PROBES, start=start, until=self._until_us(outage))
        ids = [r[k]["id"] for r in runs for k in ("first", "last")]
        recoveries = {
            r["check"]: self._query(_RECOVERY, check=r["check"], end=outage.end * 1_000_000)
            for r in runs
            if outage.end is not None
        }
        ids += [found[0]["event_id"] for found in recoveries.values() if found]
        sources = dict(self._store.query(_SOURCES, {"ids": ids}).iter_rows()) if ids else {}
        evidence = []
        for run in runs:
            first, last = run["first"], run["last"]
            found = recoveries.get(run["check"]) or []
            closing = found[0] if found else None
            evidence.append(
                {
                    "kind": "probes",
                    "check": run["check"],
                    "failed_results": run["n"],
                    "first_failed": _event(first["id"], sources.get(first["id"]), first["us"]),
                    "last_failed": _event(last["id"], sources.get(last["id"]), last["us"]),
                    "recovered_by": None
                    if closing is None
                    else _event(
                        closing["event_id"], sources.get(closing["event_id"]), closing["us"]
                    ),
                }
            )
        return evidence

    def _status(self, outage: OutageReport) -> list[dict[str, Any]]:
        events = self._query(
            _STATUS_EVENTS, start=outage.start * 1_000_000, until=self._until_us(outage)
        )
        # The monitors whose change in the first second opened the outage.
        opened = {
            e["source"]
            for e in events
            if e["us"] // 1_000_000 == outage.start and e["state"] != "up"
        }
        return [
            {
                "kind": "status",
                "monitor": monitor,
                "events": [
                    {**_event(e["event_id"], e["source"], e["us"]), "state": e["state"]}
                    for e in events
                    if e["source"] == monitor
                ],
            }
            for monitor in sorted(opened)
        ]

    def maintenance(self, working: list[Interval]) -> list[dict[str, Any]]:
        """The maintenance windows that took time out of the window (up to `at`)."""
        so_far = Interval(self._window.start, max(self._window.start, self._at))
        found = []
        for row in self._query(_MAINTENANCE, at=self._at, since=self._window.start):
            span = intersect([Interval(row["start"], row["end"])], [so_far])
            found.append(
                {
                    "window_id": row["window_id"],
                    "start": rfc3339(row["start"]),
                    "end": rfc3339(row["end"]),
                    "reason": row["reason"],
                    "change_ref": row["change_ref"],
                    "excluded_seconds": total(span),
                    "excluded_service_seconds": total(intersect(span, working)),
                    "event": _event(row["event_id"], row["source"], row["us"]),
                }
            )
        return found

    def tickets(self, figures: ServiceFigures) -> list[dict[str, Any]]:
        """Each ticket with clocks in the window: its clocks and the events behind them."""
        clocks: dict[str, list[dict[str, Any]]] = {}
        for clock in figures.tickets.clocks:
            clocks.setdefault(clock.ticket_id, []).append(plain(clock))
        events: dict[str, list[dict[str, Any]]] = {}
        if clocks:
            for e in self._query(_TICKET_EVENTS, tickets=sorted(clocks), at=self._at):
                events.setdefault(e["ticket_id"], []).append(
                    {
                        **_event(e["event_id"], e["source"], e["us"]),
                        "status": e["status"],
                        "priority": e["priority"],
                        "kind": e["kind"],
                        "responded": e["responded"],
                    }
                )
        return [
            {"ticket_id": ticket, "clocks": clocks[ticket], "events": events.get(ticket, [])}
            for ticket in clocks
        ]


def explain(
    config: SlamonConfig, store: EventStore, target: ExplainTarget, window: Interval, now: int
) -> dict[str, Any]:
    """The figures of `target` over `window` as of `now`, each with the events behind it."""
    service = target.service
    figures = compute(config.model_copy(update={"services": [service]}), store, window, now)
    f = figures[service.id]
    explainer = _Explainer(store, service, window, f.at)
    document: dict[str, Any] = {
        "service": service.id,
        "window": {"from": rfc3339(window.start), "to": rfc3339(window.end)},
        "at": rfc3339(f.at),
    }
    if "availability" in target.figures:
        a = f.availability
        calendar = Calendars(config.calendars)[service.service_hours]
        working = calendar.working_intervals(window.start, max(window.start, f.at))
        document["availability"] = {
            "observed": a is not None,
            "ratio": a and a.ratio,
            "agreed_seconds": a and a.agreed_seconds,
            "downtime_seconds": a and a.downtime_seconds,
            "outages": [
                {**plain(o), "evidence": explainer.outage(o)}
                for o in (a.outage_list if a is not None else ())
            ],
            "maintenance": explainer.maintenance(working),
        }
    if "tickets" in target.figures:
        document["tickets"] = explainer.tickets(f)
    return document


def render_explain_json(document: dict[str, Any]) -> str:
    """The explanation as JSON."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _who(event: dict[str, Any] | None) -> tuple[str, str, str]:
    if event is None:
        return "", "", ""
    return event["id"], event["source"] or "", event["time"]


def _outage_label(o: dict[str, Any]) -> str:
    name = o["outage_id"] or o["ref"] or o["source"]
    end = o["end"] or "ongoing"
    planned = ", planned" if o["planned"] else ""
    return f"{name}: {o['start']} to {end} ({o['duration_seconds']} s, {o['impact']}{planned})"


def _outage_rows(o: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for e in o["evidence"]:
        if e["kind"] == "probes":
            what = f"check {e['check']}: {e['failed_results']} failed results"
            rows.append((f"first failed, {what}", *_who(e["first_failed"])))
            rows.append(("last failed", *_who(e["last_failed"])))
            if e["recovered_by"] is not None:
                rows.append(("recovered by", *_who(e["recovered_by"])))
        elif e["kind"] == "status":
            rows += [(f"status {s['state']}", *_who(s)) for s in e["events"]]
        else:
            rows += [(f"outage report, end {r['end'] or '-'}", *_who(r)) for r in e["events"]]
    return rows or [("no stored event found", "", "", "")]


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


def render_explain_tables(document: dict[str, Any]) -> list[Table]:
    """The explanation as terminal tables: outages, maintenance, tickets."""
    where = f"{document['service']}, {document['window']['from']} to {document['window']['to']}"
    tables = []
    availability = document.get("availability")
    if availability is not None:
        outages = _table(
            f"Outages of {where}", ("outage", "evidence", "event id", "source", "time")
        )
        for o in availability["outages"]:
            for n, row in enumerate(_outage_rows(o)):
                outages.add_row(_outage_label(o) if n == 0 else "", *row)
        maintenance = _table(
            f"Maintenance excluded from {where}",
            ("window", "start", "end", "excluded service s", "event id", "source", "recorded"),
        )
        for m in availability["maintenance"]:
            maintenance.add_row(
                m["window_id"],
                m["start"],
                m["end"],
                str(m["excluded_service_seconds"]),
                *_who(m["event"]),
            )
        tables += [outages, maintenance]
    if "tickets" in document:
        tickets = _table(
            f"Ticket clocks of {where}",
            ("ticket", "clocks", "event id", "source", "time", "status", "priority"),
        )
        for t in document["tickets"]:
            clocks = ", ".join(f"{c['clock']} {c['status']}" for c in t["clocks"])
            for n, e in enumerate(t["events"]):
                first = n == 0
                tickets.add_row(
                    t["ticket_id"] if first else "",
                    clocks if first else "",
                    *_who(e),
                    e["status"],
                    e["priority"],
                )
        tables.append(tickets)
    return tables
