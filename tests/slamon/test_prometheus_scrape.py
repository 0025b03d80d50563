"""A real Prometheus scrapes the exporter and answers queries for every configured service."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

if TYPE_CHECKING:
    from conftest import EndToEnd

pytestmark = pytest.mark.prometheus

SERVICES = ("catalog", "cart", "checkout")


@pytest.fixture
def healthy_endpoint() -> Iterator[str]:
    """A local endpoint that always answers 200."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def prometheus(
    prometheus_server: Callable[[str, Path, int], str],
    free_port: Callable[[], int],
    tmp_path: Path,
) -> Callable[[int, Path], str]:
    """Start a real Prometheus scraping 127.0.0.1:PORT every second; returns its base URL."""

    def start(target_port: int, rules: Path) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rules)],
                    "scrape_configs": [
                        {
                            "job_name": "slamon",
                            "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                        }
                    ],
                }
            )
        )
        return prometheus_server("prometheus", config, free_port())

    return start


def test_prometheus_query_api_returns_availability_per_service(
    healthy_endpoint: str,
    prometheus: Callable[[int, Path], str],
    e2e: EndToEnd,
    tmp_path: Path,
) -> None:
    exporter_port = e2e.free_port()
    config = e2e.write_config(
        {
            "transport": {"kind": "embedded"},
            "store": {"path": str(tmp_path / "scrape.duckdb")},
            "exporter": {"listen": f"127.0.0.1:{exporter_port}"},
            "pipeline": {"poll_timeout": 0.2, "recompute_interval": 0.5},
            "services": [
                {
                    "id": service,
                    "name": service.title(),
                    "objectives": {"availability": 99.5},
                    "probes": [
                        {
                            "name": "home",
                            "http": healthy_endpoint,
                            "interval": "1s",
                            "timeout": "1s",
                        }
                    ],
                }
                for service in SERVICES
            ],
        }
    )
    slamon = e2e.slamon_process("run", "--config", str(config))
    rules = tmp_path / "slamon.rules.yml"
    generated = subprocess.run(
        [sys.executable, "-m", "slamon", "rules", "-c", str(config), "-o", str(rules)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert generated.returncode == 0, generated.stderr
    base = prometheus(exporter_port, rules)

    def by_service(query: str) -> dict[str, float]:
        response = httpx.get(f"{base}/api/v1/query", params={"query": query})
        response.raise_for_status()  # 503 while Prometheus starts: e2e.wait_for tries again
        answer = response.json()
        assert answer["status"] == "success"
        return {r["metric"]["service"]: float(r["value"][1]) for r in answer["data"]["result"]}

    def availability_series() -> dict[str, float] | None:
        # A service shows a ratio only once probe results of it are stored.
        found = by_service('slamon_availability_ratio{window="month"}')
        return found if set(found) == set(SERVICES) else None

    found = e2e.wait_for(availability_series, 60, "Prometheus to scrape every service", slamon)
    assert found == dict.fromkeys(SERVICES, 1.0)
    assert by_service("slamon_service_up") == dict.fromkeys(SERVICES, 1.0)
    assert by_service("slamon_downtime_seconds") == dict.fromkeys(SERVICES, 0.0)
    assert by_service("slamon_availability_target_ratio") == dict.fromkeys(SERVICES, 0.995)

    # The generated rules, loaded by the same Prometheus, evaluate on the live exporter: the
    # SLI of every (24x7, healthy) service is recorded with error ratio 0 and burn rate 0.
    def recorded() -> dict[str, float] | None:
        found = by_service("slamon:service_burn_rate:avg5m")
        return found if set(found) == set(SERVICES) else None

    assert e2e.wait_for(recorded, 30, "the recording rules", slamon) == dict.fromkeys(SERVICES, 0.0)
    assert by_service("slamon:service_error_ratio:avg5m") == dict.fromkeys(SERVICES, 0.0)
    groups = httpx.get(f"{base}/api/v1/rules").json()["data"]["groups"]
    assert {r["health"] for g in groups for r in g["rules"]} == {"ok"}
    alerts = httpx.get(f"{base}/api/v1/alerts").json()["data"]["alerts"]
    assert [a["labels"]["alertname"] for a in alerts if a["state"] == "firing"] == []
    targets = httpx.get(f"{base}/api/v1/targets").json()["data"]["activeTargets"]
    assert [t["health"] for t in targets] == ["up"]
    assert slamon.terminate() == 0, slamon.output()
