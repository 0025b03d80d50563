"""The Jira Service Management, ServiceNow and generic ticket webhooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from collectors.receiver import WebhookPayloadError, WebhookRequest
from collectors.webhooks.payload import stable_event_id
from collectors.webhooks.tickets import TicketWebhook, ticket_webhooks
from sla.config import ReceiversConfig, SlamonConfig, TicketMappings
from sla.events import EventType, TicketData

PAYLOADS = Path(__file__).parent / "payloads"
SERVICES = ("checkout", "search")
REQUEST = WebhookRequest(
    path_params={}, query={}, headers={}, received_at=datetime(2026, 3, 4, tzinfo=UTC)
)
MAPPINGS = TicketMappings.model_validate(
    {
        "jira": {"service_map": {"CHK": "checkout"}},
        "servicenow": {"service_map": {"Checkout Ops": "checkout"}},
        "generic": {
            "ticket_id": "ticket.ref",
            "updated": "changed_at",
            "status": "ticket.state",
            "priority": "ticket.urgency",
            "service": "product",
            "kind": "ticket.type",
            "customer": "org.slug",
            "priority_map": {"urgent": "P1", "normal": "P3"},
            "status_map": {"waiting_on_customer": "pending"},
            "responded": {"fields": ["agent_replied"]},
        },
    }
)
JIRA, SERVICENOW, GENERIC = ticket_webhooks(MAPPINGS, SERVICES)


def payload(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return document


def body(document: object) -> bytes:
    return json.dumps(document).encode()


def ticket(
    source: str, service: str, time: datetime, **data: Any
) -> tuple[str, str, str, datetime, TicketData]:
    """What a ticket event is expected to carry, its id included."""
    parts = (source, data["ticket_id"], time.isoformat(), data["status"], data["priority"])
    event_id = stable_event_id(*parts, str(data.get("responded", False)))
    return (event_id, source, service, time, TicketData(**data))


def mapped(webhook: TicketWebhook, name: str) -> list[tuple[str, str, str, datetime, TicketData]]:
    events = webhook.events((PAYLOADS / name).read_bytes(), REQUEST)
    assert {event.type for event in events} <= {EventType.TICKET}
    return [(e.id, e.source, e.subject, e.time, e.data) for e in events]  # type: ignore[misc]


def test_the_three_ticket_webhooks_and_their_senders() -> None:
    assert [(hook.source, hook.path) for hook in (JIRA, SERVICENOW, GENERIC)] == [
        ("jira", "/webhooks/jira"),
        ("servicenow", "/webhooks/servicenow"),
        ("generic", "/webhooks/generic"),
    ]


def test_a_jira_ticket_from_creation_to_waiting_for_customer() -> None:
    incident = {"ticket_id": "CHK-1042", "kind": "incident"}
    # Event times are the webhook `timestamp` in epoch milliseconds, e.g. 1772445330123.
    assert mapped(JIRA, "jira_issue_created.json") == [
        ticket(
            "webhook/jira",
            "checkout",
            datetime(2026, 3, 2, 9, 55, 30, 123000, tzinfo=UTC),
            **incident,
            priority="P2",  # High
            status="open",  # Waiting for support
        )
    ]
    # A public comment by an agent (accountType atlassian) is the first response.
    assert mapped(JIRA, "jira_comment_created.json") == [
        ticket(
            "webhook/jira",
            "checkout",
            datetime(2026, 3, 2, 10, 20, 11, 456000, tzinfo=UTC),
            **incident,
            priority="P2",
            status="open",
            responded=True,
        )
    ]
    # Highest is P1; having left Waiting for support, every later change counts as answered.
    assert mapped(JIRA, "jira_issue_updated.json") == [
        ticket(
            "webhook/jira",
            "checkout",
            datetime(2026, 3, 2, 10, 41, 2, 789000, tzinfo=UTC),
            **incident,
            priority="P1",
            status="pending",
            responded=True,
        )
    ]


@pytest.mark.parametrize(
    ("change", "responded"),
    [
        ({"jsdPublic": False}, False),  # an internal note is no answer to the customer
        ({"author": {"accountType": "customer"}}, False),  # the customer writing again
        ({}, True),
    ],
)
def test_only_a_public_agent_comment_responds(change: dict[str, Any], responded: bool) -> None:
    document = payload("jira_comment_created.json")
    document["comment"].update(change)
    [event] = JIRA.events(body(document), REQUEST)
    assert isinstance(event.data, TicketData)
    assert event.data.responded is responded


def test_jira_events_that_change_no_ticket_are_skipped() -> None:
    document = {**payload("jira_issue_updated.json"), "webhookEvent": "jira:issue_deleted"}
    assert JIRA.events(body(document), REQUEST) == []


def test_a_jira_customer_comes_from_a_configured_path_into_a_list() -> None:
    mappings = TicketMappings.model_validate(
        {
            "jira": {
                "service_map": {"CHK": "checkout"},
                "customer": "issue.fields.customfield_10002.0.name",
            }
        }
    )
    [jira, *_] = ticket_webhooks(mappings, SERVICES)
    [event] = jira.events((PAYLOADS / "jira_issue_updated.json").read_bytes(), REQUEST)
    assert isinstance(event.data, TicketData)
    assert event.data.customer == "Retail GmbH"


def test_a_servicenow_incident_from_new_to_resolved() -> None:
    incident = {
        "ticket_id": "INC0010023",
        "kind": "incident",
        "priority": "P1",
        "customer": "Retail GmbH",
    }
    # sys_updated_on has no offset: ServiceNow sends it in UTC.
    assert mapped(SERVICENOW, "servicenow_incident_new.json") == [
        ticket(
            "webhook/servicenow",
            "checkout",
            datetime(2026, 3, 2, 9, 58, 12, tzinfo=UTC),
            **incident,
            status="new",
        )
    ]
    # Sent with display values: the UTC value of sys_updated_on (10:12:40) is read, not the
    # user's local display (11:12:40); the state "In Progress" has left New: responded.
    assert mapped(SERVICENOW, "servicenow_incident_in_progress.json") == [
        ticket(
            "webhook/servicenow",
            "checkout",
            datetime(2026, 3, 2, 10, 12, 40, tzinfo=UTC),
            **incident,
            status="in_progress",
            responded=True,
        )
    ]
    assert mapped(SERVICENOW, "servicenow_incident_resolved.json") == [
        ticket(
            "webhook/servicenow",
            "checkout",
            datetime(2026, 3, 2, 11, 47, 9, tzinfo=UTC),
            **incident,
            status="resolved",
            responded=True,
        )
    ]


def test_a_servicenow_work_note_on_a_new_ticket_is_a_response() -> None:
    document = {**payload("servicenow_incident_new.json"), "work_notes": "Looking into it"}
    [event] = SERVICENOW.events(body(document), REQUEST)
    assert isinstance(event.data, TicketData)
    assert (event.data.status, event.data.responded) == ("new", True)


def test_a_servicenow_request_item_is_a_request() -> None:
    document = payload("servicenow_incident_new.json") | {
        "sys_class_name": "sc_req_item",
        "number": "RITM0010007",
        "state": "Work in Progress",
        "priority": "4 - Low",
    }
    [event] = SERVICENOW.events(body(document), REQUEST)
    assert isinstance(event.data, TicketData)
    assert (event.data.kind, event.data.status, event.data.priority) == (
        "request",
        "in_progress",
        "P4",
    )


def test_a_generic_record_follows_its_configured_mapping() -> None:
    # changed_at 08:15+01:00 is 07:15Z.
    assert mapped(GENERIC, "generic_ticket.json") == [
        ticket(
            "webhook/generic",
            "search",
            datetime(2026, 3, 3, 7, 15, tzinfo=UTC),
            ticket_id="SUP-88",
            kind="request",
            priority="P1",
            status="pending",
            responded=True,
            customer="retail",
        )
    ]


def test_a_redelivered_ticket_change_keeps_its_id() -> None:
    raw = (PAYLOADS / "jira_issue_updated.json").read_bytes()
    assert [e.id for e in JIRA.events(raw, REQUEST)] == [e.id for e in JIRA.events(raw, REQUEST)]


def changed(name: str, path: str, value: object) -> bytes:
    """The payload `name` with the field at dotted `path` set to `value`."""
    document = payload(name)
    *parents, last = path.split(".")
    target = document
    for step in parents:
        target = target[step]
    target[last] = value
    return body(document)


@pytest.mark.parametrize(
    ("webhook", "document", "message"),
    [
        (JIRA, b"{", "body is not JSON: "),
        (JIRA, b"\xff", "body is not UTF-8 (byte 0)"),
        (
            JIRA,
            changed("jira_issue_created.json", "issue.fields.priority.name", "Blocker"),
            "issue.fields.priority.name: unknown priority 'Blocker': add it to priority_map "
            "(Highest, High, Medium, Low, Lowest)",
        ),
        (
            JIRA,
            changed("jira_issue_created.json", "issue.fields.project.key", "OPS"),
            "issue.fields.project.key: 'OPS' is no configured service; map it to one in "
            "service_map (services: checkout, search)",
        ),
        (
            JIRA,
            changed("jira_issue_created.json", "issue.fields.status.name", "Triage"),
            "issue.fields.status.name: unknown status 'Triage': add it to status_map "
            "(slamon statuses: new, open, in_progress, pending, resolved, closed)",
        ),
        (
            JIRA,
            changed("jira_issue_created.json", "issue.key", None),
            "issue.key: required field missing or empty",
        ),
        (
            JIRA,
            changed("jira_issue_created.json", "issue.fields.status", "x"),
            "issue.fields.status.name: required field missing or empty",
        ),
        (
            SERVICENOW,
            changed("servicenow_incident_new.json", "sys_updated_on", "02.03.2026 09:58"),
            "sys_updated_on: expected a timestamp such as 2026-03-01T12:00:00Z, "
            "got '02.03.2026 09:58'",
        ),
        (
            SERVICENOW,
            changed("servicenow_incident_new.json", "number", ["INC1"]),
            "number: expected a text or number, got a list",
        ),
    ],
)
def test_a_payload_that_cannot_be_mapped_is_rejected_naming_the_field(
    webhook: TicketWebhook, document: bytes, message: str
) -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        webhook.events(document, REQUEST)
    assert str(caught.value).startswith(message)


def test_configured_keys_replace_only_those_of_the_built_in_mapping() -> None:
    config = SlamonConfig.model_validate(
        {"receivers": {"tickets": {"jira": {"priority_map": {"Blocker": "P1"}}}}}
    )
    jira = config.receivers.tickets.jira
    assert (jira.priority_map, jira.status, jira.updated) == (
        {"Blocker": "P1"},
        "issue.fields.status.name",
        "timestamp",
    )
    assert SlamonConfig().receivers.tickets.servicenow.priority_map["1 - Critical"] == "P1"


@pytest.mark.parametrize(
    ("tickets", "location"),
    [
        ({"jira": {"status_map": {"Triage": "triaged"}}}, "jira.status_map.Triage"),
        ({"servicenow": {"service_map": {"Ops": "Checkout Ops"}}}, "servicenow.service_map.Ops"),
        ({"generic": {"timezone": "Europe/Berln"}}, "generic.timezone"),
        ({"generic": {"summary": {"resolved": "done_at"}}}, "generic.summary.created"),
        ({"jira": {"prio": "x"}}, "jira.prio"),
    ],
)
def test_a_bad_mapping_is_reported_at_its_field(tickets: dict[str, Any], location: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SlamonConfig.model_validate({"receivers": {"tickets": tickets}})
    [error] = caught.value.errors()
    assert ".".join(str(part) for part in error["loc"]) == f"receivers.tickets.{location}"


@pytest.mark.parametrize(
    ("changed_at", "shown"),
    [
        ("NaN", "nan"),
        ("Infinity", "inf"),
        ("1e300", "1e+300"),
        ('"99999999999999999999"', "99999999999999999999"),
        ('"0001-01-01T00:00:00+01:00"', "'0001-01-01T00:00:00+01:00'"),
    ],
)
def test_a_timestamp_out_of_range_is_422_naming_the_field(
    start_receiver: Any, changed_at: str, shown: str
) -> None:
    config = ReceiversConfig.model_validate(
        {"listen": "127.0.0.1:0", "allow_unauthenticated": ["generic"]}
    )
    receiver = start_receiver(config, [GENERIC], REQUEST.received_at, "slamon")
    raw = (PAYLOADS / "generic_ticket.json").read_text()
    # Python's JSON reader, like many senders' writers, takes NaN and Infinity as numbers.
    document = raw.replace('"2026-03-03T08:15:00+01:00"', changed_at)
    answer = httpx.post(f"{receiver.url}/webhooks/generic", content=document)
    # 422, not 500: the sender must not retry a payload that can never be mapped.
    assert answer.status_code == 422
    assert answer.json()["error"] == f"changed_at: timestamp out of range: {shown}"
    assert receiver.stored() == []
