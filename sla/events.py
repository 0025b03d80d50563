"""The event wire contract: CloudEvents 1.0 envelopes around the eight typed slamon payloads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self, TypeVar
from uuid import uuid4

import pydantic_core
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from sla.errors import InvalidEventError

TicketStatus = Literal["new", "open", "in_progress", "pending", "resolved", "closed"]
"""The lifecycle states of a service desk ticket."""


class EventType(StrEnum):
    """The event types slamon understands; each value is a CloudEvents ``type``."""

    PROBE = "slamon.probe.v1"
    STATUS = "slamon.status.v1"
    OUTAGE = "slamon.outage.v1"
    MAINTENANCE = "slamon.maintenance.v1"
    CAPACITY = "slamon.capacity.v1"
    TICKET = "slamon.ticket.v1"
    CHANGE = "slamon.change.v1"
    CONTINUITY = "slamon.continuity.v1"


PROBE: Final = EventType.PROBE
STATUS: Final = EventType.STATUS
OUTAGE: Final = EventType.OUTAGE
MAINTENANCE: Final = EventType.MAINTENANCE
CAPACITY: Final = EventType.CAPACITY
TICKET: Final = EventType.TICKET
CHANGE: Final = EventType.CHANGE
CONTINUITY: Final = EventType.CONTINUITY

FAMILIES: Final = ("availability", "capacity", "tickets", "changes", "continuity")

_FAMILY_OF: Final[dict[EventType, str]] = {
    EventType.PROBE: "availability",
    EventType.STATUS: "availability",
    EventType.OUTAGE: "availability",
    EventType.MAINTENANCE: "availability",
    EventType.CAPACITY: "capacity",
    EventType.TICKET: "tickets",
    EventType.CHANGE: "changes",
    EventType.CONTINUITY: "continuity",
}

REJECTION_CODES: Final = (
    "too_large",
    "not_json",
    "not_object",
    "bad_specversion",
    "unknown_type",
    "missing_field",
    "invalid_field",
    "naive_time",
)
"""Every ``InvalidEventError.code`` parse_event can raise (the ``reason`` label values)."""

DLQ_ERROR_CODE_HEADER: Final = "slamon-error-code"
DLQ_ERROR_REASON_HEADER: Final = "slamon-error-reason"
DLQ_ORIGINAL_TOPIC_HEADER: Final = "slamon-original-topic"

DEFAULT_MAX_BYTES: Final = 262_144

_RFC3339_LOCAL = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
_RFC3339_OFFSET = r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
# The offset is optional here so that a missing one is reported as naive_time, not as a bad format.
_TIMESTAMP_SHAPE = re.compile(f"{_RFC3339_LOCAL}{_RFC3339_OFFSET}?")
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")


def _timestamp_shape(value: object) -> object:
    """Pass only datetimes and RFC 3339 strings on; pydantic alone would also take unix times.

    Instants before year 1 or after year 9999 in UTC (0001-01-01T00:00:00+01:00) are refused:
    Python cannot convert them to UTC, so every consumer of the event would fail on them.
    """
    if isinstance(value, datetime):
        if value.year in _EDGE_YEARS:
            _in_utc(value)
        return value
    if isinstance(value, str) and _TIMESTAMP_SHAPE.fullmatch(value):
        if value.startswith(_EDGE_DAYS):
            try:
                parsed = datetime.fromisoformat(value.upper().replace(" ", "T"))
            except ValueError:
                return value  # pydantic names what is wrong with it
            _in_utc(parsed)
        return value
    raise PydanticCustomError(
        "timestamp_format", "expected an RFC 3339 timestamp such as 2026-03-01T12:00:00Z"
    )


_EDGE_YEARS: Final = frozenset({1, 9999})
_EDGE_DAYS: Final = ("0001-01-01", "9999-12-31")


def _in_utc(value: datetime) -> None:
    """Raise a validation error when `value` has no UTC equivalent within years 1 to 9999."""
    if value.tzinfo is None:
        return  # reported as naive_time
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise PydanticCustomError(
            "timestamp_range", "timestamp out of range: before year 1 or after 9999 in UTC"
        ) from None


Timestamp = Annotated[
    AwareDatetime,
    Strict(False),  # lets Python callers pass RFC 3339 strings, as JSON producers do
    BeforeValidator(_timestamp_shape),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": f"^{_RFC3339_LOCAL}{_RFC3339_OFFSET}$",
        }
    ),
]
"""A timezone-aware instant written in RFC 3339 with an offset (``Z`` or ``+01:00``)."""

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]


def _extension_name(name: str) -> str:
    """Reject attribute names the CloudEvents spec does not allow for extensions."""
    if _EXTENSION_NAME.fullmatch(name) is None:
        raise PydanticCustomError(
            "extension_name",
            "unknown attribute; extension names are 1 to 20 lowercase letters or digits",
        )
    return name


def _extension_value(value: object) -> object:
    """Reject extension values that are not CloudEvents scalars (string, integer, boolean)."""
    if isinstance(value, str | int):  # bool is an int
        return value
    raise PydanticCustomError("extension_value", "expected a string, integer or boolean")


ExtensionName = Annotated[str, BeforeValidator(_extension_name)]
ExtensionValue = Annotated[str | int | bool, BeforeValidator(_extension_value)]


class EventData(BaseModel):
    """Base of the eight payloads: strict types, no unknown fields, immutable."""

    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, use_attribute_docstrings=True
    )


_Instant = TypeVar("_Instant", bound=datetime | None)


def _not_before(value: _Instant, info: ValidationInfo, earlier: str) -> _Instant:
    """Return ``value`` unless it lies before the already validated field ``earlier``."""
    reference = info.data.get(earlier)
    if value is not None and reference is not None and value < reference:
        raise PydanticCustomError(
            "time_order",
            "{value} is before {earlier} {reference}",
            {"value": value.isoformat(), "earlier": earlier, "reference": reference.isoformat()},
        )
    return value


class _Window(EventData):
    """A payload with a ``start`` and an ``end`` that must not lie before it."""

    @field_validator("end", check_fields=False)
    @classmethod
    def _end_not_before_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        return _not_before(end, info, "start")


class ProbeData(EventData):
    """The result of one synthetic check of a service endpoint."""

    check: NonEmptyStr
    """Name of the check, unique within the service (e.g. `health`)."""
    ok: bool
    """Whether the check passed."""
    latency_ms: float = Field(ge=0, allow_inf_nan=False)
    """How long the check took, in milliseconds."""
    status_code: int | None = Field(default=None, ge=100, le=599)
    """HTTP status code of the response, for HTTP checks."""
    error: str | None = None
    """Why the check failed, when it did."""
    cert_expires_at: Timestamp | None = None
    """When the TLS certificate the endpoint presented expires, for HTTPS checks."""


class StatusData(EventData):
    """A state change reported by any monitor (e.g. an Alertmanager alert firing or resolved)."""

    state: Literal["up", "down", "degraded"]
    """The service state from now on."""
    reason: str | None = None
    """Why the state changed."""


class OutageData(_Window):
    """An outage recorded by a monitor, an incident tool or a person."""

    outage_id: NonEmptyStr
    """Stable id of the outage; later events with the same id update it."""
    start: Timestamp
    """When the service became unavailable."""
    end: Timestamp | None = None
    """When the service was restored; null while the outage is ongoing."""
    planned: bool = False
    """Planned outages do not count as downtime."""
    impact: Literal["full", "partial"] = "full"
    """Whether the whole service or only part of it was unavailable."""
    ref: str | None = None
    """Reference to the incident or ticket describing the outage."""


class MaintenanceData(_Window):
    """A planned maintenance window, excluded from the agreed service time."""

    window_id: NonEmptyStr
    """Stable id of the window; later events with the same id update it."""
    start: Timestamp
    """When the window opens."""
    end: Timestamp
    """When the window closes."""
    reason: NonEmptyStr
    """What the maintenance is for."""
    change_ref: str | None = None
    """The change the maintenance implements."""


class CapacityData(EventData):
    """One sample of how much of a resource is in use."""

    resource: NonEmptyStr
    """The resource measured: cpu, memory, disk, connections, ..."""
    used: float = Field(ge=0, allow_inf_nan=False)
    """Amount in use, in `unit`."""
    capacity: float = Field(gt=0, allow_inf_nan=False)
    """Amount available in total, in `unit`."""
    unit: NonEmptyStr
    """Unit of `used` and `capacity` (e.g. `cores`, `bytes`, `ratio`)."""
    host: str | None = None
    """The host or instance measured, when the service has several."""


class TicketData(EventData):
    """The state of a service desk ticket after a change to it."""

    ticket_id: NonEmptyStr
    """Stable id of the ticket in the service desk."""
    kind: Literal["incident", "request", "problem"]
    """What the ticket is."""
    priority: NonEmptyStr
    """Current priority; selects the response and resolution goals (e.g. `P1`)."""
    status: TicketStatus
    """Current status; `pending` may pause the clocks, `resolved` and `closed` stop them."""
    responded: bool = False
    """True on the event carrying the first agent response."""
    customer: str | None = None
    """The customer the ticket was raised for."""


class ChangeData(_Window):
    """A change to the service and its outcome."""

    change_id: NonEmptyStr
    """Stable id of the change; later events with the same id update it."""
    kind: Literal["standard", "normal", "emergency"]
    """The change category."""
    status: Literal["scheduled", "implemented", "failed", "rolled_back", "cancelled"]
    """The change outcome so far."""
    start: Timestamp
    """When the change starts (scheduled) or started."""
    end: Timestamp
    """When the change ends (scheduled) or ended."""
    caused_incident: str | None = None
    """Id of the incident ticket this change caused."""


class ContinuityData(EventData):
    """The result of a service continuity test (a failover or restore exercise)."""

    test_id: NonEmptyStr
    """Stable id of the test."""
    scenario: NonEmptyStr
    """What was tested (e.g. `region-failover`)."""
    invoked_at: Timestamp
    """When the continuity plan was invoked."""
    restored_at: Timestamp
    """When the service was restored; restored_at - invoked_at is the achieved RTO."""
    data_restored_to: Timestamp
    """The last recoverable data point; invoked_at - data_restored_to is the achieved RPO."""
    outcome: NonEmptyStr
    """The test result as recorded by the tester (e.g. `passed`, `failed`)."""

    @field_validator("restored_at")
    @classmethod
    def _restored_not_before_invoked(cls, restored_at: datetime, info: ValidationInfo) -> datetime:
        return _not_before(restored_at, info, "invoked_at")


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 structured-mode event carrying one slamon payload."""

    # Code annotates with CloudEvent; parse_event and new_event return the typed subclass of
    # the event's type (ProbeEvent, ...), whose tagged union keeps parsing in Rust.

    model_config = ConfigDict(
        strict=True,
        extra="allow",
        frozen=True,
        use_attribute_docstrings=True,
        json_schema_extra={"propertyNames": {"pattern": f"^{_EXTENSION_NAME.pattern}$"}},
    )
    # CloudEvents extension attributes sit next to the core ones, so they arrive as extras.
    __pydantic_extra__: dict[ExtensionName, ExtensionValue] = Field(init=False)

    specversion: Literal["1.0"]
    """The CloudEvents version."""
    id: NonEmptyStr
    """Unique per event: the same id twice is one event."""
    source: NonEmptyStr
    """Who produced the event, e.g. `collector/http/checkout-health`."""
    type: Annotated[EventType, Strict(False)]
    """The event type; selects the schema of `data`."""
    time: Timestamp
    """When it happened (not when it was received)."""
    subject: NonEmptyStr
    """The service id; also the Kafka message key."""
    datacontenttype: str = Field(
        default="application/json", pattern=r"^application/(?:[a-z0-9.+-]*\+)?json(?:;.*)?$"
    )
    """Media type of `data`; always a JSON type."""
    data: Annotated[EventData, WithJsonSchema({"type": "object"})]
    """The payload; its schema depends on `type`."""

    @model_validator(mode="after")
    def _data_matches_type(self) -> Self:
        if type(self) is not CloudEvent:
            # A typed subclass (ProbeEvent, ...) declares its data class, so pydantic checked
            # it already; skipping the lookup saves a sixth of the parse time.
            return self
        expected = EVENT_CLASSES[self.type].model_fields["data"].annotation
        if type(self.data) is not expected:
            raise PydanticCustomError(
                "data_type",
                "data: a {type} event carries {expected}, not {actual}",
                {
                    "type": str(self.type),
                    "expected": getattr(expected, "__name__", str(expected)),
                    "actual": type(self.data).__name__,
                },
            )
        return self

    @property
    def extensions(self) -> dict[str, str | int | bool]:
        """The CloudEvents extension attributes (e.g. ``traceparent``)."""
        return dict(self.__pydantic_extra__ or {})

    def to_json(self) -> bytes:
        """Serialise as compact structured-mode JSON; ``parse_event`` reads it back equal."""
        return self.__pydantic_serializer__.to_json(self)


