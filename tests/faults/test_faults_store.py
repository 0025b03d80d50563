"""Store faults: a DuckDB file held by another process, a disk that fills up mid-stream.

Either way the pipeline stops with a one-line error and commits no offset past what it
stored, so once the condition clears a restarted pipeline stores the rest: nothing is lost.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import psutil
import pytest

pytestmark = pytest.mark.kafka

# Holds the DuckDB file open, and so locked, until killed.
HOLD_LOCK = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(600)
"""
# Far below the store of the stream: the write-ahead log reaches it after a few batches.
FILE_SIZE_LIMIT = 3 * 1024 * 1024


def test_a_locked_store_is_a_one_line_error_and_loses_nothing(
    kafka_bootstrap: str, faults: Any, one_line_error: Callable[[str], str]
) -> None:
    stream = faults.stream(distinct=20_000, duplicates=1_000, seed=11)
    config = faults.config(kafka_bootstrap, stream.services, pipeline={"batch_size": 500})
    faults.publish(config, stream)

    first = faults.start("pipeline", "--config", str(config))
    faults.wait_for(lambda: faults.stored() >= 3_000, 120, "some events stored", first)
    first.kill()

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(faults.store_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        refused = faults.start("pipeline", "--config", str(config))
        assert refused.proc.wait(timeout=120) == 1, refused.output()
    finally:
        holder.kill()
        holder.wait()
    error = one_line_error(refused.output())
    assert "is in use by another process" in error, error

    faults.pipeline_until(config, stream.distinct)
    faults.assert_each_event_stored_once(stream)
    faults.assert_figures_match_a_clean_run(config, stream)


def test_a_full_disk_is_a_one_line_error_and_commits_no_offset_past_it(
    kafka_bootstrap: str, faults: Any, one_line_error: Callable[[str], str]
) -> None:
    stream = faults.stream(distinct=20_000, duplicates=1_000, seed=12)
    config = faults.config(kafka_bootstrap, stream.services, pipeline={"batch_size": 500})
    faults.publish(config, stream)

    # With RLIMIT_FSIZE, writes past the limit fail with EFBIG as they fail with ENOSPC on a
    # full disk (Python ignores SIGXFSZ). Set long before the child opens the store.
    full = faults.start("pipeline", "--config", str(config))
    psutil.Process(full.proc.pid).rlimit(psutil.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    assert full.proc.wait(timeout=300) == 1, full.output()
    error = one_line_error(full.output())
    assert "File too large" in error and str(faults.store_path) in error, error
    rows, _, _ = faults.ledger()
    assert 0 < rows < stream.distinct, "the limit did not stop the pipeline mid-stream"

    # The offsets of the batch that failed were not committed: a restart stores it.
    faults.pipeline_until(config, stream.distinct)
    faults.assert_each_event_stored_once(stream)
    faults.assert_figures_match_a_clean_run(config, stream)
