"""The benchmark's month generator: deterministic, and its store is one slamon reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import yaml

from pipeline.engine import inputs_from_store
from pipeline.migrations import TABLE_OF_TYPE
from pipeline.store import EventStore
from sla.config import SlamonConfig

REPO = Path(__file__).resolve().parents[2]
# 2026-03-01 and 2026-04-01, 00:00 UTC: the default month.
MARCH = (1_772_323_200, 1_775_001_600)


def generate(out: Path, seed: int = 7) -> Path:
    """A tiny month at `out`: 6 services, 3,000 probe results, 400 ticket events."""
    command = [sys.executable, "-m", "bench.generate", "--out", str(out), "--seed", str(seed)]
    command += ["--services", "6", "--probes", "3000", "--tickets", "400"]
    command += ["--capacity-services", "2"]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    return out


def contents(store: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the ledger and the typed tables, in a fixed order."""
    with duckdb.connect(str(store), read_only=True) as con:
        return {
            table: con.sql(f'SELECT * FROM "{table}" ORDER BY ALL').pl().rows()
            for table in ("events", *TABLE_OF_TYPE.values())
        }


def test_the_same_seed_gives_the_same_month(tmp_path: Path) -> None:
    first = contents(generate(tmp_path / "a" / "month.duckdb"))
    assert first == contents(generate(tmp_path / "b" / "month.duckdb"))
    assert first != contents(generate(tmp_path / "c" / "month.duckdb", seed=8))
    # 6 services x 2 checks share 3,000 results; tickets stop at exactly 400 events.
    assert (len(first["probes"]), len(first["tickets"])) == (3_000, 400)
    # The ledger holds each typed row once.
    assert len(first["events"]) == sum(len(first[t]) for t in TABLE_OF_TYPE.values())


def test_the_month_loads_and_the_engine_reduces_it(tmp_path: Path) -> None:
    store_path = generate(tmp_path / "month.duckdb")
    config = SlamonConfig.model_validate(
        yaml.safe_load(store_path.with_suffix(".yaml").read_text())
    )
    assert [s.id for s in config.services] == [f"svc-{n:04d}" for n in range(6)]
    with EventStore(store_path, read_only=True) as store:
        assert store.counts_by_type()["slamon.probe.v1"] == 3_000
        inputs = inputs_from_store(store, config, *MARCH)
    assert sorted(inputs) == [s.id for s in config.services]
    assert all(i.observed for i in inputs.values())
    assert sum(len(i.ticket_clocks) for i in inputs.values()) > 0
    # Capacity only for the first two services: cpu and disk on one host each.
    assert [len(inputs[f"svc-{n:04d}"].capacity) for n in range(3)] == [2, 2, 0]
