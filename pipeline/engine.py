"""The fast reduction: `ServiceInputs` for all services at once, computed in DuckDB.

It must equal `sla.inputs.inputs_from_events` (the plain-Python reference) on any input.
Probe results, by far the largest table, never leave DuckDB: only their islands (runs of
equal outcomes per check) do.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import polars as pl

from pipeline.store import EventStore
from sla.availability import ProbeIsland
from sla.calendar import Calendars
from sla.changes import ChangeRecord
from sla.config import SlamonConfig
from sla.continuity import ContinuityTest
from sla.inputs import (
    PROBE_LOOKBACK,
    AvailabilityEvidence,
    OtherEvidence,
    OutageRecord,
    ServiceInputs,
    reduce_evidence,
    ticket_policies,
)
from sla.intervals import Interval
from sla.tickets import TicketClock, ticket_clocks_frame

# Whole seconds, rounded down like sla.inputs.epoch_seconds.
_T = "epoch_us({}) // 1000000"

_PROBE_WINDOW = "time >= to_timestamp($since) AND time < to_timestamp($now + 1)"

# Each (service, check) with results in the window, numbered: the results carry that number
# instead of two strings, the cheapest key to group 10 M rows by.
PROBE_CHECKS = f"""
SELECT service, "check", row_number() OVER (ORDER BY service, "check") - 1 AS pair
FROM (SELECT DISTINCT service, "check" FROM probes WHERE {_PROBE_WINDOW})
"""

# Results by check and time; event ids, costly to carry over, only to order results of one
# check at the same microsecond, which the results without them reveal.
PROBE_RESULTS = f"""
WITH checks AS (
    SELECT unnest($services) AS service, unnest($checks) AS "check", unnest($pairs) AS pair
)
SELECT pair, epoch_us(time) AS us, ok{{ids}}
FROM probes JOIN checks USING (service, "check")
WHERE {_PROBE_WINDOW}
"""


def ordered_probe_results(results: pl.DataFrame) -> pl.DataFrame | None:
    """``pair, us, ok`` sorted by check, then time and event id (when there is an ``event_id``
    column); None when two results of one check share an instant and there is none.

    Sorting each check's results apart (they are few) is several times faster than one
    sort of all of them, or than window functions in SQL.
    """
    col = pl.col
    order = [name for name in ("us", "event_id") if name in results.columns]
    ordered = (
        results.lazy()
        .group_by("pair")
        .agg(col("us", "ok").sort_by(order))
        .explode("us", "ok")
        .collect()
    )
    if "event_id" not in results.columns:
        same = (col("pair") == col("pair").shift(1)) & (col("us") == col("us").shift(1))
        if ordered.select(same.any()).item():
            return None
    return ordered


def probe_islands_frame(ordered: pl.DataFrame) -> pl.DataFrame:
    """Runs of equal outcomes (``pair, ok, start, end, n``) in results ordered per check."""
    col = pl.col
    return (
        ordered.lazy()
        .with_columns(island=pl.struct("pair", "ok").rle_id(), t=col("us") // 1_000_000)
        .group_by("island")
        .agg(col("pair", "ok").first(), start=col("t").first(), end=col("t").last(), n=pl.len())
        .sort("island")
        .select("pair", "ok", "start", "end", col("n").cast(pl.Int64))
        .collect()
    )


# Only real changes matter; of those before the window, the last one gives the state at
# its start. Equal states in a row are one change, as in outages_from_status_changes.
STATUS_CHANGES = f"""
WITH ordered AS (
    SELECT service, {_T.format("time")} AS t, state, time, event_id,
           lag(state) OVER (PARTITION BY service ORDER BY time, event_id) AS previous
    FROM statuses
    WHERE time < to_timestamp($now + 1)
), changes AS (
    SELECT * FROM ordered WHERE previous IS DISTINCT FROM state
)
SELECT service, t, state FROM changes
QUALIFY t >= $since
     OR (time, event_id) = max((time, event_id)) FILTER (WHERE t < $since)
                           OVER (PARTITION BY service)
ORDER BY service, time, event_id
"""

# The newest version known at $now of each outage or maintenance window, then the ones
# that overlap the window. Filtering by period before picking the newest would resurrect
# versions a later event replaced.
LATEST_OUTAGES = f"""
WITH latest AS (
    SELECT * FROM outages WHERE time < to_timestamp($now + 1)
    QUALIFY row_number() OVER (
        PARTITION BY service, outage_id ORDER BY time DESC, event_id DESC) = 1
)
SELECT service, outage_id, {_T.format("start")}, {_T.format('"end"')}, planned, impact, ref,
       {_T.format("start")} <= $now AND ("end" IS NULL OR {_T.format('"end"')} > $since)
FROM latest
"""

LATEST_MAINTENANCE = f"""
WITH latest AS (
    SELECT * FROM maintenance WHERE time < to_timestamp($now + 1)
    QUALIFY row_number() OVER (
        PARTITION BY service, window_id ORDER BY time DESC, event_id DESC) = 1
)
SELECT service, {_T.format("start")}, {_T.format('"end"')},
       {_T.format("start")} <= $now AND {_T.format('"end"')} > $since
