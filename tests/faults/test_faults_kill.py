"""The pipeline SIGKILLed at random points of a long stream stores each event exactly once.

`slamon ingest` publishes the stream (with byte-identical repeats, as at-least-once producers
send); `slamon pipeline` consumes it and is killed with SIGKILL each time its stored count
passes the next of `kills` thresholds drawn from a seeded RNG, then started again. The
killed process gets no chance to finish a batch, commit offsets or checkpoint DuckDB.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

pytestmark = pytest.mark.kafka


@pytest.mark.timeout(1800)
@pytest.mark.parametrize(
    ("distinct", "duplicates", "kills"),
    [
        pytest.param(190_000, 10_000, 20, id="200k-events-20-kills"),
        pytest.param(950_000, 50_000, 50, id="1m-events-50-kills", marks=pytest.mark.soak),
    ],
)
def test_sigkill_at_random_points_stores_each_event_once(
    kafka_bootstrap: str, faults: Any, distinct: int, duplicates: int, kills: int
) -> None:
    stream = faults.stream(distinct=distinct, duplicates=duplicates, seed=kills)
    # Batches small enough that kills land between many store commits and offset commits.
    # A static member: each restart takes the partitions back at once instead of waiting
    # out the killed process's session (20 x 6 s), which also exercises pipeline.instance_id.
    config = faults.config(
        kafka_bootstrap,
        stream.services,
        pipeline={"batch_size": 1000, "instance_id": "killed-and-restarted"},
    )
    faults.publish(config, stream)

    # The last tenth of the stream is left as room for the kills drawn close to each other.
    thresholds = sorted(random.Random(kills).sample(range(1, stream.distinct * 9 // 10), kills))
    killed_at: list[int] = []
    for threshold in thresholds:
        pipeline = faults.start("pipeline", "--config", str(config))
        # What the store held when this run started (its counter is read from the store).
        (started_with,) = faults.wait_for(lambda: [faults.stored()], 120, "/metrics", pipeline)
        # Past the threshold and at least one batch into this run, so each kill lands mid-stream.
        target = max(threshold, started_with + 1)
        killed_at.append(
            faults.wait_for(
                lambda: (n := faults.stored()) >= target and n,  # noqa: B023
                180,
                f"the pipeline to store {target} events",
                pipeline,
            )
        )
        pipeline.kill()
    print(f"{len(killed_at)} SIGKILLs at stored counts {killed_at}")
    mid_stream = sum(n < stream.distinct for n in killed_at)
    # A busy machine may let the last run finish before a scrape sees it pass its target.
    assert mid_stream >= kills - 1, f"only {mid_stream} kills landed before the end"

    faults.pipeline_until(config, stream.distinct)
    faults.assert_each_event_stored_once(stream)
    faults.assert_figures_match_a_clean_run(config, stream)
