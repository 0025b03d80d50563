"""The demo history generator: deterministic, valid, and telling the stories the demo needs."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sla.config import SlamonConfig
from sla.events import (
    CapacityData,
    ChangeData,
    CloudEvent,
    ContinuityData,
    EventType,
    OutageData,
    ProbeData,
    TicketData,
    parse_event,
)
from slamon.configfile import load_config
from slamon.demodata import TREND_NOW, generate_history, main, write_jsonl

DEMO_YAML = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"
NOW = datetime(2026, 11, 21, 10, 37, tzinfo=UTC)
# The history ends at NOW truncated to the hour and starts with the third month before NOW's.
END = datetime(2026, 11, 21, 10, tzinfo=UTC)
START = datetime(2026, 8, 1, tzinfo=UTC)
FULL_MONTHS = ("2026-08", "2026-09", "2026-10")


@pytest.fixture(scope="module")
def config() -> SlamonConfig:
    return load_config(DEMO_YAML)


@pytest.fixture(scope="module")
def history(config: SlamonConfig) -> list[CloudEvent]:
    return list(generate_history(config, NOW))


def _of_type(events: Iterable[CloudEvent], type_: EventType) -> list[CloudEvent]:
    return [event for event in events if event.type == type_]


def _month(event: CloudEvent) -> str:
    return f"{event.time:%Y-%m}"


def test_same_seed_and_hour_give_identical_bytes(config: SlamonConfig, tmp_path: Path) -> None:
    small = config.model_copy(update={"services": config.services[:2]})
    first, second, other_seed = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    write_jsonl(generate_history(small, NOW.replace(minute=5), months=1), first)
    write_jsonl(generate_history(small, NOW.replace(minute=55), months=1), second)
    write_jsonl(generate_history(small, NOW, months=1, seed=7), other_seed)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other_seed.read_bytes()


def test_every_event_parses_back_and_names_a_configured_service(
    config: SlamonConfig, history: list[CloudEvent]
) -> None:
    services = {service.id for service in config.services}
    for event in history:
        assert parse_event(event.to_json()) == event
        assert event.subject in services


def test_event_ids_are_unique(history: list[CloudEvent]) -> None:
    assert len({event.id for event in history}) == len(history)


def test_history_is_time_ordered_within_its_window_and_small(history: list[CloudEvent]) -> None:
    times = [event.time for event in history]
    assert times == sorted(times)
    assert times[0] >= START and times[-1] < END
    assert len(history) <= 150_000


def test_every_type_covers_each_full_month(history: list[CloudEvent]) -> None:
    for type_ in EventType:
        months = {_month(event) for event in _of_type(history, type_)}
        if type_ == EventType.CONTINUITY:
            # One test per quarter: Q3 (August or September) and Q4 (October).
            assert months & {"2026-08", "2026-09"} and "2026-10" in months
        else:
            assert set(FULL_MONTHS) <= months, type_


def _failure_runs(
    history: list[CloudEvent], threshold: int
) -> list[tuple[str, datetime, datetime]]:
    """(service, first failed probe, last failed probe) of runs of >= threshold failures."""
    runs = []
    probes = sorted(_of_type(history, EventType.PROBE), key=lambda e: (e.subject, e.time))
    for (service, ok), group in itertools.groupby(
        probes, key=lambda e: (e.subject, isinstance(e.data, ProbeData) and e.data.ok)
    ):
        failed = list(group)
        if not ok and len(failed) >= threshold:
            runs.append((service, failed[0].time, failed[-1].time))
    return runs


def test_probe_outages_happen_every_month_and_one_crosses_a_month_boundary(
    history: list[CloudEvent],
) -> None:
    # outage_from_probes is {failures: 3} for every demo service.
    runs = _failure_runs(history, threshold=3)
    assert {f"{start:%Y-%m}" for _, start, _ in runs} >= set(FULL_MONTHS)
    assert any(f"{start:%Y-%m}" != f"{last:%Y-%m}" for _, start, last in runs)


def test_outage_events_open_and_close_the_same_outage_including_a_planned_one(
    history: list[CloudEvent],
) -> None:
    by_id: dict[str, list[OutageData]] = defaultdict(list)
    for event in _of_type(history, EventType.OUTAGE):
        assert isinstance(event.data, OutageData)
        by_id[event.data.outage_id].append(event.data)
    assert {_month(e) for e in _of_type(history, EventType.OUTAGE)} >= set(FULL_MONTHS)
    for updates in by_id.values():
        if len(updates) == 2:
            opened, closed = updates
            assert opened.end is None and closed.end is not None and closed.start == opened.start
    assert any(updates[0].planned for updates in by_id.values())


def test_tickets_have_realistic_lifecycles(history: list[CloudEvent]) -> None:
    tickets: dict[str, list[TicketData]] = defaultdict(list)
    for event in _of_type(history, EventType.TICKET):
        assert isinstance(event.data, TicketData)
        tickets[event.data.ticket_id].append(event.data)
    statuses = {ticket_id: [t.status for t in updates] for ticket_id, updates in tickets.items()}
    assert all(steps[:2] == ["new", "open"] for steps in statuses.values())
    assert all(sum(t.responded for t in updates) <= 1 for updates in tickets.values())
    assert {t.kind for updates in tickets.values() for t in updates} == {"incident", "request"}
    assert {t.priority for updates in tickets.values() for t in updates} == {"P1", "P2", "P3", "P4"}
    reopened = [
        steps
        for steps in statuses.values()
        if "resolved" in steps and "in_progress" in steps[steps.index("resolved") + 1 :]
    ]
    assert len(reopened) == 1
    assert sum(len({t.priority for t in updates}) > 1 for updates in tickets.values()) == 1
    assert any("pending" in steps for steps in statuses.values())
    still_open = [s for s in statuses.values() if s[-1] not in ("resolved", "closed")]
    assert still_open


def test_an_emergency_change_caused_an_existing_incident(history: list[CloudEvent]) -> None:
    changes = [e.data for e in _of_type(history, EventType.CHANGE)]
    assert all(isinstance(change, ChangeData) for change in changes)
    caused = [
        c.caused_incident for c in changes if isinstance(c, ChangeData) and c.kind == "emergency"
    ]
    incidents = {
        e.data.ticket_id
        for e in _of_type(history, EventType.TICKET)
        if isinstance(e.data, TicketData)
    }
    assert caused and all(incident in incidents for incident in caused)
    outcomes = {c.status for c in changes if isinstance(c, ChangeData)}
    assert {"implemented", "failed", "rolled_back"} <= outcomes


def test_one_continuity_test_misses_its_rpo(
    config: SlamonConfig, history: list[CloudEvent]
) -> None:
    missed = []
    for event in _of_type(history, EventType.CONTINUITY):
        assert isinstance(event.data, ContinuityData)
        rpo = config.service(event.subject).objectives.rpo
        achieved_rpo = event.data.invoked_at - event.data.data_restored_to
        if rpo is not None and achieved_rpo.total_seconds() > rpo:
            missed.append(event.subject)
    assert missed == ["payments"]


def test_the_erp_disk_fills_up_slowly(history: list[CloudEvent]) -> None:
    samples = [
        e.data
        for e in _of_type(history, EventType.CAPACITY)
        if e.subject == "erp-reporting" and isinstance(e.data, CapacityData)
    ]
    ratios = [sample.used / sample.capacity for sample in samples]
    week = 24 * 7
    first_week, last_week = sum(ratios[:week]) / week, sum(ratios[-week:]) / week
    # 0.0022 a day over the ~112 days between the two weeks: about 0.24 of growth.
    assert last_week - first_week == pytest.approx(0.24, abs=0.02)
    assert ratios[-1] == pytest.approx(TREND_NOW, abs=0.05)


def test_cli_writes_the_history_as_json_lines(tmp_path: Path) -> None:
    small = tmp_path / "small.yaml"
    small.write_text(
        "services:\n"
        "  - id: shop\n"
        "    name: Shop\n"
        "    probes: [{name: health, http: 'http://demo.local/checkout/health'}]\n"
    )
    out = tmp_path / "history.jsonl"
    assert (
        main(
            [
                "--config",
                str(small),
                "--out",
                str(out),
                "--now",
                "2026-09-02T00:00:00+00:00",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    lines = out.read_bytes().splitlines()
    # One probe every 5 minutes through all of June, July and August and the 1st of September.
    assert sum(parse_event(line).type == EventType.PROBE for line in lines) == (92 + 1) * 288
