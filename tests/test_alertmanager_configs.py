"""The shipped Alertmanager configs inhibit what they say they inhibit, in a real Alertmanager."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CONFIGS = ["ops/alertmanager/alertmanager.yml", "examples/alertmanager.yml"]
RULES = REPO / "ops" / "prometheus" / "rules" / "slamon.rules.yml"

pytestmark = pytest.mark.prometheus


def _severities() -> dict[str, str]:
    """Each alert of the generated rules and its severity."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {
        rule["alert"]: rule["labels"]["severity"]
        for group in groups
        for rule in group["rules"]
        if "alert" in rule
    }


@pytest.fixture
def alertmanager(
    prometheus_server: Callable[[str, Path, int], str], free_port: Callable[[], int]
) -> Callable[[str], str]:
    """A starter of a real Alertmanager on a shipped config, returning its URL once ready."""
    return lambda config: prometheus_server("alertmanager", REPO / config, free_port())


def _alert(name: str, service: str, severities: dict[str, str]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, "service": service, "severity": severities[name]},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }


def _states(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    alerts = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
    return {(a["labels"]["alertname"], a["labels"]["service"]): a["status"] for a in alerts}


@pytest.mark.parametrize("config", CONFIGS)
def test_a_fast_burn_page_holds_back_the_tickets_of_the_same_service_only(
    alertmanager: Callable[[str], str], config: str
) -> None:
    url = alertmanager(config)
    # Names and severities as the generated rules give them: the inhibit rules must match those.
    severities = _severities()
    sent = [
        _alert("SlamonErrorBudgetBurnFast", "checkout", severities),
        _alert("SlamonErrorBudgetBurnSlow", "checkout", severities),
        _alert("SlamonErrorBudgetNearlySpent", "checkout", severities),
        _alert("SlamonErrorBudgetBurnSlow", "search", severities),
    ]
    assert httpx.post(f"{url}/api/v2/alerts", json=sent, timeout=5).status_code == 200

    deadline = time.monotonic() + 15
    while len(states := _states(url)) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.2)
    held_back = {key for key, status in states.items() if status["inhibitedBy"]}
    assert held_back == {
        ("SlamonErrorBudgetBurnSlow", "checkout"),
        ("SlamonErrorBudgetNearlySpent", "checkout"),
    }
    assert states[("SlamonErrorBudgetBurnFast", "checkout")]["state"] == "active"
    assert states[("SlamonErrorBudgetBurnSlow", "search")]["state"] == "active"
