"""Records become change, continuity and maintenance events with stable ids, field-named errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collectors.records import (
    CLI_SOURCE,
    RecordKind,
    record_event,
    record_events,
    record_from_cli,
)
from sla.errors import InvalidEventError
from sla.events import ChangeData, ContinuityData, EventType, MaintenanceData, parse_event

SERVICES = ("checkout", "payments")
RECEIVED = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CHANGE = {
    "service": "checkout",
    "change_id": "CHG-1",
    "kind": "normal",
    "status": "implemented",
    "start": "2026-03-01T22:00:00Z",
    "end": "2026-03-01T23:30:00Z",
}


def change(**overrides: str) -> dict[str, str]:
    """CHANGE with some fields replaced; an empty string removes the field."""
    record = {**CHANGE, **overrides}
    return {name: value for name, value in record.items() if value}


def build(record: object, kind: RecordKind = RecordKind.CHANGE) -> str:
    """The event id of `record`, built as a webhook would."""
    event = record_event(
        kind, record, services=SERVICES, received_at=RECEIVED, source="webhook/test"
    )
    return event.id


def reason_of(record: object, kind: RecordKind = RecordKind.CHANGE) -> tuple[str, str]:
    """The (code, reason) `record` is rejected with."""
    with pytest.raises(InvalidEventError) as caught:
        build(record, kind)
    return caught.value.code, caught.value.reason


def test_cli_change_becomes_a_change_event_at_receipt_time() -> None:
    event = record_from_cli(
        RecordKind.CHANGE,
        {
            "service": "checkout",
            "change_id": "CHG-1",
            "kind": "normal",
            "status": "implemented",
            "start": "2026-03-01T22:00:00Z",
            "end": "2026-03-01T23:30:00+01:00",
            "caused_incident": "INC-7",
        },
        services=SERVICES,
        received_at=RECEIVED,
    )
    assert (event.type, event.subject, event.source, event.time) == (
        EventType.CHANGE,
        "checkout",
        CLI_SOURCE,
        RECEIVED,
    )
    assert event.data == ChangeData(
        change_id="CHG-1",
        kind="normal",
        status="implemented",
        start=datetime(2026, 3, 1, 22, 0, tzinfo=UTC),
        # 23:30 at +01:00 is 22:30 UTC: half an hour after the start.
        end=datetime(2026, 3, 1, 22, 30, tzinfo=UTC),
        caused_incident="INC-7",
    )
    assert parse_event(event.to_json()) == event


def test_cli_continuity_and_maintenance_with_explicit_time() -> None:
    test = record_from_cli(
        RecordKind.CONTINUITY,
        {
            "service": "payments",
            "test_id": "DR-2026-Q1",
            "scenario": "region-failover",
            "invoked_at": "2026-02-10T09:00:00Z",
            "restored_at": "2026-02-10T11:15:00Z",
            "data_restored_to": "2026-02-10T08:50:00Z",
            "outcome": "passed",
            "time": "2026-02-10T12:00:00Z",
        },
        services=SERVICES,
    )
    assert test.type == EventType.CONTINUITY
    assert test.time == datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
    assert isinstance(test.data, ContinuityData)
    # achieved RTO = 11:15 - 09:00 = 2h15m; RPO = 09:00 - 08:50 = 10m.
    assert test.data.restored_at - test.data.invoked_at == timedelta(hours=2, minutes=15)
    assert test.data.invoked_at - test.data.data_restored_to == timedelta(minutes=10)

    window = record_from_cli(
        RecordKind.MAINTENANCE,
        {
            "service": "checkout",
            "window_id": "MW-12",
            "start": datetime(2026, 3, 7, 2, 0, tzinfo=UTC),
            "end": datetime(2026, 3, 7, 4, 0, tzinfo=UTC),
            "reason": "database upgrade",
            "change_ref": "CHG-1",
        },
        services=SERVICES,
        received_at=RECEIVED,
    )
    assert window.type == EventType.MAINTENANCE
    assert window.data == MaintenanceData(
        window_id="MW-12",
        start=datetime(2026, 3, 7, 2, 0, tzinfo=UTC),
        end=datetime(2026, 3, 7, 4, 0, tzinfo=UTC),
        reason="database upgrade",
        change_ref="CHG-1",
    )


def test_cli_time_defaults_to_now() -> None:
    before = datetime.now(UTC)
    event = record_from_cli(
        RecordKind.MAINTENANCE,
        {
            "service": "checkout",
            "window_id": "MW-1",
            "start": "2026-03-07T02:00:00Z",
            "end": "2026-03-07T04:00:00Z",
            "reason": "patching",
        },
        services=SERVICES,
    )
    assert before <= event.time <= datetime.now(UTC)


def test_the_same_record_sent_twice_gets_the_same_id() -> None:
    first = build(CHANGE)
    # Received later, with the instants written at another offset and a null optional field:
    # still the same record, so the same event id and the store keeps one.
    again = record_event(
        RecordKind.CHANGE,
        {
            **CHANGE,
            "start": "2026-03-01T23:00:00+01:00",
            "end": "2026-03-02T00:30:00+01:00",
            "caused_incident": None,
        },
        services=SERVICES,
        received_at=RECEIVED + timedelta(hours=1),
        source=CLI_SOURCE,
    )
    assert again.id == first


def test_a_different_record_gets_a_different_id() -> None:
    ids = {
        build(CHANGE),
        build(change(status="rolled_back")),
        build(change(service="payments")),
        build(change(end="2026-03-01T23:45:00Z")),
        build(change(caused_incident="INC-7")),
        # An explicit time is part of what the record says.
        build(change(time="2026-03-01T23:31:00Z")),
        build(change(time="2026-03-01T23:32:00Z")),
    }
    assert len(ids) == 7


def test_naive_time_names_the_field() -> None:
    assert reason_of(change(start="2026-03-01T22:00:00")) == (
        "naive_time",
        "start: timestamp has no UTC offset (add Z or e.g. +01:00), got '2026-03-01T22:00:00'",
    )
    code, reason = reason_of(change(time="2026-03-01T22:00:00"))
    assert (code, reason.split(":")[0]) == ("naive_time", "time")


def test_end_before_start_is_rejected() -> None:
    assert reason_of(change(end="2026-03-01T21:00:00Z")) == (
        "invalid_field",
        "end: 2026-03-01T21:00:00+00:00 is before start 2026-03-01T22:00:00+00:00",
    )
    continuity = {
        "service": "payments",
        "test_id": "DR-1",
        "scenario": "restore",
        "invoked_at": "2026-02-10T09:00:00Z",
        "restored_at": "2026-02-10T08:00:00Z",
        "data_restored_to": "2026-02-10T08:50:00Z",
        "outcome": "failed",
    }
    code, reason = reason_of(continuity, RecordKind.CONTINUITY)
    assert (code, reason.split(":")[0]) == ("invalid_field", "restored_at")


def test_unknown_or_missing_service_is_named() -> None:
    assert reason_of(change(service="billing")) == (
        "invalid_field",
        "service: unknown service 'billing' (configured: checkout, payments)",
    )
    assert reason_of(change(service="")) == ("missing_field", "service: required field missing")


def test_bad_enum_and_unknown_field_are_named() -> None:
    assert reason_of(change(kind="major")) == (
        "invalid_field",
        "kind: expected 'standard', 'normal' or 'emergency', got 'major'",
    )
    assert reason_of(change(approver="ann")) == ("invalid_field", "approver: unknown field")
    assert reason_of(change(change_id="")) == ("missing_field", "change_id: required field missing")


def test_an_array_is_all_or_nothing_and_names_the_bad_index() -> None:
    events = record_events(
        RecordKind.CHANGE,
        [CHANGE, change(change_id="CHG-2")],
        services=SERVICES,
        received_at=RECEIVED,
        source="webhook/changes",
    )
    assert [e.data.change_id for e in events if isinstance(e.data, ChangeData)] == [
        "CHG-1",
        "CHG-2",
    ]
    with pytest.raises(InvalidEventError) as caught:
        record_events(
            RecordKind.CHANGE,
            [CHANGE, "CHG-2"],
            services=SERVICES,
            received_at=RECEIVED,
            source="webhook/changes",
        )
    assert caught.value.reason == '[1]: expected a JSON object, got "CHG-2"'


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "expected at least one record, got an empty array"),
        (42, "expected a JSON object or an array of objects, got 42"),
    ],
)
def test_documents_that_hold_no_records_are_rejected(document: object, reason: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        record_events(
            RecordKind.MAINTENANCE,
            document,
            services=SERVICES,
            received_at=RECEIVED,
            source="webhook/maintenance",
        )
    assert caught.value.reason == reason


def test_record_kinds_by_either_name() -> None:
    assert [RecordKind.of(name) for name in ("changes", "change", "continuity")] == [
        RecordKind.CHANGE,
        RecordKind.CHANGE,
        RecordKind.CONTINUITY,
    ]
    assert RecordKind.MAINTENANCE.plural == "maintenance"
    with pytest.raises(ValueError, match="unknown record kind 'outages'"):
        RecordKind.of("outages")
    assert RecordKind.MAINTENANCE.required_fields == (
        "service",
        "window_id",
        "start",
        "end",
        "reason",
    )


def test_offsets_other_than_utc_are_kept_in_the_event() -> None:
    event = record_event(
        RecordKind.MAINTENANCE,
        {
            "service": "checkout",
            "window_id": "MW-3",
            "start": "2026-03-07T02:00:00+01:00",
            "end": "2026-03-07T04:00:00+01:00",
            "reason": "patching",
        },
        services=SERVICES,
        received_at=RECEIVED,
        source="webhook/maintenance",
    )
    assert isinstance(event.data, MaintenanceData)
    assert event.data.start.utcoffset() == timedelta(hours=1)
