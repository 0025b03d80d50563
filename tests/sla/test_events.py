"""The event wire contract: valid events round-trip, bad ones are rejected with a precise reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sla.errors import InvalidEventError
from sla.events import (
    EVENT_CLASSES,
    FAMILIES,
    PROBE,
    REJECTION_CODES,
    CloudEvent,
    EventType,
    OutageEvent,
    ProbeData,
    ProbeEvent,
    StatusData,
    dlq_topic,
    family_of,
    new_event,
    parse_event,
    topic_for,
)

ENVELOPE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "test/events",
    "time": "2026-03-02T09:15:30Z",
    "subject": "checkout",
}

VALID_DATA: dict[EventType, dict[str, Any]] = {
    EventType.PROBE: {"check": "health", "ok": True, "latency_ms": 41.5, "status_code": 200},
    EventType.STATUS: {"state": "degraded", "reason": "p99 latency over 2s"},
    EventType.OUTAGE: {"outage_id": "inc-1", "start": "2026-03-02T09:14:00+01:00", "end": None},
    EventType.MAINTENANCE: {
        "window_id": "mw-1",
        "start": "2026-03-08T02:00:00Z",
        "end": "2026-03-08T04:00:00Z",
        "reason": "database upgrade",
    },
    EventType.CAPACITY: {"resource": "disk", "used": 412, "capacity": 500, "unit": "GiB"},
    EventType.TICKET: {"ticket_id": "INC-1", "kind": "incident", "priority": "P1", "status": "new"},
    EventType.CHANGE: {
        "change_id": "CHG-1",
        "kind": "emergency",
        "status": "rolled_back",
        "start": "2026-03-08T02:00:00Z",
        "end": "2026-03-08T02:00:00Z",
        "caused_incident": "INC-1",
    },
    EventType.CONTINUITY: {
        "test_id": "dr-1",
        "scenario": "region-failover",
        "invoked_at": "2026-02-14T10:00:00Z",
        "restored_at": "2026-02-14T12:30:00Z",
        "data_restored_to": "2026-02-14T09:50:00Z",
        "outcome": "passed",
    },
}


def message(type_: str = PROBE, data: Any = None, **attributes: Any) -> bytes:
    """A JSON event of ``type_``: its valid example with ``attributes`` set (``...`` drops one)."""
    example = VALID_DATA.get(EventType(type_) if type_ in EVENT_CLASSES else PROBE)
    document = {**ENVELOPE, "type": type_, "data": example if data is None else data}
    document.update(attributes)
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def probe(**fields: Any) -> dict[str, Any]:
    """The valid probe payload with ``fields`` set (``...`` removes one)."""
    return {k: v for k, v in {**VALID_DATA[EventType.PROBE], **fields}.items() if v is not ...}


def rejection(raw: bytes, **kwargs: Any) -> InvalidEventError:
    """The error parse_event raises for ``raw``."""
    with pytest.raises(InvalidEventError) as caught:
        parse_event(raw, **kwargs)
    return caught.value


@pytest.mark.parametrize("event_type", list(EventType))
def test_a_valid_event_of_each_type_parses_and_round_trips(event_type: EventType) -> None:
    event = parse_event(message(event_type))

    assert type(event) is EVENT_CLASSES[event_type]
    assert event.type == event_type
    assert (event.id, event.subject) == ("evt-1", "checkout")
    assert event.time == datetime(2026, 3, 2, 9, 15, 30, tzinfo=UTC)
    assert parse_event(event.to_json()) == event


def test_parsed_fields_are_typed_and_defaults_filled() -> None:
    outage = parse_event(message(EventType.OUTAGE))
    probe_event = parse_event(message(data=probe(latency_ms=41)))

    assert isinstance(outage, OutageEvent)
    # 09:14 at +01:00 is 08:14 UTC; the offset is kept, not normalised.
    assert outage.data.start == datetime(2026, 3, 2, 8, 14, tzinfo=UTC)
    assert outage.data.start.utcoffset() == timedelta(hours=1)
    assert (outage.data.end, outage.data.planned, outage.data.impact) == (None, False, "full")
    assert b'"start":"2026-03-02T09:14:00+01:00"' in outage.to_json()
    assert isinstance(probe_event, ProbeEvent)
    # A JSON integer is fine where a number is expected.
    assert probe_event.data.latency_ms == 41.0
    assert probe_event.datacontenttype == "application/json"


def test_to_json_is_compact_with_z_for_utc() -> None:
    event = parse_event(message(EventType.STATUS))

    assert event.to_json() == (
        b'{"specversion":"1.0","id":"evt-1","source":"test/events","type":"slamon.status.v1",'
        b'"time":"2026-03-02T09:15:30Z","subject":"checkout","datacontenttype":"application/json",'
        b'"data":{"state":"degraded","reason":"p99 latency over 2s"}}'
    )


@pytest.mark.parametrize(
    ("raw", "code", "reason"),
    [
        pytest.param(b'{"specversion": "1.0",', "not_json", "invalid JSON: EOF", id="not-json"),
        pytest.param(b"", "not_json", "invalid JSON", id="empty"),
        # 0xff never occurs in UTF-8; 16 bytes precede it.
        pytest.param(
            b'{"subject": "caf\xff"}', "not_json", "invalid UTF-8 at offset 16", id="utf8"
        ),
        pytest.param(b"[1, 2]", "not_object", "expected a JSON object, got an array", id="array"),
        pytest.param(b'"event"', "not_object", "expected a JSON object, got a string", id="string"),
        pytest.param(
            message(specversion="0.3"),
            "bad_specversion",
            "specversion: expected '1.0', got '0.3'",
            id="specversion",
        ),
        pytest.param(
            message(specversion=1.0),
            "bad_specversion",
            "specversion: expected '1.0', got 1.0",
            id="specversion-number",
        ),
        pytest.param(
            message(specversion=...),
            "missing_field",
            "specversion: required field missing",
            id="no-specversion",
        ),
        pytest.param(
            message("slamon.bogus.v1"),
            "unknown_type",
            "type: expected one of slamon.probe.v1, slamon.status.v1, slamon.outage.v1, ",
            id="unknown-type",
        ),
        pytest.param(message(type=...), "missing_field", "type: required field", id="no-type"),
        pytest.param(
            message(subject=...),
            "missing_field",
            "subject: required field missing",
            id="no-subject",
        ),
        pytest.param(message(data=...), "missing_field", "data: required field", id="no-data"),
        pytest.param(
            message(data=probe(latency_ms=...)),
            "missing_field",
            "data.latency_ms: required field missing",
            id="no-data-field",
        ),
        pytest.param(
            message(time="2026-03-02T09:15:30"),
            "naive_time",
            "time: timestamp has no UTC offset (add Z or e.g. +01:00), got '2026-03-02T09:15:30'",
            id="naive-time",
        ),
        pytest.param(
            message(EventType.OUTAGE, {"outage_id": "inc-1", "start": "2026-03-02T09:14:00"}),
            "naive_time",
            "data.start: timestamp has no UTC offset",
            id="naive-data-time",
        ),
        pytest.param(
            message(time="1772442930"),
            "invalid_field",
            "time: expected an RFC 3339 timestamp such as 2026-03-01T12:00:00Z, got '1772442930'",
            id="unix-time-string",
        ),
        pytest.param(
            message(time=1772442930), "invalid_field", "time: expected an RFC 3339", id="unix-time"
        ),
        pytest.param(
            message(time="2026-02-30T09:15:30Z"),
            "invalid_field",
            "time: expected a valid datetime",
            id="impossible-date",
        ),
        pytest.param(
            message(data=probe(ok="yes")),
            "invalid_field",
            "data.ok: expected true or false, got 'yes'",
            id="ok-yes",
        ),
        pytest.param(
            message(data=probe(ok=1)),
            "invalid_field",
            "data.ok: expected true or false, got 1",
            id="ok-one",
        ),
        pytest.param(
            message(data=probe(latency_ms="fast")),
            "invalid_field",
            "data.latency_ms: expected a number, got 'fast'",
            id="latency-string",
        ),
        pytest.param(
            message(data=probe(latency_ms=-1)),
            "invalid_field",
            "data.latency_ms: expected greater than or equal to 0, got -1",
            id="latency-negative",
        ),
        pytest.param(
            message(data=probe(status_code=200.0)),
            "invalid_field",
            "data.status_code: expected an integer, got 200.0",
            id="status-code-float",
        ),
        pytest.param(
            message(EventType.STATUS, {"state": "sideways"}),
            "invalid_field",
            "data.state: expected 'up', 'down' or 'degraded', got 'sideways'",
            id="state-literal",
        ),
        pytest.param(
            message(id=""),
            "invalid_field",
            "id: expected a non-empty string, got ''",
            id="empty-id",
        ),
        pytest.param(
            message(id=17), "invalid_field", "id: expected a string, got 17", id="numeric-id"
        ),
        pytest.param(
            message(data="up"), "invalid_field", "data: expected an object, got 'up'", id="data-str"
        ),
        pytest.param(
            message(
                EventType.MAINTENANCE,
                {**VALID_DATA[EventType.MAINTENANCE], "end": "2026-03-08T01:59:59Z"},
            ),
            "invalid_field",
            "data.end: 2026-03-08T01:59:59+00:00 is before start 2026-03-08T02:00:00+00:00",
            id="end-before-start",
        ),
        pytest.param(
            message(
                EventType.CONTINUITY,
                {**VALID_DATA[EventType.CONTINUITY], "restored_at": "2026-02-14T09:00:00Z"},
            ),
            "invalid_field",
            "data.restored_at: 2026-02-14T09:00:00+00:00 is before invoked_at",
            id="restored-before-invoked",
        ),
        pytest.param(
            message(data=probe(colour="green")),
            "invalid_field",
            "data.colour: unknown field",
            id="extra-data-field",
        ),
        pytest.param(
            message(data_base64="AAAA"),
            "invalid_field",
            "data_base64: unknown attribute; extension names are 1 to 20 lowercase",
            id="bad-extension-name",
        ),
        pytest.param(
            message(sampledrate=0.5),
            "invalid_field",
            "sampledrate: expected a string, integer or boolean, got 0.5",
            id="bad-extension-value",
        ),
        pytest.param(
            message(datacontenttype="text/plain"),
            "invalid_field",
            "datacontenttype: expected a string matching ^application/",
            id="content-type",
        ),
    ],
)
def test_bad_messages_are_rejected_with_code_and_field(raw: bytes, code: str, reason: str) -> None:
    error = rejection(raw)

    assert error.code == code
    assert error.reason.startswith(reason), error.reason
    assert code in REJECTION_CODES


def test_size_is_checked_before_anything_else() -> None:
    # 2 MB of invalid JSON is too large before it is not JSON.
    huge = b"[" * 2_000_000
    small = message()

    assert rejection(huge).code == "too_large"
    assert rejection(huge).reason == "message is 2000000 bytes, over the limit of 262144 bytes"
    assert rejection(small, max_bytes=len(small) - 1).code == "too_large"
    assert parse_event(small, max_bytes=len(small)).id == "evt-1"


def test_checks_run_in_contract_order() -> None:
    # specversion before type, type before fields, missing before invalid before naive.
    assert rejection(message("slamon.bogus.v1", specversion="2.0")).code == "bad_specversion"
    assert rejection(message("slamon.bogus.v1", subject=...)).code == "unknown_type"
    mixed = rejection(message(time="2026-03-02T09:15:30", id="", subject=...))
    assert (mixed.code, mixed.reason) == (
        "missing_field",
        "subject: required field missing (and 2 more)",
    )
    assert rejection(message(time="2026-03-02T09:15:30", id="")).code == "invalid_field"


def test_extensions_are_kept_and_written_back() -> None:
    event = parse_event(message(traceparent="00-abc-01", partitionkey=7, sampled=True))

    assert event.extensions == {"traceparent": "00-abc-01", "partitionkey": 7, "sampled": True}
    assert b',"traceparent":"00-abc-01","partitionkey":7,"sampled":true}' in event.to_json()
    assert parse_event(event.to_json()) == event


def test_new_event_fills_id_and_time() -> None:
    before = datetime.now(UTC)
    event = new_event(
        PROBE, "checkout", ProbeData(check="health", ok=True, latency_ms=3), source="test/unit"
    )

    assert isinstance(event, ProbeEvent)
    assert uuid.UUID(event.id).version == 4
    assert before <= event.time <= datetime.now(UTC)
    assert (event.source, event.subject, event.specversion) == ("test/unit", "checkout", "1.0")
    assert parse_event(event.to_json()) == event


def test_new_event_validates_dict_data_and_keeps_given_id_time_and_extensions() -> None:
    at = datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=-5)))
    event = new_event(
        "slamon.outage.v1",
        "checkout",
        {"outage_id": "inc-1", "start": "2026-03-02T09:00:00-05:00", "impact": "partial"},
        source="webhook/jira",
        time=at,
        id="jira-1",
        extensions={"traceparent": "00-abc-01"},
    )

    assert isinstance(event, OutageEvent)
    assert (event.id, event.time, event.data.impact) == ("jira-1", at, "partial")
    assert event.extensions == {"traceparent": "00-abc-01"}
    assert b'"time":"2026-03-02T10:00:00-05:00"' in event.to_json()
    assert parse_event(event.to_json()) == event


@pytest.mark.parametrize(
    ("kwargs", "code", "reason"),
    [
        ({"type_": "slamon.bogus.v1"}, "unknown_type", "type: expected one of slamon.probe.v1"),
        ({"time": datetime(2026, 3, 2, 9, 0)}, "naive_time", "time: timestamp has no UTC offset"),
        ({"data": StatusData(state="up")}, "invalid_field", "data: expected an object"),
        ({"data": {"check": "h", "ok": 1, "latency_ms": 1}}, "invalid_field", "data.ok:"),
        ({"subject": ""}, "invalid_field", "subject: expected a non-empty string"),
        ({"extensions": {"subject": "x"}}, "invalid_field", "subject: a core attribute"),
        ({"extensions": {"traceParent": "x"}}, "invalid_field", "traceParent: unknown attribute"),
    ],
)
def test_new_event_rejects_what_parse_event_rejects(
    kwargs: dict[str, Any], code: str, reason: str
) -> None:
    arguments: dict[str, Any] = {
        "type_": PROBE,
        "subject": "checkout",
        "data": VALID_DATA[EventType.PROBE],
        "source": "test/unit",
        **kwargs,
    }
    with pytest.raises(InvalidEventError) as caught:
        new_event(**arguments)

    assert caught.value.code == code
    assert caught.value.reason.startswith(reason), caught.value.reason


def test_a_plain_cloud_event_must_carry_the_payload_of_its_type() -> None:
    envelope = {**ENVELOPE, "type": "slamon.probe.v1"}

    with pytest.raises(ValidationError, match="carries ProbeData, not StatusData"):
        CloudEvent(**envelope, data=StatusData(state="up"))
    assert CloudEvent(**envelope, data=ProbeData(check="h", ok=True, latency_ms=0)).type == PROBE


@pytest.mark.parametrize(
    ("event_type", "family"),
    [
        ("slamon.probe.v1", "availability"),
        ("slamon.status.v1", "availability"),
        ("slamon.outage.v1", "availability"),
        ("slamon.maintenance.v1", "availability"),
        ("slamon.capacity.v1", "capacity"),
        ("slamon.ticket.v1", "tickets"),
        ("slamon.change.v1", "changes"),
        ("slamon.continuity.v1", "continuity"),
    ],
)
def test_family_and_topic_of_each_type(event_type: str, family: str) -> None:
    assert family_of(event_type) == family
    assert topic_for("acme.sla", event_type) == f"acme.sla.{family}"


def test_topics_of_families_and_dead_letters() -> None:
    assert [topic_for("slamon", family) for family in FAMILIES] == [
        "slamon.availability",
        "slamon.capacity",
        "slamon.tickets",
        "slamon.changes",
        "slamon.continuity",
    ]
    assert dlq_topic("slamon") == "slamon.dlq"
    with pytest.raises(InvalidEventError) as caught:
        family_of("slamon.bogus.v1")
    assert caught.value.code == "unknown_type"


# Offsets in whole minutes: RFC 3339 cannot write seconds in an offset.
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
probe_data = st.builds(
    ProbeData,
    check=st.text(min_size=1),
    ok=st.booleans(),
    latency_ms=st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    status_code=st.none() | st.integers(min_value=100, max_value=599),
    error=st.none() | st.text(),
)


@given(
    data=probe_data,
    subject=st.text(min_size=1),
    event_id=st.text(min_size=1),
    at=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=offsets
    ),
)
def test_any_valid_probe_event_round_trips(
    data: ProbeData, subject: str, event_id: str, at: datetime
) -> None:
    event = new_event(PROBE, subject, data, source="test/hypothesis", time=at, id=event_id)

    assert parse_event(event.to_json()) == event
