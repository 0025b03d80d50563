"""bench.soak: its sampling, and how it reads the pipeline's /metrics page."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from bench.soak import main, memory_windows, metric_sum, sampling_gap
from pipeline.exporter import PipelineMetrics


def test_the_memory_windows_scale_with_the_soak() -> None:
    assert memory_windows(60) == (10.0, 20.0, 50.0)
    assert memory_windows(15) == (2.5, 5.0, 12.5)


@pytest.mark.parametrize(("minutes", "interval"), [(60, 60), (15, 60), (5, 15), (1, 1)])
def test_sampling_that_reaches_both_windows_is_accepted(minutes: float, interval: float) -> None:
    assert sampling_gap(minutes, interval) is None


def test_a_soak_whose_last_window_gets_no_sample_is_refused_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Five minutes, a sample a minute: samples at minutes 1 to 4, the last window starts at
    # 4 min 10 s. Before, the soak ran its five minutes and then gave up without a verdict.
    assert sampling_gap(5, 60) == (
        "a sample every 60 s misses the last window of a 5-minute soak (minutes 4.16667 to 5): "
        "lower --sample-interval"
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["--bootstrap", "127.0.0.1:1", "--minutes", "5"])
    assert exit_info.value.code == 2
    assert "misses the last window" in capsys.readouterr().err


def test_the_pipeline_metrics_are_summed_over_their_labels_by_sample_name() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, lambda: {"slamon.probe.v1": 1_200, "slamon.ticket.v1": 34})
    metrics.store_memory.set(5_000_000)
    metrics.store_memory_limit.set(268_435_456)
    page = generate_latest(registry).decode()

    assert metric_sum(page, "slamon_events_ingested_total") == 1_234
    # A name that prefixes another (the limit) must not be added to it.
    assert metric_sum(page, "slamon_store_memory_bytes") == 5_000_000
    assert metric_sum(page, "slamon_events_duplicate_total") == 0
    assert metric_sum("", "slamon_events_ingested_total") == 0
