"""The generated Prometheus rules: burn factors, alerts per configured service, links."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypedDict

import pytest
import yaml

from pipeline.rules import (
    BURN_ALERTS,
    DAY,
    FAST_BURN,
    SLOW_BURN,
    generate_rule_tests,
    generate_rules,
    render_rules,
)
from sla.config import SlamonConfig
from sla.errors import ConfigError
from slamon.configfile import load_config

REPO = Path(__file__).resolve().parents[2]


class RuleLinks(TypedDict, total=False):
    """The link arguments of the rule generators."""

    runbook_url: str
    dashboard_url: str
    pipeline_dashboard_url: str


LINKS: RuleLinks = {
    "runbook_url": "https://docs.example/runbook.md",
    "dashboard_url": "https://grafana.example/d/slamon-service",
}


@pytest.fixture(scope="module")
def demo() -> SlamonConfig:
    return load_config(REPO / "examples" / "demo.yaml")


def _alerts(rules: dict[str, object]) -> dict[tuple[str, str], dict[str, object]]:
    """Alert rules keyed by (group, alert name)."""
    groups = rules["groups"]
    assert isinstance(groups, list)
    return {
        (group["name"], rule["alert"]): rule
        for group in groups
        for rule in group["rules"]
        if "alert" in rule
    }


def test_burn_factors_are_the_workbooks_for_a_30_day_period() -> None:
    factors = [c.factor(30 * DAY) for alert in BURN_ALERTS for c in alert.conditions]
    # 2 % of 720 h in 1 h, 5 % in 6 h, 10 % in 24 h, 10 % in 72 h.
    assert factors == pytest.approx([14.4, 6.0, 3.0, 1.0])


def test_burn_factors_scale_with_the_period() -> None:
    # budget share x period / long window: 0.02 x 672 h / 1 h = 13.44 for 28 days.
    factors = [c.factor(28 * DAY) for alert in BURN_ALERTS for c in alert.conditions]
    assert factors == pytest.approx([13.44, 5.6, 2.8, 28 / 30])


def test_page_alert_compares_each_window_pair_with_factor_times_budget(
    demo: SlamonConfig,
) -> None:
    rule = _alerts(generate_rules(demo, **LINKS))[("slamon-service-checkout", FAST_BURN.name)]
    # checkout promises 99.9 %: the allowed error ratio is 0.001.
    expr = str(rule["expr"])
    assert 'slamon:service_error_ratio:avg1h{service="checkout"} > 14.4 * 0.001' in expr
    assert 'slamon:service_error_ratio:avg5m{service="checkout"} > 14.4 * 0.001' in expr
    assert 'slamon:service_error_ratio:avg6h{service="checkout"} > 6 * 0.001' in expr
    assert 'slamon:service_error_ratio:avg30m{service="checkout"} > 6 * 0.001' in expr
    assert rule["labels"] == {"severity": "page", "service": "checkout"}
    assert "for" not in rule


def test_ticket_alert_uses_scaled_factors_for_another_period(demo: SlamonConfig) -> None:
    rules = generate_rules(demo, **LINKS, period=28 * DAY)
    expr = str(_alerts(rules)[("slamon-service-payments", SLOW_BURN.name)]["expr"])
    # 0.1 x 28 d / 1 d = 2.8 and 0.1 x 28 d / 3 d = 0.9333...; payments allows 0.0005.
    assert 'slamon:service_error_ratio:avg1d{service="payments"} > 2.8 * 0.0005' in expr
    assert 'slamon:service_error_ratio:avg3d{service="payments"} > 0.933333333333 * 0.0005' in expr


def test_alerts_follow_what_each_service_configures(demo: SlamonConfig) -> None:
    alerts = _alerts(generate_rules(demo, **LINKS))
    by_group: dict[str, set[str]] = {}
    for group, name in alerts:
        by_group.setdefault(group, set()).add(name)
    common = {
        "SlamonErrorBudgetBurnFast",
        "SlamonErrorBudgetBurnSlow",
        "SlamonAvailabilityBelowTarget",
        "SlamonErrorBudgetNearlySpent",
        "SlamonTicketsAtRisk",
        "SlamonCapacityOverCritical",
        "SlamonCapacityExhaustionSoon",
    }
    # search sets no continuity_test_interval; no demo probe is https, so no certificate alert.
    assert by_group == {
        "slamon-service-checkout": common | {"SlamonContinuityTestOverdue"},
        "slamon-service-payments": common | {"SlamonContinuityTestOverdue"},
        "slamon-service-search": common,
        "slamon-service-erp-reporting": common | {"SlamonContinuityTestOverdue"},
        "slamon-pipeline": {
            "SlamonPipelineDown",
            "SlamonNoEventsStored",
            "SlamonPipelineLagHigh",
            "SlamonEventsRejected",
        },
    }


def test_a_service_without_objectives_gets_only_the_alerts_of_its_probes() -> None:
    config = SlamonConfig.model_validate(
        {
            "services": [
                {
                    "id": "shop",
                    "name": "Shop",
                    "probes": [
                        {"name": "tls", "http": "https://shop.example/"},
                        {"name": "plain", "http": "http://shop.example/"},
                    ],
                }
            ]
        }
    )
    alerts = _alerts(generate_rules(config, **LINKS))
    shop = {name for group, name in alerts if group == "slamon-service-shop"}
    assert shop == {"SlamonCertificateExpiringSoon"}
    expr = alerts[("slamon-service-shop", "SlamonCertificateExpiringSoon")]["expr"]
    assert expr == (
        'slamon_probe_certificate_expiry_timestamp_seconds{service="shop"} - time() < 1209600'
    )


def test_every_alert_links_its_runbook_section_and_dashboard(demo: SlamonConfig) -> None:
    rules = generate_rules(
        demo,
        runbook_url="https://docs.example/runbook.md",
        dashboard_url="https://grafana.example/d/slamon-service",
        pipeline_dashboard_url="https://grafana.example/d/slamon-pipeline-health",
    )
    runbook = (REPO / "examples" / "runbook.md").read_text()
    sections = {heading.lower() for heading in re.findall(r"^## (\S+)$", runbook, re.M)}
    for (group, name), rule in _alerts(rules).items():
        labels, annotations = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict) and isinstance(annotations, dict)
        assert labels["severity"] in ("page", "ticket")
        assert annotations["runbook_url"] == f"https://docs.example/runbook.md#{name.lower()}"
        assert name.lower() in sections
        assert annotations["summary"] and annotations["description"]
        if group == "slamon-pipeline":
            assert labels["component"] == "pipeline"
            assert (
                annotations["dashboard_url"] == "https://grafana.example/d/slamon-pipeline-health"
            )
        else:
            service = group.removeprefix("slamon-service-")
            assert labels["service"] == service
            assert annotations["dashboard_url"] == (
                f"https://grafana.example/d/slamon-service?var-service={service}"
            )


def test_dashboard_links_keep_an_existing_query_and_are_optional_for_the_pipeline() -> None:
    config = SlamonConfig.model_validate(
        {"services": [{"id": "shop", "name": "Shop", "objectives": {"availability": 99}}]}
    )
    rules = generate_rules(config, runbook_url="r", dashboard_url="https://g.example/d/s?orgId=2")
    alerts = _alerts(rules)
    fast = alerts[("slamon-service-shop", FAST_BURN.name)]["annotations"]
    assert isinstance(fast, dict)
    assert fast["dashboard_url"] == "https://g.example/d/s?orgId=2&var-service=shop"
    lag = alerts[("slamon-pipeline", "SlamonPipelineLagHigh")]["annotations"]
    assert isinstance(lag, dict) and "dashboard_url" not in lag


def test_recording_rules_keep_the_sli_to_agreed_service_time(demo: SlamonConfig) -> None:
    sli = generate_rules(demo, **LINKS)["groups"][0]
    assert sli["name"] == "slamon-sli"
    records = {rule["record"]: rule["expr"] for rule in sli["rules"]}
    down = records["slamon:service_down"]
    assert "and (slamon_agreed_service_time_active == 1)" in down
    assert records["slamon:service_error_ratio:avg3d"] == "avg_over_time(slamon:service_down[3d])"
    windows = [r.rsplit(":avg", 1)[1] for r in records if r.startswith("slamon:service_error")]
    assert windows == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    assert "slamon:service_burn_rate:avg1h" in records


def test_render_is_deterministic_yaml_of_the_rules(demo: SlamonConfig) -> None:
    text = render_rules(demo, **LINKS)
    assert text == render_rules(demo, **LINKS)
    assert yaml.safe_load(text) == generate_rules(demo, **LINKS)


def test_configured_text_cannot_open_a_template_action() -> None:
    config = SlamonConfig.model_validate(
        {"services": [{"id": "x", "name": "Evil {{ . }}", "objectives": {"availability": 99}}]}
    )
    assert "{{ . }}" not in render_rules(config, **LINKS)


def test_a_period_no_longer_than_the_longest_window_is_refused(demo: SlamonConfig) -> None:
    with pytest.raises(ConfigError, match="longer than the longest burn-rate window"):
        generate_rules(demo, **LINKS, period=3 * DAY)


def test_tests_read_the_named_rules_file_and_cover_every_alert_kind(demo: SlamonConfig) -> None:
    tests = yaml.safe_load(generate_rule_tests(demo, rule_file="rules/slamon.yml", **LINKS))
    assert tests["rule_files"] == ["rules/slamon.yml"]
    alert_names = {name for _, name in _alerts(generate_rules(demo, **LINKS))}
    firing: dict[str, int] = {}
    quiet: dict[str, int] = {}
    for test in tests["tests"]:
        for check in test["alert_rule_test"]:
            bucket = firing if check["exp_alerts"] else quiet
            bucket[check["alertname"]] = bucket.get(check["alertname"], 0) + 1
    assert set(firing) == alert_names
    assert set(quiet) == alert_names
