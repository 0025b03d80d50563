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
import itertools

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

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


# The last island of every check: what results in order extend or follow.
_TAILS = """
SELECT service, "check", ok, start_us, start_id, end_us, end_id, n FROM probe_islands
QUALIFY row_number() OVER (
    PARTITION BY service, "check" ORDER BY start_us DESC, start_id DESC) = 1
"""

_REPLACE_TAILS = """
DELETE FROM probe_islands i USING _slamon_old_tails t
WHERE i.service = t.service AND i."check" IS NOT DISTINCT FROM t."check"
  AND i.start_us = t.start_us AND i.start_id = t.start_id;
INSERT INTO probe_islands SELECT * FROM _slamon_islands;
"""

_ISLAND_TYPES: dict[str, pa.DataType] = {
    "service": pa.string(),
    "check": pa.string(),
    "ok": pa.bool_(),
    "start_us": pa.int64(),
    "start_id": pa.string(),
    "end_us": pa.int64(),
    "end_id": pa.string(),
    "n": pa.int64(),
}
_ISLAND_SCHEMA = pa.schema(_ISLAND_TYPES)

CheckKey = tuple[str, str | None]
# service, check, ok, start_us, start_id, end_us, end_id, n: a row of probe_islands.
Island = tuple[str, str | None, bool | None, int, str, int, str, int]


class IslandTails:
    """The last island of each check, kept between batches so that results in order are
    folded in Python with two statements, not planned in SQL with temporary tables.

    Results of a check that do not all come after its last island (late ones) go the SQL
    way of `update_probe_islands`. The tails are read from the store when first needed and
    forgotten whenever a transaction may not have committed what they say.
    """

    def __init__(self) -> None:
        self._tails: dict[CheckKey, Island] | None = None

    def forget(self) -> None:
        """Read the tails from the store again before the next batch."""
        self._tails = None

    def update(self, con: duckdb.DuckDBPyConnection, new_results: pa.Table) -> None:
        """`update_probe_islands`, in the caller's transaction; call `forget` if it fails."""
        if self._tails is None:
            rows = con.execute(_TAILS).fetchall()
            self._tails = {(row[0], row[1]): row for row in rows}
        tails = self._tails
        services = new_results["service"].to_pylist()
        checks = new_results["check"].to_pylist()
        results = sorted(
            zip(
                services,
                checks,
                pc.cast(new_results["time"], pa.int64()).to_pylist(),
                new_results["event_id"].to_pylist(),
                new_results["ok"].to_pylist(),
                strict=True,
            ),
            # By check (a null check apart from an empty one), then in the islands' order.
            key=lambda r: (r[0], r[1] or "", r[1] is not None, r[2], r[3]),
        )
        late: set[CheckKey] = set()
        old: list[Island] = []
        islands: list[Island] = []
        for key, group in itertools.groupby(results, key=lambda r: (r[0], r[1])):
            rows = list(group)
            tail = tails.get(key)
            if tail is not None and (rows[0][2], rows[0][3]) <= (tail[5], tail[6]):
                late.add(key)
                continue
            folded = [] if tail is None else [tail]
            for service, check, us, event_id, ok in rows:
                last = folded[-1] if folded else None
                if last is not None and last[2] == ok:
                    folded[-1] = (*last[:5], us, event_id, last[7] + 1)
                else:
                    folded.append((service, check, ok, us, event_id, us, event_id, 1))
            if tail is not None:
                old.append(tail)
            islands.extend(folded)
            tails[key] = folded[-1]
        if islands:
            con.register("_slamon_old_tails", _islands_table(old))
            con.register("_slamon_islands", _islands_table(islands))
            try:
                con.execute(_REPLACE_TAILS)
            finally:
                with contextlib.suppress(duckdb.TransactionException):
                    con.unregister("_slamon_old_tails")
                    con.unregister("_slamon_islands")
        if late:
            mine = [key in late for key in zip(services, checks, strict=True)]
            update_probe_islands(con, new_results.filter(pa.array(mine)))
            # The restated checks' islands changed in SQL: read every tail again next time.
            self._tails = None


def _islands_table(islands: list[Island]) -> pa.Table:
    """Rows of probe_islands as an Arrow table."""
    return pa.table(
        [
            pa.array([row[k] for row in islands], field.type)
            for k, field in enumerate(_ISLAND_SCHEMA)
        ],
        schema=_ISLAND_SCHEMA,
    )


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
