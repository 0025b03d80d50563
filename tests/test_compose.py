"""docker-compose.yml, prometheus.yml and alertmanager.yml agree with each other and are valid.

No Docker engine runs here: the compose file is parsed and its wiring checked against the
files it mounts; the Prometheus and Alertmanager configs go through the real promtool/amtool.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from slamon.configfile import load_config
from slamon.report.pdf import CHROMIUM_NAMES

REPO = Path(__file__).resolve().parent.parent
SERVICES = {"kafka", "slamon-pipeline", "slamon-collect", "prometheus", "alertmanager", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"][name]
    return service


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (relative to the repo) or volume name."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        mounts[target] = source
    return mounts


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)


def test_services_and_their_health_checks(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES
    for name, service in compose["services"].items():
        check = service["healthcheck"]
        assert check["test"][0] == "CMD", name
        assert {"interval", "timeout", "retries", "start_period"} <= set(check), name
        assert service["restart"] == "unless-stopped", name


def test_dependencies_wait_for_health(compose: dict[str, Any]) -> None:
    depends = {name: s.get("depends_on", {}) for name, s in compose["services"].items()}
    assert depends["slamon-pipeline"] == {"kafka": {"condition": "service_healthy"}}
    assert depends["slamon-collect"] == {"kafka": {"condition": "service_healthy"}}
    assert depends["prometheus"]["alertmanager"] == {"condition": "service_healthy"}
    assert "slamon-pipeline" in depends["prometheus"]
    assert depends["grafana"] == {"prometheus": {"condition": "service_healthy"}}
    for name, needs in depends.items():
        for needed, how in needs.items():
            assert needed in SERVICES, (name, needed)
            if how["condition"] == "service_healthy":
                assert "healthcheck" in compose["services"][needed]


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    ports = {name: s.get("ports", []) for name, s in compose["services"].items()}
    assert ports == {
        "kafka": ["127.0.0.1:29092:29092"],
        "slamon-pipeline": ["127.0.0.1:9464:9464"],
        "slamon-collect": [],
        "prometheus": ["127.0.0.1:9090:9090"],
        "alertmanager": ["127.0.0.1:9093:9093"],
        "grafana": ["127.0.0.1:3000:3000"],
    }


def test_slamon_services_are_built_and_read_the_compose_config(compose: dict[str, Any]) -> None:
    config = load_config(REPO / "examples" / "compose.yaml")
    for name in ("slamon-pipeline", "slamon-collect"):
        service = _service(compose, name)
        assert service["build"] == "." and (REPO / "Dockerfile").is_file()
        assert service["command"][0] == name.removeprefix("slamon-")
        config_path = service["command"][service["command"].index("--config") + 1]
        assert _mounts(service)[config_path] == "./examples/compose.yaml"
    # The collectors and the pipeline reach Kafka by its service name on the PLAINTEXT port.
    assert config.transport.kind == "kafka"
    assert config.transport.bootstrap == "kafka:9092"
    kafka_env = _service(compose, "kafka")["environment"]
    assert "PLAINTEXT://kafka:9092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    # The store lives in the pipeline's volume.
    pipeline_mounts = _mounts(_service(compose, "slamon-pipeline"))
    assert Path(config.store.path).parent.as_posix() in pipeline_mounts
    assert pipeline_mounts["/var/lib/slamon"] in compose["volumes"]


def test_prometheus_scrapes_the_exporter_and_loads_the_rules(compose: dict[str, Any]) -> None:
    prometheus = _service(compose, "prometheus")
    mounts = _mounts(prometheus)
    assert mounts["/etc/prometheus/prometheus.yml"] == "./ops/prometheus/prometheus.yml"
    # `slamon rules` output goes to ops/prometheus/rules/*.rules.yml on the host.
    assert mounts["/etc/prometheus/rules"] == "./ops/prometheus/rules"
    settings = yaml.safe_load((REPO / "ops" / "prometheus" / "prometheus.yml").read_text())
    assert settings["rule_files"] == ["/etc/prometheus/rules/*.rules.yml"]
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in settings["scrape_configs"]
    }
    listen_port = load_config(REPO / "examples" / "compose.yaml").exporter.listen.rsplit(":")[-1]
    assert targets["slamon"] == [f"slamon-pipeline:{listen_port}"]
    alertmanagers = settings["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["alertmanager:9093"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_alertmanager_reads_its_config(compose: dict[str, Any]) -> None:
    alertmanager = _service(compose, "alertmanager")
    assert _mounts(alertmanager)["/etc/alertmanager/alertmanager.yml"] == (
        "./ops/alertmanager/alertmanager.yml"
    )
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    routes = yaml.safe_load((REPO / "ops" / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["matchers"][0]: r["receiver"] for r in routes["route"]["routes"]}
    assert receivers == {'severity="page"': "page", 'severity="ticket"': "ticket"}


def test_grafana_is_provisioned_from_the_committed_files(compose: dict[str, Any]) -> None:
    mounts = _mounts(_service(compose, "grafana"))
    root = "/etc/grafana/provisioning"
    assert mounts[f"{root}/datasources"] == "./dashboards/provisioning/datasources"
    assert mounts[f"{root}/dashboards"] == "./dashboards/provisioning/dashboards"
    datasources = yaml.safe_load(
        (REPO / "dashboards/provisioning/datasources/prometheus.yaml").read_text()
    )
    # Grafana reaches Prometheus by its compose service name and container port.
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load(
        (REPO / "dashboards/provisioning/dashboards/slamon.yaml").read_text()
    )
    container_path = Path(providers["providers"][0]["options"]["path"])
    host_path = (
        REPO / mounts[f"{root}/dashboards"] / container_path.relative_to(f"{root}/dashboards")
    )
    assert sorted(p.name for p in host_path.glob("*.json")) == [
        "overview.json",
        "pipeline-health.json",
        "service.json",
    ]
    home = _service(compose, "grafana")["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent == container_path


def test_every_bind_mount_source_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for target, source in _mounts(service).items():
            if source.startswith("./"):
                # The rules directory is filled by `slamon rules`; Docker creates it if absent.
                if source != "./ops/prometheus/rules":
                    assert (REPO / source).exists(), (name, target, source)
            else:
                assert source in compose["volumes"], (name, source)


@pytest.mark.prometheus
def test_promtool_accepts_prometheus_yml(prometheus_binaries: dict[str, Path]) -> None:
    done = _run(
        str(prometheus_binaries["promtool"]), "check", "config", "ops/prometheus/prometheus.yml"
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.prometheus
def test_promtool_accepts_prometheus_yml_with_generated_rules(
    prometheus_binaries: dict[str, Path], tmp_path: Path
) -> None:
    # The same config with the rules directory pointed at a `slamon rules` output.
    from pipeline.rules import Links, RuleSet  # noqa: PLC0415 (only this test needs it)

    config = load_config(REPO / "examples" / "compose.yaml")
    rules = RuleSet(config, Links("https://runbooks.example", "http://grafana/d/slamon-service"))
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "slamon.rules.yml").write_text(yaml.safe_dump(rules.rules()))
    settings = yaml.safe_load((REPO / "ops" / "prometheus" / "prometheus.yml").read_text())
    settings["rule_files"] = [
        f.replace("/etc/prometheus/rules", str(tmp_path / "rules")) for f in settings["rule_files"]
    ]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(settings))
    done = _run(
        str(prometheus_binaries["promtool"]), "check", "config", str(tmp_path / "prometheus.yml")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout and "rules found" in done.stdout


@pytest.mark.prometheus
def test_amtool_accepts_alertmanager_yml(prometheus_binaries: dict[str, Path]) -> None:
    done = _run(
        str(prometheus_binaries["amtool"]), "check-config", "ops/alertmanager/alertmanager.yml"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 receivers" in done.stdout


@pytest.mark.prometheus
def test_amtool_routes_page_and_ticket(prometheus_binaries: dict[str, Path]) -> None:
    amtool = str(prometheus_binaries["amtool"])
    for severity in ("page", "ticket"):
        done = _run(
            amtool,
            "config",
            "routes",
            "test",
            "--config.file=ops/alertmanager/alertmanager.yml",
            f"severity={severity}",
            "service=website",
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == severity


def _image_workdir() -> PurePosixPath:
    """The working directory the Dockerfile leaves the slamon image in."""
    workdirs = re.findall(r"^WORKDIR\s+(\S+)$", (REPO / "Dockerfile").read_text(), re.M)
    return PurePosixPath(workdirs[-1])


def test_the_collector_spool_outlives_its_container(compose: dict[str, Any]) -> None:
    config = load_config(REPO / "examples" / "compose.yaml")
    # A relative spool path is taken from the working directory.
    spool = _image_workdir() / config.spool.path
    mounts = _mounts(_service(compose, "slamon-collect"))
    holding = [target for target in mounts if spool.is_relative_to(target)]
    assert holding, f"{spool} is on no volume of slamon-collect"
    # A named volume, not the image's anonymous one that `docker compose down` drops.
    assert mounts[max(holding, key=len)] in compose["volumes"]


def test_the_image_can_print_review_packs_to_pdf() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    installs = re.findall(r"apt-get install ([^\n]*)", dockerfile)
    packages = {word for line in installs for word in line.split() if word[0].isalpha()}
    # Debian's package `chromium` installs the binary of that name.
    assert packages & set(CHROMIUM_NAMES)
