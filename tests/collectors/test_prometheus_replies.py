"""The Prometheus importer against a server that answers malformed or error replies."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from collectors.prometheus_import import PrometheusImporter, PrometheusQueryError
from sla.config import PrometheusImportConfig
from sla.errors import ConfigError

END = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
UP = {"name": "up", "query": "up", "kind": "probe", "service": "shop"}
DOWN = {"name": "down", "query": "down", "kind": "probe", "service": "shop"}
SERVICE_UP = {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000, "1"]}]}


class _Replies(ThreadingHTTPServer):
    """Answers each PromQL query with the JSON body given for it."""

    def __init__(self, bodies: dict[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies = bodies


class _Handler(BaseHTTPRequestHandler):
    server: _Replies

    def do_GET(self) -> None:
        query = self.path.split("query=", 1)[1].split("&", 1)[0]
        body = json.dumps(self.server.bodies[query]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""


Serve = Callable[[ThreadingHTTPServer], ThreadingHTTPServer]


def importer(serve: Serve, bodies: dict[str, Any]) -> PrometheusImporter:
    server = serve(_Replies(bodies))
    url = f"http://127.0.0.1:{server.server_port}"
    config = PrometheusImportConfig.model_validate(
        {"url": url, "interval": 5, "timeout": 5, "queries": [DOWN, UP]}
    )
    return PrometheusImporter(config, lambda _: None, clock=lambda: END)


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ([], "a JSON object was expected, not list"),
        ({"status": "success"}, "data: required field missing"),
        (
            {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, 1]}]}},
            "data.vector.result.0.metric: required field missing",
        ),
    ],
)
def test_a_malformed_reply_is_logged_as_a_query_error_and_the_other_queries_import(
    serve: Serve, caplog: pytest.LogCaptureFixture, reply: Any, problem: str
) -> None:
    source = importer(serve, {"down": reply, "up": {"status": "success", "data": SERVICE_UP}})
    with caplog.at_level(logging.ERROR, logger="collectors.prometheus_import"):
        events = source.run_once()
    assert [e.source for e in events] == ["collector/prometheus/up"]
    [record] = caplog.records
    assert record.getMessage().startswith("Prometheus query 'down' failed: unexpected reply")
    assert record.getMessage().endswith(problem)


def test_run_survives_a_malformed_reply(serve: Serve) -> None:
    source = importer(serve, {"down": [], "up": []})
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    # Returns once stopped, rather than dying on the first reply.
    source.run(stop)


def test_backfill_fails_naming_a_rejected_query(serve: Serve) -> None:
    rejected = {"status": "error", "errorType": "bad_data", "error": "parse error"}
    source = importer(serve, {"down": rejected, "up": {"status": "success", "data": SERVICE_UP}})
    with pytest.raises(PrometheusQueryError, match="query 'down' failed: bad_data: parse error"):
        list(source.backfill(END - timedelta(minutes=1), END, step=5))


@pytest.mark.parametrize("step", [0, -5])
def test_backfill_refuses_a_step_that_is_not_positive(serve: Serve, step: int) -> None:
    source = importer(serve, {})
    with pytest.raises(ConfigError, match=f"positive number of seconds, got {step}"):
        list(source.backfill(END - timedelta(minutes=1), END, step=step))
