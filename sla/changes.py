"""Changes: latest state per change, success ratio, emergency share, change-caused incidents.

Every rule here is written out with a worked example in docs/formulas.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from sla.intervals import Interval

ChangeKind = Literal["standard", "normal", "emergency"]
ChangeStatus = Literal["scheduled", "implemented", "failed", "rolled_back", "cancelled"]

# Of two events of one change at the same second, the one further along the lifecycle wins
# (implemented, then rolled back), so the result does not depend on the order events arrive in.
LIFECYCLE: Final[dict[ChangeStatus, int]] = {
    "scheduled": 0,
    "cancelled": 1,
    "implemented": 2,
    "failed": 3,
    "rolled_back": 4,
}
UNSUCCESSFUL: Final[tuple[ChangeStatus, ...]] = ("failed", "rolled_back")


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One change event: the change's state as of ``time`` (the event time), in epoch seconds."""

    change_id: str
    kind: ChangeKind
    status: ChangeStatus
    start: int
    end: int
    time: int
    caused_incident: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeSummary:
    """The changes of one service that ended in a window, by their latest state."""

    total: int
    by_status: dict[ChangeStatus, int]
    by_kind: dict[ChangeKind, int]
    success_ratio: float | None
    emergency_share: float | None
    caused_incidents: tuple[tuple[str, str], ...]
    failed_changes: tuple[str, ...]


def latest_changes(records: Iterable[ChangeRecord]) -> list[ChangeRecord]:
    """The latest state of each change, by ``change_id``.

    The latest event time wins; at equal times the status further along the lifecycle. A
    ``caused_incident`` once reported stays linked even if a later event leaves it empty.
    """
    latest: dict[str, ChangeRecord] = {}
    incident: dict[str, tuple[int, str]] = {}
    for record in records:
        current = latest.get(record.change_id)
        if current is None or (record.time, LIFECYCLE[record.status]) >= (
            current.time,
            LIFECYCLE[current.status],
        ):
            latest[record.change_id] = record
        if record.caused_incident is not None:
            known = incident.get(record.change_id)
            if known is None or (record.time, record.caused_incident) >= known:
                incident[record.change_id] = (record.time, record.caused_incident)
    return [
        replace(record, caused_incident=incident[change_id][1]) if change_id in incident else record
        for change_id, record in sorted(latest.items())
    ]


def changes_ending_since(records: Sequence[ChangeRecord], since: int) -> list[ChangeRecord]:
    """The records, in their order, of the changes whose latest ``end`` is at or after ``since``.

    The others count in no window that starts at ``since`` or later: a service's whole
    change history need not be read for this month's figures.
    """
    ending = {c.change_id for c in latest_changes(records) if c.end >= since}
    return [record for record in records if record.change_id in ending]


def ended_in(records: Iterable[ChangeRecord], window: Interval) -> list[ChangeRecord]:
    """The latest state of the changes whose latest ``end`` lies in ``window``."""
    return [c for c in latest_changes(records) if window.start <= c.end < window.end]


def change_summary(records: Iterable[ChangeRecord], window: Interval) -> ChangeSummary:
    """Counts and ratios of the changes whose latest ``end`` lies in ``window``."""
    return ChangeTally.of(ended_in(records, window)).summary()


@dataclass(frozen=True, slots=True)
class ChangeTally:
    """Changes counted by latest status and kind, with the few a summary names: all
    `ChangeSummary` reads of them.

    The live figures count the changes of a window in the store instead of building a
    record for every event of every change in it.
    """

    counts: Mapping[tuple[ChangeStatus, ChangeKind], int] = field(default_factory=dict)
    caused_incidents: tuple[tuple[str, str], ...] = ()
    """(change, incident) of the changes that caused one, by change id."""
    failed_changes: tuple[str, ...] = ()
    """The changes that failed or were rolled back, by change id."""

    @classmethod
    def of(cls, latest: Iterable[ChangeRecord]) -> ChangeTally:
        """The tally of the latest state of each change (`latest_changes`), by change id."""
        changes = list(latest)
        return cls(
            Counter((c.status, c.kind) for c in changes),
            tuple(
                (c.change_id, c.caused_incident) for c in changes if c.caused_incident is not None
            ),
            tuple(c.change_id for c in changes if c.status in UNSUCCESSFUL),
        )

    def summary(self) -> ChangeSummary:
        """Counts and ratios of the tallied changes."""
        by_status: Counter[ChangeStatus] = Counter()
        by_kind: Counter[ChangeKind] = Counter()
        for (status, kind), n in self.counts.items():
            by_status[status] += n
            by_kind[kind] += n
        total = sum(by_status.values())
        finished = by_status["implemented"] + sum(by_status[s] for s in UNSUCCESSFUL)
        not_cancelled = total - by_status["cancelled"]
        emergencies = sum(
            n
            for (status, kind), n in self.counts.items()
            if kind == "emergency" and status != "cancelled"
        )
        return ChangeSummary(
            total=total,
            by_status=dict(sorted(by_status.items())),
            by_kind=dict(sorted(by_kind.items())),
            success_ratio=by_status["implemented"] / finished if finished else None,
            emergency_share=emergencies / not_cancelled if not_cancelled else None,
            caused_incidents=self.caused_incidents,
            failed_changes=self.failed_changes,
        )
