"""Settled tickets: the clocks of tickets whose every clock has stopped, kept in the store.

Once a ticket's response and resolution clocks have all stopped, its clocks no longer
depend on the instant they are computed at: they change only when another event of the
ticket arrives (a reopen, a late event) or when its policy or calendar changes. The engine
computes such clocks once and keeps them in two tables, so that a month's computation
recomputes only the tickets still open or changed since, not every ticket ever stored:

``settled_tickets(service, ticket_id, updates, last_us, policy)``
    a settled ticket, with the signature of the updates its clocks came from: how many
    there were and the last one's instant (µs); and the fingerprint of its policy.
``settled_clocks(service, ticket_id, <the fields of sla.tickets.TicketClock>)``
    its clocks, one row per clock and cycle.

and, kept up to date by every write of ticket events, the signature of every stored ticket:

``ticket_signatures(service, ticket_id, updates, last_us)``

A ticket's stored clocks stand for it as of `now` when none of its updates is after `now`
and its signature is the stored one (updates only ever add rows: a late event or a new one
changes the count or the last instant), and the fingerprint matches the configuration.
Everything else is recomputed with `sla.tickets.ticket_clocks_frame` and, on a writable
store, the tickets found settled are kept for the next computation. The long-running
pipeline computes its figures every few seconds, so its store always holds the settled
tickets; `slamon compute` on a read-only store uses what the pipeline left.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from sla.config import TWENTY_FOUR_SEVEN, CalendarConfig, TicketPolicy
from sla.intervals import Interval
from sla.tickets import CLOCK_COLUMNS, CalendarLookup, ticket_clocks_frame

if TYPE_CHECKING:
    from pipeline.store import EventStore

# Part of every fingerprint: raise it when the clock rules of sla.tickets change, so that
# clocks computed under the old rules are recomputed.
CLOCK_RULES_VERSION = 1

CREATE_SETTLED_TICKETS = """
CREATE TABLE settled_tickets (
    service VARCHAR NOT NULL, ticket_id VARCHAR NOT NULL,
    updates BIGINT NOT NULL, last_us BIGINT NOT NULL, policy VARCHAR NOT NULL
);
CREATE TABLE settled_clocks (
    service VARCHAR NOT NULL, ticket_id VARCHAR NOT NULL, clock VARCHAR NOT NULL,
    kind VARCHAR, priority VARCHAR, cycle BIGINT NOT NULL, goal_seconds BIGINT,
    started_at BIGINT NOT NULL, stopped_at BIGINT NOT NULL, elapsed_seconds BIGINT NOT NULL,
    paused_seconds BIGINT NOT NULL, breach_at BIGINT, status VARCHAR NOT NULL,
    used_share DOUBLE, ever_breached BOOLEAN NOT NULL
);
"""

# The signature of every stored ticket (how many updates, the last one's instant), kept up
# to date as events are stored (`UPDATE_TICKET_SIGNATURES`): a computation joins this
# table instead of grouping every ticket event it has.
CREATE_TICKET_SIGNATURES = """
CREATE TABLE ticket_signatures (
    service VARCHAR NOT NULL, ticket_id VARCHAR NOT NULL,
    updates BIGINT NOT NULL, last_us BIGINT NOT NULL
);
"""

REBUILD_TICKET_SIGNATURES = """
DELETE FROM ticket_signatures;
INSERT INTO ticket_signatures
SELECT service, ticket_id, count(*), max(epoch_us(time)) FROM tickets GROUP BY ALL;
"""

# Adds the signatures of the new rows of `tickets` registered as `_slamon_typed`.
UPDATE_TICKET_SIGNATURES = """
MERGE INTO ticket_signatures s
USING (
    SELECT service, ticket_id, count(*) AS updates, max(epoch_us(time)) AS last_us
    FROM _slamon_typed GROUP BY ALL
) b ON s.service = b.service AND s.ticket_id = b.ticket_id
WHEN MATCHED THEN
    UPDATE SET updates = s.updates + b.updates, last_us = greatest(s.last_us, b.last_us)
WHEN NOT MATCHED THEN INSERT VALUES (b.service, b.ticket_id, b.updates, b.last_us)
"""

# Every ticket of the asked services, and whether the store holds its clocks for exactly
# the updates known at $now under the service's current policy (`fresh`). A ticket with an
# update after $now is never fresh: its signature as of $now is not the stored one, so it
# is recomputed from its updates up to $now. A temporary table: the stored clocks and the
# stale updates both read it.
KNOWN_TICKETS = """
CREATE OR REPLACE TEMP TABLE _slamon_known AS
WITH policy AS (
    SELECT unnest($services) AS service, unnest($policies) AS policy
)
SELECT k.service, k.ticket_id,
       k.last_us < ($now::BIGINT + 1) * 1000000 AND s.ticket_id IS NOT NULL AS fresh
FROM ticket_signatures k JOIN policy p USING (service) LEFT JOIN settled_tickets s
  ON s.service = k.service AND s.ticket_id = k.ticket_id AND s.updates = k.updates
 AND s.last_us = k.last_us AND s.policy = p.policy
