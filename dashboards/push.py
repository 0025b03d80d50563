"""Create or update slamon's datasource, folder and dashboards through Grafana's HTTP API."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards.build import DEFAULT_PROMETHEUS_URL, FOLDER, build_dashboards, datasource_model
from sla.config import SlamonConfig
from sla.errors import SlamonError

_T = TypeVar("_T")
Outcome = Literal["created", "updated", "unchanged", "provisioned"]
# What slamon decides about its datasource; everything else (auth, jsonData, being the
# default) is the Grafana admin's and survives a push.
_DATASOURCE_OWN_FIELDS = ("name", "type", "access", "url")
DEFAULT_TIMEOUT_S = 10.0
_NOT_FOUND = 404
_AUTH_FAILURES = {401: "Unauthorized", 403: "Forbidden"}


class GrafanaError(SlamonError):
    """Grafana refused a request of `slamon dashboards push`, or could not be reached."""


class GrafanaAuthError(GrafanaError):
    """Grafana rejected the credentials (401) or their permissions (403)."""


@dataclass
class PushResult:
    """What one push did to each object, and where the dashboards now live."""

    datasource: Outcome
    folder: Outcome
    dashboards: dict[str, str] = field(default_factory=dict)


def push(
    config: SlamonConfig,
    grafana_url: str,
    *,
    token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    folder: str = FOLDER,
    prometheus_url: str = DEFAULT_PROMETHEUS_URL,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> PushResult:
    """Create or update (by uid) the Prometheus datasource, the folder and the dashboards.

    Credentials: a service-account `token`, or `basic_auth` (user, password), or the user
    and password in `grafana_url` itself; a second push creates nothing new.
    """
    if token is not None and basic_auth is not None:
        raise GrafanaError("give either a Grafana token or a user and password, not both")
    credential: str | tuple[str, str] | None = token if token is not None else basic_auth
    pusher = _Pusher(
        GrafanaApi.from_url(_with_prefix_slash(grafana_url), credential, timeout),
        _redacted(grafana_url),
    )
    datasource = pusher.upsert_datasource(datasource_model(prometheus_url))
    folder_uid = _folder_uid(folder)
    folder_outcome = pusher.upsert_folder(folder_uid, folder)
    result = PushResult(datasource=datasource, folder=folder_outcome)
    for name, model in build_dashboards(config).items():
        result.dashboards[name] = pusher.upsert_dashboard(model, folder_uid)
    return result


class _Pusher:
    """The three idempotent upserts, with Grafana's failures turned into GrafanaError."""

    def __init__(self, api: GrafanaApi, url: str) -> None:
        self._api = api
        self._url = url

    def upsert_datasource(self, model: dict[str, Any]) -> Outcome:
        """POST /api/datasources when missing; PUT /api/datasources/uid/:uid only to fix
        its address or type, keeping what the admin set; a provisioned one is left alone."""
        uid = model["uid"]
        path = f"/api/datasources/uid/{uid}"
        existing = self._find(path, lambda: self._api.datasource.get_datasource_by_uid(uid))
        if existing is None:
            self._call(
                "POST /api/datasources", lambda: self._api.datasource.create_datasource(model)
            )
            return "created"
        if existing.get("readOnly"):
            # From a provisioning file (the compose stack's): Grafana answers 403 to changes.
            return "provisioned"
        own = {key: model[key] for key in _DATASOURCE_OWN_FIELDS}
        if all(existing.get(key) == value for key, value in own.items()):
            return "unchanged"
        updated = existing | own
        self._call(
            f"PUT {path}", lambda: self._api.datasource.update_datasource_by_uid(uid, updated)
        )
        return "updated"

    def upsert_folder(self, uid: str, title: str) -> Outcome:
        """POST /api/folders when missing; PUT /api/folders/:uid only to fix its title."""
        path = f"/api/folders/{uid}"
        existing = self._find(path, lambda: self._api.folder.get_folder(uid))
        if existing is None:
            self._call("POST /api/folders", lambda: self._api.folder.create_folder(title, uid=uid))
            return "created"
        if existing.get("title") == title:
            return "unchanged"
        self._call(
            f"PUT {path}", lambda: self._api.folder.update_folder(uid, title=title, overwrite=True)
        )
        return "updated"

    def upsert_dashboard(self, model: dict[str, Any], folder_uid: str) -> str:
        """POST /api/dashboards/db with overwrite, so the uid decides create or update."""
        body = {
            # id null: Grafana matches on uid, never on a database id of another instance.
            "dashboard": model | {"id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "slamon dashboards push",
        }
        saved = self._call(
            "POST /api/dashboards/db", lambda: self._api.dashboard.update_dashboard(body)
        )
        return str(saved.get("url", "")) if isinstance(saved, dict) else ""

    def _find(self, path: str, get: Callable[[], Any]) -> dict[str, Any] | None:
        """The object at GET `path`, or None when Grafana answers 404."""
        try:
            found = get()
        except GrafanaClientError as exc:
            if exc.status_code == _NOT_FOUND:
                return None
            raise self._error(f"GET {path}", exc) from exc
        except (GrafanaException, OSError) as exc:
            raise self._error(f"GET {path}", exc) from exc
        return found if isinstance(found, dict) else {}

    def _call(self, request: str, send: Callable[[], _T]) -> _T:
        try:
            return send()
        except (GrafanaException, OSError) as exc:
            raise self._error(request, exc) from exc

    def _error(self, request: str, exc: Exception) -> GrafanaError:
        status = getattr(exc, "status_code", 0)
        if status in _AUTH_FAILURES:
            return GrafanaAuthError(
                f"Grafana at {self._url} answered {status} {_AUTH_FAILURES[status]} to "
                f"{request}: {_message(exc)}; check the token (or user and password) and that "
                "it may edit datasources, folders and dashboards"
            )
        if status:
            return GrafanaError(
                f"Grafana at {self._url} refused {request} ({status}): {_message(exc)}"
            )
        return GrafanaError(f"cannot reach Grafana at {self._url} ({request}): {exc}")


def _message(exc: Exception) -> str:
    """Grafana's own explanation from the error body, when it sent one."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("message"):
        return str(response["message"])
    return str(getattr(exc, "message", exc))


def _folder_uid(title: str) -> str:
    """A Grafana uid (at most 40 of [A-Za-z0-9_-]) derived from the folder title."""
    uid = re.sub(r"[^A-Za-z0-9_-]+", "-", title.strip().lower()).strip("-")[:40]
    if not uid:
        raise GrafanaError(f"folder {title!r} has no letters or digits to make a uid from")
    return uid


def _with_prefix_slash(url: str) -> str:
    """grafana-client appends `api` to the URL path: a sub-path needs its trailing slash."""
    parts = urlsplit(url)
    if parts.path and not parts.path.endswith("/"):
        parts = parts._replace(path=parts.path + "/")
    return urlunsplit(parts)


def _redacted(url: str) -> str:
    """The URL without a password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
