"""The Alertmanager webhook: version 4 notifications become service status events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collectors.receiver import WebhookPayloadError, WebhookRequest
from collectors.webhooks.alertmanager import SOURCE, AlertmanagerWebhook
from collectors.webhooks.payload import stable_event_id
from pipeline.engine import inputs_from_store
from pipeline.store import EventStore
from sla.availability import availability
from sla.calendar import ROUND_THE_CLOCK
from sla.config import AlertmanagerConfig, SlamonConfig
from sla.events import CloudEvent, EventType, StatusData
from sla.inputs import epoch_seconds, inputs_from_events
from sla.intervals import Interval

PAYLOADS = Path(__file__).parent / "payloads"
SERVICES = ("checkout", "search")
RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
REQUEST = WebhookRequest(path_params={}, query={}, headers={}, received_at=RECEIVED)
# The search alert has no `service` label; its job label names the service instead.
BY_JOB = AlertmanagerConfig(label_map={"job": {"search-api": "search"}})


def payload(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return document


def body(document: object) -> bytes:
    return json.dumps(document).encode()


def test_firing_alerts_become_down_and_degraded_at_their_start() -> None:
    webhook = AlertmanagerWebhook(BY_JOB, SERVICES)
    events = webhook.events((PAYLOADS / "alertmanager_firing.json").read_bytes(), REQUEST)
    # Start times: 09:14:45.123456789Z keeps microseconds; 10:16:00.5+01:00 is 09:16:00.5Z.
    checkout_at = datetime(2026, 3, 2, 9, 14, 45, 123456, tzinfo=UTC)
    search_at = datetime(2026, 3, 2, 9, 16, 0, 500000, tzinfo=UTC)
    # Each alert is its own monitor: its fingerprint completes the source.
    assert [(e.type, e.source, e.subject, e.time, e.data) for e in events] == [
        (
            EventType.STATUS,
            f"{SOURCE}/5c2e6b9f0a1d3e47",
            "checkout",
            checkout_at,
            StatusData(state="down", reason="Checkout health endpoint is failing"),
        ),
        (
            EventType.STATUS,
            f"{SOURCE}/a83f0c1d9e2b7746",
            "search",
            search_at,
            StatusData(state="degraded", reason="Search p99 latency above 800ms"),
        ),
    ]
    assert [e.id for e in events] == [
        stable_event_id(SOURCE, "5c2e6b9f0a1d3e47", "firing", checkout_at.isoformat()),
        stable_event_id(SOURCE, "a83f0c1d9e2b7746", "firing", search_at.isoformat()),
    ]
    # The build host's disk alert names no service.
    assert events.skipped == 1


def test_a_resolved_alert_is_up_at_its_end() -> None:
    webhook = AlertmanagerWebhook(BY_JOB, SERVICES)
    [event] = webhook.events((PAYLOADS / "alertmanager_resolved.json").read_bytes(), REQUEST)
    ended = datetime(2026, 3, 2, 9, 41, 15, 4000, tzinfo=UTC)
    # The same source as the firing event: the resolution ends that alert's outage.
    assert (event.source, event.subject, event.time, event.data) == (
        f"{SOURCE}/5c2e6b9f0a1d3e47",
        "checkout",
        ended,
        StatusData(state="up", reason="Checkout health endpoint is failing"),
    )
    assert event.id == stable_event_id(SOURCE, "5c2e6b9f0a1d3e47", "resolved", ended.isoformat())


def test_a_repeated_notification_keeps_its_event_ids() -> None:
    webhook = AlertmanagerWebhook(BY_JOB, SERVICES)
    raw = (PAYLOADS / "alertmanager_firing.json").read_bytes()
    later = WebhookRequest(path_params={}, query={}, headers={}, received_at=datetime.now(UTC))
    assert [e.id for e in webhook.events(raw, REQUEST)] == [
        e.id for e in webhook.events(raw, later)
    ]


def test_severity_states_alert_names_and_default_state_are_configurable() -> None:
    config = AlertmanagerConfig(
        label_map={"job": {"search-api": "search"}},
        severity_states={"critical": "degraded"},
        default_state="down",
        alertnames=["SearchLatencyHigh"],
    )
    events = AlertmanagerWebhook(config, SERVICES).events(
        (PAYLOADS / "alertmanager_firing.json").read_bytes(), REQUEST
    )
    # Only the search alert passes the name filter; its `warning` is no longer listed: down.
    assert [(e.subject, e.data) for e in events] == [
        ("search", StatusData(state="down", reason="Search p99 latency above 800ms"))
    ]
    assert events.skipped == 2


def test_the_label_map_is_tried_when_the_service_label_names_no_service() -> None:
    document = payload("alertmanager_firing.json")
    document["alerts"][0]["labels"]["service"] = "checkout-frontend"
    config = AlertmanagerConfig(label_map={"job": {"blackbox-checkout": "checkout"}})
    events = AlertmanagerWebhook(config, SERVICES).events(body(document), REQUEST)
    assert [e.subject for e in events] == ["checkout"]


def test_a_resolved_alert_without_an_end_is_up_when_received() -> None:
    document = payload("alertmanager_resolved.json")
    document["alerts"][0]["endsAt"] = "0001-01-01T00:00:00Z"
    [event] = AlertmanagerWebhook(BY_JOB, SERVICES).events(body(document), REQUEST)
    assert event.time == RECEIVED


def test_an_alert_without_fingerprint_gets_an_id_from_its_labels() -> None:
    document = payload("alertmanager_resolved.json")
    del document["alerts"][0]["fingerprint"]
    webhook = AlertmanagerWebhook(BY_JOB, SERVICES)
    first = webhook.events(body(document), REQUEST)
    document["alerts"][0]["labels"] = dict(reversed(document["alerts"][0]["labels"].items()))
    again = webhook.events(body(document), REQUEST)
    assert [(e.id, e.source) for e in again] == [(e.id, e.source) for e in first]
    assert first[0].source.startswith(f"{SOURCE}/")


def alert(name: str, status: str, starts: str, ends: str | None = None) -> dict[str, Any]:
    """A checkout alert as Alertmanager sends it; `ends` None is a firing alert's zero end."""
    return {
        "status": status,
        "labels": {"alertname": name, "service": "checkout", "severity": "critical"},
        "startsAt": f"2026-03-02T{starts}:00Z",
        "endsAt": f"2026-03-02T{ends}:00Z" if ends else "0001-01-01T00:00:00Z",
        "fingerprint": name.lower(),
    }