class ProbeEvent(CloudEvent):
    """`slamon.probe.v1`: the result of one synthetic check (family availability)."""

    type: Literal[EventType.PROBE]
    data: ProbeData


class StatusEvent(CloudEvent):
    """`slamon.status.v1`: a service state change from a monitor (family availability)."""

    type: Literal[EventType.STATUS]
    data: StatusData


class OutageEvent(CloudEvent):
    """`slamon.outage.v1`: an outage opened, updated or closed (family availability)."""

    type: Literal[EventType.OUTAGE]
    data: OutageData


class MaintenanceEvent(CloudEvent):
    """`slamon.maintenance.v1`: a planned maintenance window (family availability)."""

    type: Literal[EventType.MAINTENANCE]
    data: MaintenanceData


class CapacityEvent(CloudEvent):
    """`slamon.capacity.v1`: a resource usage sample (family capacity)."""

    type: Literal[EventType.CAPACITY]
    data: CapacityData


class TicketEvent(CloudEvent):
    """`slamon.ticket.v1`: a service desk ticket changed (family tickets)."""

    type: Literal[EventType.TICKET]
    data: TicketData


class ChangeEvent(CloudEvent):
    """`slamon.change.v1`: a change scheduled, implemented or failed (family changes)."""

    type: Literal[EventType.CHANGE]
    data: ChangeData


