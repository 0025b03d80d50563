"""Probe islands: the runs of equal outcomes of each check, kept next to the probe results.

An island is a maximal run of consecutive results of one (service, check) with the same
``ok``, results ordered by time, then event id (the reference order of `sla.inputs`). The
table ``probe_islands`` holds every island of the stored results, with its first and last
result (microseconds and event id) and its number of results. The monthly computation reads
these tens of thousands of rows instead of millions of results.

`EventStore` keeps the table current in the transaction that inserts results
(`update_probe_islands`); migration 3 and the benchmark generator build it in bulk
(`REBUILD_PROBE_ISLANDS`, or `rebuild_probe_islands` a batch of services at a time so that
the window functions over a hundred million results need not fit in memory). All go
through `ISLANDS_OF_SEGMENTS`.
"""

from __future__ import annotations

import contextlib

import duckdb
import pyarrow as pa

CREATE_PROBE_ISLANDS = """
CREATE TABLE probe_islands (
    service VARCHAR NOT NULL, "check" VARCHAR, ok BOOLEAN,
    start_us BIGINT NOT NULL, start_id VARCHAR NOT NULL,
    end_us BIGINT NOT NULL, end_id VARCHAR NOT NULL, n BIGINT NOT NULL
);
"""

# A segment is a run of results known to share one outcome: one result, or a stored island
# that new results may extend. Consecutive segments with equal outcomes make one island.
ISLANDS_OF_SEGMENTS = """
WITH flagged AS (
    SELECT *, ok IS DISTINCT FROM lag(ok) OVER ordered AS opens FROM ({segments})
    WINDOW ordered AS (PARTITION BY service, "check" ORDER BY start_us, start_id)
), numbered AS (
    SELECT *, sum(opens::INTEGER) OVER (
        PARTITION BY service, "check" ORDER BY start_us, start_id ROWS UNBOUNDED PRECEDING
    ) AS island
    FROM flagged
), merged AS (
    SELECT service, "check", any_value(ok) AS ok,
           min({{'us': start_us, 'id': start_id}}) AS first,
           max({{'us': end_us, 'id': end_id}}) AS last, sum(n)::BIGINT AS n
    FROM numbered GROUP BY service, "check", island
)
SELECT service, "check", ok, first.us, first.id, last.us, last.id, n FROM merged
"""

# Results of `source` as segments of one.
_RESULTS = """
SELECT service, "check", ok, epoch_us(time) AS start_us, event_id AS start_id,
       epoch_us(time) AS end_us, event_id AS end_id, 1 AS n
FROM {source}
"""

REBUILD_PROBE_ISLANDS = f"""
DELETE FROM probe_islands;
INSERT INTO probe_islands {ISLANDS_OF_SEGMENTS.format(segments=_RESULTS.format(source="probes"))};
"""

# Islands never span services: those of the services in [$first, $last] can be built alone.
_SERVICES_RESULTS = _RESULTS.format(source="probes WHERE service BETWEEN $first AND $last")
_REBUILD_SERVICES = (
    f"INSERT INTO probe_islands {ISLANDS_OF_SEGMENTS.format(segments=_SERVICES_RESULTS)}"
)

# For each check with new results: the anchor, the stored island that starts last before
# the first new result (none: the new results come first), and whether the new results
# only append (the check has no island yet, or the anchor is the last one and ends before
# them). Appending, the anchor and the new results are the segments; otherwise every stored
# result of the check from the anchor on.
_PLAN = """
CREATE TEMP TABLE _slamon_touched AS
WITH fresh AS (
    SELECT service, "check", min({'us': epoch_us(time), 'id': event_id}) AS first
    FROM _slamon_new_probes GROUP BY service, "check"
), stored AS (
    SELECT service, "check", {'us': start_us, 'id': start_id} AS s,
           {'us': end_us, 'id': end_id} AS e
    FROM probe_islands SEMI JOIN fresh USING (service, "check")
), anchored AS (
    SELECT service, "check", any_value(first) AS first,
           max(s) FILTER (WHERE s < first) AS anchor,
           arg_max(e, s) FILTER (WHERE s < first) AS anchor_end, max(s) AS last
    FROM fresh LEFT JOIN stored USING (service, "check")
    GROUP BY service, "check"
)
SELECT service, "check", anchor,
       last IS NULL OR coalesce(anchor = last AND anchor_end < first, false) AS appends
FROM anchored
"""

