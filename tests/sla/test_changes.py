"""Changes: latest state per change, success ratio, emergency share, change-caused incidents."""

from __future__ import annotations

from sla.changes import (
    ChangeKind,
    ChangeRecord,
    ChangeStatus,
    change_summary,
    changes_ending_since,
    latest_changes,
)
from sla.intervals import Interval

WINDOW = Interval(1_000, 2_000)


def change(
    change_id: str,
    status: ChangeStatus,
    time: int,
    *,
    kind: ChangeKind = "normal",
    end: int = 1_500,
    incident: str | None = None,
) -> ChangeRecord:
    return ChangeRecord(change_id, kind, status, end - 100, end, time, incident)


def test_success_ratio_excludes_cancelled_and_scheduled_and_emergency_share() -> None:
    # Final states: C1, C2 implemented; C3 failed (emergency); C4 implemented then rolled back;
    # C5 cancelled (emergency); C6 still scheduled.
    # Success = 2 / (2 implemented + 1 failed + 1 rolled back) = 0.5.
    # Emergency share = 1 emergency (C3; C5 is cancelled) / 5 non-cancelled = 0.2.
    records = [
        change("C1", "scheduled", 10),
        change("C1", "implemented", 20),
        change("C2", "implemented", 20),
        change("C3", "failed", 30, kind="emergency"),
        change("C4", "rolled_back", 50),
        change("C4", "implemented", 40),
        change("C5", "cancelled", 30, kind="emergency"),
        change("C6", "scheduled", 10),
    ]
    summary = change_summary(records, WINDOW)
    assert summary.total == 6
    assert summary.by_status == {
        "cancelled": 1,
        "failed": 1,
        "implemented": 2,
        "rolled_back": 1,
        "scheduled": 1,
    }
    assert summary.by_kind == {"emergency": 2, "normal": 4}
    assert (summary.success_ratio, summary.emergency_share) == (0.5, 0.2)
    assert summary.failed_changes == ("C3", "C4")


def test_latest_event_time_wins_and_ties_go_further_along_the_lifecycle() -> None:
    # C1: implemented at 40 arrives before scheduled at 10; the later time wins.
    # C2: implemented and rolled_back at the same second: rolled back comes later in the lifecycle.
    records = [
        change("C1", "implemented", 40),
        change("C1", "scheduled", 10),
        change("C2", "rolled_back", 40),
        change("C2", "implemented", 40),
    ]
    assert [(c.change_id, c.status) for c in latest_changes(records)] == [
        ("C1", "implemented"),
        ("C2", "rolled_back"),
    ]
    assert [c.status for c in latest_changes(reversed(records))] == ["implemented", "rolled_back"]


def test_a_change_counts_in_the_window_its_latest_end_falls_in() -> None:
    # C1 was scheduled to end at 2,500 (after the window) but ended at 1,900: it counts.
    # C2 ends exactly at the window end 2,000 (exclusive): it belongs to the next window.
    # C3 ended at 900, before the window.
    records = [
        change("C1", "scheduled", 10, end=2_500),
        change("C1", "implemented", 20, end=1_900),
        change("C2", "implemented", 20, end=2_000),
        change("C3", "failed", 20, end=900),
    ]
    summary = change_summary(records, WINDOW)
    assert (summary.total, summary.success_ratio, summary.failed_changes) == (1, 1.0, ())


def test_a_caused_incident_stays_linked_after_later_updates() -> None:
    # INC-7 is named on the failed event; the later rollback event leaves the field empty.
    records = [
        change("C1", "failed", 20, incident="INC-7"),
        change("C1", "rolled_back", 30),
        change("C2", "implemented", 20),
        change("C0", "implemented", 20, incident="INC-3"),
    ]
    summary = change_summary(records, WINDOW)
    assert summary.caused_incidents == (("C0", "INC-3"), ("C1", "INC-7"))
    assert summary.by_status == {"implemented": 2, "rolled_back": 1}


def test_without_finished_or_live_changes_the_ratios_are_empty() -> None:
    # Only scheduled and cancelled changes: no outcome to judge (success None); the one
    # scheduled normal change is not an emergency (share 0 / 1 = 0).
    scheduled = change_summary(
        [change("C1", "scheduled", 10), change("C2", "cancelled", 10)], WINDOW
    )
    assert (scheduled.success_ratio, scheduled.emergency_share) == (None, 0.0)
    empty = change_summary([], WINDOW)
    assert (empty.total, empty.success_ratio, empty.emergency_share) == (0, None, None)
    assert (empty.by_status, empty.caused_incidents) == ({}, ())


def test_only_changes_whose_latest_end_is_since_or_later_are_read() -> None:
    # C1 first ended at 900, then was reopened to end at 1,200: all its events stay, the old
    # one too (its incident link would carry over). C2 last ended at 999, before 1,000: it
    # counts in no window from 1,000 on, though an earlier event said 1,500. C3 ends on 1,000.
    records = [
        change("C1", "implemented", 10, end=900, incident="INC-1"),
        change("C2", "scheduled", 10, end=1_500),
        change("C1", "rolled_back", 20, end=1_200),
        change("C2", "implemented", 20, end=999),
        change("C3", "failed", 30, end=1_000),
    ]
    kept = changes_ending_since(records, 1_000)
    assert kept == [records[0], records[2], records[4]]
    assert change_summary(kept, WINDOW) == change_summary(records, WINDOW)
