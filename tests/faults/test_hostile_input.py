"""Hostile input: fuzzed events and webhook bodies, oversized and deeply nested bodies, hostile
label values on /metrics, SQL metacharacters in the store and path traversal in output names.

Every target must answer with its documented errors only (InvalidEventError with a code of
REJECTION_CODES; WebhookPayloadError or WebhookNotFoundError; an HTTP status of the receiver's
table), within the hypothesis deadline and with a bounded tracemalloc peak per input.
"""

from __future__ import annotations

import copy
import json
import math
import queue
import socket
import subprocess
import threading
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from collectors.heartbeat import HeartbeatWatcher, HeartbeatWebhook
from collectors.publisher import EventPublisher
from collectors.receiver import (
    ReceiverServer,
    Webhook,
    WebhookNotFoundError,
    WebhookPayloadError,
    WebhookRequest,
)
from collectors.records import RecordKind
from collectors.webhooks.alertmanager import AlertmanagerWebhook
from collectors.webhooks.records import record_webhooks
from collectors.webhooks.tickets import ticket_webhooks
from dashboards.build import write_provisioning
from pipeline.engine import inputs_in_batches
from pipeline.exporter import MetricsServer
from pipeline.parquet import ParquetExporter, parquet_events
from pipeline.store import EventStore
from pipeline.transport import EmbeddedTransport
from sla.config import (
    AlertmanagerConfig,
    ReceiversConfig,
    ServiceConfig,
    SlamonConfig,
    StoreConfig,
    TicketMappings,
)
from sla.errors import ConfigError, InvalidEventError
from sla.events import (
    CAPACITY,
    FAMILIES,
    PROBE,
    REJECTION_CODES,
    TICKET,
    CloudEvent,
    EventType,
    new_event,
    parse_event,
    topic_for,
)
from slamon.app import PipelineService
from slamon.configfile import load_config
from slamon.report import write_report

REPO = Path(__file__).resolve().parents[2]
PAYLOADS = REPO / "tests" / "collectors" / "payloads"
SERVICES = ("checkout", "search")
RECEIVED = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
MAX_BODY = 1_048_576  # receivers.max_body_bytes default
TOKEN = "hostile-input-token-0123456789"

# Memory one input may take at its peak (tracemalloc): a fixed allowance plus a multiple of
# its size. Before the fixes a 1 MiB Alertmanager body of bad alerts peaked at 622 MB.
MEMORY_BASE = 4 * 1024 * 1024
MEMORY_PER_BYTE = 32
# No hang: hypothesis fails an example slower than this (deadline), far above the ~ms they take.
DEADLINE = timedelta(seconds=3)
FUZZ = settings(
    deadline=DEADLINE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Strings that break quoting, paths, SQL, label syntax, digit and time parsing.
NASTY = (
    '"',
    "\\",
    "\n",
    'a"b\\c\nd',
    '"}\nslamon_fake 1\n',
    "'; DROP TABLE events; --",
    "x' OR '1'='1",
    "../../etc/passwd",
    "..",
    "/",
    "C:\\Windows\\system32",
    "\x00",
    "\r\n",
    "\u2028",
    "\ud800",  # a lone surrogate: json.dumps escapes it, no event can carry it
    "😀",
    "²",
    "٣",
    "NaN",
    "1e400",
    "-1",
    "99999999999999999999999",
    "9" * 5000,
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-05:00",
    "2026-02-30T00:00:00Z",
    "2026-03-01T12:00:00",
    "{{service}}",
    "%s%n",
    "a" * 300,
)
TEXT = st.one_of(st.text(max_size=24), st.sampled_from(NASTY))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**63, 10**30, 10**4000]),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def encode(document: object) -> bytes:
    """JSON as a sender might write it (NaN and huge integers included)."""
    return json.dumps(document, allow_nan=True).encode()


def paths(document: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location in a JSON document, the root included."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


def replaced(document: object, path: tuple[Any, ...], value: object) -> object:
    """`document` with the value at `path` replaced (the root when `path` is empty)."""
    if not path:
        return value
    copied = copy.deepcopy(document)
    target: Any = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copied


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[object]) -> object:
    """A seed payload with one to three values replaced by hostile ones, or keys added."""
    document = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(document)))
        if draw(st.booleans()) or not path:
            document = replaced(document, path, draw(JSON_VALUES))
        else:
            parent: Any = replaced(document, (), document)
            for step in path[:-1]:
                parent = parent[step]
            if isinstance(parent, dict):
                parent[draw(TEXT)] = draw(JSON_VALUES)
    return document