FROM latest
"""


CAPACITY_SAMPLES = f"""
SELECT service, resource, host, {_T.format("time")}, used, capacity FROM capacity
WHERE time >= to_timestamp($since) AND time < to_timestamp($now + 1)
ORDER BY service, resource, host, time, event_id
"""

LATEST_CONTINUITY_TESTS = f"""
SELECT service, test_id, scenario, {_T.format("invoked_at")}, {_T.format("restored_at")},
       {_T.format("data_restored_to")}, outcome
FROM continuity WHERE time < to_timestamp($now + 1)
QUALIFY row_number() OVER (PARTITION BY service, test_id ORDER BY time DESC, event_id DESC) = 1
"""

CHANGE_EVENTS = f"""
SELECT service, change_id, kind, status, {_T.format("start")}, {_T.format('"end"')},
       {_T.format("time")}, caused_incident
FROM changes WHERE time < to_timestamp($now + 1)
ORDER BY service, time, event_id
"""


TICKET_UPDATES = f"""
SELECT service, ticket_id, {_T.format("time")} AS time, status, priority, responded, kind
FROM tickets WHERE time < to_timestamp($now + 1) AND list_contains($services, service)
ORDER BY time, event_id
"""


def inputs_from_store(
    store: EventStore, config: SlamonConfig, since: int, now: int
) -> dict[str, ServiceInputs]:
    """Per service inputs for windows within [since, now], from the events known at `now`."""
    evidence: dict[str, AvailabilityEvidence] = defaultdict(AvailabilityEvidence)
    bounds = {"since": since, "now": now}

    lookback = {**bounds, "since": since - PROBE_LOOKBACK}
    checks = store.query(PROBE_CHECKS, lookback)
    services, names, pairs = (checks[column].to_list() for column in checks.columns)
    params = {**lookback, "services": services, "checks": names, "pairs": pairs}
    ordered = ordered_probe_results(store.query(PROBE_RESULTS.format(ids=""), params))
    if ordered is None:
        ids = store.query(PROBE_RESULTS.format(ids=", event_id"), params)
        ordered = ordered_probe_results(ids)
        assert ordered is not None
    check_of = dict(zip(pairs, zip(services, names, strict=True), strict=True))
    for pair, ok, start, end, count in probe_islands_frame(ordered).iter_rows():
        service, check = check_of[pair]
        found = evidence[service]
        found.observed = True
        found.islands.setdefault(check, []).append(ProbeIsland(ok, start, end, count))

    for service, t, state in store.query(STATUS_CHANGES, bounds).iter_rows():
        evidence[service].observed = True
        evidence[service].status_changes.append((t, state))

    for service, outage_id, start, end, planned, impact, ref, overlaps in store.query(
        LATEST_OUTAGES, bounds
    ).iter_rows():
        evidence[service].observed = True
        if overlaps:
            record = OutageRecord(outage_id, start, end, bool(planned), impact, ref)
            evidence[service].outages.append(record)

    for service, start, end, overlaps in store.query(LATEST_MAINTENANCE, bounds).iter_rows():
        evidence[service].observed = True
        if overlaps:
            evidence[service].maintenance.append(Interval(start, end))

    other: dict[str, OtherEvidence] = defaultdict(OtherEvidence)
    series = store.query(CAPACITY_SAMPLES, bounds).group_by(
        "service", "resource", "host", maintain_order=True
    )
    for service, resource, host, times, used, capacity in series.agg(pl.all()).iter_rows():
        other[service].capacity[(resource, host)] = list(zip(times, used, capacity, strict=True))
    for service, *test in store.query(LATEST_CONTINUITY_TESTS, {"now": now}).iter_rows():
        other[service].continuity.append(ContinuityTest(*test))
    for service, *change in store.query(CHANGE_EVENTS, {"now": now}).iter_rows():
        other[service].changes.append(ChangeRecord(*change))

    policies = ticket_policies(config)
    if policies:
        updates = store.query(TICKET_UPDATES, {"now": now, "services": sorted(policies)})
        clocks = ticket_clocks_frame(updates, policies, Calendars(config.calendars), now)
        # CLOCK_COLUMNS are `service` followed by the fields of TicketClock, in order, and
        # the clocks come sorted by service: each service's are one slice of the list.
        made = list(itertools.starmap(TicketClock, _rows(clocks.drop("service"))))
        runs = clocks.group_by("service", maintain_order=True).len()
        first = 0
        for service, count in runs.iter_rows():
            other[service].ticket_clocks.extend(made[first : first + count])
            first += count

    return reduce_evidence(evidence, other, config, since, now)


def _rows(frame: pl.DataFrame) -> Iterator[tuple[Any, ...]]:
    """The rows of a frame as tuples; faster than `iter_rows` on wide frames."""
    return zip(*(column.to_list() for column in frame.iter_columns()), strict=True)
