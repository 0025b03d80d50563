"""The receiver server, served on 127.0.0.1 and called with httpx: limits, auth, JSON errors."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from collectors.auth import HmacAuth, load_authenticators
from collectors.publisher import EventPublisher
from collectors.receiver import (
    ReceiverServer,
    TokenBucket,
    WebhookPayloadError,
    WebhookRequest,
)
from pipeline.transport import EmbeddedTransport
from sla.config import ReceiversConfig
from sla.errors import ConfigError
from sla.events import FAMILIES, CloudEvent, EventType, new_event, parse_event, topic_for

TOKEN = "t0ken-for-tests"
SECRET = "hmac-secret-for-tests"
ENV = {"TEST_STATUS_TOKEN": TOKEN, "TEST_SIGNED_SECRET": SECRET}
RECEIVED_AT = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)


@dataclass(frozen=True)
class StatusWebhook:
    """A tiny webhook: `{"state": "down"}` POSTed to `<prefix>/{service}` is a status event."""

    source: str
    path: str

    def events(self, body: bytes, request: WebhookRequest) -> list[CloudEvent]:
        try:
            states = json.loads(body)["states"]
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookPayloadError(f"expected {{'states': [...]}}: {exc}") from None
        return [
            new_event(
                EventType.STATUS,
                request.path_params["service"],
                {"state": state},
                source=f"webhook/{self.source}",
                time=request.received_at,
            )
            for state in states
        ]


WEBHOOKS = [
    StatusWebhook("status", "/webhooks/status/{service}"),
    StatusWebhook("signed", "/webhooks/signed/{service}"),
    StatusWebhook("open", "/webhooks/open/{service}"),
    StatusWebhook("forgotten", "/webhooks/forgotten/{service}"),
]


@dataclass
class Sink:
    """Durable publishing into an embedded transport, and what it holds."""

    transport: EmbeddedTransport = field(default_factory=EmbeddedTransport)

    def __post_init__(self) -> None:
        self.producer = self.transport.producer()
        self.publisher = EventPublisher(self.producer, "slamon")

    def publish_durably(self, events: list[CloudEvent]) -> None:
        for event in events:
            self.publisher.publish(event)
        self.publisher.flush()

    def stored(self) -> list[CloudEvent]:
        topics = [topic_for("slamon", family) for family in FAMILIES]
        consumer = self.transport.consumer("check", topics)
        return [parse_event(m.value) for m in consumer.poll_batch(1000, timeout_s=0.05)]


@dataclass
class Receiver:
    """A running receiver: its base URL and the sink behind it."""

    url: str
    sink: Sink

    def post(
        self, path: str, body: bytes = b'{"states": ["down"]}', **kwargs: Any
    ) -> httpx.Response:
        return httpx.post(self.url + path, content=body, **kwargs)


def receivers_config(**overrides: Any) -> ReceiversConfig:
    settings: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "auth": {
            "status": {"token_env": "TEST_STATUS_TOKEN"},
            "signed": {"hmac_secret_env": "TEST_SIGNED_SECRET"},
        },
        "allow_unauthenticated": ["open"],
        "max_body_bytes": 1024,
        "rate_limit": {"per_second": 1000, "burst": 1000},
    }
    settings.update(overrides)
    return ReceiversConfig.model_validate(settings)


Serve = Callable[..., Receiver]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """Start a ReceiverServer in a thread via `run`; every server is stopped at teardown."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def start(config: ReceiversConfig | None = None, ready: bool = True) -> Receiver:
        sink = Sink()
        server = ReceiverServer(
            config or receivers_config(),
            WEBHOOKS,
            sink.publish_durably,
            ready=lambda: ready,
            clock=lambda: RECEIVED_AT,
        )
        ports: queue.Queue[int] = queue.Queue()
        stop = threading.Event()
        thread = threading.Thread(target=server.run, args=(stop, ports.put))
        thread.start()
        stops.append((stop, thread))
        return Receiver(f"http://127.0.0.1:{ports.get(timeout=10)}", sink)

    yield start
    for stop, thread in stops:
        stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive()


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}"}


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["code"] == code
    assert response.json()["error"]


