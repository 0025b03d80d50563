"""Webhooks for change, continuity and maintenance records: `/webhooks/changes` and siblings."""

from __future__ import annotations

from collections.abc import Collection

import pydantic_core

from collectors.receiver import WebhookPayloadError, WebhookRequest
from collectors.records import RecordKind, record_events
from sla.errors import InvalidEventError
from sla.events import CloudEvent


class RecordWebhook:
    """Takes one record object, or an array of them, of one kind per request."""

    def __init__(self, kind: RecordKind, services: Collection[str]) -> None:
        self.kind = kind
        self.source = kind.plural
        """The sender's key in `receivers.auth`: `changes`, `continuity` or `maintenance`."""
        self.path = f"/webhooks/{kind.plural}"
        self._services = frozenset(services)

    def events(self, body: bytes, request: WebhookRequest) -> list[CloudEvent]:
        """Every record of the body as an event; WebhookPayloadError naming the field if any is bad.

        A record without `time` happened when the request arrived.
        """
        try:
            # Like json_document, but a body that is not UTF-8 is "not JSON" here too.
            document = pydantic_core.from_json(body)
        except ValueError as exc:
            raise WebhookPayloadError(f"body is not JSON: {exc}") from None
        try:
            return record_events(
                self.kind,
                document,
                services=self._services,
                received_at=request.received_at,
                source=f"webhook/{self.source}",
            )
        except InvalidEventError as exc:
            raise WebhookPayloadError(exc.reason) from None


def record_webhooks(services: Collection[str]) -> list[RecordWebhook]:
    """The three record webhooks, accepting records of the configured `services`."""
    return [RecordWebhook(kind, services) for kind in RecordKind]
