"""The fast reduction: `ServiceInputs` for all services at once, computed in DuckDB.

It must equal `sla.inputs.inputs_from_events` (the plain-Python reference) on any input.
Probe results, by far the largest table, never leave DuckDB: only their islands (runs of
equal outcomes per check) do.
"""

from __future__ import annotations

from collections import defaultdict

from pipeline.store import EventStore
from sla.availability import ProbeIsland
from sla.config import SlamonConfig
from sla.inputs import (
    PROBE_LOOKBACK,
    AvailabilityEvidence,
    OutageRecord,
    ServiceInputs,
    reduce_evidence,
)
from sla.intervals import Interval

# Whole seconds, rounded down like sla.inputs.epoch_seconds.
_T = "epoch_us({}) // 1000000"

PROBE_ISLANDS = f"""
WITH numbered AS (
    SELECT service, "check", ok, {_T.format("time")} AS t,
           row_number() OVER (PARTITION BY service, "check" ORDER BY time, event_id) AS n,
           row_number() OVER (PARTITION BY service, "check", ok ORDER BY time, event_id) AS k
    FROM probes
    WHERE time >= to_timestamp($since) AND time < to_timestamp($now + 1)
)
SELECT service, "check", ok, min(t), max(t), count(*)::BIGINT
FROM numbered
GROUP BY service, "check", ok, n - k
ORDER BY service, "check", min(n)
"""

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


def inputs_from_store(
    store: EventStore, config: SlamonConfig, since: int, now: int
) -> dict[str, ServiceInputs]:
    """Per service inputs for windows within [since, now], from the events known at `now`."""
    evidence: dict[str, AvailabilityEvidence] = defaultdict(AvailabilityEvidence)
    bounds = {"since": since, "now": now}

    probe_rows = store.query(PROBE_ISLANDS, {**bounds, "since": since - PROBE_LOOKBACK})
    for service, check, ok, start, end, count in probe_rows.iter_rows():
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

    return reduce_evidence(evidence, config, since, now)
