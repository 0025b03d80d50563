"""Run configured PromQL queries against a Prometheus server and turn their series into events."""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, Field, ValidationError

from collectors.probes import Clock, Publish, utc_now
from collectors.webhooks.payload import first_problem
from sla.config import PrometheusImportConfig, PrometheusQueryConfig
from sla.errors import ConfigError, SlamonError, TransportError
from sla.events import CapacityData, CloudEvent, EventData, EventType, ProbeData, new_event

log = logging.getLogger(__name__)

# Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS_PER_RANGE = 10_000
USER_AGENT = "slamon-prometheus-import/0.1"


class PrometheusUnreachableError(TransportError):
    """The Prometheus server did not answer (refused, timed out, or not a Prometheus API)."""


class PrometheusQueryError(SlamonError):
    """Prometheus answered a query with an error (bad PromQL, execution failure)."""


@dataclass(frozen=True)
class Sample:
    """One value of one series at one instant, as the Prometheus API returns it."""

    labels: Mapping[str, str]
    at: float
    value: float


class _Scalar(BaseModel):
    result_type: Literal["scalar"] = Field(alias="resultType")
    result: tuple[float, float]


class _InstantSeries(BaseModel):
    metric: dict[str, str]
    value: tuple[float, float]


class _Vector(BaseModel):
    result_type: Literal["vector"] = Field(alias="resultType")
    result: list[_InstantSeries]


class _RangeSeries(BaseModel):
    metric: dict[str, str]
    values: list[tuple[float, float]]


class _Matrix(BaseModel):
    result_type: Literal["matrix"] = Field(alias="resultType")
    result: list[_RangeSeries]


class _Success(BaseModel):
    """A successful reply of /api/v1/query or /api/v1/query_range with a numeric result."""

    status: Literal["success"]
    data: Annotated[_Scalar | _Vector | _Matrix, Field(discriminator="result_type")]


