"""The fast reduction: `ServiceInputs` for all services at once, computed in DuckDB.

It must equal `sla.inputs.inputs_from_events` (the plain-Python reference) on any input.
Probe results, by far the largest table, never leave DuckDB: only their islands (runs of
equal outcomes per check) do.
"""

from __future__ import annotations

from collections import defaultdict

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

    other: dict[str, OtherEvidence] = defaultdict(OtherEvidence)
    for service, resource, host, t, used, capacity in store.query(
        CAPACITY_SAMPLES, bounds
    ).iter_rows():
        other[service].capacity.setdefault((resource, host), []).append((t, used, capacity))
    for service, *test in store.query(LATEST_CONTINUITY_TESTS, {"now": now}).iter_rows():
        other[service].continuity.append(ContinuityTest(*test))
    for service, *change in store.query(CHANGE_EVENTS, {"now": now}).iter_rows():
        other[service].changes.append(ChangeRecord(*change))

    policies = ticket_policies(config)
    if policies:
        updates = store.query(TICKET_UPDATES, {"now": now, "services": sorted(policies)})
        clocks = ticket_clocks_frame(updates, policies, Calendars(config.calendars), now)
        for row in clocks.iter_rows(named=True):
            other[row.pop("service")].ticket_clocks.append(TicketClock(**row))

    return reduce_evidence(evidence, other, config, since, now)
