"""The generated rules in the real promtool, amtool and Prometheus."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any, TypedDict

import httpx
import pytest
import yaml

from pipeline.rules import FAST_BURN, generate_rule_tests, render_rules
from sla.config import SlamonConfig
from slamon.configfile import load_config

REPO = Path(__file__).resolve().parents[2]


class RuleLinks(TypedDict, total=False):
    """The link arguments of the rule generators."""

    runbook_url: str
    dashboard_url: str
    pipeline_dashboard_url: str


LINKS: RuleLinks = {
    "runbook_url": "https://docs.example/runbook.md",
    "dashboard_url": "http://127.0.0.1:3000/d/slamon-service",
    "pipeline_dashboard_url": "http://127.0.0.1:3000/d/slamon-pipeline-health",
}
AGREED_FILTER = "(1 - slamon_service_up) and (slamon_agreed_service_time_active == 1)"


def _run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=120, check=False
    )


def _write_rules(config: SlamonConfig, directory: Path) -> tuple[Path, Path]:
    """The rules file and its promtool tests, side by side as `slamon rules` writes them."""
    rules = directory / "slamon-rules.yml"
    tests = directory / "slamon-rules.test.yml"
    rules.write_text(render_rules(config, **LINKS))
    tests.write_text(generate_rule_tests(config, rule_file=rules.name, **LINKS))
    return rules, tests


@pytest.fixture(params=["demo", "minimal"])
def rule_files(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    return _write_rules(load_config(REPO / "examples" / f"{request.param}.yaml"), tmp_path)


def test_promtool_accepts_the_rules(
    prometheus_binaries: dict[str, Path], rule_files: tuple[Path, Path]
) -> None:
    done = _run(prometheus_binaries["promtool"], "check", "rules", rule_files[0])
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_fires_on_its_synthetic_series_and_stays_quiet_when_healthy(
    prometheus_binaries: dict[str, Path], rule_files: tuple[Path, Path]
) -> None:
    done = _run(prometheus_binaries["promtool"], "test", "rules", rule_files[1])
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rule_tests_catch_downtime_counted_outside_agreed_service_time(
    prometheus_binaries: dict[str, Path], tmp_path: Path
) -> None:
    rules, tests = _write_rules(load_config(REPO / "examples" / "minimal.yaml"), tmp_path)
    text = rules.read_text()
    assert AGREED_FILTER in text
    # Without the filter a service down after its service hours would burn budget.
    rules.write_text(text.replace(AGREED_FILTER, "(1 - slamon_service_up)"))
    outside = "stays quiet while the service is down outside agreed service time"
    suite = yaml.safe_load(tests.read_text())
    suite["tests"] = [test for test in suite["tests"] if outside in test["name"]]
    assert len(suite["tests"]) == 2  # the fast and the slow burn
    tests.write_text(yaml.safe_dump(suite))
    done = _run(prometheus_binaries["promtool"], "test", "rules", tests)
    assert done.returncode == 1
    assert (done.stdout + done.stderr).count(outside) == 2


def test_amtool_accepts_the_alertmanager_example_and_routes_by_severity(
    prometheus_binaries: dict[str, Path],
) -> None:
    example = REPO / "examples" / "alertmanager.yml"
    amtool = prometheus_binaries["amtool"]
    checked = _run(amtool, "check-config", example)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for severity in ("page", "ticket"):
        routed = _run(
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={example}",
            f"severity={severity}",
            "service=checkout",
            "alertname=SlamonErrorBudgetBurnFast",
        )
        assert routed.stdout.split() == [severity], routed.stderr


# Mimics the exporter: `website` down in agreed service time, `shop` healthy, `office`
# down outside its service hours (agreed time inactive).
EXPORTER_PAGE = b"""\
# TYPE slamon_service_up gauge
slamon_service_up{service="website"} 0
slamon_service_up{service="shop"} 1
slamon_service_up{service="office"} 0
# TYPE slamon_agreed_service_time_active gauge
slamon_agreed_service_time_active{service="website"} 1
slamon_agreed_service_time_active{service="shop"} 1
slamon_agreed_service_time_active{service="office"} 0
# TYPE slamon_availability_target_ratio gauge
slamon_availability_target_ratio{service="website"} 0.995
slamon_availability_target_ratio{service="shop"} 0.995
slamon_availability_target_ratio{service="office"} 0.995
"""


@pytest.fixture
def exporter_page() -> Iterator[int]:
    """A local /metrics page with the exporter's SLI series; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(EXPORTER_PAGE)))
            self.end_headers()
            self.wfile.write(EXPORTER_PAGE)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(90)
def test_prometheus_pages_for_a_service_down_in_agreed_service_time(
    prometheus_binaries: dict[str, Path],
    exporter_page: int,
    free_port: Callable[[], int],
    tmp_path: Path,
) -> None:
    config = SlamonConfig.model_validate(
        {
            "services": [
                {"id": sid, "name": sid.title(), "objectives": {"availability": 99.5}}
                for sid in ("website", "shop", "office")
            ]
        }
    )
    rules = tmp_path / "slamon-rules.yml"
    rules.write_text(render_rules(config, **LINKS))
    prometheus_yml = tmp_path / "prometheus.yml"
    prometheus_yml.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {
                        "job_name": "slamon",
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter_page}"]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        prometheus = subprocess.Popen(
            [
                str(prometheus_binaries["prometheus"]),
                f"--config.file={prometheus_yml}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        alerts = _wait_for_page(f"http://127.0.0.1:{port}", deadline_s=45)
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=20)
    log_text = (tmp_path / "prometheus.log").read_text()
    assert alerts is not None, f"no page within 45 s; Prometheus log:\n{log_text[-3000:]}"
    burning = {a["labels"]["service"] for a in alerts if a["labels"]["alertname"] == FAST_BURN.name}
    # With only seconds of history every window's error ratio is 1 for website, 0 for shop,
    # and absent for office, whose downtime falls outside agreed service time.
    assert burning == {"website"}
    page = next(a for a in alerts if a["labels"]["alertname"] == FAST_BURN.name)
    assert page["labels"]["severity"] == "page"
    assert page["annotations"]["dashboard_url"].endswith("?var-service=website")
    assert page["annotations"]["runbook_url"].endswith("#slamonerrorbudgetburnfast")


def _wait_for_page(base: str, *, deadline_s: float) -> list[dict[str, Any]] | None:
    """The active alerts once the fast-burn page fires; None if it never does in time."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{base}/api/v1/alerts", timeout=2).raise_for_status().json()
        except httpx.HTTPError:
            answer = None  # Prometheus still starting
        if answer is not None:
            alerts: list[dict[str, Any]] = answer["data"]["alerts"]
            if any(
                a["labels"]["alertname"] == FAST_BURN.name and a["state"] == "firing"
                for a in alerts
            ):
                # One more evaluation, so a wrongly burning healthy service would show too.
                time.sleep(2)
                later: list[dict[str, Any]] = httpx.get(f"{base}/api/v1/alerts").json()["data"][
                    "alerts"
                ]
                return later
        time.sleep(0.5)
    return None