class ContinuityEvent(CloudEvent):
    """`slamon.continuity.v1`: a continuity test result (family continuity)."""

    type: Literal[EventType.CONTINUITY]
    data: ContinuityData


EVENT_CLASSES: Final[dict[EventType, type[CloudEvent]]] = {
    EventType.PROBE: ProbeEvent,
    EventType.STATUS: StatusEvent,
    EventType.OUTAGE: OutageEvent,
    EventType.MAINTENANCE: MaintenanceEvent,
    EventType.CAPACITY: CapacityEvent,
    EventType.TICKET: TicketEvent,
    EventType.CHANGE: ChangeEvent,
    EventType.CONTINUITY: ContinuityEvent,
}

# One tagged union validates any event in a single pass of Rust code (the hot path).
_ANY_EVENT = TypeAdapter(
    Annotated[
        ProbeEvent
        | StatusEvent
        | OutageEvent
        | MaintenanceEvent
        | CapacityEvent
        | TicketEvent
        | ChangeEvent
        | ContinuityEvent,
        Field(discriminator="type"),
    ]
)

# Among several problems, the reported code is the first of these that applies.
_FIELD_CODE_RANK: Final = {"not_json": 0, "missing_field": 1, "invalid_field": 2, "naive_time": 3}
_PLAIN_MESSAGES: Final = {
    "missing": "required field missing",
    "extra_forbidden": "unknown field",
    "float_type": "expected a number",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "dict_type": "expected an object",
    "string_too_short": "expected a non-empty string",
    "string_pattern_mismatch": "expected a string matching {pattern}",
    "timezone_aware": "timestamp has no UTC offset (add Z or e.g. +01:00)",
}
# Messages that already say everything; the rest end with the offending value.
_WITHOUT_INPUT: Final = frozenset({"missing", "extra_forbidden", "time_order"})
_MAX_SHOWN: Final = 80
# Beyond this many unknown payload fields new_event refuses at the first without validating:
# pydantic reports each one, and 100,000 of them in a 1 MiB webhook body cost ~400 MB.
_MAX_UNKNOWN_FIELDS: Final = 16


