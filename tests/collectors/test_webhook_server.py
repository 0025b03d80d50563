"""Alertmanager, Jira and ServiceNow payload replays through the real receiver server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from collectors.auth import HmacAuth
from collectors.webhooks.alertmanager import AlertmanagerWebhook
from collectors.webhooks.tickets import ticket_webhooks
from sla.config import SlamonConfig

PAYLOADS = Path(__file__).parent / "payloads"
TOPICS = ["slamon.availability", "slamon.tickets"]
SERVICES = ("checkout", "search")
JIRA_TOKEN = "jira-token-0123456789"
ALERTMANAGER_TOKEN = "alertmanager-token-0123456789"
SERVICENOW_SECRET = "servicenow-secret-0123456789"
RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class Receiver:
    """The running receiver with slamon's Alertmanager and ticket webhooks."""

    def __init__(self, running: Any) -> None:  # conftest's RunningReceiver
        self.url = running.url
        self.stored = running.stored

    def post(
        self, path: str, payload: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return httpx.post(
            f"{self.url}{path}", content=(PAYLOADS / payload).read_bytes(), headers=headers
        )


@pytest.fixture
def receiver(start_receiver: Any, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    monkeypatch.setenv("TEST_JIRA_TOKEN", JIRA_TOKEN)
    monkeypatch.setenv("TEST_ALERTMANAGER_TOKEN", ALERTMANAGER_TOKEN)
    monkeypatch.setenv("TEST_SERVICENOW_SECRET", SERVICENOW_SECRET)
    config = SlamonConfig.model_validate(
        {
            "receivers": {
                "listen": "127.0.0.1:0",
                "auth": {
                    "jira": {"token_env": "TEST_JIRA_TOKEN"},
                    "alertmanager": {"token_env": "TEST_ALERTMANAGER_TOKEN"},
                    "servicenow": {
                        "hmac_secret_env": "TEST_SERVICENOW_SECRET",
                        "signature_header": "X-SN-Signature",
                    },
                },
                "alertmanager": {"label_map": {"job": {"search-api": "search"}}},
                "tickets": {
                    "jira": {"service_map": {"CHK": "checkout"}},
                    "servicenow": {"service_map": {"Checkout Ops": "checkout"}},
                },
            },
            "services": [{"id": service, "name": service} for service in SERVICES],
        }
    )
    services = [service.id for service in config.services]
    webhooks = [
        AlertmanagerWebhook(config.receivers.alertmanager, services),
        *ticket_webhooks(config.receivers.tickets, services),
    ]
    return Receiver(start_receiver(config.receivers, webhooks, RECEIVED, "slamon"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(payload: str) -> dict[str, str]:
    signature = HmacAuth(SERVICENOW_SECRET.encode()).sign((PAYLOADS / payload).read_bytes())
    return {"X-SN-Signature": signature, "Content-Type": "application/json"}


def test_an_alertmanager_notification_is_published_and_a_repeat_keeps_the_ids(
    receiver: Receiver,
) -> None:
    first = receiver.post(
        "/webhooks/alertmanager", "alertmanager_firing.json", bearer(ALERTMANAGER_TOKEN)
    )
    repeat = receiver.post(
        "/webhooks/alertmanager", "alertmanager_firing.json", bearer(ALERTMANAGER_TOKEN)
    )
    assert (first.status_code, repeat.status_code) == (202, 202)
    # Two of the three alerts map to a service; the store dedupes the repeat on its ids.
    assert (first.json()["accepted"], first.json()["skipped"]) == (2, 1)
    assert first.json()["ids"] == repeat.json()["ids"]
    stored = receiver.stored()
    # Each service is its own partition key, so only the order within a service is kept.
    assert sorted(event.id for event in stored) == sorted(first.json()["ids"] * 2)
    assert {(event.subject, event.data.model_dump()["state"]) for event in stored} == {
        ("checkout", "down"),
        ("search", "degraded"),
    }


def test_jira_and_servicenow_changes_are_published(receiver: Receiver) -> None:
    jira = receiver.post("/webhooks/jira", "jira_issue_created.json", bearer(JIRA_TOKEN))
    servicenow = receiver.post(
        "/webhooks/servicenow",
        "servicenow_incident_new.json",
        signed("servicenow_incident_new.json"),
    )
    assert (jira.status_code, servicenow.status_code) == (202, 202)
    stored = receiver.stored()
    assert [event.id for event in stored] == jira.json()["ids"] + servicenow.json()["ids"]
    assert [event.data.model_dump()["ticket_id"] for event in stored] == ["CHK-1042", "INC0010023"]


def test_a_replayed_ticket_webhook_gets_the_same_event_id(receiver: Receiver) -> None:
    answers = [
        receiver.post("/webhooks/jira", "jira_comment_created.json", bearer(JIRA_TOKEN))
        for _ in range(2)
    ]
    assert [answer.status_code for answer in answers] == [202, 202]
    assert answers[0].json()["ids"] == answers[1].json()["ids"]


@pytest.mark.parametrize(
    ("path", "payload", "headers"),
    [
        ("/webhooks/jira", "jira_issue_created.json", {}),
        ("/webhooks/jira", "jira_issue_created.json", bearer("not-the-token")),
        # Alertmanager's token is no Jira credential.
        ("/webhooks/jira", "jira_issue_created.json", bearer(ALERTMANAGER_TOKEN)),
        ("/webhooks/alertmanager", "alertmanager_firing.json", {}),
        ("/webhooks/alertmanager", "alertmanager_firing.json", bearer(JIRA_TOKEN)),
        ("/webhooks/servicenow", "servicenow_incident_new.json", {}),
        # Signed, but over another body.
        (
            "/webhooks/servicenow",
            "servicenow_incident_new.json",
            signed("servicenow_incident_resolved.json"),
        ),
    ],
)
def test_missing_or_wrong_credentials_get_401_and_nothing_is_written(
    receiver: Receiver, path: str, payload: str, headers: dict[str, str]
) -> None:
    answer = receiver.post(path, payload, headers)
    assert (answer.status_code, answer.json()["code"]) == (401, "unauthorized")
    assert receiver.stored() == []


def test_an_unmappable_ticket_gets_422_naming_the_field(receiver: Receiver) -> None:
    answer = receiver.post("/webhooks/generic", "jira_issue_created.json", bearer(JIRA_TOKEN))
    assert answer.status_code == 401  # generic has no credentials configured
    answer = receiver.post(
        "/webhooks/servicenow",
        "alertmanager_firing.json",
        signed("alertmanager_firing.json"),
    )
    assert answer.status_code == 422
    assert answer.json() == {
        "code": "invalid_payload",
        "error": "number: required field missing or empty",
    }
    assert receiver.stored() == []