def test_overlapping_alerts_on_one_service_are_down_until_the_last_resolves() -> None:
    webhook = AlertmanagerWebhook(AlertmanagerConfig(), SERVICES)
    a_firing = alert("A", "firing", "10:00")
    b_firing = alert("B", "firing", "10:05")
    # The notifications of one alert group, each repeating the alerts still firing.
    notifications = [
        [a_firing],
        [a_firing, b_firing],
        [alert("A", "resolved", "10:00", "10:10"), b_firing],
        [alert("B", "resolved", "10:05", "11:00")],
    ]
    received: dict[str, CloudEvent] = {}
    for alerts in notifications:
        document = {"version": "4", "status": "firing", "alerts": alerts}
        # Repeats keep their ids: the store keeps one of each, and so does this dict.
        received |= {e.id: e for e in webhook.events(body(document), REQUEST)}
    events = list(received.values())
    config = SlamonConfig.model_validate({"services": [{"id": "checkout", "name": "Checkout"}]})
    day = Interval(
        epoch_seconds(datetime(2026, 3, 2, tzinfo=UTC)),
        epoch_seconds(datetime(2026, 3, 3, tzinfo=UTC)),
    )
    reference = inputs_from_events(events, config, day.start, day.end)
    with EventStore(":memory:") as store:
        store.write_batch(events)
        fast = inputs_from_store(store, config, day.start, day.end)
    assert fast == reference
    result = availability(ROUND_THE_CLOCK, day, fast["checkout"].outages, [], day.end)
    # A is down 10:00-10:10 and B 10:05-11:00: A resolving does not end B's outage, so the
    # service is down 10:00-11:00, 3,600 s, one outage of the day's 86,400 s.
    assert (result.downtime_seconds, result.outages) == (3_600, 1)
    assert result.agreed_seconds == 86_400


def test_an_empty_notification_is_no_events() -> None:
    document = {**payload("alertmanager_resolved.json"), "alerts": []}
    events = AlertmanagerWebhook(BY_JOB, SERVICES).events(body(document), REQUEST)
    assert (list(events), events.skipped) == ([], 0)


def test_the_receivers_section_configures_the_webhook() -> None:
    config = SlamonConfig.model_validate(
        {
            "receivers": {
                "alertmanager": {"service_label": "app", "severity_states": {"page": "down"}}
            }
        }
    )
    assert config.receivers.alertmanager == AlertmanagerConfig(
        service_label="app", severity_states={"page": "down"}
    )
    assert SlamonConfig().receivers.alertmanager.severity_states == {"warning": "degraded"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"<html>", "body is not JSON: "),
        (body(["alerts"]), "body must be a JSON object, not list"),
        (
            body({**payload("alertmanager_firing.json"), "version": "3"}),
            "not an Alertmanager version 4 notification: version: Input should be '4', got '3'",
        ),
        (
            body({"version": "4", "status": "firing"}),
            "not an Alertmanager version 4 notification: alerts: required field missing",
        ),
        (
            body(
                {
                    **payload("alertmanager_resolved.json"),
                    "alerts": [
                        {
                            **payload("alertmanager_resolved.json")["alerts"][0],
                            "startsAt": "yesterday",
                        }
                    ],
                }
            ),
            "not an Alertmanager version 4 notification: alerts.0.startsAt: ",
        ),
        (
            body(
                payload("alertmanager_firing.json")
                | {"alerts": payload("alertmanager_firing.json")["alerts"][2:]}
            ),
            "none of the 1 alerts maps to a configured service: give them a 'service' label",
        ),
    ],
)
def test_a_payload_that_cannot_be_mapped_is_rejected(document: bytes, message: str) -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        AlertmanagerWebhook(BY_JOB, SERVICES).events(document, REQUEST)
    assert str(caught.value).startswith(message)
