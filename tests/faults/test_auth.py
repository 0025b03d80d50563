"""Authentication of the webhook receiver as slamon.app wires it: every route needs credentials
unless opted out, comparisons are constant time, secrets stay out of logs and answers, secret
files must be private, and the listeners bind loopback unless told otherwise.

tests/collectors/test_receiver.py covers one sender's bearer and HMAC checks, the failed-auth
rate limit and a 0644 secret file; this file covers what holds across all of them.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import logging
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

import collectors.auth
from collectors.auth import BearerAuth, HmacAuth, load_authenticators
from collectors.receiver import ReceiverServer
from pipeline.exporter import MetricsServer
from pipeline.transport import EmbeddedTransport
from sla.config import ExporterConfig, ReceiverAuthConfig, ReceiversConfig, SlamonConfig
from sla.errors import ConfigError
from slamon.app import CollectorService

TOKEN = "tok-3b1f9c0e-auth-tests"
SECRET = "hmac-7d2a41e6-auth-tests"
ENV = {"AUTH_TEST_TOKEN": TOKEN, "AUTH_TEST_SECRET": SECRET}
# Every route slamon serves, by sender; a new webhook must be added here to pass.
SENDERS = {
    "alertmanager": "/webhooks/alertmanager",
    "jira": "/webhooks/jira",
    "servicenow": "/webhooks/servicenow",
    "generic": "/webhooks/generic",
    "changes": "/webhooks/changes",
    "continuity": "/webhooks/continuity",
    "maintenance": "/webhooks/maintenance",
    "heartbeat": "/heartbeat/{service}/{check}",
}
HMAC_SENDERS = {"jira", "continuity"}


def slamon_config(allow_unauthenticated: list[str] | None = None) -> SlamonConfig:
    """A config with every webhook: bearer tokens for most senders, HMAC for two."""
    opted_out = allow_unauthenticated or []
    auth = {
        source: {"hmac_secret_env": "AUTH_TEST_SECRET"}
        if source in HMAC_SENDERS
        else {"token_env": "AUTH_TEST_TOKEN"}
        for source in SENDERS
        if source not in opted_out
    }
    return SlamonConfig.model_validate(
        {
            "transport": {"kind": "embedded"},
            "receivers": {
                "listen": "127.0.0.1:0",
                "auth": auth,
                "allow_unauthenticated": opted_out,
                "rate_limit": {"per_second": 10_000, "burst": 10_000},
            },
            "services": [
                {
                    "id": "checkout",
                    "name": "Checkout",
                    "heartbeats": [{"name": "backup", "interval": "1h", "grace": "5m"}],
                }
            ],
        }
    )


@dataclass
class Receiver:
    """The app's receiver, running, and the routes it serves by sender."""

    url: str
    routes: dict[str, str]
    client: httpx.Client

    def post(self, source: str, body: bytes = b"{}", **kwargs: Any) -> httpx.Response:
        path = self.routes[source].format(service="checkout", check="backup")
        return self.client.post(self.url + path, content=body, **kwargs)


StartReceiver = Callable[..., Receiver]