def test_good_bearer_token_publishes_before_202(serve: Serve) -> None:
    receiver = serve()
    response = receiver.post(
        "/webhooks/status/checkout",
        b'{"states": ["down", "up"]}',
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 202
    stored = receiver.sink.stored()
    # 202 comes only after publish_durably returned, so both events are already in the log.
    assert response.json() == {"accepted": 2, "ids": [event.id for event in stored]}
    assert [(e.subject, e.data.model_dump()["state"], e.time) for e in stored] == [
        ("checkout", "down", RECEIVED_AT),
        ("checkout", "up", RECEIVED_AT),
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
        # A valid HMAC signature is no substitute for the bearer token this sender uses.
        sign(b'{"states": ["down"]}'),
    ],
    ids=["missing", "wrong", "longer", "other-scheme", "empty", "hmac-instead"],
)
def test_bad_or_missing_bearer_token_is_401_and_nothing_written(
    serve: Serve, headers: dict[str, str]
) -> None:
    receiver = serve()
    response = receiver.post("/webhooks/status/checkout", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert receiver.sink.stored() == []


def test_rejections_are_logged_without_credentials_or_body(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = serve()
    with caplog.at_level(logging.INFO, logger="collectors.receiver"):
        receiver.post(
            "/webhooks/status/checkout",
            b'{"states": ["secret-body-marker"]}',
            headers={"Authorization": "Bearer leaked-if-logged"},
        )
    assert "source status" in caplog.text
    assert "401" in caplog.text
    assert "leaked-if-logged" not in caplog.text
    assert "secret-body-marker" not in caplog.text


def test_hmac_signature_of_the_body_is_accepted(serve: Serve) -> None:
    receiver = serve()
    body = b'{"states": ["degraded"]}'
    response = receiver.post("/webhooks/signed/payments", body, headers=sign(body))
    assert response.status_code == 202
    assert [event.subject for event in receiver.sink.stored()] == ["payments"]


def test_hmac_signature_in_upper_case_hex_is_accepted() -> None:
    body = b"{}"
    signature = sign(body)["X-Hub-Signature-256"]
    upper = "sha256=" + signature.removeprefix("sha256=").upper()
    assert HmacAuth(SECRET.encode()).verify({"X-Hub-Signature-256": upper}, body)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        # Signed, then tampered with on the way: the signature no longer matches.
        (b'{"states": ["up"]}', sign(b'{"states": ["down"]}')),
        (b'{"states": ["down"]}', sign(b'{"states": ["down"]}', secret="other-secret")),
        (b'{"states": ["down"]}', {}),
        # The bare hex without the sha256= prefix is not the agreed format.
        (
            b'{"states": ["down"]}',
            {"X-Hub-Signature-256": sign(b'{"states": ["down"]}')["X-Hub-Signature-256"][7:]},
        ),
        (b'{"states": ["down"]}', {"Authorization": f"Bearer {SECRET}"}),
    ],
    ids=["tampered-body", "other-secret", "missing", "no-prefix", "secret-as-bearer"],
)
def test_bad_hmac_signature_is_401_and_nothing_written(
    serve: Serve, body: bytes, headers: dict[str, str]
) -> None:
    receiver = serve()
    response = receiver.post("/webhooks/signed/payments", body, headers=headers)
    assert_error(response, 401, "unauthorized")
    assert receiver.sink.stored() == []


def test_signature_header_is_configurable(serve: Serve) -> None:
    auth = {"signed": {"hmac_secret_env": "TEST_SIGNED_SECRET", "signature_header": "X-Sig"}}
    receiver = serve(receivers_config(auth=auth))
    body = b'{"states": ["up"]}'
    default_header = receiver.post("/webhooks/signed/payments", body, headers=sign(body))
    assert default_header.status_code == 401
    signature = sign(body)["X-Hub-Signature-256"]
    custom = receiver.post("/webhooks/signed/payments", body, headers={"X-Sig": signature})
    assert custom.status_code == 202