@st.composite
def garbled(draw: st.DrawFn, seeds: Sequence[object]) -> bytes:
    """A seed payload's bytes with random bytes spliced in: invalid UTF-8, broken syntax."""
    raw = encode(draw(st.sampled_from(seeds)))
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at + draw(st.integers(0, 4)) :]


def bodies(seeds: Sequence[object]) -> st.SearchStrategy[bytes]:
    """Hostile bodies: random bytes, random JSON, mutated and garbled seed payloads."""
    return st.one_of(
        st.binary(max_size=256),
        JSON_VALUES.map(encode),
        mutated(seeds).map(encode),
        garbled(seeds),
    )


def nested(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * depth + closer * depth


DEEP = [nested(depth) for depth in (100, 250, 5_000, 200_000)] + [
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b'{"alerts": ' + nested(300_000) + b"}",
]
BROKEN = [
    b"\xff\xfe{}",
    b'{"a": "\xc3\x28"}',
    b'{"a": "\xed\xa0\x80"}',  # a UTF-8 encoded surrogate
    b'{"a": "\\ud800"}',
    b"\x00" * 64,
    b"",
    b"{" + b"1" * 5000 + b"}",
    b'{"a": ' + b"9" * 5000 + b"}",
    b"[" + b"1e999," * 1000 + b"1]",
]


def outcome_of(call: Callable[[], object]) -> object:
    """`call()`'s result or the exception it raised."""
    try:
        return call()
    except Exception as exc:  # judged by the caller: only documented errors may escape
        return exc


def within_memory(call: Callable[[], object], size: int) -> object:
    """`call()`'s result or the exception it raised, after checking its tracemalloc peak."""
    tracemalloc.start()
    try:
        outcome = outcome_of(call)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    bound = MEMORY_BASE + MEMORY_PER_BYTE * size
    assert peak <= bound, f"peak {peak:,} bytes for a {size:,} byte input (bound {bound:,})"
    return outcome


# --- parse_event -------------------------------------------------------------------------


def valid_events() -> list[dict[str, Any]]:
    """One valid event of each type, as decoded JSON."""
    at = "2026-03-01T12:00:00Z"
    data: dict[EventType, dict[str, Any]] = {
        EventType.PROBE: {"check": "health", "ok": True, "latency_ms": 12.5},
        EventType.STATUS: {"state": "down", "reason": "alert"},
        EventType.OUTAGE: {"outage_id": "o-1", "start": at, "end": None},
        EventType.MAINTENANCE: {
            "window_id": "w-1", "start": at, "end": "2026-03-01T13:00:00Z", "reason": "patch"
        },
        EventType.CAPACITY: {"resource": "cpu", "used": 3.0, "capacity": 4.0, "unit": "cores"},
        EventType.TICKET: {
            "ticket_id": "T-1", "kind": "incident", "priority": "P1", "status": "new"
        },
        EventType.CHANGE: {
            "change_id": "C-1", "kind": "normal", "status": "implemented",
            "start": at, "end": "2026-03-01T12:30:00Z",
        },
        EventType.CONTINUITY: {
            "test_id": "DR-1", "scenario": "failover", "invoked_at": at,
            "restored_at": "2026-03-01T13:00:00Z", "data_restored_to": "2026-03-01T11:55:00Z",
            "outcome": "passed",
        },
    }  # fmt: skip
    return [
        json.loads(new_event(kind, "checkout", payload, source="fuzz", id="e-1").to_json())
        for kind, payload in data.items()
    ]


EVENTS = valid_events()


def check_parse(raw: bytes, max_bytes: int = 262_144) -> None:
    """parse_event gives an event that round-trips, or InvalidEventError with a known code."""
    outcome = within_memory(lambda: parse_event(raw, max_bytes=max_bytes), len(raw))
    if isinstance(outcome, CloudEvent):
        assert parse_event(outcome.to_json()) == outcome
    else:
        assert isinstance(outcome, InvalidEventError), repr(outcome)
        assert outcome.code in REJECTION_CODES
        assert outcome.reason


@settings(FUZZ, max_examples=300)
@given(st.binary(max_size=512))
def test_parse_event_takes_any_bytes(raw: bytes) -> None:
    check_parse(raw)


@settings(FUZZ, max_examples=400)
@given(st.one_of(mutated(EVENTS).map(encode), garbled(EVENTS), JSON_VALUES.map(encode)))
def test_parse_event_takes_hostile_events(raw: bytes) -> None:
    check_parse(raw)


@pytest.mark.parametrize("raw", DEEP + BROKEN, ids=range(len(DEEP + BROKEN)))
def test_parse_event_refuses_deep_and_broken_json_with_a_code(raw: bytes) -> None:
    check_parse(raw, max_bytes=len(raw) + 1)


def test_parse_event_refuses_an_oversized_message_before_parsing_it() -> None:
    with pytest.raises(InvalidEventError) as refused:
        parse_event(b"[" * 300_000, max_bytes=262_144)
    assert refused.value.code == "too_large"


def test_a_message_of_many_bad_attributes_stays_bounded() -> None:
    """Each bad extension attribute is one validation error: 256 KiB of them is the worst."""
    head = encode(EVENTS[0])[:-1]
    attributes = b"".join(b',"e%d":1.5' % n for n in range(21_000))
    raw = head + attributes + b"}"
    check_parse(raw[:262_143] if len(raw) < 262_144 else head + attributes[:250_000] + b"}")


# --- webhook handlers, called directly ---------------------------------------------------


def seed(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return document


GENERIC = {
    "id": "T-7", "updated": "2026-03-03T08:15:00Z", "status": "open", "priority": "P1",
    "service": "checkout", "kind": "incident", "customer": "acme",
}  # fmt: skip
RECORDS: dict[RecordKind, dict[str, Any]] = {
    RecordKind.CHANGE: {
        "service": "checkout", "change_id": "CHG-1", "kind": "emergency", "status": "failed",
        "start": "2026-03-01T22:00:00Z", "end": "2026-03-01T23:30:00Z",
    },
    RecordKind.CONTINUITY: {
        "service": "search", "test_id": "DR-7", "scenario": "restore", "outcome": "passed",
        "invoked_at": "2026-02-10T09:00:00Z", "restored_at": "2026-02-10T10:30:00Z",
        "data_restored_to": "2026-02-10T08:45:00Z", "time": "2026-02-10T10:31:00Z",
    },
    RecordKind.MAINTENANCE: {
        "service": "checkout", "window_id": "MW-4", "reason": "kernel patching",
        "start": "2026-03-07T02:00:00+01:00", "end": "2026-03-07T04:00:00+01:00",
    },
}  # fmt: skip
BACKUP = {"name": "backup", "interval": "1h", "grace": "5m"}
HEARTBEATS = [
    ServiceConfig.model_validate({"id": "checkout", "name": "Checkout", "heartbeats": [BACKUP]}),
    ServiceConfig.model_validate({"id": "search", "name": "Search"}),
]  # fmt: skip


@dataclass(frozen=True)
class Target:
    """A webhook and the real payloads its hostile bodies are mutated from."""

    webhook: Webhook
    seeds: list[object]


JIRA_SEEDS = [f"jira_{n}.json" for n in ("issue_created", "issue_updated", "comment_created")]
SNOW_SEEDS = [f"servicenow_incident_{n}.json" for n in ("new", "in_progress", "resolved")]


def targets() -> dict[str, Target]:
    """Every webhook slamon serves, configured as slamon.app wires them."""
    mappings = TicketMappings.model_validate(
        {
            "jira": {"service_map": {"CHK": "checkout"}},
            "servicenow": {"service_map": {"Checkout Ops": "checkout"}},
        }
    )
    jira, servicenow, generic = ticket_webhooks(mappings, SERVICES)
    label_map = {"job": {"search-api": "search"}}
    found = {
        "alertmanager": Target(
            AlertmanagerWebhook(AlertmanagerConfig(label_map=label_map), SERVICES),
            [seed("alertmanager_firing.json"), seed("alertmanager_resolved.json")],
        ),
        "jira": Target(jira, [seed(name) for name in JIRA_SEEDS]),
        "servicenow": Target(servicenow, [seed(name) for name in SNOW_SEEDS]),
        "generic": Target(generic, [GENERIC]),
        "heartbeat": Target(
            HeartbeatWebhook(HeartbeatWatcher(HEARTBEATS, lambda event: None, lambda: RECEIVED)),
            [{"ok": False, "error": "disk full"}, {"ok": True}, {}],
        ),
    }  # fmt: skip
    for webhook in record_webhooks(SERVICES):
        found[webhook.source] = Target(
            webhook, [RECORDS[webhook.kind], [RECORDS[webhook.kind]] * 2]
        )
    return found


TARGETS = targets()
ROUTES = {name: target.webhook.path for name, target in TARGETS.items()}


def request(path_params: dict[str, str] | None = None) -> WebhookRequest:
    params = {"service": "checkout", "check": "backup"} if path_params is None else path_params
    return WebhookRequest(path_params=params, query={}, headers={}, received_at=RECEIVED)


def check_webhook(
    name: str, body: bytes, path_params: dict[str, str] | None = None, *, memory: bool = True
) -> None:
    """Events that round-trip for configured services, or WebhookPayloadError / NotFound."""
    webhook = TARGETS[name].webhook

    def call() -> object:
        return webhook.events(body, request(path_params))

    outcome = within_memory(call, len(body)) if memory else outcome_of(call)
    if isinstance(outcome, list):
        for event in outcome:
            assert event.subject in SERVICES
            assert parse_event(event.to_json()) == event
    else:
        allowed = (WebhookPayloadError, WebhookNotFoundError)
        assert isinstance(outcome, allowed), f"{name}: {outcome!r}"
        assert str(outcome)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_webhooks_take_hostile_bodies(name: str) -> None:
    @settings(FUZZ, max_examples=250)
    @given(bodies(TARGETS[name].seeds))
    def run(body: bytes) -> None:
        check_webhook(name, body)

    run()


# Every value of NASTY plus the JSON kinds and numeric edges, for the field-by-field sweep.
SWEEP_VALUES: list[object] = [
    *NASTY, None, True, 0, -1, 1.5, 2**63, 10**30, 1e308, math.nan, math.inf,
    [], {}, ["x"], {"a": "b"},
]  # fmt: skip


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_field_of_every_seed_takes_every_nasty_value(name: str) -> None:
    """Not random: each location of each real payload gets each value of SWEEP_VALUES."""
    for document in TARGETS[name].seeds:
        for path in paths(document)[1:]:
            for value in SWEEP_VALUES:
                check_webhook(name, encode(replaced(document, path, value)), memory=False)


@settings(FUZZ, max_examples=150)
@given(st.dictionaries(st.sampled_from(["service", "check"]), TEXT, min_size=2))
def test_heartbeat_takes_hostile_service_and_check_names(params: dict[str, str]) -> None:
    check_webhook("heartbeat", b"", params)


@pytest.mark.parametrize("raw", DEEP + BROKEN, ids=range(len(DEEP + BROKEN)))
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_webhooks_refuse_deep_and_broken_json(name: str, raw: bytes) -> None:
    check_webhook(name, raw)


def many(item: bytes, around: tuple[bytes, bytes], size: int = MAX_BODY) -> bytes:
    """`item` repeated (comma separated) inside `around`, to `size` bytes at most."""
    count = (size - len(around[0]) - len(around[1])) // (len(item) + 1)
    return around[0] + b",".join([item] * count) + around[1]


def numbered(template: bytes, around: tuple[bytes, bytes], size: int = MAX_BODY) -> bytes:
    """`template % n` for n = 0, 1, ... (comma separated) inside `around`, to `size` bytes."""
    parts, used, n = [], len(around[0]) + len(around[1]), 0
    while used + len(template) + 8 < size:
        parts.append(template % n)
        used += len(parts[-1]) + 1
        n += 1
    return around[0] + b",".join(parts) + around[1]


AM_HEAD = b'{"version": "4", "status": "firing", "alerts": ['
ALERT = b'{"status": "firing", "startsAt": "2026-03-01T12:00:00Z", "labels": {'
AMPLIFIERS = {
    # 1 MiB bodies whose every item is a separate validation error.
    "alertmanager": [
        many(b"1", (AM_HEAD, b"]}")),
        numbered(b'"l%d": 1', (AM_HEAD + ALERT, b"}}]}")),
        numbered(b'{"status": "x%d"}', (AM_HEAD, b"]}")),
    ],
    "heartbeat": [numbered(b'"k%d": 1', (b"{", b"}"))],
    "changes": [
        numbered(b'"f%d": 1', (b'{"service": "checkout", ', b"}")),
        many(b'{"service": "checkout"}', (b"[", b"]")),
    ],
    "generic": [numbered(b'"f%d": [1]', (encode(GENERIC)[:-1] + b", ", b"}"))],
}


@pytest.mark.parametrize(
    ("name", "body"),
    [(name, body) for name, found in AMPLIFIERS.items() for body in found],
    ids=[f"{name}-{n}" for name, found in AMPLIFIERS.items() for n in range(len(found))],
)
def test_a_full_body_of_bad_items_costs_a_bounded_amount(name: str, body: bytes) -> None:
    assert MAX_BODY - 64 < len(body) <= MAX_BODY
    check_webhook(name, body)


# --- the receiver over HTTP ----------------------------------------------------------------

DOCUMENTED = {202, 401, 404, 405, 413, 422, 429}


@dataclass
class Running:
    """A receiver serving every webhook on a free port, and the events it stored."""

    url: str
    transport: EmbeddedTransport
    client: httpx.Client


TOPICS = [topic_for("slamon", family) for family in FAMILIES]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Running]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOSTILE_TOKEN", TOKEN)
        auth = {name: {"token_env": "HOSTILE_TOKEN"} for name in TARGETS}
        config = ReceiversConfig.model_validate(
            {
                "listen": "127.0.0.1:0",
                "auth": auth,
                "max_body_bytes": 65_536,
                "rate_limit": {"per_second": 100_000, "burst": 100_000},
            }
        )
        transport = EmbeddedTransport()
        transport.ensure_topics(TOPICS)
        publisher = EventPublisher(transport.producer(), "slamon")
        webhooks = [target.webhook for target in TARGETS.values()]
        server = ReceiverServer(
            config, webhooks, publisher.publish_durably, ready=lambda: True, clock=lambda: RECEIVED
        )
    ports: queue.Queue[int] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=server.run, args=(stop, ports.put), daemon=True)
    thread.start()
    try:
        with httpx.Client(timeout=10) as client:
            yield Running(f"http://127.0.0.1:{ports.get(timeout=10)}", transport, client)
    finally:
        stop.set()
        thread.join(15)


