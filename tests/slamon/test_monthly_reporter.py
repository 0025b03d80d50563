"""The pipeline's own monthly pack: written once the month has ended everywhere, retried later."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pipeline.store import EventStore
from sla.config import SlamonConfig
from slamon.app import MonthlyReporter


def instant(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp())


def reporter(out_dir: Path) -> MonthlyReporter:
    config = SlamonConfig.model_validate(
        {
            "reports": {"enabled": True, "out_dir": str(out_dir), "pdf": False},
            "calendars": {
                "new-york": {"timezone": "America/New_York", "hours": {"mon": ["09:00-17:00"]}}
            },
            "services": [
                {"id": "api", "name": "API"},
                {"id": "desk", "name": "Desk", "service_hours": "new-york"},
            ],
        }
    )
    return MonthlyReporter(config, EventStore(":memory:"))


def run(monthly: MonthlyReporter, now: int) -> None:
    monthly.maybe_write(now)
    if monthly._writing is not None:
        monthly._writing.join(60)


def test_a_month_is_written_once_it_has_ended_in_every_time_zone(tmp_path: Path) -> None:
    monthly = reporter(tmp_path)
    # 00:30 UTC on 1 November is still 31 October, 20:30 in New York: October is not over
    # for the desk, so the latest closed month is September.
    run(monthly, instant("2026-11-01T00:30:00+00:00"))
    assert (tmp_path / ".written-2026-09").exists()
    assert not (tmp_path / ".written-2026-10").exists()
    # 05:00 UTC is 01:00 in New York on 1 November: now October is closed everywhere.
    run(monthly, instant("2026-11-01T05:00:00+00:00"))
    assert (tmp_path / ".written-2026-10").exists()
    assert (tmp_path / "2026-10-api" / "review.html").exists()
    written = sorted(p.name for p in tmp_path.iterdir())
    # Later recomputes the same month write nothing new.
    run(monthly, instant("2026-11-02T05:00:00+00:00"))
    assert sorted(p.name for p in tmp_path.iterdir()) == written


def test_a_failed_pack_is_retried_an_hour_later_not_at_every_recompute(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the reports should go")
    monthly = reporter(blocked)
    now = instant("2026-11-02T12:00:00+00:00")
    run(monthly, now)
    assert monthly._retry_at == now + MonthlyReporter.RETRY_AFTER
    monthly.maybe_write(now + 5)
    assert monthly._writing is not None and not monthly._writing.is_alive()
    assert monthly._retry_at == now + MonthlyReporter.RETRY_AFTER  # no second attempt yet