@pytest.fixture
def start_receiver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[StartReceiver]:
    """Start the receiver CollectorService builds from a config; stopped at teardown."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    stops: list[tuple[threading.Event, threading.Thread]] = []
    client = httpx.Client(timeout=10)

    def start(config: SlamonConfig) -> Receiver:
        server = CollectorService(config, EmbeddedTransport(), tmp_path).receiver
        assert isinstance(server, ReceiverServer)
        ports: queue.Queue[int] = queue.Queue()
        stop = threading.Event()
        thread = threading.Thread(target=server.run, args=(stop, ports.put), daemon=True)
        thread.start()
        stops.append((stop, thread))
        routes = {webhook.source: webhook.path for webhook in server.webhooks}
        return Receiver(f"http://127.0.0.1:{ports.get(timeout=10)}", routes, client)

    yield start
    client.close()
    for stop, thread in stops:
        stop.set()
        thread.join(15)


def credentials(source: str, body: bytes = b"{}") -> dict[str, str]:
    if source in HMAC_SENDERS:
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": f"sha256={digest}"}
    return {"Authorization": f"Bearer {TOKEN}"}


WRONG = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {SECRET}"},
    {"X-Hub-Signature-256": "sha256=" + "0" * 64},
    # Signed with the bearer token instead of the HMAC secret.
    {
        "X-Hub-Signature-256": "sha256="
        + hmac.new(TOKEN.encode(), b"{}", hashlib.sha256).hexdigest()
    },
    {"X-Hub-Signature-256": SECRET},
]


def test_the_app_serves_exactly_the_known_routes(start_receiver: StartReceiver) -> None:
    assert start_receiver(slamon_config()).routes == SENDERS


def test_every_route_refuses_missing_or_wrong_credentials(start_receiver: StartReceiver) -> None:
    receiver = start_receiver(slamon_config())
    for source in SENDERS:
        answers = {receiver.post(source, headers=headers).status_code for headers in WRONG}
        assert answers == {401}, source
        # The right credentials get past authentication (the empty object may not map).
        accepted = receiver.post(source, headers=credentials(source))
        assert accepted.status_code in {202, 422}, (source, accepted.text)


def test_only_the_senders_opted_out_are_accepted_without_credentials(
    start_receiver: StartReceiver,
) -> None:
    receiver = start_receiver(slamon_config(allow_unauthenticated=["generic", "heartbeat"]))
    answers = {source: receiver.post(source).status_code for source in SENDERS}
    assert answers == {
        source: 202 if source == "heartbeat" else 422 if source == "generic" else 401
        for source in SENDERS
    }


def test_a_sender_without_credentials_configured_is_refused_not_opened(
    start_receiver: StartReceiver,
) -> None:
    config = slamon_config()
    receivers = config.receivers.model_copy(update={"auth": {}})
    receiver = start_receiver(config.model_copy(update={"receivers": receivers}))
    for source in SENDERS:
        assert receiver.post(source, headers=credentials(source)).status_code == 401


# --- constant-time comparison ---------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [*WRONG, {"Authorization": f"Bearer {TOKEN}"}, {"Authorization": "Bearer ü\udcff"}],
)
def test_every_verification_is_one_compare_digest(
    monkeypatch: pytest.MonkeyPatch, headers: dict[str, str]
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    bearer = BearerAuth(TOKEN.encode())
    signed = HmacAuth(SECRET.encode())
    for auth in (bearer, signed):
        calls.clear()
        verdict = auth.verify(headers, b"{}")
        # A request with no credentials of that kind at all is refused without comparing.
        assert len(calls) <= 1
        if calls:
            assert verdict is real(*calls[0])
        else:
            assert verdict is False


def test_no_secret_is_compared_with_an_operator() -> None:
    """`==` on secrets leaks their prefix through timing; auth.py must use compare_digest."""
    tree = ast.parse(Path(collectors.auth.__file__).read_text())
    secret_names = {"token", "secret", "presented", "expected", "signature", "value"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            names = {
                getattr(part, "id", getattr(part, "attr", None))
                for side in (node.left, *node.comparators)
                for part in ast.walk(side)
            }
            eq = any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops)
            assert not (eq and names & secret_names), ast.unparse(node)


# --- secrets never in logs or answers ---------------------------------------------------------


def test_secrets_never_appear_in_logs_or_answers(
    start_receiver: StartReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: slamon's, aiohttp's and asyncio's records
    receiver = start_receiver(slamon_config())
    answers = []
    for source in SENDERS:
        for headers in [*WRONG, credentials(source)]:
            answers.append(receiver.post(source, headers=headers))
        # The secret in the query, in the body, doubled, or in a header too long for aiohttp.
        path = receiver.routes[source].format(service="checkout", check="backup")
        answers.append(receiver.client.post(f"{receiver.url}{path}?token={TOKEN}", content=b"{}"))
        answers.append(receiver.post(source, body=f'{{"token": "{TOKEN}"}}'.encode()))
        answers.append(receiver.post(source, headers={"Authorization": f"Bearer {TOKEN} {TOKEN}"}))
    long_token = {"Authorization": f"Bearer {TOKEN}{'x' * 9000}"}
    answers.append(receiver.post("generic", headers=long_token))
    assert {answer.status_code for answer in answers} >= {202, 400, 401, 422}
    # httpx and httpcore log this test's own requests, query string included.
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert server_side, "nothing was logged: the capture is not working"
    logged = "".join(f"{r.getMessage()} {r.__dict__}" for r in server_side)
    for secret in (TOKEN, SECRET):
        assert secret not in logged
        # The over-long header's 400 echoes it to its own sender only.
        assert all(secret not in a.text for a in answers if a.status_code != 400)


def test_authenticators_and_config_errors_never_show_a_secret(tmp_path: Path) -> None:
    secret_file = tmp_path / "jira.secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o640)
    config = ReceiversConfig.model_validate(
        {"auth": {"jira": {"hmac_secret_file": str(secret_file)}, "am": {"token_env": "T"}}}
    )
    with pytest.raises(ConfigError) as refused:
        load_authenticators(config, environ={"T": TOKEN})
    assert SECRET not in str(refused.value)
    secret_file.chmod(0o600)
    authenticators = load_authenticators(config, environ={"T": TOKEN})
    shown = repr(authenticators) + str(authenticators)
    assert TOKEN not in shown and SECRET not in shown


@pytest.mark.parametrize("field", ["token", "secret", "hmac_secret", "password"])
def test_a_secret_cannot_be_written_in_the_config(field: str) -> None:
    with pytest.raises(ValidationError):
        ReceiverAuthConfig.model_validate({field: TOKEN})


# --- secret files must be private -------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o610, 0o601])
def test_secret_files_others_may_touch_are_refused(tmp_path: Path, mode: int) -> None:
    secret = tmp_path / "token"
    secret.write_text(TOKEN)
    secret.chmod(mode)
    config = ReceiversConfig.model_validate({"auth": {"jira": {"token_file": "token"}}})
    with pytest.raises(ConfigError, match=f"accessible by group or others \\(mode {mode:04o}\\)"):
        load_authenticators(config, environ={}, base_dir=tmp_path)


@pytest.mark.parametrize("mode", [0o400, 0o700])
def test_secret_files_only_the_owner_may_touch_are_read(tmp_path: Path, mode: int) -> None:
    (tmp_path / "token").write_text(f"{TOKEN}\n")
    (tmp_path / "token").chmod(mode)
    config = ReceiversConfig.model_validate({"auth": {"jira": {"token_file": "token"}}})
    [auth] = load_authenticators(config, environ={}, base_dir=tmp_path).values()
    assert auth.verify({"Authorization": f"Bearer {TOKEN}"}, b"")


def test_a_private_link_to_a_readable_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "shared").write_text(TOKEN)
    (tmp_path / "shared").chmod(0o644)
    (tmp_path / "token").symlink_to(tmp_path / "shared")
    config = ReceiversConfig.model_validate({"auth": {"jira": {"token_file": "token"}}})
    with pytest.raises(ConfigError, match="accessible by group or others"):
        load_authenticators(config, environ={}, base_dir=tmp_path)


# --- loopback by default ----------------------------------------------------------------------


# Linux routes all of 127.0.0.0/8 to the loopback interface: a server bound to 127.0.0.1 alone
# does not answer on 127.0.0.2, one bound to every address does. Unlike the host's external
# address, it exists on every machine, so the check never has to be skipped.
OTHER_ADDRESS = "127.0.0.2"


def reachable(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=5).close()
    except OSError:
        return False
    return True


def test_metrics_listen_on_loopback_by_default() -> None:
    outside = OTHER_ADDRESS
    default = ExporterConfig()
    assert default.host == "127.0.0.1"
    for host, seen_outside in ((default.host, False), ("0.0.0.0", True)):
        server = MetricsServer(CollectorRegistry(), host, 0)
        try:
            assert reachable("127.0.0.1", server.port)
            # Against 0.0.0.0 the same check succeeds: it can tell the two apart.
            assert reachable(outside, server.port) is seen_outside
        finally:
            server.stop()


def test_the_receiver_listens_on_loopback_by_default(start_receiver: StartReceiver) -> None:
    outside = OTHER_ADDRESS
    assert ReceiversConfig().host == "127.0.0.1"
    config = slamon_config()
    default_host = ReceiversConfig().host
    receivers = config.receivers.model_copy(update={"listen": f"{default_host}:0"})
    receiver = start_receiver(config.model_copy(update={"receivers": receivers}))
    port = int(receiver.url.rsplit(":", 1)[1])
    assert reachable("127.0.0.1", port)
    assert not reachable(outside, port)