class PrometheusImporter:
    """Evaluates each query on a time grid of `interval` and publishes one event per series.

    Evaluation times are multiples of the interval (of the step when backfilling), and event
    ids are derived from query name, series labels and time: importing an instant twice, from
    an overlapping run or a backfill, yields the same ids, which the pipeline deduplicates.
    """

    def __init__(
        self, config: PrometheusImportConfig, publish: Publish, clock: Clock = utc_now
    ) -> None:
        self._config = config
        self._publish = publish
        self._clock = clock
        self._client = httpx.Client(
            base_url=config.url.rstrip("/"),
            timeout=config.timeout,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )
        # The last error of each failing query, so that it is logged once, not every interval.
        self._failing: dict[str, str] = {}

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def run_once(self) -> list[CloudEvent]:
        """Evaluate every query at the latest grid instant, publish and return the events.

        Raises PrometheusUnreachableError when the server does not answer; a query the server
        rejects is logged (once while it keeps failing) and the other queries still import.
        """
        interval = self._config.interval
        at = math.floor(self._clock().timestamp() / interval) * interval
        events: list[CloudEvent] = []
        for query in self._config.queries:
            samples = self._checked(query, "query", {"query": query.query, "time": at})
            for event in self._events(query, samples):
                self._publish(event)
                events.append(event)
        return events

    def run(self, stop: threading.Event) -> None:
        """Import every `interval` until `stop` is set; an unreachable server is retried."""
        while not stop.is_set():
            try:
                imported = self.run_once()
            except PrometheusUnreachableError as exc:
                log.warning("%s; retrying in %ds", exc, self._config.interval)
            else:
                log.debug("imported %d events from %s", len(imported), self._config.url)
            stop.wait(self._next_run_in())

    def backfill(self, start: datetime, end: datetime, step: int) -> Iterator[CloudEvent]:
        """Events of every query at each multiple of `step` seconds from `start` to `end`.

        Uses /api/v1/query_range in chunks Prometheus accepts; the caller publishes the events.
        Raises PrometheusQueryError naming the query when Prometheus rejects one: a backfill
        with a gap must fail, not look complete.
        """
        if step <= 0:
            raise ConfigError(f"the backfill step must be a positive number of seconds, got {step}")
        first = math.ceil(start.timestamp() / step) * step
        last = math.floor(end.timestamp() / step) * step
        for query in self._config.queries:
            chunk_start = first
            while chunk_start <= last:
                chunk_end = min(last, chunk_start + (MAX_POINTS_PER_RANGE - 1) * step)
                params = {"start": chunk_start, "end": chunk_end, "step": step}
                try:
                    samples = self._samples("query_range", {"query": query.query, **params})
                except PrometheusQueryError as exc:
                    raise PrometheusQueryError(
                        f"Prometheus query {query.name!r} failed: {exc}"
                    ) from None
                yield from self._events(query, samples)
                chunk_start = chunk_end + step

    def _next_run_in(self) -> float:
        """Seconds until the next grid instant, so each run evaluates a fresh one."""
        interval = self._config.interval
        return interval - self._clock().timestamp() % interval

    def _checked(
        self, query: PrometheusQueryConfig, endpoint: str, params: Mapping[str, str | float]
    ) -> list[Sample]:
        """The samples of one query; a rejected query is logged once and yields none."""
        try:
            samples = self._samples(endpoint, params)
        except PrometheusQueryError as exc:
            if self._failing.get(query.name) != str(exc):
                log.error("Prometheus query %r failed: %s", query.name, exc)
            self._failing[query.name] = str(exc)
            return []
        if self._failing.pop(query.name, None) is not None:
            log.info("Prometheus query %r works again", query.name)
        return samples

    def _samples(self, endpoint: str, params: Mapping[str, str | float]) -> list[Sample]:
        """Call /api/v1/<endpoint> and flatten its result into samples."""
        try:
            response = self._client.get(f"/api/v1/{endpoint}", params=dict(params))
            body: Any = response.json()
        except httpx.HTTPError as exc:
            raise PrometheusUnreachableError(
                f"Prometheus at {self._config.url} is unreachable: {exc or type(exc).__name__}"
            ) from exc
        except ValueError:
            raise PrometheusUnreachableError(
                f"{self._config.url} answered HTTP {response.status_code} without a Prometheus "
                "API body; is the url the Prometheus server?"
            ) from None
        if not isinstance(body, dict):
            raise PrometheusQueryError(
                f"unexpected reply, a JSON object was expected, not {type(body).__name__}"
            )
        if body.get("status") == "error":
            raise PrometheusQueryError(
                f"{body.get('errorType', 'error')}: {body.get('error', 'no reason given')}"
            )
        try:
            reply = _Success.model_validate(body)
        except ValidationError as exc:
            raise PrometheusQueryError(
                f"unexpected reply, a number, vector or matrix result was expected: "
                f"{first_problem(exc)}"
            ) from None
        return _flatten(reply.data)

    def _events(self, query: PrometheusQueryConfig, samples: list[Sample]) -> Iterator[CloudEvent]:
        """One event per sample that names a service; the others are logged and skipped."""
        source = f"collector/prometheus/{query.name}"
        for sample in samples:
            service = query.service or sample.labels.get(query.service_label or "")
            data = _probe(query, sample) if query.kind == "probe" else _capacity(query, sample)
            if not service or data is None:
                log.debug("query %r: skipped series %s", query.name, dict(sample.labels))
                continue
            yield new_event(
                EventType.PROBE if query.kind == "probe" else EventType.CAPACITY,
                service,
                data,
                source=source,
                time=datetime.fromtimestamp(sample.at, UTC),
                id=_event_id(query.name, sample),
            )


def _flatten(data: _Scalar | _Vector | _Matrix) -> list[Sample]:
    """Samples of a vector, matrix or scalar result."""
    if isinstance(data, _Scalar):
        return [Sample({}, *data.result)]
    if isinstance(data, _Vector):
        return [Sample(series.metric, *series.value) for series in data.result]
    return [
        Sample(series.metric, at, value) for series in data.result for at, value in series.values
    ]


def _probe(query: PrometheusQueryConfig, sample: Sample) -> EventData | None:
    """A passed check for a value above 0 (`probe_success`, `up`), a failed one otherwise."""
    check = query.check or sample.labels.get(query.check_label or "") or query.name
    ok = sample.value > 0  # NaN compares false: no answer is a failure
    error = None if ok else f"{query.name} returned {sample.value:g}"
    return ProbeData(check=check, ok=ok, latency_ms=0.0, error=error)


def _capacity(query: PrometheusQueryConfig, sample: Sample) -> EventData | None:
    """The value as `used` (times `capacity` for ratios); None for negative or NaN values."""
    used = sample.value * query.capacity if query.used_is_ratio else sample.value
    if not (math.isfinite(used) and used >= 0) or query.resource is None:
        return None
    host = sample.labels.get(query.host_label) if query.host_label else None
    return CapacityData(
        resource=query.resource, used=used, capacity=query.capacity, unit=query.unit, host=host
    )


def _event_id(query_name: str, sample: Sample) -> str:
    """`prometheus-<query>-<series hash>-<unix ms>`: the same for the same series and instant."""
    labels = "\x00".join(f"{name}={value}" for name, value in sorted(sample.labels.items()))
    series = hashlib.blake2b(labels.encode(), digest_size=8).hexdigest()
    return f"prometheus-{query_name}-{series}-{round(sample.at * 1000)}"
