"""The one HTTP server every webhook plugs into: size limit, auth, rate limit, durable publish."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from collectors.auth import Authenticator, load_authenticators
from collectors.probes import Clock, utc_now
from sla.config import ReceiversConfig
from sla.errors import ConfigError, InvalidEventError, SlamonError
from sla.events import CloudEvent

log = logging.getLogger(__name__)

PublishDurably = Callable[[list[CloudEvent]], None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

READ_CHUNK_BYTES = 65_536
# A caller whose events could not be stored is asked to come back after this long.
PUBLISH_RETRY_AFTER_S = 5
# On stop, requests in flight get this long to finish; their callers retry what was cut off.
SHUTDOWN_TIMEOUT_S = 10.0
STOP_POLL_S = 0.1
# Client addresses whose failed authentications are tracked; beyond this, refilled ones go.
MAX_TRACKED_ADDRESSES = 10_000

_STATUS_CODES = {404: "not_found", 405: "method_not_allowed"}


class PartialBatch(list[CloudEvent]):
    """A webhook's events plus how many items of the payload mapped to nothing (not an error)."""

    def __init__(self, events: list[CloudEvent], skipped: int) -> None:
        super().__init__(events)
        self.skipped = skipped


class StoredBatch(list[CloudEvent]):
    """A webhook's events plus what it does once they are stored, and only then (not on 503)."""

    def __init__(self, events: list[CloudEvent], on_stored: Callable[[], None]) -> None:
        super().__init__(events)
        self.on_stored = on_stored


class WebhookPayloadError(SlamonError):
    """A webhook body that cannot be mapped to events (answered with 422)."""


class WebhookNotFoundError(SlamonError):
    """A webhook request naming something that is not configured (answered with 404)."""


@dataclass(frozen=True)
class WebhookRequest:
    """What a webhook sees of a request besides its body."""

    path_params: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    received_at: datetime


class Webhook(Protocol):
    """Maps the bodies POSTed to `path` into events; authenticated as `receivers.auth[source]`."""

    @property
    def source(self) -> str:
        """The sender name: the key of its credentials in `receivers.auth`, e.g. `jira`."""

    @property
    def path(self) -> str:
        """The route, e.g. `/webhooks/jira`; `{name}` parts arrive in `path_params`."""

    def events(self, body: bytes, request: WebhookRequest) -> list[CloudEvent]:
        """The events of one request; raise WebhookPayloadError for a body it cannot map."""


