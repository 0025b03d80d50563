"""The slamon configuration (domain.md §2) as frozen pydantic models that reject unknown keys."""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails

from sla.durations import format_duration, parse_duration
from sla.events import TicketStatus

TWENTY_FOUR_SEVEN = "24x7"
"""The built-in calendar of every hour of every day; no calendar may be defined under this name."""

Duration = Annotated[int, BeforeValidator(parse_duration)]
"""Integer seconds, written `30s`, `15m`, `4h`, `1d`, `1h30m` or as a plain number of seconds.

For ticket goals `1d` is 24 business hours of the clock's calendar: the same 86400 seconds,
counted in business time.
"""

PositiveDuration = Annotated[Duration, Field(gt=0)]
Percent = Annotated[float, Field(gt=0, le=100)]
Ratio = Annotated[float, Field(gt=0, le=1)]
TicketClock = Literal["response", "resolution"]

Loc = tuple[str | int, ...]

_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]*")
_TOPIC_PREFIX = re.compile(r"[A-Za-z0-9._-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TIME_RANGE = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")
_MINUTES_PER_DAY = 24 * 60


class _Model(BaseModel):
    """Base of the config models: unknown keys are errors and a loaded config is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Problems:
    """Errors found by a check spanning several fields, each reported at its own field path."""

    def __init__(self, title: str) -> None:
        self._title = title
        self._errors: list[InitErrorDetails] = []

    def add(self, loc: Loc, message: str, value: object) -> None:
        """Record `message` about `value` found at `loc`, relative to the model being checked."""
        self._errors.append(
            InitErrorDetails(
                type="value_error", loc=loc, input=value, ctx={"error": ValueError(message)}
            )
        )

    def extend(self, errors: list[ErrorDetails]) -> None:
        """Record errors pydantic already reported."""
        for error in errors:
            details = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
            if "ctx" in error:
                details["ctx"] = error["ctx"]
            self._errors.append(details)

    def __bool__(self) -> bool:
        return bool(self._errors)

    def error(self) -> ValidationError:
        """Every recorded error as one ValidationError (pydantic prefixes the outer path)."""
        return ValidationError.from_exception_data(self._title, self._errors)

    def raise_any(self) -> None:
        """Raise the recorded errors, if any."""
        if self._errors:
            raise self.error()


def split_host_port(address: str, *, allow_port_zero: bool = False) -> tuple[str, int]:
    """The host and port of `host:port` (`[::1]:80` for IPv6); port 0 only where asked."""
    host, colon, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not (port_text.isascii() and port_text.isdigit()):
        raise ValueError(f"invalid address {address!r}: expected host:port")
    port = int(port_text)
    lowest = 0 if allow_port_zero else 1
    if not lowest <= port <= 65_535:
        raise ValueError(f"invalid address {address!r}: port must be {lowest}..65535")
    return host, port


def _check_listen(address: str) -> str:
    split_host_port(address, allow_port_zero=True)
    return address


def _check_bootstrap(servers: str) -> str:
    for server in servers.split(","):
        split_host_port(server.strip())
    return servers


def _check_host_port(address: str) -> str:
    split_host_port(address)
    return address


def _check_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid URL {url!r}: expected http://host/... or https://host/...")
    return url


def _check_topic_prefix(prefix: str) -> str:
    if not _TOPIC_PREFIX.fullmatch(prefix):
        raise ValueError(f"invalid topic prefix {prefix!r}: use letters, digits, '.', '_', '-'")
    return prefix


def _check_env_name(name: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not an environment variable name; "
            "name the variable that holds the secret, not the secret itself"
        )
    return name


TopicPrefix = Annotated[str, AfterValidator(_check_topic_prefix)]
ListenAddress = Annotated[str, AfterValidator(_check_listen)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
HostPort = Annotated[str, AfterValidator(_check_host_port)]
HttpUrlText = Annotated[str, AfterValidator(_check_http_url)]


class KafkaTransportConfig(_Model):
    """Events travel through an Apache Kafka cluster."""

    kind: Literal["kafka"] = "kafka"
    bootstrap: Annotated[str, AfterValidator(_check_bootstrap)] = "127.0.0.1:9092"
    topic_prefix: TopicPrefix = "slamon"
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    client_id: str = Field(default="slamon", min_length=1)
    # A pipeline worker that dies is replaced after this long; Kafka's 45 s default leaves
    # its partitions unread for most of a minute. Brokers refuse less than 6 s by default.
    session_timeout: Duration = Field(default=10, ge=6)


class EmbeddedTransportConfig(_Model):
    """Events travel through in-process topic logs (one process, no broker)."""

    kind: Literal["embedded"] = "embedded"
    topic_prefix: TopicPrefix = "slamon"


TransportConfig = Annotated[
    KafkaTransportConfig | EmbeddedTransportConfig, Field(discriminator="kind")
]


class StoreConfig(_Model):
    """Where the DuckDB event store lives."""

    path: str = Field(default="slamon.duckdb", min_length=1)


class _Listener(_Model):
    """A server bound to `listen` (`host:port`; port 0 picks a free one)."""

    listen: ListenAddress

    @property
    def host(self) -> str:
        """The interface to bind."""
        return split_host_port(self.listen, allow_port_zero=True)[0]

    @property
    def port(self) -> int:
        """The port to bind."""
        return split_host_port(self.listen, allow_port_zero=True)[1]


class ExporterConfig(_Listener):
    """The Prometheus `/metrics` endpoint."""

    listen: ListenAddress = "127.0.0.1:9464"


class ReceiverAuthConfig(_Model):
    """How one webhook sender authenticates: a bearer token or an HMAC signature, from env vars."""

    token_env: EnvName | None = None
    hmac_secret_env: EnvName | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ReceiverAuthConfig:
        if (self.token_env is None) == (self.hmac_secret_env is None):
            problems = _Problems(type(self).__name__)
            if self.token_env is None:
                problems.add((), "set one of token_env or hmac_secret_env", None)
            else:
                problems.add(
                    ("hmac_secret_env",),
                    "set token_env or hmac_secret_env, not both",
                    self.hmac_secret_env,
                )
            problems.raise_any()
        return self


class ReceiversConfig(_Listener):
    """The webhook receivers (Jira, Alertmanager, ...) and how each sender authenticates."""

    listen: ListenAddress = "127.0.0.1:8088"
    auth: dict[str, ReceiverAuthConfig] = {}


class PipelineConfig(_Model):
    """Tuning of the ingest loop."""

    group_id: str = Field(default="slamon-pipeline", min_length=1)
    batch_size: int = Field(default=1000, ge=1)
    poll_timeout: float = Field(default=1.0, gt=0)
    max_event_bytes: int = Field(default=262_144, ge=1)
    recompute_interval: float = Field(default=5.0, gt=0)


class Weekday(StrEnum):
    """A day of the week as written in calendar `hours`."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(hours: str, minutes: str, spelled: str) -> int:
    """Minutes since midnight of `hours:minutes`, where 24:00 is the end of the day."""
    if int(minutes) > 59 or int(hours) > 24 or (int(hours) == 24 and int(minutes) > 0):
        raise ValueError(f"invalid time range {spelled!r}: no such time {hours}:{minutes}")
    return int(hours) * 60 + int(minutes)


