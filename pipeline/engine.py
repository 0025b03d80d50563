"""The fast reduction: `ServiceInputs` for all services at once, computed in DuckDB.

It must equal `sla.inputs.inputs_from_events` (the plain-Python reference) on any input.
Probe results, by far the largest table, are not read: the store keeps their islands
(runs of equal outcomes per check, `pipeline.probe_islands`), and only the few islands
over an edge of the window are counted again from the results.

`inputs_in_batches` reduces the configured services a batch at a time: each batch reads
only its services' rows, so memory follows the batch, not the month (100 M probe results
and 10 M ticket events of 10,000 services fit in well under 2 GiB).
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from pipeline.heap import collection_paused
from pipeline.settled_tickets import (
    SettledTickets,
    Windows,
    policy_fingerprints,
    window_params,
)
from pipeline.store import EventStore
from sla.availability import ProbeIsland
from sla.calendar import Calendars
from sla.capacity import CapacityKey, CapacitySeries
from sla.changes import LIFECYCLE, UNSUCCESSFUL, ChangeRecord, ChangeTally
from sla.config import ServiceConfig, SlamonConfig
from sla.continuity import ContinuityTest
from sla.errors import StoreError
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
from sla.tickets import ClockGroup, ClockTally, TicketClock

# Services reduced at a time by `inputs_in_batches` callers: a month of 10,000 services and
# 100 M probe results then peaks at 1.4 GiB instead of 7.7 GiB (docs/benchmarks.md).
BATCH_SERVICES = 250
# The same when settled tickets' clocks and changes are counted, not listed: a service's
# inputs then hold no clock per ticket, and each batch repeats the scans of the ledger and
# ticket tables, so fewer, larger batches are faster (docs/benchmarks.md).
COUNTED_BATCH_SERVICES = 1000

# Whole seconds, rounded down like sla.inputs.epoch_seconds.
_T = "epoch_us({}) // 1000000"

# `/*in batch: column*/` in a query: `true`, or, reducing a batch of services, a filter of
# `column` on the list `$services` (a semi join: a hash table of the batch, not a list scan).
_IN_BATCH = re.compile(r"/\*in batch: ([\w.]+)\*/")


def _in_batch(sql: str, services: Sequence[str] | None) -> str:
    """`sql` for all services (None) or for those in `$services`."""
    return _IN_BATCH.sub(
        lambda m: "true" if services is None else f"{m[1]} IN (SELECT unnest($services))", sql
    )


# The stored islands that overlap the window [$lo, $hi) in microseconds, by check and order.
PROBE_ISLANDS = """
SELECT service, "check", ok, start_us, start_id, end_us, end_id, n FROM probe_islands
WHERE end_us >= $lo AND start_us < $hi AND /*in batch: service*/
ORDER BY service, "check", start_us, start_id
"""

# An island running over an edge of the window keeps only its results inside: their first
# and last instant and their number, counted from the results.
CLIPPED_ISLANDS = """
WITH edges AS (
    SELECT unnest($rows) AS row, unnest($services) AS service, unnest($checks) AS "check",
           unnest($starts) AS s, unnest($ends) AS e
)
SELECT row, min(epoch_us(time)) AS start_us, max(epoch_us(time)) AS end_us, count(*) AS n
FROM probes JOIN edges USING (service, "check")
WHERE epoch_us(time) >= $lo AND epoch_us(time) < $hi
  AND {'us': epoch_us(time), 'id': event_id} BETWEEN s AND e
