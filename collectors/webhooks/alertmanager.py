"""`POST /webhooks/alertmanager`: firing and resolved Prometheus alerts as service states."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from collectors.receiver import PartialBatch, WebhookPayloadError, WebhookRequest
from collectors.webhooks.payload import first_problem, json_object, stable_event_id
from sla.config import AlertmanagerConfig
from sla.events import STATUS, CloudEvent, StatusData, new_event

SOURCE: Final = "webhook/alertmanager"
"""The prefix of each alert's event source, `webhook/alertmanager/<identity>`."""
ServiceState = Literal["up", "down", "degraded"]
# Alertmanager marshals a firing alert's unset end as Go's zero time.
_GO_ZERO_TIME: Final = datetime(1, 1, 1, tzinfo=UTC)


def _strings(value: object) -> object:
    """Refuse a map with a non-string value at the first one.

    Pydantic would report every bad value, and a 1 MiB body of them costs hundreds of MB.
    """
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(item, str):
                raise ValueError(f"{name!r}: expected a string, got {type(item).__name__}")
    return value


def _in_utc(value: datetime) -> datetime:
    """The instant in UTC; 0001-01-01T00:00+01:00 is before year 1 there and refused."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


StringMap = Annotated[dict[str, str], BeforeValidator(_strings)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class _Payload(BaseModel):
    """The fields slamon reads; Alertmanager sends more (groupKey, externalURL, ...)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Alert(_Payload):
    """One alert of a webhook notification."""

    status: Literal["firing", "resolved"]
    labels: StringMap
    annotations: StringMap = {}
    starts_at: UtcDatetime = Field(alias="startsAt")
    ends_at: UtcDatetime | None = Field(default=None, alias="endsAt")
    fingerprint: str = ""

    @property
    def identity(self) -> str:
        """The fingerprint, or a hash of the labels from senders that leave it out."""
        if self.fingerprint:
            return self.fingerprint
        labels = "\x1f".join(f"{name}={value}" for name, value in sorted(self.labels.items()))
        return hashlib.sha256(labels.encode()).hexdigest()[:16]


class Notification(_Payload):
    """The version 4 webhook body Alertmanager POSTs for one alert group."""

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    # Stops at the first bad alert: one error, however many alerts follow.
    alerts: list[Alert] = Field(fail_fast=True)


class AlertmanagerWebhook:
    """Maps each alert to a `slamon.status.v1` event of the service named by its labels.

    The alert's identity is the event source, so two alerts on one service are two monitors:
    the first one resolving does not end the outage the second still reports.
    """

    source = "alertmanager"
    path = "/webhooks/alertmanager"

    def __init__(self, config: AlertmanagerConfig, services: Collection[str]) -> None:
        self._config = config
        self._services = frozenset(services)

    def events(self, body: bytes, request: WebhookRequest) -> PartialBatch:
        """One event per alert that maps to a service; WebhookPayloadError when none does."""
        try:
            notification = Notification.model_validate(json_object(body))
        except ValidationError as exc:
            raise WebhookPayloadError(
                f"not an Alertmanager version 4 notification: {first_problem(exc)}"
            ) from None
        events = [
            self._event(alert, service, request.received_at)
            for alert in notification.alerts
            if (service := self._service(alert)) is not None
        ]
        if notification.alerts and not events:
            raise WebhookPayloadError(
                f"none of the {len(notification.alerts)} alerts maps to a configured service: "
                f"give them a {self._config.service_label!r} label naming one, or map another "
                "label in receivers.alertmanager.label_map"
            )
        return PartialBatch(events, skipped=len(notification.alerts) - len(events))

    def _service(self, alert: Alert) -> str | None:
        """The configured service the alert belongs to; None for alerts slamon ignores."""
        config = self._config
        if config.alertnames and alert.labels.get("alertname") not in config.alertnames:
            return None
        candidates = [alert.labels.get(config.service_label)]
        candidates += [
            services.get(alert.labels.get(label, ""))
            for label, services in config.label_map.items()
        ]
        return next((service for service in candidates if service in self._services), None)

    def _event(self, alert: Alert, service: str, received_at: datetime) -> CloudEvent:
        state: ServiceState
        if alert.status == "firing":
            severity = alert.labels.get(self._config.severity_label, "")
            state = self._config.severity_states.get(severity, self._config.default_state)
            time = alert.starts_at
        else:
            state = "up"
            ends_at = alert.ends_at
            time = ends_at if ends_at is not None and ends_at > _GO_ZERO_TIME else received_at
        time = time.astimezone(UTC)
        reason = alert.annotations.get("summary") or alert.labels.get("alertname")
        event_id = stable_event_id(SOURCE, alert.identity, alert.status, time.isoformat())
        return new_event(
            STATUS,
            service,
            StatusData(state=state, reason=reason),
            source=f"{SOURCE}/{alert.identity}",
            time=time,
            id=event_id,
        )