def test_sender_without_auth_entry_is_refused_unless_opted_out(serve: Serve) -> None:
    receiver = serve()
    assert_error(receiver.post("/webhooks/forgotten/checkout"), 401, "unauthorized")
    assert receiver.post("/webhooks/open/checkout").status_code == 202
    assert [event.source for event in receiver.sink.stored()] == ["webhook/open"]


def test_body_at_the_limit_is_accepted(serve: Serve) -> None:
    receiver = serve()
    body = b'{"states": ["up"]}'
    padded = body + b" " * (1024 - len(body))  # exactly max_body_bytes
    assert receiver.post("/webhooks/open/checkout", padded).status_code == 202


def test_body_over_the_limit_with_content_length_is_413(serve: Serve) -> None:
    receiver = serve()
    body = b'{"states": ["up"]}'
    response = receiver.post("/webhooks/open/checkout", body + b" " * (1025 - len(body)))
    assert_error(response, 413, "too_large")
    assert receiver.sink.stored() == []


def test_chunked_body_over_the_limit_is_413(serve: Serve) -> None:
    receiver = serve()

    def chunks() -> Iterator[bytes]:
        # No Content-Length: the server must count while reading. 64 KiB, far over 1 KiB.
        yield b'{"states": ["up"]'
        for _ in range(64):
            yield b" " * 1024
        yield b"}"

    response = httpx.post(receiver.url + "/webhooks/open/checkout", content=chunks())
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert_error(response, 413, "too_large")
    assert receiver.sink.stored() == []


def test_chunked_body_within_the_limit_is_accepted(serve: Serve) -> None:
    receiver = serve()
    parts = [b'{"states": ', b'["up"]}']
    response = httpx.post(receiver.url + "/webhooks/open/checkout", content=iter(parts))
    assert response.status_code == 202


def test_requests_beyond_the_burst_get_429_with_retry_after(serve: Serve) -> None:
    receiver = serve(receivers_config(rate_limit={"per_second": 0.01, "burst": 2}))
    answers = [receiver.post("/webhooks/open/checkout").status_code for _ in range(3)]
    assert answers == [202, 202, 429]
    limited = receiver.post("/webhooks/open/checkout")
    assert_error(limited, 429, "rate_limited")
    # One token refills in 1 / 0.01 = 100 s (less the few ms since the burst: rounded up).
    assert limited.headers["Retry-After"] == "100"
    # Buckets are per sender: another source still has its burst.
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert receiver.post("/webhooks/status/checkout", headers=headers).status_code == 202
    assert len(receiver.sink.stored()) == 3


def test_forged_requests_spend_their_address_budget_not_the_senders(serve: Serve) -> None:
    receiver = serve(receivers_config(rate_limit={"per_second": 0.01, "burst": 2}))
    path, body = "/webhooks/status/checkout", b'{"states": ["down"]}'
    good = {"Authorization": f"Bearer {TOKEN}"}
    # The attacker calls from another loopback address than the real sender (127.0.0.1).
    attacker = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with attacker:
        forged = [
            attacker.post(receiver.url + path, content=body, headers={"Authorization": "Bearer x"})
            for _ in range(4)
        ]
        # Two failures use up its burst of 2; then even a right guess is refused unchecked.
        assert [r.status_code for r in forged] == [401, 401, 429, 429]
        assert forged[-1].headers["Retry-After"] == "100"
        assert attacker.post(receiver.url + path, content=body, headers=good).status_code == 429
    # The sender's own burst of 2 is untouched by all that, and only then runs out.
    answers = [receiver.post(path, body, headers=good).status_code for _ in range(3)]
    assert answers == [202, 202, 429]
    assert len(receiver.sink.stored()) == 2


