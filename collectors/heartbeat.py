"""Heartbeats: jobs ping `POST /heartbeat/{service}/{check}`; a missed ping is a failed probe.

State lives in memory only: after a restart every heartbeat gets a fresh interval + grace
before a missing ping counts, so a restart can delay, but never invent, a missed heartbeat.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, ValidationError

from collectors.probes import Clock, Publish, utc_now
from collectors.receiver import (
    StoredBatch,
    WebhookNotFoundError,
    WebhookPayloadError,
    WebhookRequest,
)
from collectors.webhooks.payload import first_problem, json_document
from sla.config import HeartbeatConfig, ServiceConfig
from sla.events import CloudEvent, EventType, ProbeData, new_event

log = logging.getLogger(__name__)

HEARTBEAT_SOURCE = "heartbeat"
"""The sender name of heartbeat pings: their credentials are `receivers.auth.heartbeat`."""
HEARTBEAT_PATH = "/heartbeat/{service}/{check}"
MISSED_HEARTBEAT = "missed heartbeat"
JOB_FAILED = "job reported failure"
# How often the watcher looks for missed heartbeats; also the lateness of a reported miss.
TICK_S = 1.0


def heartbeat_source(service_id: str, name: str) -> str:
    """The CloudEvents source of a heartbeat's probes: `collector/heartbeat/<service>-<name>`."""
    return f"collector/heartbeat/{service_id}-{name}"


class HeartbeatPing(BaseModel):
    """The optional JSON body of a ping: a job may report its own failure."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    ok: bool = True
    error: str | None = None


class HeartbeatWatcher:
    """Tracks when each heartbeat is due and publishes a failed probe per missed interval.

    A heartbeat is missed `interval + grace` after its last ping (or after start); each further
    `interval` without a ping is one more miss.
    """

    def __init__(
        self, services: Sequence[ServiceConfig], publish: Publish, clock: Clock = utc_now
    ) -> None:
        self._heartbeats: dict[tuple[str, str], HeartbeatConfig] = {
            (service.id, heartbeat.name): heartbeat
            for service in services
            for heartbeat in service.heartbeats
        }
        self._publish = publish
        self._clock = clock
        started = clock()
        self._due = {key: _deadline(started, config) for key, config in self._heartbeats.items()}
        # Pings arrive on the receiver's event loop, ticks run on the watcher's thread.
        self._lock = threading.Lock()

    def knows(self, service_id: str, name: str) -> bool:
        """Whether `service_id` has a heartbeat called `name`."""
        return (service_id, name) in self._heartbeats

    def ping(self, service_id: str, name: str, at: datetime) -> None:
        """Record a ping received at `at`: the next one is due an interval (+ grace) later."""
        key = (service_id, name)
        with self._lock:
            self._due[key] = _deadline(at, self._heartbeats[key])

    def tick(self) -> list[CloudEvent]:
        """Publish a failed probe for every interval missed up to now; return what was published.

        A miss whose publish fails is retried on the next tick under the same event id.
        """
        now = self._clock()
        published: list[CloudEvent] = []
        for key, config in self._heartbeats.items():
            while True:
                with self._lock:
                    due = self._due[key]
                if now < due:
                    break
                event = _missed(key, due)
                try:
                    self._publish(event)
                except Exception:
                    log.exception("publishing the missed heartbeat %s failed", event.source)
                    break
                published.append(event)
                with self._lock:
                    # A ping that arrived meanwhile has already moved the deadline on.
                    if self._due[key] == due:
                        self._due[key] = due + timedelta(seconds=config.interval)
        return published

    def run(self, stop: threading.Event, tick_s: float = TICK_S) -> None:
        """Look for missed heartbeats every `tick_s` seconds until `stop` is set (blocking)."""
        while not stop.wait(tick_s):
            self.tick()


def _deadline(last_ping: datetime, config: HeartbeatConfig) -> datetime:
    return last_ping + timedelta(seconds=config.interval + config.grace)


def _missed(key: tuple[str, str], due: datetime) -> CloudEvent:
    service_id, name = key
    data = ProbeData(check=name, ok=False, latency_ms=0.0, error=MISSED_HEARTBEAT)
    # The id is derived from the deadline, so a retried publish is deduplicated downstream.
    event_id = f"heartbeat-missed/{service_id}/{name}/{due.isoformat()}"
    source = heartbeat_source(service_id, name)
    return new_event(EventType.PROBE, service_id, data, source=source, time=due, id=event_id)


@dataclass(frozen=True)
class HeartbeatWebhook:
    """The ping route: a `slamon.probe.v1` per ping, ok unless the job reports a failure."""

    watcher: HeartbeatWatcher
    source: str = HEARTBEAT_SOURCE
    path: str = HEARTBEAT_PATH

    def events(self, body: bytes, request: WebhookRequest) -> list[CloudEvent]:
        """The probe event of one ping; the watcher records the ping once it is stored."""
        service_id = request.path_params["service"]
        name = request.path_params["check"]
        if not self.watcher.knows(service_id, name):
            raise WebhookNotFoundError(f"no heartbeat {name!r} for service {service_id!r}")
        ping = _parse_ping(body)
        error = None if ping.ok else ping.error or JOB_FAILED
        data = ProbeData(check=name, ok=ping.ok, latency_ms=0.0, error=error)
        event = new_event(
            EventType.PROBE,
            service_id,
            data,
            source=heartbeat_source(service_id, name),
            time=request.received_at,
        )
        # The ping counts once its event is stored: one answered 503 is retried by the job.
        return StoredBatch(
            [event], lambda: self.watcher.ping(service_id, name, request.received_at)
        )


_PING_SHAPE = 'expected an empty body or {"ok": false, "error": "..."}'


def _parse_ping(body: bytes) -> HeartbeatPing:
    if not body.strip():
        return HeartbeatPing()
    document = json_document(body)
    # Pydantic would report every unknown key, at great cost for a body of thousands of them.
    if isinstance(document, dict):
        unknown = [name for name in document if name not in HeartbeatPing.model_fields]
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise WebhookPayloadError(f"{_PING_SHAPE}; {unknown[0]}: unknown field{more}")
    try:
        return HeartbeatPing.model_validate(document)
    except ValidationError as exc:
        raise WebhookPayloadError(f"{_PING_SHAPE}; {first_problem(exc)}") from None