def family_of(type_: str) -> str:
    """The family (and topic suffix) of an event type: availability, capacity, tickets, ..."""
    try:
        return _FAMILY_OF[EventType(type_)]
    except ValueError:
        raise InvalidEventError("unknown_type", _unknown_type_reason(type_)) from None


def topic_for(prefix: str, type_or_family: str) -> str:
    """The Kafka topic of an event type or a family, e.g. ``slamon.availability``."""
    if type_or_family in FAMILIES:
        return f"{prefix}.{type_or_family}"
    return f"{prefix}.{family_of(type_or_family)}"


def dlq_topic(prefix: str) -> str:
    """The dead-letter topic that receives every message that failed to parse."""
    return f"{prefix}.dlq"


def new_event(
    type_: str,
    subject: str,
    data: EventData | Mapping[str, Any],
    *,
    source: str,
    time: datetime | None = None,
    id: str | None = None,
    extensions: Mapping[str, str | int | bool] | None = None,
) -> CloudEvent:
    """Build a validated event: a fresh uuid4 id and the current time unless given."""
    event_class = _event_class(type_)
    if isinstance(data, Mapping):
        _refuse_many_unknown_fields(event_class, data)
    attributes: dict[str, Any] = dict(extensions or {})
    core = attributes.keys() & CloudEvent.model_fields.keys()
    if core:
        raise InvalidEventError("invalid_field", f"{min(core)}: a core attribute, not an extension")
    attributes.update(
        specversion="1.0",
        id=str(uuid4()) if id is None else id,
        source=source,
        type=EventType(type_),
        time=datetime.now(UTC) if time is None else time,
        subject=subject,
        data=data,
    )
    try:
        return event_class.model_validate(attributes)
    except ValidationError as exc:
        raise _rejection(exc.errors(), tagged=False) from None


