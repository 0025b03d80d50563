"""DNS probes through the system resolver: localhost resolves, a reserved .invalid name does not."""

from __future__ import annotations

import asyncio
from typing import Any

from collectors.probes import ProbeScheduler
from sla.config import ProbeConfig
from sla.events import CloudEvent, ProbeData


def _resolve(name: str, **options: Any) -> CloudEvent:
    config = ProbeConfig.model_validate({"name": "resolve", "dns": name, **options})
    [event] = asyncio.run(ProbeScheduler([("shop", config)], lambda _: None).run_once())
    return event


def _data(event: CloudEvent) -> ProbeData:
    assert isinstance(event.data, ProbeData)
    return event.data


def test_localhost_resolves_to_the_expected_loopback_address() -> None:
    event = _resolve("localhost", expect=["127.0.0.1"])
    assert event.source == "collector/dns/shop-resolve"
    data = _data(event)
    assert (data.ok, data.error, data.status_code) == (True, None, None)
    assert data.latency_ms >= 0


def test_an_answer_outside_expect_fails() -> None:
    # /etc/hosts maps localhost to 127.0.0.1, which the probe was told not to accept.
    data = _data(_resolve("localhost", expect=["10.0.0.1"]))
    assert (data.ok, data.error) == (False, "dns: unexpected 127.0.0.1")


def test_an_unresolvable_name_fails_with_the_resolver_message() -> None:
    # RFC 6761 reserves .invalid: no resolver may answer it.
    data = _data(_resolve("nonexistent.invalid"))
    assert data.ok is False
    assert data.error is not None and data.error.startswith("dns: ")
