"""Service continuity: achieved RTO and RPO per test, pass/fail, last test and overdue plans.

Every rule here is written out with a worked example in docs/formulas.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sla.intervals import Interval


@dataclass(frozen=True, slots=True)
class ContinuityTest:
    """One continuity test as recorded (the latest event of its ``test_id``), in epoch seconds."""

    test_id: str
    scenario: str
    invoked_at: int
    restored_at: int
    data_restored_to: int
    outcome: str


@dataclass(frozen=True, slots=True)
class ContinuityResult:
    """A test judged against the objectives; ``*_met`` and ``passed`` None when nothing to judge."""

    test: ContinuityTest
    achieved_rto_seconds: int
    achieved_rpo_seconds: int
    rto_met: bool | None
    rpo_met: bool | None
    passed: bool | None


@dataclass(frozen=True, slots=True)
class ContinuitySummary:
    """The tests of one service in a window, its last test and whether a test is overdue."""

    tests: tuple[ContinuityResult, ...]
    tests_in_window: int
    last_test: ContinuityResult | None
    overdue: bool | None
    next_due: int | None


def judge_test(
    test: ContinuityTest, *, rto_seconds: int | None, rpo_seconds: int | None
) -> ContinuityResult:
    """Achieved RTO and RPO of ``test`` and whether each is within its objective (at most it)."""
    achieved_rto = test.restored_at - test.invoked_at
    # Data recovered up to a point after the invocation lost nothing: the RPO is 0, not negative.
    achieved_rpo = max(0, test.invoked_at - test.data_restored_to)
    rto_met = None if rto_seconds is None else achieved_rto <= rto_seconds
    rpo_met = None if rpo_seconds is None else achieved_rpo <= rpo_seconds
    # The outcome is free text from the tester, so the verdict rests on the figures alone.
    judged = [met for met in (rto_met, rpo_met) if met is not None]
    return ContinuityResult(
        test=test,
        achieved_rto_seconds=achieved_rto,
        achieved_rpo_seconds=achieved_rpo,
        rto_met=rto_met,
        rpo_met=rpo_met,
        passed=all(judged) if judged else None,
    )


def continuity_summary(
    tests: Iterable[ContinuityTest],
    window: Interval,
    at: int,
    *,
    rto_seconds: int | None = None,
    rpo_seconds: int | None = None,
    test_interval: int | None = None,
) -> ContinuitySummary:
    """Tests invoked in ``window``, the last test invoked by ``at`` and whether one is overdue.

    The next test is due ``test_interval`` after the last one and overdue once ``at`` is past
    that; a service never tested is overdue at once. Without an interval nothing is overdue
    (``overdue`` and ``next_due`` are None).
    """
    judged = sorted(
        (judge_test(t, rto_seconds=rto_seconds, rpo_seconds=rpo_seconds) for t in tests),
        key=lambda result: (result.test.invoked_at, result.test.test_id),
    )
    in_window = tuple(r for r in judged if window.start <= r.test.invoked_at < window.end)
    before = [r for r in judged if r.test.invoked_at <= at]
    last = before[-1] if before else None
    next_due = None
    overdue = None
    if test_interval is not None:
        next_due = None if last is None else last.test.invoked_at + test_interval
        overdue = next_due is None or at > next_due
    return ContinuitySummary(
        tests=in_window,
        tests_in_window=len(in_window),
        last_test=last,
        overdue=overdue,
        next_due=next_due,
    )