def test_token_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(per_second=2.0, burst=3, monotonic=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    # Empty: a token needs 1 / 2 = 0.5 s.
    assert bucket.take() == 0.5
    now[0] = 0.25  # half a token back: the other half takes 0.25 s
    assert bucket.take() == 0.25
    now[0] = 10.0  # refills only up to the burst of 3
    assert [bucket.take() for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]


def test_unknown_path_is_404_json(serve: Serve) -> None:
    receiver = serve()
    assert_error(receiver.post("/webhooks/nobody"), 404, "not_found")


def test_wrong_method_is_405_json_with_allow(serve: Serve) -> None:
    receiver = serve()
    response = httpx.get(receiver.url + "/webhooks/status/checkout")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"


def test_payload_the_webhook_cannot_map_is_422(serve: Serve) -> None:
    receiver = serve()
    response = receiver.post("/webhooks/open/checkout", b'{"no-states": 1}')
    assert_error(response, 422, "invalid_payload")
    assert "expected {'states': [...]}" in response.json()["error"]
    assert receiver.sink.stored() == []


def test_publish_failure_is_503_and_the_caller_retries(serve: Serve) -> None:
    receiver = serve()
    receiver.sink.producer.close()  # every send now raises TransportError
    response = receiver.post("/webhooks/open/checkout")
    assert_error(response, 503, "unavailable")
    assert response.headers["Retry-After"] == "5"
    assert receiver.sink.stored() == []


def test_healthz_and_readyz(serve: Serve) -> None:
    ready = serve(ready=True)
    assert httpx.get(ready.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(ready.url + "/readyz").json() == {"status": "ready"}
    unready = serve(ready=False)
    assert httpx.get(unready.url + "/healthz").status_code == 200
    assert_error(httpx.get(unready.url + "/readyz"), 503, "not_ready")


def test_secret_from_a_private_file(tmp_path: Path) -> None:
    (tmp_path / "jira.secret").write_text(f"{SECRET}\n")
    (tmp_path / "jira.secret").chmod(0o600)
    config = receivers_config(auth={"jira": {"hmac_secret_file": "jira.secret"}})
    [auth] = load_authenticators(config, environ={}, base_dir=tmp_path).values()
    # The trailing newline of the file is not part of the secret.
    assert auth.verify(sign(b"{}"), b"{}")


def test_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(TOKEN)
    secret.chmod(0o644)
    config = receivers_config(auth={"jira": {"token_file": str(secret)}})
    with pytest.raises(ConfigError, match=f"secret file {secret} is accessible by group"):
        load_authenticators(config, environ={})


@pytest.mark.parametrize(
    ("auth", "named"),
    [
        ({"token_env": "TEST_UNSET_TOKEN"}, "environment variable TEST_UNSET_TOKEN"),
        ({"hmac_secret_file": "missing.secret"}, "missing.secret"),
    ],
)
def test_missing_secret_fails_at_startup(auth: dict[str, str], named: str) -> None:
    config = receivers_config(auth={"jira": auth})
    with pytest.raises(ConfigError, match=f"receivers.auth.jira: .*{named}"):
        ReceiverServer(config, WEBHOOKS, Sink().publish_durably, ready=lambda: True)


def test_opt_out_and_credentials_for_one_sender_conflict() -> None:
    with pytest.raises(ValidationError, match=r"allow_unauthenticated\.0"):
        receivers_config(allow_unauthenticated=["status"])


def test_a_taken_port_is_a_config_error(serve: Serve) -> None:
    taken = serve().url.rsplit(":", 1)[1]
    config = receivers_config(listen=f"127.0.0.1:{taken}")
    server = ReceiverServer(config, WEBHOOKS, Sink().publish_durably, ready=lambda: True)
    with pytest.raises(ConfigError, match=f"receivers.listen 127.0.0.1:{taken}: cannot serve"):
        asyncio.run(server.start())
