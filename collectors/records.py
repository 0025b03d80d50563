"""Change, continuity and maintenance records: the flat JSON shape people and tools send, as events.

A record is the event's payload plus `service` (the subject) and an optional `time`; one
builder serves the webhooks, the `slamon record` commands and the file imports, so every
channel validates alike and names the record's own fields in its errors.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final
from uuid import UUID, uuid5

from sla.errors import InvalidEventError
from sla.events import (
    ChangeData,
    CloudEvent,
    ContinuityData,
    EventData,
    EventType,
    MaintenanceData,
    new_event,
)

# Event ids are uuid5 names in this namespace, so the same record always gets the same id.
_RECORD_ID_NAMESPACE: Final = UUID("6f0f2b1e-5d4c-4f4b-9a7e-2c1d3b5a8e90")
# new_event needs some id; the real one is derived from the validated payload afterwards.
_PROVISIONAL_ID: Final = "provisional"
_MAX_SHOWN: Final = 60
CLI_SOURCE: Final = "cli/record"
"""The CloudEvents `source` of records entered with `slamon record`."""


class RecordKind(StrEnum):
    """The three kinds of record, by their singular name (`slamon record change ...`)."""

    CHANGE = "change"
    CONTINUITY = "continuity"
    MAINTENANCE = "maintenance"

    @classmethod
    def of(cls, name: str) -> RecordKind:
        """The kind named `name`, singular (`change`) or plural (`changes`); ValueError if none."""
        for kind in cls:
            if name in (kind.value, kind.plural):
                return kind
        choices = ", ".join(sorted({*cls, *(kind.plural for kind in cls)}))
        raise ValueError(f"unknown record kind {name!r}: expected one of {choices}")

    @property
    def plural(self) -> str:
        """The collective name: webhook path and auth source (`changes`), `slamon import` word."""
        return "changes" if self is RecordKind.CHANGE else self.value

    @property
    def event_type(self) -> EventType:
        """The event type a record of this kind becomes."""
        return _SHAPES[self].event_type

    @property
    def id_field(self) -> str:
        """The field holding the record's own stable id (`change_id`, ...)."""
        return _SHAPES[self].id_field

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field a record of this kind may carry, in documentation order."""
        return ("service", *_SHAPES[self].payload.model_fields, "time")

    @property
    def required_fields(self) -> tuple[str, ...]:
        """The fields a record of this kind must carry."""
        payload = _SHAPES[self].payload.model_fields
        return ("service", *(name for name, field in payload.items() if field.is_required()))


@dataclass(frozen=True)
class _Shape:
    """How one kind of record maps onto its event."""

    event_type: EventType
    payload: type[EventData]
    id_field: str


_SHAPES: Final = {
    RecordKind.CHANGE: _Shape(EventType.CHANGE, ChangeData, "change_id"),
    RecordKind.CONTINUITY: _Shape(EventType.CONTINUITY, ContinuityData, "test_id"),
    RecordKind.MAINTENANCE: _Shape(EventType.MAINTENANCE, MaintenanceData, "window_id"),
}


def record_event(
    kind: RecordKind,
    record: object,
    *,
    services: Collection[str],
    received_at: datetime,
    source: str,
) -> CloudEvent:
    """The event of one record (a JSON object); InvalidEventError naming the record's field if bad.

    Absent and null fields are the same; `time` defaults to `received_at`. The event id is
    derived from the type, service and payload (and `time` when the record gives one), so
    sending the same record twice yields one event.
    """
    if not isinstance(record, Mapping):
        raise InvalidEventError("not_object", f"expected a JSON object, got {_shown(record)}")
    fields: dict[str, Any] = {
        str(name): value for name, value in record.items() if value is not None
    }
    service = fields.pop("service", None)
    time = fields.pop("time", None)
    _check_service(service, services)
    try:
        # new_event validates `time` as the envelope's RFC 3339 timestamp, strings included.
        event = new_event(
            kind.event_type,
            service,
            fields,
            source=source,
            time=received_at if time is None else time,
            id=_PROVISIONAL_ID,
        )
    except InvalidEventError as exc:
        # The record's payload fields sit at the top level, not under `data`.
        raise InvalidEventError(exc.code, exc.reason.removeprefix("data.")) from None
    return event.model_copy(update={"id": _record_event_id(event, time_given=time is not None)})


def record_events(
    kind: RecordKind,
    document: object,
    *,
    services: Collection[str],
    received_at: datetime,
    source: str,
) -> list[CloudEvent]:
    """The events of a decoded JSON document: one record object or a non-empty array of them.

    An error in an array names the record by index, e.g. `[2]: start: ...`; nothing is
    returned unless every record is valid.
    """
    if isinstance(document, Mapping):
        return [
            record_event(kind, document, services=services, received_at=received_at, source=source)
        ]
    if not isinstance(document, list):
        raise InvalidEventError(
            "not_object",
            f"expected a JSON object or an array of objects, got {_shown(document)}",
        )
    if not document:
        raise InvalidEventError("missing_field", "expected at least one record, got an empty array")
    events = []
    for index, record in enumerate(document):
        try:
            event = record_event(
                kind, record, services=services, received_at=received_at, source=source
            )
        except InvalidEventError as exc:
            raise InvalidEventError(exc.code, f"[{index}]: {exc.reason}") from None
        events.append(event)
    return events


def record_from_cli(
    kind: RecordKind,
    fields: Mapping[str, object],
    *,
    services: Collection[str],
    received_at: datetime | None = None,
) -> CloudEvent:
    """The event of `slamon record <kind>` from the typed fields; `time` defaults to now."""
    return record_event(
        kind,
        {name: value for name, value in fields.items() if value is not None},
        services=services,
        received_at=datetime.now(UTC) if received_at is None else received_at,
        source=CLI_SOURCE,
    )


def _check_service(service: object, services: Collection[str]) -> None:
    """Reject a record whose service is absent or not one of the configured `services`."""
    if service is None:
        raise InvalidEventError("missing_field", "service: required field missing")
    if not isinstance(service, str) or service not in services:
        known = ", ".join(sorted(services)) or "none configured"
        raise InvalidEventError(
            "invalid_field", f"service: unknown service {service!r} (configured: {known})"
        )


def _record_event_id(event: CloudEvent, *, time_given: bool) -> str:
    """A uuid5 of what the record says, blind to how its instants were written (Z or +01:00)."""
    identity: dict[str, object] = {
        "type": str(event.type),
        "subject": event.subject,
        "data": {name: _canonical(value) for name, value in event.data.model_dump().items()},
    }
    if time_given:
        identity["time"] = _canonical(event.time)
    return str(uuid5(_RECORD_ID_NAMESPACE, json.dumps(identity, sort_keys=True)))


def _canonical(value: object) -> object:
    """An instant as UTC text; anything else unchanged."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def _shown(value: object) -> str:
    """A decoded JSON value as a short JSON text, for error messages."""
    text = json.dumps(value, default=repr)
    return text if len(text) <= _MAX_SHOWN else f"{text[: _MAX_SHOWN - 3]}..."
