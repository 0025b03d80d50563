"""Service desk tickets (Jira Service Management, ServiceNow, any JSON) as slamon.ticket.v1."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar, get_args
from zoneinfo import ZoneInfo

from collectors.receiver import WebhookPayloadError, WebhookRequest
from collectors.webhooks.payload import (
    FieldError,
    instant,
    json_object,
    lookup,
    stable_event_id,
    text,
)
from sla.config import TicketKind, TicketMapping, TicketMappings
from sla.events import TICKET, CloudEvent, TicketData, TicketStatus, new_event

_STATUSES: Final[dict[str, TicketStatus]] = {status: status for status in get_args(TicketStatus)}
_KINDS: Final[dict[str, TicketKind]] = {kind: kind for kind in get_args(TicketKind)}
_FALSE_TEXTS: Final = frozenset({"false", "0", "no", "n"})
_Value = TypeVar("_Value")


def _folded(mapping: Mapping[str, _Value]) -> dict[str, _Value]:
    """`mapping` with case-folded keys: desks differ in how they capitalise names."""
    return {key.casefold(): value for key, value in mapping.items()}


class TicketRecordMapper:
    """Turns one service desk record into ticket events, following a TicketMapping."""

    def __init__(self, mapping: TicketMapping, source: str, services: Collection[str]) -> None:
        self.mapping = mapping
        self._source = source
        self._services = frozenset(services)
        self._zone = ZoneInfo(mapping.timezone)
        self._service_map = _folded(mapping.service_map)
        self._priority_map = _folded(mapping.priority_map)
        self._status_map = _folded(mapping.status_map)
        self._kind_map = _folded(mapping.kind_map)
        self._events = {name.casefold() for name in mapping.events}
        self._before_response = {status.casefold() for status in mapping.responded.before_statuses}

    def wanted(self, record: Mapping[str, Any]) -> bool:
        """False for a webhook event that carries no ticket change (e.g. `jira:issue_deleted`)."""
        if self.mapping.event is None or not self._events:
            return True
        name = text(lookup(record, self.mapping.event), self.mapping.event)
        return name is not None and name.casefold() in self._events

    def events(self, record: Mapping[str, Any]) -> list[CloudEvent]:
        """The events `record` stands for: one change, or a summary record's whole lifecycle.

        Raises FieldError naming the path of the first field that is missing or unmapped.
        """
        mapping = self.mapping
        ticket_id = self._required(record, mapping.ticket_id)
        service = self._service(record)
        priority = self._priority(record)
        kind = self._kind(record)
        customer = (
            None
            if mapping.customer is None
            else text(lookup(record, mapping.customer), mapping.customer)
        )

        def event(time: datetime, status: TicketStatus, responded: bool) -> CloudEvent:
            data = TicketData(
                ticket_id=ticket_id,
                kind=kind,
                priority=priority,
                status=status,
                responded=responded,
                customer=customer,
            )
            # Everything that tells two changes apart, so a retried delivery gets the same id.
            parts = (self._source, ticket_id, time.isoformat(), status, priority, str(responded))
            return new_event(
                TICKET, service, data, source=self._source, time=time, id=stable_event_id(*parts)
            )

        if mapping.summary is None:
            raw_status = self._required(record, mapping.status)
            time = self._instant(record, mapping.updated)
            return [event(time, self._status(raw_status), self._responded(record, raw_status))]
        columns = mapping.summary
        created = self._instant(record, columns.created)
        events = [event(created, "new", False)]
        later: list[tuple[str | None, TicketStatus, bool]] = [
            (columns.responded, "in_progress", True),
            (columns.resolved, "resolved", False),
            (columns.closed, "closed", False),
        ]
        # Out of order, the lifecycle would start at its latest step and count a response
        # or resolution as met at once.
        earliest = (columns.created, created)
        for path, status, responded in later:
            if path is not None and text(lookup(record, path), path) is not None:
                at = self._instant(record, path)
                if at < earliest[1]:
                    raise FieldError(
                        path, f"{at.isoformat()} is before {earliest[0]} {earliest[1].isoformat()}"
                    )
                if status != "in_progress":
                    earliest = (path, at)
                events.append(event(at, status, responded))
        return events

    def _required(self, record: Mapping[str, Any], path: str) -> str:
        value = text(lookup(record, path), path)
        if value is None:
            raise FieldError(path, "required field missing or empty")
        return value

    def _instant(self, record: Mapping[str, Any], path: str) -> datetime:
        value = lookup(record, path)
        if text(value, path) is None:
            raise FieldError(path, "required timestamp missing or empty")
        return instant(value, self._zone, path)

    def _service(self, record: Mapping[str, Any]) -> str:
        path = self.mapping.service
        value = self._required(record, path)
        service = self._service_map.get(value.casefold(), value)
        if service not in self._services:
            raise FieldError(
                path,
                f"{value!r} is no configured service; map it to one in service_map "
                f"(services: {', '.join(sorted(self._services)) or 'none configured'})",
            )
        return service

    def _priority(self, record: Mapping[str, Any]) -> str:
        path = self.mapping.priority
        value = self._required(record, path)
        if not self._priority_map:
            return value
        priority = self._priority_map.get(value.casefold())
        if priority is None:
            known = ", ".join(self.mapping.priority_map)
            raise FieldError(path, f"unknown priority {value!r}: add it to priority_map ({known})")
        return priority

    def _status(self, value: str) -> TicketStatus:
        status = self._status_map.get(value.casefold()) or _STATUSES.get(value.casefold())
        if status is None:
            raise FieldError(
                self.mapping.status,
                f"unknown status {value!r}: add it to status_map "
                f"(slamon statuses: {', '.join(get_args(TicketStatus))})",
            )
        return status

    def _kind(self, record: Mapping[str, Any]) -> TicketKind:
        path = self.mapping.kind
        value = None if path is None else text(lookup(record, path), path)
        if value is None:
            return self.mapping.default_kind
        kind = self._kind_map.get(value.casefold()) or _KINDS.get(value.casefold())
        return self.mapping.default_kind if kind is None else kind

    def _responded(self, record: Mapping[str, Any], raw_status: str) -> bool:
        """Whether this change carries an agent response (only the first one stops the clock)."""
        rule = self.mapping.responded
        if self._before_response and raw_status.casefold() not in self._before_response:
            return True
        for path in rule.fields:
            value = text(lookup(record, path), path)
            if value is not None and value.casefold() not in _FALSE_TEXTS:
                return True
        return any(
            all(self._matches(record, path, accepted) for path, accepted in condition.items())
            for condition in rule.when
        )

    def _matches(
        self, record: Mapping[str, Any], path: str, accepted: list[str | int | bool]
    ) -> bool:
        value = text(lookup(record, path), path)
        return value is not None and value.casefold() in {
            str(text(option, path)).casefold() for option in accepted
        }


class TicketWebhook:
    """`POST /webhooks/{source}`: one ticket record (or desk event) per request."""

    def __init__(self, source: str, mapping: TicketMapping, services: Collection[str]) -> None:
        self.source = source
        """The sender's key in `receivers.auth`: `jira`, `servicenow` or `generic`."""
        self.path = f"/webhooks/{source}"
        self._mapper = TicketRecordMapper(mapping, f"webhook/{source}", services)

    def events(self, body: bytes, request: WebhookRequest) -> list[CloudEvent]:
        """The ticket event of the body; none for desk events that change no ticket."""
        record = json_object(body)
        try:
            return self._mapper.events(record) if self._mapper.wanted(record) else []
        except FieldError as exc:
            raise WebhookPayloadError(str(exc)) from None


def ticket_webhooks(mappings: TicketMappings, services: Collection[str]) -> list[TicketWebhook]:
    """The Jira, ServiceNow and generic ticket webhooks of `receivers.tickets`."""
    return [
        TicketWebhook("jira", mappings.jira, services),
        TicketWebhook("servicenow", mappings.servicenow, services),
        TicketWebhook("generic", mappings.generic, services),
    ]