class TokenBucket:
    """Allows `burst` requests at once and `per_second` on average."""

    def __init__(
        self, per_second: float, burst: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_second = per_second
        self._burst = float(burst)
        self._monotonic = monotonic
        self._tokens = float(burst)
        self._updated = monotonic()

    def take(self) -> float:
        """Take one token: 0 when granted, else the seconds until one is available."""
        wait_s = self.wait_s()
        if wait_s == 0:
            self._tokens -= 1
        return wait_s

    def wait_s(self) -> float:
        """The seconds until a token is available (0 when one is), without taking it."""
        now = self._monotonic()
        elapsed = now - self._updated
        self._tokens = min(self._burst, self._tokens + elapsed * self._per_second)
        self._updated = now
        if self._tokens >= 1:
            return 0.0
        return (1 - self._tokens) / self._per_second

    @property
    def full(self) -> bool:
        """True when the bucket holds its whole burst: it remembers nothing."""
        return self.wait_s() == 0 and self._tokens >= self._burst


class FailedAuthLimiter:
    """One token bucket per client address, charged for each failed authentication.

    An address that spent its bucket is refused before its credentials are checked, so
    guessing them goes no faster than the configured rate.
    """

    def __init__(
        self, per_second: float, burst: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_second = per_second
        self._burst = burst
        self._monotonic = monotonic
        self._buckets: dict[str, TokenBucket] = {}

    def wait_s(self, address: str) -> float:
        """Seconds until `address` may try to authenticate again (0: now)."""
        bucket = self._buckets.get(address)
        return 0.0 if bucket is None else bucket.wait_s()

    def failed(self, address: str) -> None:
        """Charge `address` for one failed authentication."""
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_ADDRESSES:
                self._forget_refilled()
            bucket = self._buckets[address] = TokenBucket(
                self._per_second, self._burst, self._monotonic
            )
        bucket.take()

    def _forget_refilled(self) -> None:
        """Drop buckets that refilled; if none did, the oldest, so memory stays bounded."""
        refilled = [address for address, bucket in self._buckets.items() if bucket.full]
        for address in refilled or [next(iter(self._buckets))]:
            del self._buckets[address]


class _MalformedRequests(logging.Filter):
    """Logs aiohttp's refusals of malformed HTTP as one INFO line that quotes nothing sent.

    aiohttp logs them at ERROR with a traceback quoting up to 100 bytes of the offending
    line: for an over-long `Authorization` header, the start of a real token.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
            record.msg = "receiver refused a malformed HTTP request from %s: %d %s"
            record.args = (remote, exc.code, type(exc).__name__)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_MALFORMED_REQUESTS = _MalformedRequests()


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The JSON body every error answer carries: `{"error": message, "code": code}`."""
    return web.json_response({"error": message, "code": code}, status=status, headers=headers)


class ReceiverServer:
    """Serves every webhook on `config.listen`, plus `/healthz` and `/readyz`.

    A request is checked in order for size, credentials and its sender's rate, then mapped by
    its webhook and handed to `publish_durably`; it gets 202 only after that returned.
    Only authenticated requests spend their sender's rate, so a flood of forged ones cannot
    starve the real sender; failed authentications spend a bucket of the client address
    instead, with the same rate. `publish_durably` runs on one worker thread, one call at a
    time, in arrival order.
    """

    def __init__(
        self,
        config: ReceiversConfig,
        webhooks: Sequence[Webhook],
        publish_durably: PublishDurably,
        *,
        ready: Callable[[], bool],
        clock: Clock = utc_now,
        base_dir: Path = Path(),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        paths = [webhook.path for webhook in webhooks]
        duplicates = sorted({path for path in paths if paths.count(path) > 1})
        if duplicates or {"/healthz", "/readyz"} & set(paths):
            raise ValueError(f"webhook paths must be unique and not /healthz or /readyz: {paths}")
        self._config = config
        self._webhooks = list(webhooks)
        self._publish_durably = publish_durably
        self._ready = ready
        self._clock = clock
        self._authenticators: dict[str, Authenticator] = load_authenticators(
            config, base_dir=base_dir
        )
        rate = config.rate_limit
        self._buckets = {
            webhook.source: TokenBucket(rate.per_second, rate.burst, monotonic)
            for webhook in webhooks
        }
        self._failed_auth = FailedAuthLimiter(rate.per_second, rate.burst, monotonic)
        for source in sorted(self._buckets):
            if source not in self._authenticators and source not in config.allow_unauthenticated:
                log.warning(
                    "receivers.auth has no entry for %r: its requests will be rejected (401)",
                    source,
                )
        self._runner: web.AppRunner | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def webhooks(self) -> tuple[Webhook, ...]:
        """Every webhook served, one POST route each."""
        return tuple(self._webhooks)

    async def start(self) -> int:
        """Bind `config.listen` and serve; return the port (the chosen one when configured 0)."""
        if self._runner is not None:
            raise RuntimeError("the receiver server is already running")
        logging.getLogger("aiohttp.server").addFilter(_MALFORMED_REQUESTS)
        app = web.Application(middlewares=[_json_errors])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        for webhook in self._webhooks:
            app.router.add_post(webhook.path, self._handler(webhook))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="receiver-publish")
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        self._runner = runner
        try:
            await web.TCPSite(runner, self._config.host, self._config.port).start()
        except OSError as exc:
            await self.stop()
            raise ConfigError(
                f"receivers.listen {self._config.listen}: cannot serve: {exc.strerror}"
            ) from None
        port: int = runner.addresses[0][1]
        log.info("receiver listening on http://%s:%d", self._config.host, port)
        return port

    async def stop(self) -> None:
        """Stop accepting requests, let those in flight finish, release the port."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._executor is not None:
            await asyncio.to_thread(self._executor.shutdown)
            self._executor = None

    def run(self, stop: threading.Event, on_listening: Callable[[int], None] | None = None) -> None:
        """Serve until `stop` is set (blocking); `on_listening` gets the port once bound."""
        asyncio.run(self._serve(stop, on_listening))

    async def _serve(
        self, stop: threading.Event, on_listening: Callable[[int], None] | None
    ) -> None:
        port = await self.start()
        try:
            if on_listening is not None:
                on_listening(port)
            while not stop.is_set():
                await asyncio.sleep(STOP_POLL_S)
        finally:
            await self.stop()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        try:
            ready = self._ready()
        except Exception:
            log.exception("the readiness check failed")
            ready = False
        if ready:
            return web.json_response({"status": "ready"})
        return error_response(503, "not_ready", "events cannot be published right now")

    def _handler(self, webhook: Webhook) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._receive(webhook, request)

        return handle

    async def _receive(self, webhook: Webhook, request: web.Request) -> web.Response:
        received_at = self._clock()
        source = webhook.source
        body = await self._read_body(request)
        if body is None:
            limit = self._config.max_body_bytes
            return _reject(request, source, 413, "too_large", f"body over {limit} bytes")
        address = request.remote or "unknown"
        wait_s = self._failed_auth.wait_s(address)
        if wait_s > 0:
            return _rate_limited(request, source, wait_s)
        if not self._authentic(source, request, body):
            self._failed_auth.failed(address)
            # One answer for every failure, so a caller cannot probe which part was wrong.
            return _reject(request, source, 401, "unauthorized", "missing or invalid credentials")
        wait_s = self._buckets[source].take()
        if wait_s > 0:
            return _rate_limited(request, source, wait_s)
        path_params = MappingProxyType(dict(request.match_info))
        context = WebhookRequest(path_params, request.query, request.headers, received_at)
        try:
            events = webhook.events(body, context)
        except WebhookNotFoundError as exc:
            return _reject(request, source, 404, "not_found", str(exc))
        except WebhookPayloadError as exc:
            return _reject(request, source, 422, "invalid_payload", str(exc))
        except InvalidEventError as exc:
            # A payload a webhook mapped, but to an event the contract refuses: still the body.
            return _reject(request, source, 422, "invalid_payload", exc.reason)
        if events:
            try:
                await self._publish(events)
            except Exception as exc:
                log.warning("receiver could not store events of %s: %s", source, exc)
                return error_response(
                    503,
                    "unavailable",
                    "the events could not be stored; retry later",
                    {"Retry-After": str(PUBLISH_RETRY_AFTER_S)},
                )
        if isinstance(events, StoredBatch):
            events.on_stored()
        answer: dict[str, object] = {"accepted": len(events), "ids": [e.id for e in events]}
        if isinstance(events, PartialBatch):
            answer["skipped"] = events.skipped
        return web.json_response(answer, status=202)

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The body, or None once it exceeds the limit (without reading the rest)."""
        limit = self._config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return None
        body = bytearray()
        while chunk := await request.content.read(READ_CHUNK_BYTES):
            body += chunk
            if len(body) > limit:
                return None
        return bytes(body)

    def _authentic(self, source: str, request: web.Request, body: bytes) -> bool:
        authenticator = self._authenticators.get(source)
        if authenticator is None:
            return source in self._config.allow_unauthenticated
        return authenticator.verify(request.headers, body)

    async def _publish(self, events: list[CloudEvent]) -> None:
        if self._executor is None:
            raise RuntimeError("the receiver server is not running")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._publish_durably, events)


def _rate_limited(request: web.Request, source: str, wait_s: float) -> web.Response:
    retry_after = {"Retry-After": str(math.ceil(wait_s))}
    return _reject(request, source, 429, "rate_limited", "too many requests", headers=retry_after)


def _reject(
    request: web.Request,
    source: str,
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Log why a request was turned away (never its body or credentials) and answer it."""
    log.info(
        "receiver rejected %s %s from %s (source %s): %d %s",
        request.method,
        request.path,
        request.remote,
        source,
        status,
        message,
    )
    return error_response(status, code, message, headers)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer router errors (404, 405) and crashes with the same JSON error body."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        log.info(
            "receiver rejected %s %s from %s: %d %s",
            request.method,
            request.path,
            request.remote,
            exc.status,
            exc.reason,
        )
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        code = _STATUS_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason.lower(), allow)
    except Exception:
        log.exception("receiver failed on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error")