GROUP BY row
"""


def probe_islands_in_window(
    store: EventStore, lo: int, hi: int, services: Sequence[str] | None = None
) -> pl.DataFrame:
    """``service, check, ok, start, end, n`` of the islands of the results in [lo, hi) µs,
    of every service or of `services`.

    Islands are per check and in order; start and end are whole seconds.
    """
    col = pl.col
    islands = (
        store.query(_in_batch(PROBE_ISLANDS, services), _with_batch({"lo": lo, "hi": hi}, services))
        .with_row_index("row")
        .with_columns(edge=(col("start_us") < lo) | (col("end_us") >= hi))
    )
    edges = islands.filter("edge")
    if edges.height:
        bounds = {
            "rows": edges["row"].to_list(),
            "services": edges["service"].to_list(),
            "checks": edges["check"].to_list(),
            "starts": [
                {"us": u, "id": i}
                for u, i in zip(edges["start_us"], edges["start_id"], strict=True)
            ],
            "ends": [
                {"us": u, "id": i} for u, i in zip(edges["end_us"], edges["end_id"], strict=True)
            ],
            "lo": lo,
            "hi": hi,
        }
        clipped = store.query(CLIPPED_ISLANDS, bounds).with_columns(col("row").cast(pl.UInt32))
        # Islands over an edge with no result inside the window drop out.
        islands = islands.join(clipped, on="row", how="left", suffix="_in").filter(
            col("edge").not_() | col("n_in").is_not_null()
        )
        islands = islands.with_columns(
            start_us=pl.coalesce("start_us_in", "start_us"),
            end_us=pl.coalesce("end_us_in", "end_us"),
            n=pl.coalesce("n_in", "n"),
        ).sort("row")
    return islands.select(
        "service",
        "check",
        "ok",
        start=col("start_us") // 1_000_000,
        end=col("end_us") // 1_000_000,
        n=col("n").cast(pl.Int64),
    )


# Each monitor (service and CloudEvent source) has its own state. Only real changes matter;
# of those before the window, the last one of each monitor gives its state at the start.
# Equal states in a row are one change, as in outages_from_status_changes.
STATUS_CHANGES = f"""
WITH ordered AS (
    SELECT service, source, {_T.format("time")} AS t, state, time, event_id,
           lag(state) OVER (
               PARTITION BY service, source ORDER BY time, event_id) AS previous
    FROM statuses
    WHERE time < to_timestamp($now + 1) AND /*in batch: service*/
), changes AS (
    SELECT * FROM ordered WHERE previous IS DISTINCT FROM state
)
SELECT service, source, t, state FROM changes
QUALIFY t >= $since
     OR (time, event_id) = max((time, event_id)) FILTER (WHERE t < $since)
                           OVER (PARTITION BY service, source)
ORDER BY service, source, time, event_id
"""

# The newest version known at $now of each outage or maintenance window, then the ones
# that overlap the window. Filtering by period before picking the newest would resurrect
# versions a later event replaced.
LATEST_OUTAGES = f"""
WITH latest AS (
    SELECT * FROM outages WHERE time < to_timestamp($now + 1) AND /*in batch: service*/
    QUALIFY row_number() OVER (
        PARTITION BY service, outage_id ORDER BY time DESC, event_id DESC) = 1
)
SELECT service, outage_id, {_T.format("start")}, {_T.format('"end"')}, planned, impact, ref,
       {_T.format("start")} <= $now AND ("end" IS NULL OR {_T.format('"end"')} > $since)
FROM latest
"""

LATEST_MAINTENANCE = f"""
WITH latest AS (
    SELECT * FROM maintenance WHERE time < to_timestamp($now + 1) AND /*in batch: service*/
    QUALIFY row_number() OVER (
        PARTITION BY service, window_id ORDER BY time DESC, event_id DESC) = 1
)
SELECT service, {_T.format("start")}, {_T.format('"end"')},
       {_T.format("start")} <= $now AND {_T.format('"end"')} > $since
FROM latest
"""


# The capacity series with samples in [$since, $now], numbered in (service, resource, host)
# order, with their number of samples; then their samples, unsorted, a range of series at
# a time. DuckDB's sort of every sample of the windows would leave its high-water mark in
# the process for good (+67 MiB of RSS for the soak's 360,000 samples,
# docs/reliability.md); NumPy sorts the columns instead. A sample is four numbers: the
# event ids that order samples of one series at one microsecond are read only for such
# ties (`TIED_CAPACITY_SAMPLES`), which are rare.
NUMBER_CAPACITY_SERIES = """
CREATE OR REPLACE TEMP TABLE _slamon_series AS
SELECT service, resource, host, count(*) AS samples,
       row_number() OVER (ORDER BY service, resource, host) - 1 AS series
FROM capacity
WHERE time >= to_timestamp($since) AND time < to_timestamp($now + 1) AND /*in batch: service*/
GROUP BY service, resource, host
"""
CAPACITY_SERIES = "SELECT service, resource, host, samples FROM _slamon_series ORDER BY series"
_NUMBERED_SAMPLES = """
capacity c JOIN _slamon_series s
  ON c.service = s.service AND c.resource = s.resource AND c.host IS NOT DISTINCT FROM s.host
