"""A real Prometheus rule fires, a real Alertmanager posts it, slamon turns it into downtime."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from conftest import EndToEnd

pytestmark = pytest.mark.prometheus

TOKEN = "am-secret-token"


class Target:
    """A /metrics page whose probe_success the test flips."""

    def __init__(self) -> None:
        self.success = 1
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = f'probe_success{{service="shop"}} {target.success}\n'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"


@pytest.fixture
def target() -> Iterator[Target]:
    served = Target()
    yield served
    served.server.shutdown()
    served.server.server_close()


def test_a_firing_rule_becomes_downtime_and_resolving_it_restores_the_service(
    target: Target,
    prometheus_server: Callable[[str, Path, int], str],
    e2e: EndToEnd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    receiver_port, exporter_port = e2e.free_port(), e2e.free_port()
    prometheus_port, alertmanager_port = e2e.free_port(), e2e.free_port()
    monkeypatch.setenv("SLAMON_AM_TOKEN", TOKEN)
    config = e2e.write_config(
        {
            "transport": {"kind": "embedded"},
            "store": {"path": str(tmp_path / "am.duckdb")},
            "exporter": {"listen": f"127.0.0.1:{exporter_port}"},
            "pipeline": {"poll_timeout": 0.2, "recompute_interval": 0.5},
            "receivers": {
                "listen": f"127.0.0.1:{receiver_port}",
                "auth": {"alertmanager": {"token_env": "SLAMON_AM_TOKEN"}},
            },
            "services": [{"id": "shop", "name": "Shop", "objectives": {"availability": 99.9}}],
        }
    )
    slamon = e2e.slamon_process("run", "--config", str(config))

    alertmanager_yml = tmp_path / "alertmanager.yml"
    alertmanager_yml.write_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "slamon",
                    "group_by": ["service"],
                    "group_wait": "1s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "slamon",
                        "webhook_configs": [
                            {
                                "url": f"http://127.0.0.1:{receiver_port}/webhooks/alertmanager",
                                "send_resolved": True,
                                "http_config": {
                                    "authorization": {"type": "Bearer", "credentials": TOKEN}
                                },
                            }
                        ],
                    }
                ],
            }
        )
    )
    rules = tmp_path / "rules.yml"
    rules.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "shop",
                        "interval": "1s",
                        "rules": [
                            {
                                "alert": "ShopDown",
                                "expr": "probe_success == 0",
                                "labels": {"severity": "critical"},
                                "annotations": {"summary": "shop health check failing"},
                            }
                        ],
                    }
                ]
            }
        )
    )
    prometheus_yml = tmp_path / "prometheus.yml"
    prometheus_yml.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "alerting": {
                    "alertmanagers": [
                        {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}
                    ]
                },
                "scrape_configs": [
                    {"job_name": "shop", "static_configs": [{"targets": [target.address]}]}
                ],
            }
        )
    )
    prometheus_server("alertmanager", alertmanager_yml, alertmanager_port)
    prometheus_server("prometheus", prometheus_yml, prometheus_port)
    metrics = f"http://127.0.0.1:{exporter_port}/metrics"
    up = 'slamon_service_up{service="shop"}'

    target.success = 0
    e2e.wait_for(
        lambda: e2e.scrape(metrics).get(up) == 0.0, 90, "the firing alert to take shop down", slamon
    )
    target.success = 1
    e2e.wait_for(
        lambda: e2e.scrape(metrics).get(up) == 1.0, 90, "the resolved alert to restore shop", slamon
    )
    samples = e2e.scrape(metrics)
    assert samples['slamon_outages{service="shop",window="month"}'] == 1.0
    assert samples['slamon_downtime_seconds{service="shop",window="month"}'] > 0
    assert samples['slamon_events_ingested_total{type="slamon.status.v1"}'] >= 2
    assert slamon.terminate() == 0, slamon.output()
