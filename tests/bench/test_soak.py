"""bench.soak: a soak too short for its sampling is refused before it starts."""

from __future__ import annotations

import pytest

from bench.soak import main, memory_windows, sampling_gap


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