"""
_IN_WINDOW = "c.time >= to_timestamp($since) AND c.time < to_timestamp($now + 1)"
CAPACITY_SAMPLES = f"""
SELECT s.series, epoch_us(c.time) AS time_us, c.used, c.capacity
FROM {_NUMBERED_SAMPLES} WHERE {_IN_WINDOW} AND s.series BETWEEN $first AND $last
"""
# The samples at the ($tied_series, $tied_us) instants, in the order the reference lists them.
TIED_CAPACITY_SAMPLES = f"""
WITH tied AS (SELECT unnest($tied_series) AS series, unnest($tied_us) AS time_us)
SELECT c.used, c.capacity
FROM {_NUMBERED_SAMPLES} JOIN tied t ON t.series = s.series AND t.time_us = epoch_us(c.time)
WHERE {_IN_WINDOW}
ORDER BY s.series, epoch_us(c.time), c.event_id
"""
FORGET_CAPACITY_SERIES = "DROP TABLE _slamon_series"

# Samples read at a time. Reading costs about 100 bytes a sample on top of the 24 a
# series keeps (DuckDB's result, its Arrow copy, the sort): a bounded chunk keeps that
# part of a computation's memory flat however many samples the windows hold.
CAPACITY_CHUNK_SAMPLES = 100_000


def capacity_series(
    store: EventStore,
    since: int,
    now: int,
    services: Sequence[str] | None = None,
    chunk_samples: int = CAPACITY_CHUNK_SAMPLES,
) -> Iterator[tuple[str, CapacityKey, CapacitySeries]]:
    """Each capacity series with samples in [since, now], in (service, resource, host)
    order, its samples in arrival order (by instant to the microsecond, then event id);
    read `chunk_samples` at a time, give or take a series."""
    window = {"since": since, "now": now}
    found = []
    # Held throughout: another thread computing figures on this store (a monthly pack)
    # would replace or drop the numbered series between the chunks.
    with store.held():
        _, keys = store.query_together(
            [
                (_in_batch(NUMBER_CAPACITY_SERIES, services), _with_batch(window, services)),
                (CAPACITY_SERIES, None),
            ]
        )
        try:
            counts = keys["samples"].to_numpy()
            for first, last in _chunks(counts, chunk_samples):
                expected = int(counts[first : last + 1].sum())
                columns = _chunk_samples(store, window, first, last, expected)
                ends = np.cumsum(counts[first : last + 1]).tolist()
                rows = keys.slice(first, last + 1 - first).iter_rows()
                for (service, resource, host, _), (start, end) in zip(
                    rows, itertools.pairwise([0, *ends]), strict=True
                ):
                    found.append((service, (resource, host), columns.take(slice(start, end))))
        finally:
            store.query_together([(FORGET_CAPACITY_SERIES, None)])
    yield from found


def _chunks(counts: NDArray[np.int64], budget: int) -> list[tuple[int, int]]:
    """Consecutive ranges [first, last] of series with at most `budget` samples in all; a
    series with more has a range of its own."""
    ranges = []
    first = total = 0
    for series, samples in enumerate(counts.tolist()):
        if total and total + samples > budget:
            ranges.append((first, series - 1))
            first, total = series, 0
        total += samples
    if len(counts):
        ranges.append((first, len(counts) - 1))
    return ranges


def _chunk_samples(
    store: EventStore, window: dict[str, int], first: int, last: int, expected: int
) -> CapacitySeries:
    """The samples of series `first` to `last`, by series, then in arrival order."""
    samples = store.query(CAPACITY_SAMPLES, window | {"first": first, "last": last})
    if samples.height != expected:
        raise StoreError(
            f"capacity samples changed while read: {samples.height} read, {expected} counted"
        )
    series = samples["series"].to_numpy()
    instants = samples["time_us"].to_numpy()
    # Stable: samples of one series at one microsecond keep an order, fixed just below.
    order = np.lexsort((instants, series))
    series, instants = series[order], instants[order]
    used = samples["used"].to_numpy()[order]
    capacity = samples["capacity"].to_numpy()[order]
    del samples, order
    tied = _tied_rows(series, instants)
    if len(tied):
        used[tied], capacity[tied] = _tied_values(store, window, series[tied], instants[tied])
    # Whole seconds, rounded down like sla.inputs.epoch_seconds.
    return CapacitySeries(instants // 1_000_000, used, capacity)


def _tied_rows(series: NDArray[np.int64], instants: NDArray[np.int64]) -> NDArray[np.intp]:
    """The rows (sorted by series and instant) that share both with a neighbour."""
    tie = (series[1:] == series[:-1]) & (instants[1:] == instants[:-1])
    in_tie = np.zeros(len(series), dtype=np.bool_)
    in_tie[1:] |= tie
    in_tie[:-1] |= tie
    return np.flatnonzero(in_tie)


def _tied_values(
    store: EventStore,
    window: dict[str, int],
    tied_series: NDArray[np.int64],
    tied_us: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """`used` and `capacity` of the tied rows (their series and instants, sorted), each tie
    in event id order as the reference lists it.

    Samples of a tie differ only in their values, so reading those again in that order
    puts each where it belongs, with no id held for the other rows.
    """
    first = np.r_[True, (tied_series[1:] != tied_series[:-1]) | (tied_us[1:] != tied_us[:-1])]
    keys = {"tied_series": tied_series[first].tolist(), "tied_us": tied_us[first].tolist()}
    ordered = store.query(TIED_CAPACITY_SAMPLES, window | keys)
    if ordered.height != len(tied_series):
        raise StoreError(
            f"capacity samples changed while read: {ordered.height} tied, "
            f"{len(tied_series)} expected"
        )
    return ordered["used"].to_numpy(), ordered["capacity"].to_numpy()


LATEST_CONTINUITY_TESTS = f"""
SELECT service, test_id, scenario, {_T.format("invoked_at")}, {_T.format("restored_at")},
       {_T.format("data_restored_to")}, outcome
