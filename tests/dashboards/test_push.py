"""`push` sends what Grafana's HTTP API documents, idempotently, to a local recording server.

The server keeps Grafana's state (datasources, folders, dashboards by uid), answers with the
documented bodies and status codes, and records every request for the assertions.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dashboards.push import GrafanaAuthError, GrafanaError, push
from sla.config import SlamonConfig
from slamon.configfile import load_config

REPO = Path(__file__).resolve().parents[2]
TOKEN = "glsa_test_token"
BASIC = ("admin", "s3cret")
_UID = r"([A-Za-z0-9_-]{1,40})"


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    body: Any
    authorization: str | None


@dataclass
class GrafanaState:
    """What a Grafana instance holds, plus the request log."""

    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class _GrafanaHandler(BaseHTTPRequestHandler):
    server: _GrafanaServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is in the state."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _handle(self, method: str) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        authorization = self.headers.get("Authorization")
        state.requests.append(Recorded(method, self.path, body, authorization))
        if authorization not in state.accepted:
            self._reply(401, {"message": "Unauthorized"})
            return
        status, payload = _route(state, method, self.path, body)
        self._reply(status, payload)

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _GrafanaServer(ThreadingHTTPServer):
    def __init__(self, state: GrafanaState) -> None:
        super().__init__(("127.0.0.1", 0), _GrafanaHandler)
        self.state = state


def _route(state: GrafanaState, method: str, path: str, body: Any) -> tuple[int, Any]:
    """Grafana's documented answers for the endpoints `push` may use."""
    if match := re.fullmatch(rf"/api/datasources/uid/{_UID}", path):
        uid = match.group(1)
        if method == "GET":
            found = state.datasources.get(uid)
            return (200, found) if found else (404, {"message": "Data source not found"})
        if method == "PUT" and uid in state.datasources:
            _check_datasource(body)
            if state.datasources[uid]["readOnly"]:
                return 403, {"message": "Cannot modify read-only data source"}
            state.datasources[uid] = body | {"id": state.datasources[uid]["id"]}
            return 200, {"datasource": state.datasources[uid], "message": "Datasource updated"}
    if path == "/api/datasources" and method == "POST":
        _check_datasource(body)
        if body["uid"] in state.datasources:
            return 409, {"message": "data source with the same uid already exists"}
        state.datasources[body["uid"]] = body | {"id": state.new_id(), "readOnly": False}
        ds = state.datasources[body["uid"]]
        return 200, {"datasource": ds, "id": ds["id"], "message": "Datasource added"}
    if (match := re.fullmatch(rf"/api/folders/{_UID}", path)) and method == "GET":
        found = state.folders.get(match.group(1))
        return (200, found) if found else (404, {"message": "folder not found"})
    if path == "/api/folders" and method == "POST":
        assert set(body) <= {"uid", "title", "parentUid"} and body["title"]
        if body.get("uid") in state.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        folder = {"id": state.new_id(), "uid": body["uid"], "title": body["title"], "version": 1}
        state.folders[body["uid"]] = folder
        return 200, folder
    if path == "/api/dashboards/db" and method == "POST":
        return _save_dashboard(state, body)
    return 404, {"message": "Not found"}


def _check_datasource(body: Any) -> None:
    """The fields POST /api/datasources and PUT /api/datasources/uid/:uid require."""
    assert {"name", "type", "access", "url", "uid"} <= set(body)
    assert body["access"] in {"proxy", "direct"}


def _save_dashboard(state: GrafanaState, body: Any) -> tuple[int, Any]:
    """POST /api/dashboards/db: 412 on an existing uid without overwrite, else saved."""
    assert set(body) <= {"dashboard", "folderUid", "folderId", "overwrite", "message"}
    dashboard = body["dashboard"]
    uid = dashboard["uid"]
    if body.get("folderUid") not in state.folders:
        return 400, {"message": "folder not found"}
    existing = state.dashboards.get(uid)
    if existing is not None and not body.get("overwrite"):
        return 412, {
            "message": "A dashboard with the same uid already exists",
            "status": "name-exists",
        }
    if existing is None and dashboard.get("id") is not None:
        return 404, {"message": "Dashboard not found", "status": "not-found"}
    version = 1 if existing is None else existing["version"] + 1
    state.dashboards[uid] = {
        "dashboard": dashboard,
        "folderUid": body["folderUid"],
        "version": version,
    }
    return 200, {
        "id": state.new_id(),
        "uid": uid,
        "url": f"/d/{uid}/x",
        "status": "success",
        "version": version,
    }


@pytest.fixture
def grafana() -> Iterator[tuple[str, GrafanaState]]:
    state = GrafanaState(
        accepted={
            f"Bearer {TOKEN}",
            "Basic " + base64.b64encode(":".join(BASIC).encode()).decode(),
        }
    )
    server = _GrafanaServer(state)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def config() -> SlamonConfig:
    return load_config(REPO / "examples" / "compose.yaml")


def _calls(state: GrafanaState) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in state.requests]


