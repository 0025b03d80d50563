"""What every webhook adapter needs: the JSON body, dotted field paths, instants and stable ids."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

import pydantic_core
from pydantic import ValidationError

from collectors.receiver import WebhookPayloadError
from sla.errors import SlamonError

# Ids derived from a payload are UUIDs (like the uuid4 ids of new_event), stable across retries.
_EVENT_ID_NAMESPACE: Final = uuid.UUID("5c1b0a52-7f0e-4a47-9d52-6c9a1d6f2f1e")
# Below this an epoch number is in seconds, above it in milliseconds (3e11 s is year 11 476).
_EPOCH_MILLIS_FROM: Final = 100_000_000_000
# Epoch text longer than this is far beyond year 9999 in either unit (and int() of very long
# digit strings is refused or slow); `isdigit` would also let through digits like "²".
_EPOCH_TEXT: Final = re.compile(r"[0-9]{1,20}")


class FieldError(SlamonError):
    """A field of a record is missing or unusable: `path` names it, `reason` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def first_problem(exc: ValidationError, whole: str = "body") -> str:
    """The first problem of a validation error as `path: message`; `whole` names the root."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or whole
    message = "required field missing" if error["type"] == "missing" else error["msg"]
    if error["type"] != "missing":
        shown = repr(error["input"])
        message += f", got {shown if len(shown) <= 80 else shown[:77] + '...'}"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {message}{more}"


def json_document(body: bytes) -> Any:
    """The request body as JSON; WebhookPayloadError when it is not.

    Nesting beyond pydantic-core's limit (200 levels), lone surrogates (no event could be
    serialised with one) and integers over 4,300 digits are refused as not JSON.
    """
    try:
        return pydantic_core.from_json(body)
    except ValueError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise WebhookPayloadError(f"body is not UTF-8 (byte {bad.start})") from None
        raise WebhookPayloadError(f"body is not JSON: {exc}") from None


def json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object; WebhookPayloadError when it is anything else."""
    document = json_document(body)
    if not isinstance(document, dict):
        raise WebhookPayloadError(f"body must be a JSON object, not {type(document).__name__}")
    return document


def lookup(record: Mapping[str, Any], path: str) -> object:
    """The value at dotted `path` in `record`, None when any step is missing.

    A key spelled exactly like the whole path wins (CSV columns may contain dots); digits
    index lists.
    """
    if path in record:
        return record[path]
    value: object = record
    for step in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def text(value: object, path: str) -> str | None:
    """A scalar field as text, None when null or blank; an object or list is an error.

    A ServiceNow field sent as `{display_value, value, link}` reads as its display value
    (a group's name rather than its sys_id), or its value when sent without display values.
    """
    if isinstance(value, Mapping) and ("display_value" in value or "value" in value):
        value = value.get("display_value", value.get("value"))
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        stripped = str(value).strip()
        return stripped or None
    kind = "an object" if isinstance(value, Mapping) else "a list"
    raise FieldError(path, f"expected a text or number, got {kind}")


def instant(value: object, zone: tzinfo, path: str) -> datetime:
    """A UTC datetime from ISO 8601 text or epoch seconds/milliseconds; naive text is in `zone`.

    A ServiceNow field sent as `{display_value, value}` reads as its value: ServiceNow writes
    date-time values in UTC but display values in the sending user's time zone.
    """
    if isinstance(value, Mapping) and "value" in value:
        value = value["value"]
    if isinstance(value, str) and _EPOCH_TEXT.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return _epoch(value)
        # NaN, infinities and instants beyond year 9999 (or the platform's time_t).
        except (ValueError, OverflowError, OSError):
            raise FieldError(path, f"timestamp out of range: {value!r}") from None
    if not isinstance(value, str):
        raise FieldError(path, f"expected a timestamp, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise FieldError(
            path, f"expected a timestamp such as 2026-03-01T12:00:00Z, got {value!r}"
        ) from None
    aware = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    try:
        return aware.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise FieldError(path, f"timestamp out of range: {value!r}") from None


def _epoch(value: float) -> datetime:
    """The UTC datetime of epoch seconds, or milliseconds from `_EPOCH_MILLIS_FROM` on."""
    if abs(value) < _EPOCH_MILLIS_FROM:
        return datetime.fromtimestamp(value, UTC)
    # Whole milliseconds stay exact; value / 1000 would round through a float.
    millis = round(value)
    return datetime.fromtimestamp(millis // 1000, UTC).replace(microsecond=millis % 1000 * 1000)


def stable_event_id(*parts: str) -> str:
    """An event id determined by `parts`, so a replayed payload dedupes in the store."""
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, "\x1f".join(parts)))