ALL_SEEDS = [document for target in TARGETS.values() for document in target.seeds]
SEGMENTS = st.one_of(st.sampled_from(["checkout", "backup", "..", "%2e%2e", "%2F", "%00"]), TEXT)


@st.composite
def http_requests(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str]]:
    """A method, path, body and headers: real routes and hostile ones, with or without auth."""
    route = draw(st.sampled_from([*ROUTES.values(), "/", "/webhooks/", "/healthz"]))
    route = route.replace("{service}", draw(SEGMENTS)).replace("{check}", draw(SEGMENTS))
    suffix = draw(st.sampled_from(["", "?x=1", "?token=" + TOKEN[:5], "/extra", "//"]))
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]))
    headers = draw(
        st.sampled_from(
            [
                {"Authorization": f"Bearer {TOKEN}"},
                {"Authorization": f"Bearer {TOKEN}"},
                {"Authorization": "Bearer wrong"},
                {},
                {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain; charset=utf-7"},
            ]
        )
    )
    return method, route + suffix, draw(bodies(ALL_SEEDS)), headers


@settings(FUZZ, max_examples=150)
@given(http_requests())
def test_the_receiver_answers_hostile_requests_with_documented_errors(
    receiver: Running, call: tuple[str, str, bytes, dict[str, str]]
) -> None:
    method, path, body, headers = call
    try:
        response = receiver.client.request(
            method, receiver.url + path, content=body, headers=headers
        )
    except (httpx.InvalidURL, UnicodeEncodeError):
        return  # the client refuses to send it at all
    if response.status_code == 400:
        # aiohttp's HTTP parser refuses a request line or header over 8190 bytes itself.
        assert len(path) > 8000, response.text
        return
    assert response.status_code in DOCUMENTED | {200}, response.text
    if response.status_code >= 400:
        assert response.json()["code"]


@pytest.mark.parametrize("raw", DEEP[:3] + BROKEN, ids=range(len(DEEP[:3] + BROKEN)))
def test_the_receiver_answers_deep_and_broken_json_with_422(receiver: Running, raw: bytes) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for route in ROUTES.values():
        path = route.format(service="checkout", check="backup")
        response = receiver.client.post(receiver.url + path, content=raw, headers=headers)
        if path.startswith("/heartbeat") and not raw.strip():
            assert response.status_code == 202  # an empty ping is a ping
        else:
            assert (response.status_code, response.json()["code"]) == (422, "invalid_payload")


def raw_request(url: str, head: bytes, body: bytes = b"") -> tuple[socket.socket, bytes]:
    """Send `head` and `body` on a raw connection, leave it open, read the first answer."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=10)
    connection.sendall(head + body)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = connection.recv(65_536)
        if not chunk:
            break
        answer += chunk
    return connection, answer


def test_a_declared_huge_body_is_413_before_any_of_it_is_sent(receiver: Running) -> None:
    head = (
        b"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
        b"Content-Length: 10000000000\r\n\r\n"
    )
    connection, answer = raw_request(receiver.url, head)
    connection.close()
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_a_chunked_body_is_413_once_over_the_limit_not_at_its_end(receiver: Running) -> None:
    chunk = b" " * 16_384
    over = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5))  # 80 KiB > 64 KiB
    head = (
        b"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    # The body never ends (no final 0-size chunk): the answer must come anyway.
    connection, answer = raw_request(receiver.url, head, over)
    connection.close()
    assert answer.startswith(b"HTTP/1.1 413 ")


# --- hostile label values on /metrics ------------------------------------------------------

LABEL_VALUES = [
    'say "hi"',
    "back\\slash",
    "new\nline",
    'all"\\\n',
    "ünï 😀",
    "x'; DROP TABLE probes; --",
]


@pytest.fixture(scope="module")
def exposition(
    tmp_path_factory: pytest.TempPathFactory, demo_config: Callable[[Path], SlamonConfig]
) -> Iterator[str]:
    """/metrics of a pipeline whose events carry quotes, backslashes and newlines in labels."""
    config = demo_config(tmp_path_factory.mktemp("labels"))
    now = datetime.now(UTC).replace(microsecond=0)
    expiry = (now + timedelta(days=40)).isoformat()
    events = []
    for n, value in enumerate(LABEL_VALUES):
        at = now - timedelta(minutes=n + 1)
        probe = {"check": value, "ok": True, "latency_ms": 1.0, "cert_expires_at": expiry}
        events.append(new_event(PROBE, "checkout", probe, source=value, time=at))
        capacity = {"resource": value, "used": 1.0, "capacity": 2.0, "unit": value, "host": value}
        events.append(new_event(CAPACITY, "checkout", capacity, source="fuzz", time=at))
        ticket = {"ticket_id": value, "kind": "incident", "priority": value, "status": "new"}
        events.append(new_event(TICKET, "checkout", ticket, source="fuzz", time=at))
        # Events of services nobody configured, named to break SQL and labels.
        events.append(new_event(PROBE, value, probe, source="fuzz", time=at))
    transport = EmbeddedTransport()
    registry = CollectorRegistry()
    service = PipelineService(config, transport, registry)
    try:
        publisher = EventPublisher(transport.producer(), config.transport.topic_prefix)
        for event in events:
            publisher.publish(event)
        publisher.flush()
        assert service.drain() == len(events)
        server = MetricsServer(registry, "127.0.0.1", 0)
        try:
            yield httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
        finally:
            server.stop()
    finally:
        service.close()


def test_hostile_label_values_are_escaped_and_read_back(exposition: str) -> None:
    families = {family.name: family for family in text_string_to_metric_families(exposition)}
    expiry = families["slamon_probe_certificate_expiry_timestamp_seconds"]
    checks = {s.labels["check"] for s in expiry.samples if s.labels["service"] == "checkout"}
    assert set(LABEL_VALUES) <= checks
    capacity = [family for name, family in families.items() if name.startswith("slamon_capacity_")]
    resources = {s.labels.get("resource") for family in capacity for s in family.samples}
    assert set(LABEL_VALUES) <= resources
    # Unconfigured services get no series, so their names never become labels.
    services = {s.labels.get("service") for f in families.values() for s in f.samples}
    assert not services & set(LABEL_VALUES)


@pytest.mark.prometheus
def test_promtool_accepts_the_hostile_exposition(
    exposition: str, prometheus_binaries: dict[str, Path]
) -> None:
    # promtool both parses and lints: an unescaped quote or newline would be a parse error.
    promtool = [str(prometheus_binaries["promtool"]), "check", "metrics"]
    output = subprocess.run(
        promtool, input=exposition.encode(), capture_output=True, timeout=60, check=True
    )
    assert not output.stdout + output.stderr, output.stderr


# --- SQL metacharacters in the store and the engine ---------------------------------------

SQL_NASTY = ["x'; DROP TABLE events; --", 'a"b', "o'brien", "1 OR 1=1", "%_\\", "$services"]


def test_sql_metacharacters_are_data_in_the_store_engine_and_export(tmp_path: Path) -> None:
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    events = [
        new_event(
            PROBE,
            name,
            {"check": name, "ok": False, "latency_ms": 1.0, "error": name},
            source=name,
            time=now - timedelta(minutes=n),
            id=name,
        )
        for n, name in enumerate(SQL_NASTY)
    ]
    probe = {"check": SQL_NASTY[0], "ok": True, "latency_ms": 1.0}
    events.append(new_event(PROBE, "checkout", probe, source="probe", time=now))
    store = EventStore(tmp_path / "slamon.duckdb")
    export = tmp_path / "export"
    try:
        store.write_batch(events)
        stored = store.query(
            "SELECT subject FROM events WHERE subject IN (SELECT unnest($names))",
            {"names": SQL_NASTY},
        )
        assert sorted(stored["subject"].to_list()) == sorted(SQL_NASTY)
        assert store.query("SELECT count(*) AS n FROM events")["n"].to_list() == [len(events)]
        # The engine reads the configured services' inputs in parameterised batches.
        config = load_config(REPO / "examples" / "demo.yaml")
        seconds = int(now.timestamp())
        batches = list(inputs_in_batches(store, config, seconds - 86_400, seconds, 2))
        assert {name for batch in batches for name in batch} == {s.id for s in config.services}
        ParquetExporter(export).export(store, "hostile")
    finally:
        store.close()
    # Partition directories are percent-encoded: nothing lands outside the export.
    assert all(export in path.parents for path in export.rglob("*"))
    read_back = {
        event.subject for event, _ in parquet_events(export) if isinstance(event, CloudEvent)
    }
    assert set(SQL_NASTY) <= read_back


# --- path traversal in output names ----------------------------------------------------------


def demo_with(customers: Sequence[str | None], tmp_path: Path) -> SlamonConfig:
    """The demo config with its first services given `customers`."""
    demo = load_config(REPO / "examples" / "demo.yaml")
    services = [
        s.model_copy(update={"customer": c}) for s, c in zip(demo.services, customers, strict=False)
    ]
    return demo.model_copy(
        update={"services": services, "store": StoreConfig(path=str(tmp_path / "s.duckdb"))}
    )


@pytest.mark.parametrize(
    "customer", ["../../escaped", "/etc/cron.d/x", "..", ".", "a/../../b", "C:\\x\\..\\y", "\x00"]
)
def test_report_packs_stay_inside_the_output_directory(tmp_path: Path, customer: str) -> None:
    config = demo_with([customer], tmp_path)
    out = tmp_path / "out"
    store = EventStore(tmp_path / "s.duckdb")
    try:
        now = int(datetime(2026, 4, 2, tzinfo=UTC).timestamp())
        written = write_report(
            config, store, month="2026-03", customer=customer, out_dir=out, now=now, pdf=False
        )
    finally:
        store.close()
    assert written
    for path in written:
        assert out.resolve() in path.resolve().parents
        assert path.resolve().parent.parent == out.resolve()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("s.duckdb")) == [
        "out"
    ]


def test_two_customers_sharing_a_directory_name_are_refused(tmp_path: Path) -> None:
    config = demo_with(["acme/corp", "acme corp"], tmp_path)
    store = EventStore(tmp_path / "s.duckdb")
    now = int(datetime(2026, 4, 2, tzinfo=UTC).timestamp())
    try:
        with pytest.raises(ConfigError, match="'acme/corp' and 'acme corp' would both be written"):
            write_report(
                config, store, month="2026-03", out_dir=tmp_path / "out", now=now, pdf=False
            )
    finally:
        store.close()
    assert not (tmp_path / "out").exists()


def test_dashboard_files_stay_inside_the_output_directory(tmp_path: Path) -> None:
    config = demo_with(["../../escaped", "/etc"], tmp_path)
    out = tmp_path / "provisioning"
    written = write_provisioning(config, out)
    assert written
    assert all(out.resolve() in path.resolve().parents for path in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["provisioning"]


def test_nan_and_infinite_numbers_never_reach_an_event() -> None:
    for value in (math.nan, math.inf, -math.inf):
        capacity = {"resource": "cpu", "used": value, "capacity": 1.0, "unit": "ratio"}
        with pytest.raises(InvalidEventError):
            new_event(CAPACITY, "checkout", capacity, source="fuzz")