def test_first_push_creates_datasource_folder_and_dashboards(
    grafana: tuple[str, GrafanaState], config: SlamonConfig
) -> None:
    url, state = grafana
    result = push(config, url, token=TOKEN, prometheus_url="http://prometheus:9090")
    assert _calls(state) == [
        ("GET", "/api/datasources/uid/slamon-prometheus"),
        ("POST", "/api/datasources"),
        ("GET", "/api/folders/slamon"),
        ("POST", "/api/folders"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db"),
    ]
    assert all(r.authorization == f"Bearer {TOKEN}" for r in state.requests)
    assert state.requests[1].body == {
        "uid": "slamon-prometheus",
        "name": "Prometheus (slamon)",
        "type": "prometheus",
        "access": "proxy",
        "url": "http://prometheus:9090",
        "jsonData": {"timeInterval": "15s", "httpMethod": "POST"},
    }
    assert state.requests[3].body == {"title": "slamon", "uid": "slamon"}
    saves = [r.body for r in state.requests[4:]]
    assert all(b["overwrite"] is True and b["folderUid"] == "slamon" for b in saves)
    # id null: Grafana matches the uid, so another instance's database ids never leak in.
    assert all(b["dashboard"]["id"] is None for b in saves)
    assert [b["dashboard"]["uid"] for b in saves] == [
        "slamon-overview",
        "slamon-service",
        "slamon-pipeline-health",
    ]
    assert result.datasource == "created" and result.folder == "created"
    assert result.dashboards == {
        "overview": "/d/slamon-overview/x",
        "service": "/d/slamon-service/x",
        "pipeline-health": "/d/slamon-pipeline-health/x",
    }


def test_second_push_updates_the_dashboards_and_creates_nothing(
    grafana: tuple[str, GrafanaState], config: SlamonConfig
) -> None:
    url, state = grafana
    push(config, url, token=TOKEN)
    state.requests.clear()
    result = push(config, url, token=TOKEN)
    assert _calls(state) == [
        ("GET", "/api/datasources/uid/slamon-prometheus"),
        ("GET", "/api/folders/slamon"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db"),
    ]
    assert (result.datasource, result.folder) == ("unchanged", "unchanged")
    assert len(state.datasources) == 1 and len(state.folders) == 1
    # Three dashboards, each saved twice: the overwrite updated them in place.
    assert {uid: d["version"] for uid, d in state.dashboards.items()} == {
        "slamon-overview": 2,
        "slamon-service": 2,
        "slamon-pipeline-health": 2,
    }


def test_a_new_prometheus_address_keeps_what_the_grafana_admin_set(
    grafana: tuple[str, GrafanaState], config: SlamonConfig
) -> None:
    url, state = grafana
    push(config, url, token=TOKEN)
    # The admin made it the default, added auth and chose GET.
    state.datasources["slamon-prometheus"] |= {
        "isDefault": True,
        "basicAuth": True,
        "basicAuthUser": "grafana",
        "jsonData": {"httpMethod": "GET"},
    }
    state.requests.clear()
    result = push(config, url, token=TOKEN, prometheus_url="http://prom.internal:9090")
    assert result.datasource == "updated"
    (sent,) = [r.body for r in state.requests if r.method == "PUT"]
    assert sent["url"] == "http://prom.internal:9090"
    assert sent["isDefault"] is True and sent["basicAuth"] is True
    assert sent["basicAuthUser"] == "grafana" and sent["jsonData"] == {"httpMethod": "GET"}


def test_a_provisioned_datasource_is_left_alone_and_the_dashboards_still_go(
    grafana: tuple[str, GrafanaState], config: SlamonConfig
) -> None:
    # The compose stack's Grafana provisions the datasource from a file: read-only in the API.
    url, state = grafana
    state.datasources["slamon-prometheus"] = {
        "id": 1,
        "uid": "slamon-prometheus",
        "name": "Prometheus (slamon)",
        "type": "prometheus",
        "access": "proxy",
        "url": "http://prometheus:9090",
        "readOnly": True,
    }
    result = push(config, url, token=TOKEN, prometheus_url="http://elsewhere:9090")
    assert result.datasource == "provisioned"
    assert "PUT" not in {method for method, _ in _calls(state)}
    assert len(state.dashboards) == 3


def test_basic_auth_from_the_url_or_the_argument(
    grafana: tuple[str, GrafanaState], config: SlamonConfig
) -> None:
    url, state = grafana
    push(config, url, basic_auth=BASIC, folder="SLA Reports")
    with_password = url.replace("http://", "http://admin:s3cret@")
    push(config, with_password, folder="SLA Reports")
    expected = "Basic " + base64.b64encode(b"admin:s3cret").decode()
    assert {r.authorization for r in state.requests} == {expected}
    # The folder uid is derived from its title; the second push found it.
    assert list(state.folders) == ["sla-reports"]
    assert state.folders["sla-reports"]["title"] == "SLA Reports"


def test_rejected_token_is_one_clear_error_naming_the_url(
    grafana: tuple[str, GrafanaState], config: SlamonConfig
) -> None:
    url, state = grafana
    with pytest.raises(GrafanaAuthError) as caught:
        push(config, url, token="wrong")
    message = str(caught.value)
    assert message.startswith(f"Grafana at {url} answered 401 Unauthorized to GET ")
    assert "wrong" not in message
    # It stopped at the first refusal: nothing was written.
    assert _calls(state) == [("GET", "/api/datasources/uid/slamon-prometheus")]


def test_password_never_appears_in_the_error(
    grafana: tuple[str, GrafanaState], config: SlamonConfig
) -> None:
    url, _ = grafana
    with pytest.raises(GrafanaAuthError) as caught:
        push(config, url.replace("http://", "http://admin:hunter2@"))
    assert "hunter2" not in str(caught.value)
    assert "admin:***@127.0.0.1" in str(caught.value)


def test_unreachable_grafana_names_the_url(config: SlamonConfig, free_port: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(GrafanaError, match=rf"cannot reach Grafana at {re.escape(url)}"):
        push(config, url, token=TOKEN, timeout=2)


def test_token_and_password_together_are_refused(config: SlamonConfig) -> None:
    with pytest.raises(GrafanaError, match="either a Grafana token or a user and password"):
        push(config, "http://127.0.0.1:1", token=TOKEN, basic_auth=BASIC)