def parse_event(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> CloudEvent:
    """Parse and validate one structured-mode message; raise InvalidEventError saying why not."""
    if len(raw) > max_bytes:
        raise InvalidEventError(
            "too_large", f"message is {len(raw)} bytes, over the limit of {max_bytes} bytes"
        )
    try:
        return _ANY_EVENT.validate_json(raw)
    except ValidationError as exc:
        failure = exc
    # The slow path runs only for bad messages: it names the first broken rule in contract order.
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEventError("not_json", f"invalid UTF-8 at offset {exc.start}") from None
    try:
        document = pydantic_core.from_json(raw)
    except ValueError as exc:
        raise InvalidEventError("not_json", f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidEventError("not_object", f"expected a JSON object, got {_json_kind(document)}")
    if "specversion" not in document:
        raise InvalidEventError("missing_field", "specversion: required field missing")
    if document["specversion"] != "1.0":
        raise InvalidEventError(
            "bad_specversion", f"specversion: expected '1.0', got {_show(document['specversion'])}"
        )
    if "type" not in document:
        raise InvalidEventError("missing_field", "type: required field missing")
    if not isinstance(document["type"], str) or document["type"] not in EVENT_CLASSES:
        raise InvalidEventError("unknown_type", _unknown_type_reason(document["type"]))
    raise _rejection(failure.errors(), tagged=True)


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas (draft 2020-12) by file name: the bare envelope and one per event type."""
    named: dict[str, type[CloudEvent]] = {"cloudevent": CloudEvent}
    named.update({str(event_type): cls for event_type, cls in EVENT_CLASSES.items()})
    return {
        f"{name}.json": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:slamon:schema:{name}",
            **cls.model_json_schema(),
        }
        for name, cls in named.items()
    }


def _event_class(type_: str) -> type[CloudEvent]:
    """The typed event class of ``type_``."""
    try:
        return EVENT_CLASSES[EventType(type_)]
    except ValueError:
        raise InvalidEventError("unknown_type", _unknown_type_reason(type_)) from None


def _refuse_many_unknown_fields(event_class: type[CloudEvent], data: Mapping[str, Any]) -> None:
    """Raise invalid_field for a payload with more than `_MAX_UNKNOWN_FIELDS` unknown fields."""
    known = event_class.model_fields["data"].annotation.model_fields  # type: ignore[union-attr]
    unknown = [name for name in data if name not in known]
    if len(unknown) > _MAX_UNKNOWN_FIELDS:
        raise InvalidEventError(
            "invalid_field", f"data.{unknown[0]}: unknown field (and {len(unknown) - 1} more)"
        )


def _unknown_type_reason(type_: object) -> str:
    """The reason given for a ``type`` slamon does not know."""
    return f"type: expected one of {', '.join(EventType)}, got {_show(type_)}"


def _rejection(errors: list[ErrorDetails], *, tagged: bool) -> InvalidEventError:
    """The InvalidEventError for pydantic's errors; ``tagged`` locations start with the type."""
    first = min(errors, key=lambda error: _FIELD_CODE_RANK[_code_of(error)])
    location = first["loc"][1:] if tagged else first["loc"]
    path = ".".join(str(part) for part in location)
    reason = f"{path}: {_describe(first)}" if path else _describe(first)
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more)"
    return InvalidEventError(_code_of(first), reason)


def _code_of(error: ErrorDetails) -> str:
    """The rejection code of one pydantic error."""
    if error["type"] == "missing":
        return "missing_field"
    if error["type"] == "timezone_aware":
        return "naive_time"
    if error["type"] == "json_invalid":
        return "not_json"
    return "invalid_field"


def _describe(error: ErrorDetails) -> str:
    """What was wrong with one field, for humans."""
    kind = error["type"]
    plain = _PLAIN_MESSAGES.get(kind)
    if plain is None:
        message = error["msg"].replace("Input should be", "expected", 1)
    else:
        message = plain.format_map(error.get("ctx", {}))
    if kind in _WITHOUT_INPUT:
        return message
    return f"{message}, got {_show(error['input'])}"


def _show(value: object) -> str:
    """A short printable form of an offending value."""
    shown = repr(value.isoformat() if isinstance(value, datetime) else value)
    return shown if len(shown) <= _MAX_SHOWN else f"{shown[: _MAX_SHOWN - 3]}..."


def _json_kind(value: object) -> str:
    """The JSON name of a decoded value's kind."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
