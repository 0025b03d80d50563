"""The engine a batch of services at a time: the same inputs as all at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.engine import inputs_from_store, inputs_in_batches
from pipeline.store import EventStore
from sla.config import SlamonConfig

REPO = Path(__file__).resolve().parents[2]
# 2026-03-01 and 2026-04-01, 00:00 UTC: the generated month.
MARCH = (1_772_323_200, 1_775_001_600)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SlamonConfig]:
    """A small generated month: 7 services with probes, tickets, capacity and the rest."""
    out = tmp_path_factory.mktemp("month") / "month.duckdb"
    command = [sys.executable, "-m", "bench.generate", "--out", str(out), "--seed", "3"]
    command += ["--services", "7", "--probes", "4000", "--tickets", "600"]
    command += ["--capacity-services", "2"]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    config = out.with_suffix(".yaml").read_text()
    return out, SlamonConfig.model_validate(yaml.safe_load(config))


@pytest.mark.parametrize("size", [1, 3, 7, 50])
def test_batches_give_the_inputs_of_all_services_at_once(
    month: tuple[Path, SlamonConfig], size: int
) -> None:
    store_path, config = month
    with EventStore(store_path, read_only=True) as store:
        whole = inputs_from_store(store, config, *MARCH)
        batches = list(inputs_in_batches(store, config, *MARCH, size))
    ids = [s.id for s in config.services]
    assert [list(b) for b in batches] == [ids[i : i + size] for i in range(0, len(ids), size)]
    merged = {sid: found for batch in batches for sid, found in batch.items()}
    assert merged == {sid: whole[sid] for sid in ids}
    assert sum(len(found.ticket_clocks) for found in merged.values()) > 0


def test_a_batch_needs_a_service(month: tuple[Path, SlamonConfig]) -> None:
    store_path, config = month
    with EventStore(store_path, read_only=True) as store, pytest.raises(ValueError):
        next(inputs_in_batches(store, config, *MARCH, 0))