"""

FORGET_KNOWN_TICKETS = "DROP TABLE _slamon_known"

# Clocks of fresh settled tickets that may fall in a window within [$since, $now]: a
# clock that stopped before $since counts in no such window (`sla.tickets.in_window`).
# A join, not a semi join (`fresh` is unique): DuckDB then filters the clocks first, in
# half the time.
STORED_CLOCKS = f"""
SELECT {", ".join(f"c.{name}" for name in CLOCK_COLUMNS)}
FROM settled_clocks c JOIN (SELECT service, ticket_id FROM _slamon_known WHERE fresh) fresh
  USING (service, ticket_id)
WHERE c.stopped_at >= $since
"""

# The stopped clocks of fresh settled tickets in each asked window (`window_params`),
# counted by what compliance and MTTR read (`sla.tickets.ClockTally`) instead of listed.
STORED_CLOCK_COUNTS = """
WITH windows AS (
    SELECT unnest($window_services) AS service, unnest($starts) AS start, unnest($ends) AS "end"
)
SELECT c.service, w.start, w."end", c.kind, c.priority, c.clock, c.status, count(*) AS clocks,
       coalesce(sum(c.elapsed_seconds) FILTER (resolved), 0)::BIGINT AS resolution_seconds,
       count(*) FILTER (resolved) AS resolutions
FROM (
    SELECT *, clock = 'resolution' AND kind = 'incident' AS resolved FROM settled_clocks
) c
JOIN (SELECT service, ticket_id FROM _slamon_known WHERE fresh) fresh
  ON fresh.service = c.service AND fresh.ticket_id = c.ticket_id
JOIN windows w ON w.service = c.service AND c.stopped_at >= w.start AND c.stopped_at < w."end"
GROUP BY ALL
"""

# The updates of every other ticket, in arrival order, as `ticket_clocks_frame` reads them:
# by instant to the microsecond (`time` is whole seconds), then event id.
STALE_UPDATES = """
SELECT service, ticket_id, epoch_us(time) AS time_us, epoch_us(time) // 1000000 AS time,
       status, priority, responded, kind
FROM tickets SEMI JOIN (
    SELECT service, ticket_id FROM _slamon_known WHERE NOT fresh
) stale USING (service, ticket_id)
WHERE time < to_timestamp($now + 1)
ORDER BY time_us, event_id
"""

_REPLACE = """
DELETE FROM settled_clocks c USING _slamon_settled s
WHERE c.service = s.service AND c.ticket_id = s.ticket_id;
DELETE FROM settled_tickets t USING _slamon_settled s
WHERE t.service = s.service AND t.ticket_id = s.ticket_id;
INSERT INTO settled_tickets BY NAME SELECT * FROM _slamon_settled;
INSERT INTO settled_clocks BY NAME SELECT * FROM _slamon_settled_clocks;
"""


Windows = Mapping[str, Sequence[Interval]]
"""Windows by service."""


def window_params(windows_of: Windows) -> dict[str, list[Any]]:
    """``$window_services``, ``$starts``, ``$ends``: one entry per window of each service.

    A window asked for twice (a caller listing the same period under two names) is listed
    once: the queries join on these lists, and would count its clocks or changes twice.
    """
    windows = [(service, w) for service, ws in windows_of.items() for w in dict.fromkeys(ws)]
    return {
        "window_services": [service for service, _ in windows],
        "starts": [w.start for _, w in windows],
        "ends": [w.end for _, w in windows],
    }


# What `STORED_CLOCK_COUNTS` groups by; its other columns are counts and sums.
COUNT_KEYS = ("service", "start", "end", "kind", "priority", "clock", "status")


def clock_counts(clocks: pl.DataFrame, windows: Mapping[str, list[Any]]) -> pl.DataFrame:
    """`STORED_CLOCK_COUNTS` of listed clocks (``CLOCK_COLUMNS``): the stopped ones in each
    window of ``window_params``, counted."""
    asked = pl.DataFrame(
        {"service": windows["window_services"], "start": windows["starts"], "end": windows["ends"]},
        schema={"service": pl.String, "start": pl.Int64, "end": pl.Int64},
    )
    resolved = (pl.col("clock") == "resolution") & (pl.col("kind") == "incident")
    return (
        clocks.join(asked, on="service")
        .filter(pl.col("stopped_at").is_between(pl.col("start"), pl.col("end"), closed="left"))
        .group_by(COUNT_KEYS)
        .agg(
            clocks=pl.len().cast(pl.Int64),
            resolution_seconds=pl.col("elapsed_seconds").filter(resolved).sum().cast(pl.Int64),
            resolutions=resolved.sum().cast(pl.Int64),
        )
    )


def policy_fingerprint(policy: TicketPolicy, calendar: CalendarConfig | None) -> str:
    """What a ticket's clocks depend on besides its updates, as one short hash.

    `at_risk` is left out: it reads clocks, it does not make them. `calendar` is None for
    the built-in ``24x7``.
    """
    basis = {
        "rules": CLOCK_RULES_VERSION,
        "policy": policy.model_dump(mode="json", exclude={"at_risk"}),
        "calendar": TWENTY_FOUR_SEVEN
        if calendar is None
        else calendar.model_dump(mode="json", exclude={"holidays_ics"}),
    }
    encoded = json.dumps(basis, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def policy_fingerprints(
    policies: Mapping[str, TicketPolicy], calendars: Mapping[str, CalendarConfig]
) -> dict[str, str]:
    """The fingerprint of each service's ticket policy, by service."""
    return {
        service: policy_fingerprint(policy, calendars.get(policy.calendar))
        for service, policy in policies.items()
    }


