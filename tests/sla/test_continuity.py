"""Continuity: achieved RTO and RPO, pass/fail against objectives, last test, overdue plans."""

from __future__ import annotations

from datetime import datetime

from sla.continuity import ContinuityTest, continuity_summary, judge_test
from sla.intervals import Interval

HOUR = 3600
DAY = 86_400
RTO = 4 * HOUR
RPO = 15 * 60


def at(text: str) -> int:
    """UTC epoch seconds of an ISO 8601 time with offset."""
    return int(datetime.fromisoformat(text).timestamp())


def drill(
    test_id: str, invoked: str, restored: str, data_to: str, outcome: str = "passed"
) -> ContinuityTest:
    """A region-failover test on 10 Mar 2026 with local (UTC) clock times."""
    day = "2026-03-10T{}:00+00:00"
    return ContinuityTest(
        test_id,
        "region-failover",
        at(day.format(invoked)),
        at(day.format(restored)),
        at(day.format(data_to)),
        outcome,
    )


def test_rto_and_rpo_within_objectives_pass() -> None:
    # Invoked 10:00, restored 13:30: RTO 3 h 30 min = 12,600 s <= 4 h. Data back to 09:50:
    # RPO 10 min = 600 s <= 15 min.
    result = judge_test(drill("T1", "10:00", "13:30", "09:50"), rto_seconds=RTO, rpo_seconds=RPO)
    assert (result.achieved_rto_seconds, result.achieved_rpo_seconds) == (12_600, 600)
    assert (result.rto_met, result.rpo_met, result.passed) == (True, True, True)


def test_rto_and_rpo_missed_fail() -> None:
    # Restored 14:30: RTO 4 h 30 min = 16,200 s > 14,400. Data back to 09:40: 1,200 s > 900.
    result = judge_test(drill("T2", "10:00", "14:30", "09:40"), rto_seconds=RTO, rpo_seconds=RPO)
    assert (result.achieved_rto_seconds, result.achieved_rpo_seconds) == (16_200, 1_200)
    assert (result.rto_met, result.rpo_met, result.passed) == (False, False, False)


def test_figures_exactly_at_the_objectives_are_met_and_one_miss_fails() -> None:
    # Restored 14:00: RTO exactly 4 h, met. Data back to 09:45: RPO exactly 15 min, met.
    exact = judge_test(drill("T3", "10:00", "14:00", "09:45"), rto_seconds=RTO, rpo_seconds=RPO)
    assert (exact.rto_met, exact.rpo_met, exact.passed) == (True, True, True)
    # Same RTO, data back to 09:44: RPO 16 min misses, so the test fails.
    one_miss = judge_test(drill("T4", "10:00", "14:00", "09:44"), rto_seconds=RTO, rpo_seconds=RPO)
    assert (one_miss.rto_met, one_miss.rpo_met, one_miss.passed) == (True, False, False)


def test_the_verdict_rests_on_the_figures_not_the_outcome_text() -> None:
    # The tester wrote "failed" but the figures are within both objectives.
    result = judge_test(
        drill("T5", "10:00", "11:00", "10:00", outcome="failed"), rto_seconds=RTO, rpo_seconds=RPO
    )
    assert result.passed is True
    assert result.test.outcome == "failed"


def test_without_objectives_nothing_is_judged_and_with_one_only_that_one() -> None:
    test = drill("T6", "10:00", "15:00", "09:59")
    none = judge_test(test, rto_seconds=None, rpo_seconds=None)
    assert (none.rto_met, none.rpo_met, none.passed) == (None, None, None)
    # Only an RPO of 15 min: 60 s lost is within it, and the 5 h RTO is not judged.
    rpo_only = judge_test(test, rto_seconds=None, rpo_seconds=RPO)
    assert (rpo_only.rto_met, rpo_only.rpo_met, rpo_only.passed) == (None, True, True)


def test_data_restored_past_the_invocation_lost_nothing() -> None:
    # Replication kept running until 10:05 after the 10:00 invocation: RPO 0, not -300 s.
    result = judge_test(drill("T7", "10:00", "10:30", "10:05"), rto_seconds=RTO, rpo_seconds=0)
    assert (result.achieved_rpo_seconds, result.rpo_met) == (0, True)


def test_overdue_after_the_interval_and_due_exactly_at_it() -> None:
    # Last test invoked at day 10, interval 90 d: next due at day 100. At day 100 it is due
    # but not overdue; one second later it is overdue.
    tests = [
        ContinuityTest("old", "restore", 0, HOUR, -HOUR, "passed"),
        ContinuityTest("new", "restore", 10 * DAY, 10 * DAY + HOUR, 10 * DAY, "passed"),
    ]
    window = Interval(0, 200 * DAY)
    due = continuity_summary(tests, window, 100 * DAY, test_interval=90 * DAY)
    assert (due.overdue, due.next_due) == (False, 100 * DAY)
    assert due.last_test is not None and due.last_test.test.test_id == "new"
    late = continuity_summary(tests, window, 100 * DAY + 1, test_interval=90 * DAY)
    assert (late.overdue, late.next_due) == (True, 100 * DAY)


def test_never_tested_is_overdue_and_without_interval_nothing_is() -> None:
    never = continuity_summary([], Interval(0, DAY), DAY, test_interval=30 * DAY)
    assert (never.last_test, never.overdue, never.next_due, never.tests_in_window) == (
        None,
        True,
        None,
        0,
    )
    unplanned = continuity_summary([], Interval(0, DAY), DAY)
    assert (unplanned.overdue, unplanned.next_due) == (None, None)


def test_window_counts_tests_and_the_last_test_ignores_later_ones() -> None:
    # March window; tests on 1 Feb, 10 Mar, 20 Mar and 2 Apr. At = 25 Mar: two tests in the
    # window, the last test up to 25 Mar is the 20 Mar one (2 Apr lies after it).
    def test(test_id: str, day: str) -> ContinuityTest:
        invoked = at(f"2026-{day}T10:00:00+00:00")
        return ContinuityTest(test_id, "restore", invoked, invoked + HOUR, invoked, "passed")

    tests = [
        test("apr", "04-02"),
        test("mar20", "03-20"),
        test("feb", "02-01"),
        test("mar10", "03-10"),
    ]
    window = Interval(at("2026-03-01T00:00:00+00:00"), at("2026-04-01T00:00:00+00:00"))
    summary = continuity_summary(
        tests, window, at("2026-03-25T00:00:00+00:00"), rto_seconds=RTO, rpo_seconds=RPO
    )
    assert summary.tests_in_window == 2
    assert [r.test.test_id for r in summary.tests] == ["mar10", "mar20"]
    assert summary.last_test is not None and summary.last_test.test.test_id == "mar20"
    assert all(r.passed for r in summary.tests)
