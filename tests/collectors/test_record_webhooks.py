"""The change, continuity and maintenance webhooks, alone and behind the real receiver server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from collectors.auth import HmacAuth
from collectors.receiver import WebhookPayloadError, WebhookRequest
from collectors.records import RecordKind
from collectors.webhooks.records import RecordWebhook, record_webhooks
from sla.config import ReceiversConfig
from sla.events import ChangeData, EventType, MaintenanceData

SERVICES = ("checkout", "payments")
RECEIVED = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
REQUEST = WebhookRequest(path_params={}, query={}, headers={}, received_at=RECEIVED)
TOPICS = ["demo.changes", "demo.continuity", "demo.availability"]
CHANGES_TOKEN = "changes-token-0123456789"
CONTINUITY_SECRET = "continuity-secret-0123456789"
CHANGE = {
    "service": "checkout",
    "change_id": "CHG-1",
    "kind": "emergency",
    "status": "failed",
    "start": "2026-03-01T22:00:00Z",
    "end": "2026-03-01T23:30:00Z",
    "caused_incident": "INC-9",
}
WINDOW = {
    "service": "payments",
    "window_id": "MW-4",
    "start": "2026-03-07T02:00:00+01:00",
    "end": "2026-03-07T04:00:00+01:00",
    "reason": "kernel patching",
    "change_ref": "CHG-1",
}
TEST = {
    "service": "payments",
    "test_id": "DR-7",
    "scenario": "restore-from-backup",
    "invoked_at": "2026-02-10T09:00:00Z",
    "restored_at": "2026-02-10T10:30:00Z",
    "data_restored_to": "2026-02-10T08:45:00Z",
    "outcome": "passed",
    "time": "2026-02-10T10:31:00Z",
}


def body(document: object) -> bytes:
    return json.dumps(document).encode()


def test_the_three_webhooks_and_their_senders() -> None:
    hooks = record_webhooks(SERVICES)
    assert [(hook.source, hook.path) for hook in hooks] == [
        ("changes", "/webhooks/changes"),
        ("continuity", "/webhooks/continuity"),
        ("maintenance", "/webhooks/maintenance"),
    ]


def test_one_record_object_is_one_event_received_now() -> None:
    [event] = RecordWebhook(RecordKind.CHANGE, SERVICES).events(body(CHANGE), REQUEST)
    assert (event.type, event.subject, event.source, event.time) == (
        EventType.CHANGE,
        "checkout",
        "webhook/changes",
        RECEIVED,
    )
    assert isinstance(event.data, ChangeData)
    assert (event.data.change_id, event.data.caused_incident) == ("CHG-1", "INC-9")


def test_an_array_of_records_is_one_event_each() -> None:
    second = {**WINDOW, "window_id": "MW-5"}
    events = RecordWebhook(RecordKind.MAINTENANCE, SERVICES).events(body([WINDOW, second]), REQUEST)
    assert [e.data.window_id for e in events if isinstance(e.data, MaintenanceData)] == [
        "MW-4",
        "MW-5",
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "body is not JSON: "),
        (b"\xff\xfe", "body is not JSON: "),
        (body("CHG-1"), 'expected a JSON object or an array of objects, got "CHG-1"'),
        (
            body([CHANGE, {**CHANGE, "start": "2026-03-01T22:00:00"}]),
            "[1]: start: timestamp has no UTC offset (add Z or e.g. +01:00), "
            "got '2026-03-01T22:00:00'",
        ),
        (
            body({**CHANGE, "service": "billing"}),
            "service: unknown service 'billing' (configured: checkout, payments)",
        ),
        (body({**CHANGE, "status": "done"}), "status: expected 'scheduled', "),
    ],
)
def test_a_bad_payload_is_rejected_naming_the_field(payload: bytes, message: str) -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        RecordWebhook(RecordKind.CHANGE, SERVICES).events(payload, REQUEST)
    assert str(caught.value).startswith(message)


@pytest.fixture
def receiver(start_receiver: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TEST_CHANGES_TOKEN", CHANGES_TOKEN)
    monkeypatch.setenv("TEST_CONTINUITY_SECRET", CONTINUITY_SECRET)
    config = ReceiversConfig.model_validate(
        {
            "listen": "127.0.0.1:0",
            "auth": {
                "changes": {"token_env": "TEST_CHANGES_TOKEN"},
                "continuity": {"hmac_secret_env": "TEST_CONTINUITY_SECRET"},
                "maintenance": {"token_env": "TEST_CHANGES_TOKEN"},
            },
        }
    )
    return start_receiver(config, record_webhooks(SERVICES), RECEIVED, "demo")


def test_bearer_authenticated_records_are_published(receiver: Any) -> None:
    auth = {"Authorization": f"Bearer {CHANGES_TOKEN}"}
    changes = httpx.post(f"{receiver.url}/webhooks/changes", content=body(CHANGE), headers=auth)
    windows = httpx.post(
        f"{receiver.url}/webhooks/maintenance", content=body([WINDOW]), headers=auth
    )
    assert (changes.status_code, windows.status_code) == (202, 202)
    stored = {event.id: event for event in receiver.stored()}
    ids = changes.json()["ids"] + windows.json()["ids"]
    assert sorted(stored) == sorted(ids)
    assert {(e.type, e.subject, e.time) for e in stored.values()} == {
        (EventType.CHANGE, "checkout", RECEIVED),
        (EventType.MAINTENANCE, "payments", RECEIVED),
    }


def test_hmac_signed_records_are_published_and_a_resend_keeps_its_id(receiver: Any) -> None:
    payload = body(TEST)
    signed = {"X-Hub-Signature-256": HmacAuth(CONTINUITY_SECRET.encode()).sign(payload)}
    first = httpx.post(f"{receiver.url}/webhooks/continuity", content=payload, headers=signed)
    again = httpx.post(f"{receiver.url}/webhooks/continuity", content=payload, headers=signed)
    assert (first.status_code, again.status_code) == (202, 202)
    # Both deliveries reach the topic; the store dedupes them on the one id.
    assert first.json()["ids"] == again.json()["ids"]
    assert [event.id for event in receiver.stored()] == first.json()["ids"] * 2


def test_missing_or_wrong_credentials_get_401_and_nothing_is_written(receiver: Any) -> None:
    answers = [
        httpx.post(f"{receiver.url}/webhooks/changes", content=body(CHANGE)),
        httpx.post(
            f"{receiver.url}/webhooks/changes",
            content=body(CHANGE),
            headers={"Authorization": "Bearer wrong-token"},
        ),
        httpx.post(
            f"{receiver.url}/webhooks/continuity",
            content=body(TEST),
            headers={"X-Hub-Signature-256": HmacAuth(b"other-secret").sign(body(TEST))},
        ),
    ]
    assert [answer.status_code for answer in answers] == [401, 401, 401]
    assert receiver.stored() == []


def test_an_invalid_record_gets_422_naming_the_field_and_nothing_is_written(
    receiver: Any,
) -> None:
    answer = httpx.post(
        f"{receiver.url}/webhooks/changes",
        content=body([CHANGE, {**CHANGE, "end": "2026-03-01T21:00:00Z"}]),
        headers={"Authorization": f"Bearer {CHANGES_TOKEN}"},
    )
    assert answer.status_code == 422
    assert answer.json() == {
        "code": "invalid_payload",
        "error": "[1]: end: 2026-03-01T21:00:00+00:00 is before start 2026-03-01T22:00:00+00:00",
    }
    assert receiver.stored() == []
