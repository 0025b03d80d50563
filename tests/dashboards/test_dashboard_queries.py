"""Every dashboard query names series slamon produces, with labels they have, in valid PromQL."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.build import build_dashboards, write_provisioning
from dashboards.common import DATASOURCE_UID, GRID_WIDTH
from pipeline.rules import Links, RuleSet
from sla.config import SlamonConfig
from slamon.configfile import load_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE_CONFIG = REPO / "examples" / "compose.yaml"
SCRAPE_LABELS = {"job", "instance"}
# The exported series and their labels, as agreed for issues #5/#6 (exporter contract).
EXPORTED: dict[str, set[str]] = {
    **{
        name: {"service", "window"}
        for name in (
            "slamon_availability_ratio",
            "slamon_availability_24x7_ratio",
            "slamon_agreed_service_seconds",
            "slamon_downtime_seconds",
            "slamon_outages",
            "slamon_mtrs_seconds",
            "slamon_mtbf_seconds",
            "slamon_error_budget_remaining_ratio",
            "slamon_change_success_ratio",
            "slamon_service_credit_ratio",
        )
    },
    **{
        name: {"service"}
        for name in (
            "slamon_availability_target_ratio",
            "slamon_service_up",
            "slamon_agreed_service_time_active",
            "slamon_continuity_rto_achieved_seconds",
            "slamon_continuity_rpo_achieved_seconds",
            "slamon_continuity_test_overdue",
            "slamon_continuity_last_test_timestamp_seconds",
        )
    },
    "slamon_ticket_sla_compliance_ratio": {"service", "window", "kind", "priority", "clock"},
    "slamon_tickets_open": {"service", "kind", "priority"},
    "slamon_tickets_at_risk": {"service", "priority", "clock"},
    "slamon_capacity_utilization_ratio": {"service", "resource", "host"},
    "slamon_capacity_threshold_ratio": {"service", "resource", "level"},
    "slamon_capacity_exhaustion_seconds": {"service", "resource", "host"},
    "slamon_probe_certificate_expiry_timestamp_seconds": {"service", "check"},
    "slamon_events_ingested_total": {"type"},
    "slamon_events_rejected_total": {"reason"},
    "slamon_pipeline_lag_seconds": set(),
    "slamon_pipeline_last_batch_timestamp_seconds": set(),
    "slamon_store_memory_bytes": set(),
    "slamon_store_memory_limit_bytes": set(),
}

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
    "group_left",
    "group_right",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (function names and keywords excluded)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    return {
        match.group(1)
        for match in _IDENTIFIER.finditer(text)
        if match.group(2) is None and match.group(1).lower() not in _KEYWORDS
    }


def selected_labels(expr: str) -> dict[str, set[str]]:
    """The label names each `metric{...}` selector of the expression matches on."""
    text = _STRING.sub('""', expr)
    found: dict[str, set[str]] = {}
    for metric, matchers in _SELECTOR.findall(text):
        found.setdefault(metric, set()).update(_MATCHER_LABEL.findall(matchers))
    return found


def test_metric_names_reads_selectors_not_functions_or_labels() -> None:
    # time, max, vector are functions; service/window are grouping labels; "1h" is a range.
    expr = (
        'time() - max by (service) (rate(slamon_events_ingested_total{type="a b"}[1h]))'
        " / on (service) group_left slamon:service_burn_rate:avg1h or vector(0)"
    )
    assert metric_names(expr) == {"slamon_events_ingested_total", "slamon:service_burn_rate:avg1h"}
    assert selected_labels('x{service="$service", window=~"m.*"} + y') == {
        "x": {"service", "window"}
    }


@pytest.fixture(scope="module")
def config() -> SlamonConfig:
    return load_config(COMPOSE_CONFIG)


@pytest.fixture(scope="module")
def models(config: SlamonConfig) -> dict[str, dict[str, Any]]:
    return build_dashboards(config)


@pytest.fixture(scope="module")
def recorded(config: SlamonConfig) -> set[str]:
    """Names the recording rules of `slamon rules` produce for the compose config."""
    links = Links("https://runbooks.example/slamon", "http://grafana.example/d/slamon-service")
    return {
        rule["record"]
        for group in RuleSet(config, links).rules()["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _exprs(models: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every target of every panel."""
    for name, model in models.items():
        for panel in _panels(model["panels"]):
            for target in panel.get("targets", []):
                yield name, panel["title"], target["expr"]


