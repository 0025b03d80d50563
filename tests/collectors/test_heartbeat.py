"""Heartbeats: pings through the real receiver, and missed pings as failed probes on time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import ValidationError

from collectors.heartbeat import HeartbeatWatcher, HeartbeatWebhook
from collectors.receiver import ReceiverServer
from sla.config import ReceiversConfig, ServiceConfig
from sla.errors import TransportError
from sla.events import CloudEvent, ProbeData

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
TOKEN = "heartbeat-token"

BILLING = ServiceConfig.model_validate(
    {
        "id": "billing",
        "name": "Billing",
        "heartbeats": [
            {"name": "nightly-export", "interval": "60s", "grace": "30s"},
            {"name": "backup", "interval": "1h", "grace": "10m"},
        ],
    }
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: int) -> None:
        self.now = T0 + timedelta(seconds=seconds)


def probe(event: CloudEvent) -> tuple[str, str, bool, str | None, datetime]:
    data = event.data
    assert isinstance(data, ProbeData)
    return event.source, data.check, data.ok, data.error, event.time


def missed(seconds: int, check: str = "nightly-export") -> tuple[str, str, bool, str, datetime]:
    source = f"collector/heartbeat/billing-{check}"
    return source, check, False, "missed heartbeat", T0 + timedelta(seconds=seconds)


def test_missed_heartbeat_is_one_failed_probe_per_interval() -> None:
    clock, published = Clock(), list[CloudEvent]()
    watcher = HeartbeatWatcher([BILLING], published.append, clock)
    # nightly-export: interval 60 s + grace 30 s since start, so the first miss is at 90 s.
    clock.at(89)
    assert watcher.tick() == []
    clock.at(90)
    assert [probe(event) for event in watcher.tick()] == [missed(90)]
    # Quiet until the next expected ping (60 s later) is missed too.
    clock.at(149)
    assert watcher.tick() == []
    clock.at(150)
    assert [probe(event) for event in watcher.tick()] == [missed(150)]
    # A ping at 160 s moves the next miss to 160 + 60 + 30 = 250 s.
    watcher.ping("billing", "nightly-export", T0 + timedelta(seconds=160))
    clock.at(249)
    assert watcher.tick() == []
    clock.at(250)
    assert [probe(event) for event in watcher.tick()] == [missed(250)]
    assert [probe(event) for event in published] == [missed(90), missed(150), missed(250)]


def test_a_late_tick_reports_every_missed_interval_at_its_own_time() -> None:
    clock, published = Clock(), list[CloudEvent]()
    watcher = HeartbeatWatcher([BILLING], published.append, clock)
    # Misses of nightly-export at 90, 150, 210, 270 s; backup (1h + 10m) not yet at 4200 s.
    clock.at(270)
    assert [probe(event) for event in watcher.tick()] == [
        missed(90),
        missed(150),
        missed(210),
        missed(270),
    ]
    # backup is first missed at 3600 + 600 = 4200 s; nightly-export meanwhile at 330, 390,
    # ..., 4170 s: (4170 - 330) / 60 + 1 = 65 misses.
    clock.at(4200)
    events = [probe(event) for event in watcher.tick()]
    assert events == [missed(330 + 60 * k) for k in range(65)] + [missed(4200, "backup")]


def test_a_failed_publish_is_retried_under_the_same_id() -> None:
    clock, attempts = Clock(), list[str]()

    def flaky(event: CloudEvent) -> None:
        attempts.append(event.id)
        if len(attempts) == 1:
            raise ConnectionError("broker away")

    watcher = HeartbeatWatcher([BILLING], flaky, clock)
    clock.at(90)
    assert watcher.tick() == []
    [retried] = watcher.tick()
    assert attempts == [retried.id, retried.id]
    assert watcher.tick() == []


def test_run_ticks_until_stopped() -> None:
    clock, published = Clock(), list[CloudEvent]()
    clock.at(90)
    watcher = HeartbeatWatcher([BILLING], published.append, clock)
    # Started at 90 s, so nothing is due until 180 s.
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop, 0.01))
    thread.start()
    clock.at(180)
    deadline = time.monotonic() + 5
    while not published and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=5)
    assert [probe(event) for event in published] == [missed(180)]


def test_heartbeat_names_are_unique_per_service() -> None:
    with pytest.raises(ValidationError, match=r"heartbeats\.1\.name"):
        ServiceConfig.model_validate(
            {
                "id": "billing",
                "name": "Billing",
                "heartbeats": [
                    {"name": "export", "interval": 60, "grace": 0},
                    {"name": "export", "interval": 60, "grace": 0},
                ],
            }
        )


@dataclass(frozen=True)
class Pinger:
    """A client of a running receiver with the heartbeat route, and what stands behind it."""

    client: httpx.AsyncClient
    url: str
    published: list[CloudEvent]
    clock: Clock
    watcher: HeartbeatWatcher


def through_receiver(
    call: Callable[[Pinger], Awaitable[None]],
    monkeypatch: pytest.MonkeyPatch,
    store_down: bool = False,
) -> None:
    """Run `call` against a receiver serving the heartbeat route; `store_down` refuses events."""
    monkeypatch.setenv("TEST_HEARTBEAT_TOKEN", TOKEN)
    clock, published = Clock(), list[CloudEvent]()
    watcher = HeartbeatWatcher([BILLING], published.append, clock)
    config = ReceiversConfig(
        listen="127.0.0.1:0", auth={"heartbeat": {"token_env": "TEST_HEARTBEAT_TOKEN"}}
    )

    def publish_durably(events: list[CloudEvent]) -> None:
        if store_down:
            raise TransportError("Kafka is unreachable and the spool is full")
        published.extend(events)

    server = ReceiverServer(
        config, [HeartbeatWebhook(watcher)], publish_durably, ready=lambda: True, clock=clock
    )

    async def serve() -> None:
        port = await server.start()
        try:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(headers=headers) as client:
                await call(Pinger(client, f"http://127.0.0.1:{port}", published, clock, watcher))
        finally:
            await server.stop()

    asyncio.run(serve())


def test_ping_publishes_an_ok_probe_and_resets_the_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    async def call(hb: Pinger) -> None:
        hb.clock.at(80)
        response = await hb.client.post(hb.url + "/heartbeat/billing/nightly-export")
        assert response.status_code == 202
        [event] = hb.published
        assert response.json() == {"accepted": 1, "ids": [event.id]}
        assert event.subject == "billing"
        assert probe(event) == (
            "collector/heartbeat/billing-nightly-export",
            "nightly-export",
            True,
            None,
            T0 + timedelta(seconds=80),
        )
        # The ping at 80 s moved the first miss from 90 s to 80 + 90 = 170 s.
        hb.clock.at(169)
        assert hb.watcher.tick() == []
        hb.clock.at(170)
        assert [probe(event) for event in hb.watcher.tick()] == [missed(170)]

    through_receiver(call, monkeypatch)


def test_job_reports_its_own_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    async def call(hb: Pinger) -> None:
        path = hb.url + "/heartbeat/billing/backup"
        failed = await hb.client.post(path, json={"ok": False, "error": "disk full"})
        silent = await hb.client.post(path, json={"ok": False})
        assert (failed.status_code, silent.status_code) == (202, 202)
        assert [probe(event)[2:4] for event in hb.published] == [
            (False, "disk full"),
            (False, "job reported failure"),
        ]

    through_receiver(call, monkeypatch)


def test_unknown_heartbeat_bad_body_and_missing_token(monkeypatch: pytest.MonkeyPatch) -> None:
    async def call(hb: Pinger) -> None:
        for path in ("/heartbeat/billing/nope", "/heartbeat/nope/backup"):
            response = await hb.client.post(hb.url + path)
            assert response.status_code == 404
            assert response.json()["code"] == "not_found"
        bad = await hb.client.post(hb.url + "/heartbeat/billing/backup", json={"ok": "maybe"})
        assert bad.status_code == 422
        assert bad.json()["code"] == "invalid_payload"
        anonymous = await hb.client.post(
            hb.url + "/heartbeat/billing/backup", headers={"Authorization": ""}
        )
        assert anonymous.status_code == 401
        assert hb.published == []

    through_receiver(call, monkeypatch)


def test_a_ping_answered_503_does_not_move_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    async def call(hb: Pinger) -> None:
        hb.clock.at(80)
        response = await hb.client.post(hb.url + "/heartbeat/billing/nightly-export")
        assert response.status_code == 503
        # The job was told to retry, so its ping does not count: the miss stays due at 90 s.
        hb.clock.at(90)
        assert [probe(event) for event in hb.watcher.tick()] == [missed(90)]

    through_receiver(call, monkeypatch, store_down=True)