_SEGMENTS = f"""
CREATE TEMP TABLE _slamon_segments AS
SELECT i.* FROM probe_islands i JOIN _slamon_touched t USING (service, "check")
WHERE t.appends AND {{'us': i.start_us, 'id': i.start_id}} = t.anchor
UNION ALL
SELECT r.* FROM ({_RESULTS.format(source="_slamon_new_probes")}) r
JOIN _slamon_touched t USING (service, "check") WHERE t.appends
"""

_RESTATED = f"""
INSERT INTO _slamon_segments
SELECT r.* FROM ({_RESULTS.format(source="probes")}) r
JOIN _slamon_touched t USING (service, "check")
WHERE NOT t.appends AND (t.anchor IS NULL OR {{'us': r.start_us, 'id': r.start_id}} >= t.anchor)
"""

_REPLACE = f"""
DELETE FROM probe_islands i USING _slamon_touched t
WHERE i.service = t.service AND i."check" = t."check"
  AND (t.anchor IS NULL OR {{'us': i.start_us, 'id': i.start_id}} >= t.anchor);
INSERT INTO probe_islands {ISLANDS_OF_SEGMENTS.format(segments="SELECT * FROM _slamon_segments")};
DROP TABLE _slamon_segments;
DROP TABLE _slamon_touched;
"""


def update_probe_islands(con: duckdb.DuckDBPyConnection, new_results: pa.Table) -> None:
    """Fold probe results just inserted into ``probes`` (rows of that table) into the islands.

    Runs inside the caller's transaction. Results in order extend or follow the last island
    of their check; a late result (before the end of the last island) restates the islands
    of its check from the one it falls into, reading that check's stored results from there.
    """
    con.register("_slamon_new_probes", new_results)
    try:
        con.execute(_PLAN)
        con.execute(_SEGMENTS)
        late = con.execute("SELECT count(*) FROM _slamon_touched WHERE NOT appends").fetchone()
        if late and late[0]:
            con.execute(_RESTATED)
        con.execute(_REPLACE)
    finally:
        # After a failed statement the transaction is aborted and refuses even this: the
        # error that aborted it (out of memory, disk full) is the one to report.
        with contextlib.suppress(duckdb.TransactionException):
            con.unregister("_slamon_new_probes")


def rebuild_probe_islands(
    con: duckdb.DuckDBPyConnection, batch_services: int | None = None
) -> None:
    """Recompute every island from the stored results (bulk loads, after a repair).

    With `batch_services`, the results of that many services at a time: the windows of one
    batch stay in memory, where those of all results at once may not.
    """
    if batch_services is None:
        con.execute(REBUILD_PROBE_ISLANDS)
        return
    con.execute("DELETE FROM probe_islands")
    for first, last in service_batches(con, batch_services):
        con.execute(_REBUILD_SERVICES, {"first": first, "last": last})


def service_batches(con: duckdb.DuckDBPyConnection, size: int) -> list[tuple[str, str]]:
    """The first and last of each run of `size` services with probe results, in order."""
    if size < 1:
        raise ValueError(f"a batch needs at least one service, not {size}")
    services = [
        row[0]
        for row in con.execute("SELECT DISTINCT service FROM probes ORDER BY service").fetchall()
    ]
    return [
        (services[i], services[min(i + size, len(services)) - 1])
        for i in range(0, len(services), size)
    ]
