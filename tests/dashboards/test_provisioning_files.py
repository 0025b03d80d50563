"""The generated provisioning files have what Grafana's file provisioning reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from dashboards.build import write_provisioning
from slamon.configfile import load_config

REPO = Path(__file__).resolve().parents[2]


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def test_writes_datasource_provider_and_three_dashboards(tmp_path: Path) -> None:
    written = write_provisioning(load_config(REPO / "examples" / "compose.yaml"), tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "dashboards/slamon.yaml",
        "dashboards/slamon/overview.json",
        "dashboards/slamon/pipeline-health.json",
        "dashboards/slamon/service.json",
        "datasources/prometheus.yaml",
    ]


def test_datasource_file_has_grafanas_fields(tmp_path: Path) -> None:
    write_provisioning(
        load_config(REPO / "examples" / "minimal.yaml"),
        tmp_path,
        prometheus_url="http://prom.internal:9090",
    )
    document = _load(tmp_path / "datasources" / "prometheus.yaml")
    assert document["apiVersion"] == 1
    (datasource,) = document["datasources"]
    assert datasource == {
        "uid": "slamon-prometheus",
        "name": "Prometheus (slamon)",
        "type": "prometheus",
        "access": "proxy",
        "url": "http://prom.internal:9090",
        # timeInterval = the scrape interval, so $__rate_interval covers four samples.
        "jsonData": {"timeInterval": "15s", "httpMethod": "POST"},
        "orgId": 1,
        "editable": False,
    }


def test_dashboard_provider_points_at_the_json_inside_grafana(tmp_path: Path) -> None:
    write_provisioning(
        load_config(REPO / "examples" / "minimal.yaml"), tmp_path, provisioning_dir="/grafana/prov"
    )
    document = _load(tmp_path / "dashboards" / "slamon.yaml")
    assert document["apiVersion"] == 1
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["name"] == provider["folder"] == provider["folderUid"] == "slamon"
    assert provider["orgId"] == 1
    assert provider["allowUiUpdates"] is False
    assert isinstance(provider["updateIntervalSeconds"], int)
    # /grafana/prov is tmp_path inside Grafana, so the provider path maps back to tmp_path.
    inside = Path(provider["options"]["path"]).relative_to("/grafana/prov")
    uids = {json.loads(p.read_text())["uid"] for p in (tmp_path / inside).glob("*.json")}
    assert uids == {"slamon-overview", "slamon-service", "slamon-pipeline-health"}


def test_a_config_without_services_still_builds(tmp_path: Path) -> None:
    config = load_config(REPO / "examples" / "minimal.yaml").model_copy(update={"services": []})
    write_provisioning(config, tmp_path)
    service = json.loads((tmp_path / "dashboards" / "slamon" / "service.json").read_text())
    (variable,) = service["templating"]["list"]
    assert "current" not in variable