FROM continuity WHERE time < to_timestamp($now + 1) AND /*in batch: service*/
QUALIFY row_number() OVER (PARTITION BY service, test_id ORDER BY time DESC, event_id DESC) = 1
"""

# The latest state of each change known at $now (`sla.changes.latest_changes`: latest second,
# then furthest in the lifecycle, then last listed), as `latest`, after its events, `known`.
_LIFECYCLE_RANK = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in LIFECYCLE.items())
_LATEST_CHANGES = f"""
known AS (
    SELECT *, {_T.format("time")} AS t, {_T.format('"end"')} AS end_s FROM changes
    WHERE time < to_timestamp($now + 1) AND /*in batch: service*/
), latest AS (
    SELECT * FROM known
    QUALIFY row_number() OVER (
        PARTITION BY service, change_id
        ORDER BY t DESC, CASE status {_LIFECYCLE_RANK} END DESC, time DESC, event_id DESC) = 1
)"""

# Every event of the changes whose latest state ends at or after $since.
CHANGE_EVENTS = f"""
WITH {_LATEST_CHANGES}
SELECT service, change_id, kind, status, {_T.format("start")}, end_s, t, caused_incident
FROM known SEMI JOIN (SELECT service, change_id FROM latest WHERE end_s >= $since) ending
  USING (service, change_id)
ORDER BY service, time, event_id
"""

# The changes that ended in each asked window (`window_params`), counted by latest status
# and kind (`sla.changes.ChangeTally`), with the ids of those a summary names: the
# unsuccessful ones and those that caused an incident (the latest reported, as
# `latest_changes` links it).
_UNSUCCESSFUL = ", ".join(f"'{status}'" for status in UNSUCCESSFUL)
CHANGES_ENDED = f"""
WITH {_LATEST_CHANGES}, windows AS (
    SELECT unnest($window_services) AS service, unnest($starts) AS start, unnest($ends) AS "end"
), incidents AS (
    SELECT service, change_id, max({{'t': t, 'incident': caused_incident}}).incident AS incident
    FROM known WHERE caused_incident IS NOT NULL
    GROUP BY service, change_id
), ended AS (
    SELECT l.service, w.start, w."end", l.change_id, l.status, l.kind, i.incident
    FROM latest l
    JOIN windows w ON w.service = l.service AND l.end_s >= w.start AND l.end_s < w."end"
    LEFT JOIN incidents i ON i.service = l.service AND i.change_id = l.change_id
)
SELECT service, start, "end", status, kind, count(*) AS changes,
       list(change_id) FILTER (status IN ({_UNSUCCESSFUL})) AS failed,
       list({{'change': change_id, 'incident': incident}}) FILTER (incident IS NOT NULL) AS caused