def test_three_dashboards_with_the_agreed_uids(models: dict[str, dict[str, Any]]) -> None:
    assert {name: model["uid"] for name, model in models.items()} == {
        "overview": "slamon-overview",
        "service": "slamon-service",
        "pipeline-health": "slamon-pipeline-health",
    }


def test_every_query_names_an_exported_or_recorded_series(
    models: dict[str, dict[str, Any]], recorded: set[str]
) -> None:
    # The burn-rate panel reads the recording rules; everything else the exporter's gauges.
    assert {"slamon:service_burn_rate:avg1h", "slamon:service_burn_rate:avg3d"} <= recorded
    known = set(EXPORTED) | recorded
    unknown = [
        (name, title, metric)
        for name, title, expr in _exprs(models)
        for metric in metric_names(expr)
        if metric not in known
    ]
    assert unknown == []
    assert all(metric_names(expr) for _, _, expr in _exprs(models))


def test_every_selector_matches_labels_the_series_has(
    models: dict[str, dict[str, Any]], recorded: set[str]
) -> None:
    # Recorded burn rates keep only `service` (they aggregate `by (service)`).
    labels = EXPORTED | {record: {"service"} for record in recorded}
    wrong = [
        (title, metric, used - labels[metric] - SCRAPE_LABELS)
        for _, title, expr in _exprs(models)
        for metric, used in selected_labels(expr).items()
        if used - labels[metric] - SCRAPE_LABELS
    ]
    assert wrong == []


def test_every_variable_resolves(models: dict[str, dict[str, Any]]) -> None:
    variables = [v for model in models.values() for v in model["templating"]["list"]]
    assert [v["name"] for v in variables] == ["service"]
    for variable in variables:
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["query"])
        assert match is not None, variable["query"]
        metric, label = match.groups()
        assert label in EXPORTED[metric]
        assert variable["datasource"]["uid"] == DATASOURCE_UID
    # The service dashboard opens on the compose config's first service.
    assert variables[0]["current"]["value"] == "website"
    used = {
        var
        for model in models.values()
        for _, _, expr in _exprs({"": model})
        for var in re.findall(r"\$(\w+)", expr)
    }
    assert used <= {"service", "__rate_interval"}


@pytest.mark.prometheus
def test_every_query_is_valid_promql(
    models: dict[str, dict[str, Any]], prometheus_binaries: dict[str, Path], tmp_path: Path
) -> None:
    # promtool parses recording rules fully: each query becomes one, variables filled in.
    rules = [
        {
            "record": f"dashboard:query_{index}",
            "expr": expr.replace("$service", "website").replace("$__rate_interval", "1m"),
        }
        for index, (_, _, expr) in enumerate(_exprs(models))
    ]
    rules_file = tmp_path / "dashboards.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run(
        [str(prometheus_binaries["promtool"]), "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(rules)} rules found" in done.stdout


def test_panels_use_the_slamon_datasource_and_fit_the_grid(
    models: dict[str, dict[str, Any]],
) -> None:
    for model in models.values():
        panels = list(_panels(model["panels"]))
        assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
        cells: set[tuple[int, int]] = set()
        for panel in panels:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= GRID_WIDTH, panel["title"]
            area = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not area & cells, f"{panel['title']} overlaps another panel"
            cells |= area
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == DATASOURCE_UID
                refs = [t["refId"] for t in panel["targets"]]
                assert len(set(refs)) == len(refs) and all(refs), panel["title"]
                assert all(t["datasource"]["uid"] == DATASOURCE_UID for t in panel["targets"])


def test_committed_provisioning_matches_the_generator(config: SlamonConfig, tmp_path: Path) -> None:
    # dashboards/provisioning is what Grafana in docker-compose loads: regenerate it with
    # `slamon dashboards --config examples/compose.yaml --out dashboards/provisioning`.
    written = write_provisioning(config, tmp_path)
    committed = REPO / "dashboards" / "provisioning"
    for path in written:
        relative = path.relative_to(tmp_path)
        assert (committed / relative).read_text() == path.read_text(), f"{relative} is stale"
    json.loads((committed / "dashboards" / "slamon" / "overview.json").read_text())