def settled(clocks: pl.DataFrame) -> pl.DataFrame:
    """``service, ticket_id`` of the tickets all of whose clocks have stopped."""
    return (
        clocks.group_by("service", "ticket_id")
        .agg(pl.col("stopped_at").is_not_null().all().alias("settled"))
        .filter("settled")
        .drop("settled")
    )


class SettledTickets:
    """Ticket clocks of a store: stored for settled tickets, recomputed for the others.

    With `read_stored` false every clock is recomputed (what the benchmark compares with).
    """

    def __init__(
        self,
        policies: Mapping[str, TicketPolicy],
        calendars: CalendarLookup,
        fingerprints: Mapping[str, str],
        *,
        read_stored: bool = True,
    ) -> None:
        self._policies = policies
        self._calendars = calendars
        self._fingerprints = fingerprints
        self._read_stored = read_stored

    def clocks(
        self,
        store: EventStore,
        services: Sequence[str],
        since: int,
        now: int,
        count_in: Windows | None = None,
    ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """The clocks (``CLOCK_COLUMNS``, sorted by service, ticket, cycle and clock) of the
        tickets of `services` known at `now`, but for those that stopped before `since`.

        With `count_in` (windows by service), every stopped clock, stored or recomputed, is
        counted per window instead (the second frame, with the columns of
        ``STORED_CLOCK_COUNTS``; else None): the first then holds the running clocks only.
        """
        services = [s for s in services if s in self._policies]
        # Without stored clocks, ask for a fingerprint no settled ticket has.
        params = {
            "services": services,
            "policies": [self._fingerprints[s] if self._read_stored else "" for s in services],
            "now": now,
        }
        windows = (
            None if count_in is None else window_params({s: count_in.get(s, ()) for s in services})
        )
        stored_clocks = (
            (STORED_CLOCKS, {"since": since}) if windows is None else (STORED_CLOCK_COUNTS, windows)
        )
        # One snapshot: an event stored between the two would count a ticket twice or never.
        _, stored, updates, _ = store.query_together(
            [
                (KNOWN_TICKETS, params),
                stored_clocks,
                (STALE_UPDATES, {"now": now}),
                (FORGET_KNOWN_TICKETS, None),
            ]
        )
        computed = ticket_clocks_frame(updates, self._policies, self._calendars, now)
        if not store.read_only and computed.height:
            self._keep(store, updates, computed)
        if windows is not None:
            running = computed.filter(pl.col("stopped_at").is_null())
            counted = (
                pl.concat([stored, clock_counts(computed, windows)], how="vertical_relaxed")
                .group_by(COUNT_KEYS)
                .sum()
            )
            return running.sort("service", "ticket_id", "cycle", "clock"), counted
        recent = computed.filter(pl.col("stopped_at").is_null() | (pl.col("stopped_at") >= since))
        listed = pl.concat([stored.cast(recent.schema), recent])
        return listed.sort("service", "ticket_id", "cycle", "clock"), None

    def _keep(self, store: EventStore, updates: pl.DataFrame, computed: pl.DataFrame) -> None:
        """Store the clocks of the recomputed tickets that have settled."""
        done = settled(computed)
        if not done.height:
            return
        signatures = (
            updates.join(done, on=["service", "ticket_id"], how="semi")
            .group_by("service", "ticket_id")
            .agg(updates=pl.len().cast(pl.Int64), last_us=pl.col("time_us").max())
            .with_columns(
                policy=pl.col("service").replace_strict(
                    dict(self._fingerprints), return_dtype=pl.String
                )
            )
        )
        clocks = computed.join(done, on=["service", "ticket_id"], how="semi")
        store.keep_settled_tickets(signatures, clocks)


def replace_settled(
    con: duckdb.DuckDBPyConnection, tickets: pl.DataFrame, clocks: pl.DataFrame
) -> None:
    """Replace the stored clocks of `tickets` with `clocks`, inside the caller's transaction."""
    con.register("_slamon_settled", tickets.to_arrow())
    con.register("_slamon_settled_clocks", clocks.to_arrow())
    try:
        con.execute(_REPLACE)
    finally:
        con.unregister("_slamon_settled")
        con.unregister("_slamon_settled_clocks")