FROM ended
GROUP BY ALL
"""


def inputs_from_store(
    store: EventStore, config: SlamonConfig, since: int, now: int, *, settled: bool = True
) -> dict[str, ServiceInputs]:
    """Per service inputs for windows within [since, now], from the events known at `now`.

    With `settled` false, the clocks of settled tickets kept in the store are not read but
    recomputed (`pipeline.settled_tickets`).
    """
    # Ticket clocks, islands and samples hold no cycles: collections set off while hundreds
    # of thousands of them are built would scan them all and free nothing (up to a second a
    # month).
    with collection_paused():
        return _inputs_from_store(store, config, since, now, None, settled=settled)


def inputs_in_batches(
    store: EventStore,
    config: SlamonConfig,
    since: int,
    now: int,
    batch_services: int,
    *,
    settled: bool = True,
    count_in: Windows | None = None,
) -> Iterator[dict[str, ServiceInputs]]:
    """The inputs of `inputs_from_store` for the configured services, `batch_services` of
    them at a time in config order, each batch from its services' rows only.

    Memory follows the batch: the caller drops a batch's inputs before asking for the
    next. Services with evidence but no configuration are left out. With `count_in`, the
    windows of each service whose figures alone are wanted, the stopped clocks of settled
    tickets and the changes are counted per window instead of listed
    (`ServiceInputs.counted_clocks`, `counted_changes`): memory then follows the services,
    not the tickets and changes in the windows.
    """
    if batch_services < 1:
        raise ValueError(f"a batch needs at least one service, not {batch_services}")
    for first in range(0, len(config.services), batch_services):
        batch = config.model_copy(
            update={"services": config.services[first : first + batch_services]}
        )
        with collection_paused():
            services = [s.id for s in batch.services]
            yield _inputs_from_store(
                store, batch, since, now, services, settled=settled, count_in=count_in
            )


def services_with_inputs(
    store: EventStore,
    config: SlamonConfig,
    since: int,
    now: int,
    batch_services: int = BATCH_SERVICES,
    *,
    settled: bool = True,
    count_in: Windows | None = None,
) -> Iterator[tuple[ServiceConfig, ServiceInputs]]:
    """Each configured service with its inputs, in config order, reduced a batch at a time
    (`inputs_in_batches`)."""
    services = iter(config.services)
    batches = inputs_in_batches(
        store, config, since, now, batch_services, settled=settled, count_in=count_in
    )
    for inputs in batches:
        for service in itertools.islice(services, len(inputs)):
            yield service, inputs[service.id]


def _with_batch(params: dict[str, Any], services: Sequence[str] | None) -> dict[str, Any]:
    """`params`, plus `$services` when a batch is asked for."""
    return params if services is None else params | {"services": list(services)}


def _inputs_from_store(
    store: EventStore,
    config: SlamonConfig,
    since: int,
    now: int,
    services: Sequence[str] | None,
    *,
    settled: bool,
    count_in: Windows | None = None,
) -> dict[str, ServiceInputs]:
    evidence: dict[str, AvailabilityEvidence] = defaultdict(AvailabilityEvidence)

    def query(sql: str, params: dict[str, Any]) -> pl.DataFrame:
        return store.query(_in_batch(sql, services), _with_batch(params, services))

    bounds = {"since": since, "now": now}

    islands = probe_islands_in_window(
        store, (since - PROBE_LOOKBACK) * 1_000_000, (now + 1) * 1_000_000, services
    )
    for service, check, ok, start, end, count in islands.iter_rows():
        found = evidence[service]
        found.observed = True
        found.islands.setdefault(check, []).append(ProbeIsland(ok, start, end, count))
    del islands

    for service, source, t, state in query(STATUS_CHANGES, bounds).iter_rows():
        evidence[service].observed = True
        evidence[service].status_changes.setdefault(source, []).append((t, state))

    for service, outage_id, start, end, planned, impact, ref, overlaps in query(
        LATEST_OUTAGES, bounds
    ).iter_rows():
        evidence[service].observed = True
        if overlaps:
            record = OutageRecord(outage_id, start, end, bool(planned), impact, ref)
            evidence[service].outages.append(record)

    for service, start, end, overlaps in query(LATEST_MAINTENANCE, bounds).iter_rows():
        evidence[service].observed = True
        if overlaps:
            evidence[service].maintenance.append(Interval(start, end))

    other: dict[str, OtherEvidence] = defaultdict(OtherEvidence)
    for service, key, samples in capacity_series(store, since, now, services):
        other[service].capacity[key] = samples
    for service, *test in query(LATEST_CONTINUITY_TESTS, {"now": now}).iter_rows():
        other[service].continuity.append(ContinuityTest(*test))
    # The windows of this batch's services, when they are counted.
    counted = None if count_in is None else {s.id: count_in.get(s.id, ()) for s in config.services}
    if counted is None:
        for service, *change in _rows(query(CHANGE_EVENTS, bounds)):
            other[service].changes.append(ChangeRecord(*change))
    else:
        ended = query(CHANGES_ENDED, {"now": now} | window_params(counted))
        for service, changes in _change_tallies(ended, counted).items():
            other[service].counted_changes = changes

    policies = ticket_policies(config)
    if policies:
        fingerprints = policy_fingerprints(policies, config.calendars)
        calendars = Calendars(config.calendars)
        tickets = SettledTickets(policies, calendars, fingerprints, read_stored=settled)
        clocks, clock_counts = tickets.clocks(store, sorted(policies), since, now, counted)
        if clock_counts is not None and counted is not None:
            with_policy = {s: w for s, w in counted.items() if s in policies}
            for service, stopped in _clock_tallies(clock_counts, with_policy).items():
                other[service].counted_clocks = stopped
        # CLOCK_COLUMNS are `service` followed by the fields of TicketClock, in order, and
        # the clocks come sorted by service: each service's are one slice of the list.
        made = list(itertools.starmap(TicketClock, _rows(clocks.drop("service"))))
        runs = clocks.group_by("service", maintain_order=True).len()
        del clocks
        first = 0
        for service, count in runs.iter_rows():
            other[service].ticket_clocks.extend(made[first : first + count])
            first += count

    return reduce_evidence(evidence, other, config, since, now)


def _clock_tallies(
    counts: pl.DataFrame, windows_of: Windows
) -> dict[str, dict[Interval, ClockTally]]:
    """`STORED_CLOCK_COUNTS` rows as tallies per service and window, empty ones included."""
    # Keyed by plain (service, start, end): an `Interval` per row would be most of the cost.
    groups: dict[tuple[str, int, int], dict[ClockGroup, int]] = defaultdict(dict)
    for service, start, end, kind, priority, clock, status, n in counts.select(
        "service", "start", "end", "kind", "priority", "clock", "status", "clocks"
    ).iter_rows():
        groups[service, start, end][kind, priority, clock, status] = n
    resolved = {
        (service, start, end): (seconds, n)
        for service, start, end, seconds, n in counts.group_by("service", "start", "end")
        .agg(pl.col("resolution_seconds").sum(), pl.col("resolutions").sum())
        .iter_rows()
    }
    return {
        service: {
            w: ClockTally(
                groups[service, w.start, w.end], *resolved.get((service, w.start, w.end), (0, 0))
            )
            for w in windows
        }
        for service, windows in windows_of.items()
    }


def _change_tallies(
    counts: pl.DataFrame, windows_of: Windows
) -> dict[str, dict[Interval, ChangeTally]]:
    """`CHANGES_ENDED` rows as tallies per service and window, empty ones included."""
    groups: dict[tuple[str, Interval], dict[tuple[Any, Any], int]] = defaultdict(dict)
    failed: dict[tuple[str, Interval], list[str]] = defaultdict(list)
    caused: dict[tuple[str, Interval], list[tuple[str, str]]] = defaultdict(list)
    for service, start, end, status, kind, n, unsuccessful, incidents in counts.iter_rows():
        key = (service, Interval(start, end))
        groups[key][status, kind] = n
        failed[key] += unsuccessful or ()
        caused[key] += ((c["change"], c["incident"]) for c in incidents or ())
    return {
        service: {
            window: ChangeTally(
                groups[service, window],
                tuple(sorted(caused[service, window])),
                tuple(sorted(failed[service, window])),
            )
            for window in windows
        }
        for service, windows in windows_of.items()
    }


def _rows(frame: pl.DataFrame) -> Iterator[tuple[Any, ...]]:
    """The rows of a frame as tuples; faster than `iter_rows` on wide frames.

    Equal strings share one object: a ticket's id, its kind, priority, clock and status
    would otherwise cost a string each per clock (a third of a clock's memory).
    """
    return zip(*(_values(column) for column in frame.iter_columns()), strict=True)


def _values(column: pl.Series) -> list[Any]:
    """The values of a column, each distinct string once."""
    values = column.to_list()
    if column.dtype != pl.String:
        return values
    first: dict[str, str] = {}
    return list(map(first.setdefault, values, values))