class TimeRange(_Model):
    """Working time within one day, in minutes since local midnight; `end` is exclusive."""

    start: int = Field(ge=0, lt=_MINUTES_PER_DAY)
    end: int = Field(gt=0, le=_MINUTES_PER_DAY)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        match = _TIME_RANGE.fullmatch(value.strip())
        if match is None:
            raise ValueError(
                f"invalid time range {value!r}: expected HH:MM-HH:MM, e.g. 09:00-17:00"
            )
        start_h, start_m, end_h, end_m = match.groups()
        start = _minutes(start_h, start_m, value)
        if start == _MINUTES_PER_DAY:
            raise ValueError(f"invalid time range {value!r}: 24:00 may only end a range")
        return {"start": start, "end": _minutes(end_h, end_m, value)}

    @model_validator(mode="after")
    def _ends_after_start(self) -> TimeRange:
        if self.end <= self.start:
            raise ValueError(f"invalid time range '{self}': the end must be after the start")
        return self

    @model_serializer
    def _as_text(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


class CalendarConfig(_Model):
    """Working hours in a time zone, minus holidays: the basis of business time."""

    timezone: str
    hours: dict[Weekday, list[TimeRange]]
    holidays: list[date] = []
    holidays_ics: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            close = difflib.get_close_matches(name, available_timezones(), n=1)
            hint = (
                f" (did you mean {close[0]!r}?)"
                if close
                else " (use an IANA name like Europe/Berlin)"
            )
            raise ValueError(f"unknown time zone {name!r}{hint}") from None
        return name

    @field_validator("hours")
    @classmethod
    def _disjoint_sorted(
        cls, hours: dict[Weekday, list[TimeRange]]
    ) -> dict[Weekday, list[TimeRange]]:
        problems = _Problems(cls.__name__)
        for day, ranges in hours.items():
            order = sorted(range(len(ranges)), key=lambda index: ranges[index].start)
            for before, after in itertools.pairwise(order):
                if ranges[after].start < ranges[before].end:
                    problems.add(
                        (day.value, after),
                        f"{ranges[after]} overlaps {ranges[before]} on {day.value}",
                        str(ranges[after]),
                    )
        if not any(hours.values()):
            problems.add((), "a calendar needs at least one working time range", {})
        problems.raise_any()
        return {day: sorted(ranges, key=lambda r: r.start) for day, ranges in hours.items()}


class Objectives(_Model):
    """What the service level agreement promises."""

    availability: Percent | None = None
    rto: PositiveDuration | None = None
    rpo: Duration | None = None
    continuity_test_interval: PositiveDuration | None = None


class OutageFromProbes(_Model):
    """Consecutive failed probes open an outage; consecutive good ones close it."""

    failures: int = Field(default=3, ge=1)
    recoveries: int = Field(default=1, ge=1)


class ProbeConfig(_Model):
    """One active check of a service: an HTTP(S) URL or a TCP `host:port`."""

    name: str = Field(min_length=1)
    http: HttpUrlText | None = None
    tcp: HostPort | None = None
    interval: PositiveDuration = 30
    timeout: PositiveDuration = 5

    @model_validator(mode="after")
    def _one_target_in_time(self) -> ProbeConfig:
        problems = _Problems(type(self).__name__)
        if self.http is None and self.tcp is None:
            problems.add((), "set one of http (a URL) or tcp (host:port)", None)
        elif self.http is not None and self.tcp is not None:
            problems.add(("tcp",), "set http or tcp, not both", self.tcp)
        if self.timeout > self.interval:
            problems.add(
                ("timeout",),
                f"timeout {format_duration(self.timeout)} must not exceed "
                f"interval {format_duration(self.interval)}",
                self.timeout,
            )
        problems.raise_any()
        return self


class CapacityThreshold(_Model):
    """Utilization ratios (0..1] at which a resource warns and turns critical."""

    warn: Ratio
    crit: Ratio
    # Trailing span of samples the time-to-exhaustion trend is fitted over.
    trend_window: PositiveDuration = 7 * 86_400

    @model_validator(mode="after")
    def _warn_below_crit(self) -> CapacityThreshold:
        if self.warn >= self.crit:
            problems = _Problems(type(self).__name__)
            problems.add(
                ("crit",), f"crit ({self.crit}) must be above warn ({self.warn})", self.crit
            )
            problems.raise_any()
        return self


class PausePolicy(_Model):
    """Ticket statuses during which the named clocks stop."""

    statuses: list[TicketStatus] = []
    clocks: list[TicketClock] = ["response", "resolution"]


class TicketGoal(_Model):
    """Business time allowed for the first response and for resolution."""

    response: PositiveDuration
    resolution: PositiveDuration

    @model_validator(mode="after")
    def _response_first(self) -> TicketGoal:
        if self.response > self.resolution:
            problems = _Problems(type(self).__name__)
            problems.add(
                ("response",),
                f"response {format_duration(self.response)} must not exceed "
                f"resolution {format_duration(self.resolution)}",
                self.response,
            )
            problems.raise_any()
        return self


class TicketPolicy(_Model):
    """How a service's ticket clocks run: calendar, pauses, reopening, goals per priority."""

    calendar: str = TWENTY_FOUR_SEVEN
    pause: PausePolicy = PausePolicy()
    reopen: Literal["continue", "new_cycle"] = "continue"
    goals: dict[str, TicketGoal] = Field(min_length=1)
    at_risk: float = Field(default=0.75, gt=0, lt=1)


class CreditBand(_Model):
    """A service credit (percent) owed when monthly availability falls below `below` percent."""

    below: Percent
    credit: Percent


class ServiceConfig(_Model):
    """One monitored service and its agreement."""

    id: str
    name: str = Field(min_length=1)
    customer: str | None = None
    service_hours: str = TWENTY_FOUR_SEVEN
    objectives: Objectives = Objectives()
    outage_from_probes: OutageFromProbes | None = None
    probes: list[ProbeConfig] = []
    capacity: dict[str, CapacityThreshold] = {}
    tickets: TicketPolicy | None = None
    credits: list[CreditBand] = []

    @field_validator("id")
    @classmethod
    def _slug(cls, service_id: str) -> str:
        if not _SLUG.fullmatch(service_id):
            raise ValueError(
                f"invalid service id {service_id!r}: use lowercase letters, digits, '.', '_' "
                "and '-', starting with a letter or digit"
            )
        return service_id

    @field_validator("probes")
    @classmethod
    def _unique_probe_names(cls, probes: list[ProbeConfig]) -> list[ProbeConfig]:
        problems = _Problems(cls.__name__)
        first: dict[str, int] = {}
        for index, probe in enumerate(probes):
            if probe.name in first:
                problems.add(
                    (index, "name"),
                    f"duplicate probe name {probe.name!r} (also probes[{first[probe.name]}])",
                    probe.name,
                )
            first.setdefault(probe.name, index)
        problems.raise_any()
        return probes

    @field_validator("credits")
    @classmethod
    def _consistent_bands(cls, credits: list[CreditBand]) -> list[CreditBand]:
        problems = _Problems(cls.__name__)
        for index, band in enumerate(credits):
            for other in credits[:index]:
                if band.below == other.below:
                    problems.add(
                        (index, "below"), f"duplicate credit band below {band.below}", band.below
                    )
                elif (band.below - other.below) * (band.credit - other.credit) > 0:
                    problems.add(
                        (index, "credit"),
                        f"credit {band.credit}% below {band.below}% but {other.credit}% below "
                        f"{other.below}%: lower availability must earn at least as much credit",
                        band.credit,
                    )
        problems.raise_any()
        return credits


def _member(value: object, name: str) -> object:
    """Field `name` of raw (mapping) or already typed (model) input, None when absent."""
    if isinstance(value, Mapping):
        return value.get(name)
    if isinstance(value, BaseModel):
        return getattr(value, name, None)
    return None


def _reference_problems(data: Mapping[Any, Any], problems: _Problems) -> None:
    """Check service ids and calendar references on the input, so they are reported even when
    other fields are invalid too."""
    calendars = data.get("calendars")
    defined = sorted(str(name) for name in calendars) if isinstance(calendars, Mapping) else []
    if TWENTY_FOUR_SEVEN in defined:
        problems.add(
            ("calendars", TWENTY_FOUR_SEVEN, "[key]"),
            f"{TWENTY_FOUR_SEVEN!r} is the built-in always-on calendar; choose another name",
            TWENTY_FOUR_SEVEN,
        )
    services = data.get("services")
    if not isinstance(services, list):
        return
    known = ", ".join(defined) if defined else "none defined"
    first: dict[str, int] = {}
    for index, service in enumerate(services):
        service_id = _member(service, "id")
        if isinstance(service_id, str):
            if service_id in first:
                problems.add(
                    ("services", index, "id"),
                    f"duplicate service id {service_id!r} (also services[{first[service_id]}])",
                    service_id,
                )
            first.setdefault(service_id, index)
        references: list[tuple[Loc, object]] = [
            (("services", index, "service_hours"), _member(service, "service_hours")),
            (
                ("services", index, "tickets", "calendar"),
                _member(_member(service, "tickets"), "calendar"),
            ),
        ]
        for loc, name in references:
            if isinstance(name, str) and name != TWENTY_FOUR_SEVEN and name not in defined:
                problems.add(
                    loc,
                    f"unknown calendar {name!r}: use {TWENTY_FOUR_SEVEN!r} or a name under "
                    f"calendars ({known})",
                    name,
                )


class SlamonConfig(_Model):
    """The whole configuration file."""

    transport: TransportConfig = Field(default_factory=EmbeddedTransportConfig)
    store: StoreConfig = StoreConfig()
    exporter: ExporterConfig = ExporterConfig()
    receivers: ReceiversConfig = ReceiversConfig()
    pipeline: PipelineConfig = PipelineConfig()
    calendars: dict[str, CalendarConfig] = {}
    services: list[ServiceConfig] = []

    @model_validator(mode="wrap")
    @classmethod
    def _cross_check(cls, data: object, handler: ValidatorFunctionWrapHandler) -> SlamonConfig:
        problems = _Problems(cls.__name__)
        if isinstance(data, Mapping):
            _reference_problems(data, problems)
        try:
            config: SlamonConfig = handler(data)
        except ValidationError as exc:
            if not problems:
                raise
            problems.extend(exc.errors())
            raise problems.error() from None
        problems.raise_any()
        return config

    def service(self, service_id: str) -> ServiceConfig:
        """The service with id `service_id`; KeyError when there is none."""
        for service in self.services:
            if service.id == service_id:
                return service
        raise KeyError(f"unknown service {service_id!r}")
