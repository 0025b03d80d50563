"""The slamon configuration (domain.md §2) as frozen pydantic models that reject unknown keys."""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterator, Mapping
from datetime import date
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address
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
_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_STATUS_RANGE = re.compile(r"([1-5])xx|(\d{3})(?:\s*-\s*(\d{3}))?")
_PROMETHEUS_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
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


def _check_hostname(name: str) -> str:
    labels = name.removesuffix(".").split(".")
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"invalid host name {name!r}: expected e.g. checkout.example.com")
    return name


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"invalid HTTP header name {name!r}")
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r}: the value must not contain line breaks")
    return headers


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return pattern


def _check_label_name(name: str) -> str:
    if not _PROMETHEUS_LABEL.fullmatch(name):
        raise ValueError(f"invalid Prometheus label name {name!r}")
    return name


def _check_topic_prefix(prefix: str) -> str:
    if not _TOPIC_PREFIX.fullmatch(prefix):
        raise ValueError(f"invalid topic prefix {prefix!r}: use letters, digits, '.', '_', '-'")
    return prefix


def _check_instance_id(instance_id: str) -> str:
    # Kafka's rule for a group.instance.id is its rule for topic names.
    if not _TOPIC_PREFIX.fullmatch(instance_id) or len(instance_id) > 249:
        raise ValueError(
            f"invalid instance id {instance_id!r}: use up to 249 letters, digits, '.', '_', '-'"
        )
    return instance_id


def _check_env_name(name: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not an environment variable name; "
            "name the variable that holds the secret, not the secret itself"
        )
    return name


TopicPrefix = Annotated[str, AfterValidator(_check_topic_prefix)]
InstanceId = Annotated[str, AfterValidator(_check_instance_id)]
ListenAddress = Annotated[str, AfterValidator(_check_listen)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
HostPort = Annotated[str, AfterValidator(_check_host_port)]
HttpUrlText = Annotated[str, AfterValidator(_check_http_url)]
Hostname = Annotated[str, AfterValidator(_check_hostname)]
HttpHeaders = Annotated[dict[str, str], AfterValidator(_check_headers)]
Regex = Annotated[str, AfterValidator(_check_regex)]
LabelName = Annotated[str, AfterValidator(_check_label_name)]


class KafkaClient(StrEnum):
    """The Python Kafka client a Kafka transport runs on."""

    # An enum, not a Literal: a Literal field would read as a second discriminator tag.
    CONFLUENT = "confluent-kafka"
    KAFKA_PYTHON = "kafka-python"


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
    client: KafkaClient = KafkaClient.CONFLUENT
    """The Python Kafka client: confluent-kafka (librdkafka) reads about ten times faster."""


class EmbeddedTransportConfig(_Model):
    """Events travel through in-process topic logs (one process, no broker)."""

    kind: Literal["embedded"] = "embedded"
    topic_prefix: TopicPrefix = "slamon"


TransportConfig = Annotated[
    KafkaTransportConfig | EmbeddedTransportConfig, Field(discriminator="kind")
]


# A bucket name as S3 allows it (3 to 63 lower-case letters, digits, dots and hyphens), then
# an optional key prefix.
_S3_URL = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?")


class S3Config(_Model):
    """How to reach an S3-compatible object store; the keys come from the environment or
    files, never from the config itself."""

    endpoint: str | None = Field(default=None, pattern=r"^https?://[^/\s]+/?$")
    """`http(s)://host:port` of a store other than AWS (MinIO, Ceph, S3Proxy, ...)."""
    region: str = Field(default="us-east-1", min_length=1)
    access_key_id_env: EnvName | None = None
    access_key_id_file: str | None = Field(default=None, min_length=1)
    secret_access_key_env: EnvName | None = None
    secret_access_key_file: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source_per_key(self) -> S3Config:
        problems = _Problems(type(self).__name__)
        for key in ("access_key_id", "secret_access_key"):
            env, file = getattr(self, f"{key}_env"), getattr(self, f"{key}_file")
            if env is None and file is None:
                problems.add((), f"set one of {key}_env, {key}_file", None)
            elif env is not None and file is not None:
                problems.add((f"{key}_file",), f"set only one of {key}_env, {key}_file", file)
        problems.raise_any()
        return self


class ParquetExportConfig(_Model):
    """Where pipeline workers copy the events they stored, as Parquet by service and day."""

    path: str = Field(min_length=1)
    """A directory shared by every worker (a network file system or a synced volume), or
    `s3://bucket/prefix` on an S3-compatible store (then `s3` says how to reach it)."""
    interval: float = Field(default=60.0, gt=0)
    """Seconds between two exports; each one copies what was stored since the last."""
    s3: S3Config | None = None

    @property
    def on_s3(self) -> bool:
        """Whether the export goes to an S3-compatible store rather than a directory."""
        return self.path.startswith("s3://")

    @model_validator(mode="after")
    def _s3_settings_for_s3_paths(self) -> ParquetExportConfig:
        problems = _Problems(type(self).__name__)
        if self.on_s3 and self.s3 is None:
            problems.add(("s3",), "an s3:// path needs the s3 settings (keys, endpoint)", None)
        if self.on_s3 and not _S3_URL.fullmatch(self.path):
            problems.add(("path",), "not s3://<bucket>/<prefix> with a valid bucket", self.path)
        if not self.on_s3 and self.s3 is not None:
            problems.add(("s3",), "s3 settings apply to s3:// paths only", None)
        problems.raise_any()
        return self


class StoreConfig(_Model):
    """Where the DuckDB event store lives."""

    path: str = Field(default="slamon.duckdb", min_length=1)
    sharded: bool = False
    """`path` is then a directory with one store per Kafka partition, for N pipeline workers."""
    parquet: ParquetExportConfig | None = None
    memory_limit_mib: int = Field(default=256, ge=64)
    """DuckDB's memory in the pipeline (per shard when sharded): table cache and queries."""


class ReportsConfig(_Model):
    """The monthly service review pack `slamon run` writes on its own."""

    enabled: bool = False
    out_dir: str = Field(default="var/reports", min_length=1)
    # Day of the month on which last month's pack is written (it is written once).
    day: int = Field(default=1, ge=1, le=28)
    pdf: bool = True


class SpoolConfig(_Model):
    """The on-disk queue collectors write events to while Kafka is unreachable."""

    path: str = Field(default="var/spool", min_length=1)
    """The spool directory (created if missing); one process at a time may use it."""
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=65_536)
    """Events waiting in the spool at most; beyond it webhooks answer 503 and probes are lost."""
    segment_bytes: int = Field(default=8 * 1024 * 1024, ge=4096)
    """Size of one spool file; a file is deleted once every event in it was re-sent."""

    @model_validator(mode="after")
    def _segment_within_max(self) -> SpoolConfig:
        if self.segment_bytes > self.max_bytes:
            problems = _Problems(type(self).__name__)
            problems.add(
                ("segment_bytes",),
                f"segment_bytes ({self.segment_bytes}) must not exceed max_bytes "
                f"({self.max_bytes})",
                self.segment_bytes,
            )
            problems.raise_any()
        return self


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
    """How one webhook sender authenticates: a bearer token or an HMAC-SHA256 signature of the
    body, the secret read from an environment variable or a file (never written in the config)."""

    token_env: EnvName | None = None
    token_file: str | None = Field(default=None, min_length=1)
    hmac_secret_env: EnvName | None = None
    hmac_secret_file: str | None = Field(default=None, min_length=1)
    signature_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]+$")
    """The header carrying `sha256=<hex>` from HMAC senders (unset: `X-Hub-Signature-256`)."""

    @property
    def kind(self) -> Literal["bearer", "hmac"]:
        """Whether the sender presents a bearer token or signs the body."""
        return "bearer" if self.token_env is not None or self.token_file is not None else "hmac"

    @model_validator(mode="after")
    def _exactly_one_secret(self) -> ReceiverAuthConfig:
        problems = _Problems(type(self).__name__)
        sources = ("token_env", "token_file", "hmac_secret_env", "hmac_secret_file")
        chosen = [name for name in sources if getattr(self, name) is not None]
        if not chosen:
            problems.add((), f"set one of {', '.join(sources)}", None)
        for name in chosen[1:]:
            problems.add(
                (name,),
                f"set only one of {', '.join(sources)} (also {chosen[0]})",
                getattr(self, name),
            )
        if chosen and self.kind == "bearer" and self.signature_header is not None:
            problems.add(
                ("signature_header",),
                "signature_header applies to HMAC senders only",
                self.signature_header,
            )
        problems.raise_any()
        return self


def _check_service_ref(service_id: str) -> str:
    if not _SLUG.fullmatch(service_id):
        raise ValueError(
            f"invalid service id {service_id!r}: use lowercase letters, digits, '.', '_' and '-'"
        )
    return service_id


ServiceRef = Annotated[str, AfterValidator(_check_service_ref)]
"""The id of a service, as written under `services[].id`."""
FieldPath = Annotated[str, Field(min_length=1)]
"""A dotted JSON path such as `issue.fields.priority.name`; a CSV column name as a whole."""
FiringState = Literal["down", "degraded"]
TicketKind = Literal["incident", "request", "problem"]


class AlertmanagerConfig(_Model):
    """How Alertmanager alerts map to services and to the state of a service while they fire."""

    service_label: str = Field(default="service", min_length=1)
    """The alert label whose value is the service id."""
    label_map: dict[str, dict[str, ServiceRef]] = {}
    """Fallback when `service_label` is absent: label name → {label value → service id}."""
    severity_label: str = Field(default="severity", min_length=1)
    """The alert label holding the severity."""
    severity_states: dict[str, FiringState] = {"warning": "degraded"}
    """Severity → state of the service while the alert fires."""
    default_state: FiringState = "down"
    """State while an alert fires whose severity is not in `severity_states` (or missing)."""
    alertnames: list[str] = []
    """Only alerts with one of these `alertname`s count; empty: every alert."""


class ResponseRule(_Model):
    """How a ticket event is recognised as carrying the first agent response."""

    before_statuses: list[str] = []
    """Desk statuses of a ticket nobody answered yet; an event in any other status responds."""
    fields: list[FieldPath] = []
    """Paths whose non-empty, non-false value marks a response (a work note, a flag column)."""
    when: list[dict[FieldPath, list[str | int | bool]]] = []
    """Conditions (path → accepted values); an event matching all paths of one responds."""


class SummaryColumns(_Model):
    """The lifecycle timestamps of a summary export: one record per ticket."""

    created: FieldPath
    """When the ticket was opened (a `new` event)."""
    responded: FieldPath | None = None
    """When an agent first responded (an `in_progress` event with `responded: true`)."""
    resolved: FieldPath | None = None
    """When the ticket was resolved (a `resolved` event)."""
    closed: FieldPath | None = None
    """When the ticket was closed (a `closed` event)."""


class TicketMapping(_Model):
    """Where a service desk record keeps each ticket field and how its values translate."""

    ticket_id: FieldPath = "id"
    """Path of the ticket id (e.g. `issue.key`, `number`)."""
    updated: FieldPath = "updated"
    """Path of the time of the change: ISO 8601, epoch seconds or milliseconds."""
    status: FieldPath = "status"
    """Path of the desk status, translated by `status_map`."""
    priority: FieldPath = "priority"
    """Path of the desk priority, translated by `priority_map`."""
    service: FieldPath = "service"
    """Path of the service id, or of a key of `service_map` (project key, assignment group)."""
    kind: FieldPath | None = "kind"
    """Path of the ticket type or table, translated by `kind_map`."""
    customer: FieldPath | None = "customer"
    """Path of the customer the ticket was raised for."""
    event: FieldPath | None = None
    """Path of the webhook event name; with `events`, other events are skipped."""
    events: list[str] = []
    """Webhook event names that carry ticket changes; empty: all."""
    service_map: dict[str, ServiceRef] = {}
    """Desk value → service id; values not listed must be service ids themselves."""
    priority_map: dict[str, str] = {}
    """Desk priority → slamon priority (`P1`, ...); empty: the desk value as it is."""
    status_map: dict[str, TicketStatus] = {}
    """Desk status → slamon status; statuses not listed must be slamon statuses themselves."""
    kind_map: dict[str, TicketKind] = {}
    """Desk ticket type or table → incident, request or problem."""
    default_kind: TicketKind = "incident"
    """Kind of tickets whose type is missing or not in `kind_map`."""
    responded: ResponseRule = ResponseRule()
    """How the first agent response is recognised."""
    timezone: str = "UTC"
    """Time zone of timestamps written without a UTC offset."""
    summary: SummaryColumns | None = None
    """Set for exports with one record per ticket (summary layout); unset: one per change."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        return CalendarConfig._known_zone(name)


_JIRA_TICKETS: dict[str, Any] = {
    "ticket_id": "issue.key",
    "updated": "timestamp",
    "status": "issue.fields.status.name",
    "priority": "issue.fields.priority.name",
    "service": "issue.fields.project.key",
    "kind": "issue.fields.issuetype.name",
    "customer": None,
    "event": "webhookEvent",
    "events": ["jira:issue_created", "jira:issue_updated", "comment_created"],
    "priority_map": {"Highest": "P1", "High": "P2", "Medium": "P3", "Low": "P4", "Lowest": "P5"},
    "status_map": {
        "New": "new",
        "Open": "open",
        "To Do": "open",
        "Waiting for support": "open",
        "Reopened": "open",
        "In Progress": "in_progress",
        "Work in progress": "in_progress",
        "Escalated": "in_progress",
        "Waiting for customer": "pending",
        "Waiting for approval": "pending",
        "Pending": "pending",
        "Resolved": "resolved",
        "Done": "resolved",
        "Completed": "resolved",
        "Closed": "closed",
        "Canceled": "closed",
        "Declined": "closed",
    },
    "kind_map": {
        "Incident": "incident",
        "Service request": "request",
        "Service request with approvals": "request",
        "Problem": "problem",
    },
    "responded": {
        "before_statuses": ["New", "Open", "To Do", "Waiting for support"],
        "when": [
            {
                "webhookEvent": ["comment_created"],
                "comment.author.accountType": ["atlassian"],
                "comment.jsdPublic": [True],
            }
        ],
    },
}
_SERVICENOW_TICKETS: dict[str, Any] = {
    "ticket_id": "number",
    "updated": "sys_updated_on",
    "status": "state",
    "priority": "priority",
    "service": "assignment_group",
    "kind": "sys_class_name",
    "customer": "company",
    "priority_map": {
        "1": "P1",
        "1 - Critical": "P1",
        "2": "P2",
        "2 - High": "P2",
        "3": "P3",
        "3 - Moderate": "P3",
        "4": "P4",
        "4 - Low": "P4",
        "5": "P5",
        "5 - Planning": "P5",
    },
    "status_map": {
        # incident (numeric values and labels)
        "1": "new",
        "New": "new",
        "2": "in_progress",
        "In Progress": "in_progress",
        "3": "pending",
        "On Hold": "pending",
        "6": "resolved",
        "Resolved": "resolved",
        "7": "closed",
        "Closed": "closed",
        "8": "closed",
        "Canceled": "closed",
        # problem (state values 101..107 since Madrid)
        "101": "new",
        "102": "in_progress",
        "Assess": "in_progress",
        "103": "in_progress",
        "Root Cause Analysis": "in_progress",
        "104": "in_progress",
        "Fix in Progress": "in_progress",
        "106": "resolved",
        "107": "closed",
        # sc_req_item labels (its numeric states collide with the incident ones)
        "Open": "open",
        "Work in Progress": "in_progress",
        "Pending": "pending",
        "Closed Complete": "closed",
        "Closed Incomplete": "closed",
        "Closed Skipped": "closed",
    },
    "kind_map": {
        "incident": "incident",
        "sc_req_item": "request",
        "sc_request": "request",
        "problem": "problem",
    },
    "responded": {"before_statuses": ["1", "New", "101"], "fields": ["work_notes"]},
}


def _preset(defaults: dict[str, Any]) -> Any:
    """A `mode="before"` validator laying the configured keys over a desk's built-in mapping."""

    def merge(value: object) -> object:
        return {**defaults, **value} if isinstance(value, Mapping) else value

    return BeforeValidator(merge)


class TicketMappings(_Model):
    """The ticket webhook mappings; keys given for jira and servicenow replace built-in ones."""

    jira: Annotated[TicketMapping, _preset(_JIRA_TICKETS)] = TicketMapping(**_JIRA_TICKETS)
    """Jira Service Management webhooks (`/webhooks/jira`)."""
    servicenow: Annotated[TicketMapping, _preset(_SERVICENOW_TICKETS)] = TicketMapping(
        **_SERVICENOW_TICKETS
    )
    """ServiceNow business rule / outbound REST messages (`/webhooks/servicenow`)."""
    generic: TicketMapping = TicketMapping()
    """Any JSON ticket record (`/webhooks/generic`)."""


class ReceiverRateLimit(_Model):
    """A token bucket per sender: `burst` requests at once, refilled at `per_second`."""

    per_second: float = Field(default=20.0, gt=0, allow_inf_nan=False)
    burst: int = Field(default=100, ge=1)


class ReceiversConfig(_Listener):
    """The webhook receivers (Jira, Alertmanager, ...) and how each sender authenticates."""

    listen: ListenAddress = "127.0.0.1:8088"
    auth: dict[str, ReceiverAuthConfig] = {}
    allow_unauthenticated: list[str] = []
    """Senders accepted without credentials: an explicit opt-out, never the default."""
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    rate_limit: ReceiverRateLimit = ReceiverRateLimit()
    alertmanager: AlertmanagerConfig = AlertmanagerConfig()
    """How Alertmanager alerts become service states (`/webhooks/alertmanager`)."""
    tickets: TicketMappings = TicketMappings()
    """How service desk records become ticket events (`/webhooks/jira`, ...)."""

    @model_validator(mode="after")
    def _auth_or_opt_out(self) -> ReceiversConfig:
        problems = _Problems(type(self).__name__)
        for index, source in enumerate(self.allow_unauthenticated):
            if source in self.auth:
                problems.add(
                    ("allow_unauthenticated", index),
                    f"{source!r} has credentials under auth; remove it from one of the two",
                    source,
                )
        problems.raise_any()
        return self


class PipelineConfig(_Model):
    """Tuning of the ingest loop."""

    group_id: str = Field(default="slamon-pipeline", min_length=1)
    instance_id: InstanceId | None = None
    """Kafka static membership (`group.instance.id`): a worker restarted under the same id
    gets its partitions back at once, without a rebalance; one id per worker."""
    # Upper bound only: a poll takes what the client has fetched and never waits to fill a
    # batch, so a large bound costs no freshness while a backlog is stored 3x cheaper.
    batch_size: int = Field(default=10_000, ge=1)
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
    # Degraded service is reported apart; some contracts count it as downtime too.
    count_partial_outages: bool = False


class OutageFromProbes(_Model):
    """Consecutive failed probes open an outage; consecutive good ones close it."""

    failures: int = Field(default=3, ge=1)
    recoveries: int = Field(default=1, ge=1)


class StatusRange(_Model):
    """HTTP status codes from `low` to `high` inclusive, written `200`, `200-299` or `2xx`."""

    low: int = Field(ge=100, le=599)
    high: int = Field(ge=100, le=599)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"low": value, "high": value}
        if not isinstance(value, str):
            return value
        match = _STATUS_RANGE.fullmatch(value.strip().lower())
        if match is None:
            raise ValueError(
                f"invalid status {value!r}: expected a code (204), a range (200-299) or a "
                "class (2xx)"
            )
        hundreds, low, high = match.groups()
        if hundreds is not None:
            return {"low": int(hundreds) * 100, "high": int(hundreds) * 100 + 99}
        return {"low": int(low), "high": int(high or low)}

    @model_validator(mode="after")
    def _ordered(self) -> StatusRange:
        if self.high < self.low:
            raise ValueError(
                f"invalid status range {self.low}-{self.high}: the end is below the start"
            )
        return self

    @model_serializer
    def _as_text(self) -> str:
        return str(self)

    def __contains__(self, status: int) -> bool:
        return self.low <= status <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


ProbeKind = Literal["http", "tcp", "dns"]
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_HTTP_ONLY = ("method", "headers", "expect_status", "expect_body", "tls_verify")
_DNS_ONLY = ("record", "expect")


class ProbeConfig(_Model):
    """One active check of a service: an HTTP(S) URL, a TCP `host:port` or a DNS name."""

    name: str = Field(min_length=1)
    http: HttpUrlText | None = None
    tcp: HostPort | None = None
    dns: Hostname | None = None
    interval: PositiveDuration = 30
    timeout: PositiveDuration = 5
    jitter: Duration = 0
    """Each run starts at a random offset within +-jitter of its slot (stable per probe)."""
    method: HttpMethod = "GET"
    headers: HttpHeaders = {}
    expect_status: list[StatusRange] | None = Field(default=None, min_length=1)
    """Statuses that pass; None passes every status below 400."""
    expect_body: Regex | None = None
    """A regular expression the response body must contain a match of."""
    tls_verify: bool = True
    """Whether an HTTPS check fails on a certificate the system does not trust."""
    record: Literal["A", "AAAA"] = "A"
    """The DNS record type a dns check resolves."""
    expect: list[IPv4Address | IPv6Address] | None = Field(default=None, min_length=1)
    """Addresses a dns check may resolve to; any other answer fails it."""

    @property
    def kind(self) -> ProbeKind:
        """Which kind of check the probe runs."""
        if self.http is not None:
            return "http"
        return "tcp" if self.tcp is not None else "dns"

    @model_validator(mode="after")
    def _one_target_in_time(self) -> ProbeConfig:
        problems = _Problems(type(self).__name__)
        targets = [key for key in ("http", "tcp", "dns") if getattr(self, key) is not None]
        if not targets:
            problems.add((), "set one of http (a URL), tcp (host:port) or dns (a host name)", None)
        for extra in targets[1:]:
            problems.add((extra,), f"set {targets[0]} or {extra}, not both", None)
        for key in (*_HTTP_ONLY, *_DNS_ONLY):
            owner = "http" if key in _HTTP_ONLY else "dns"
            # Compared with the default, not fields set: a dumped config lists every field.
            changed = getattr(self, key) != type(self).model_fields[key].default
            if changed and targets and owner != targets[0]:
                problems.add((key,), f"{key} applies to {owner} probes only", getattr(self, key))
        version = 4 if self.record == "A" else 6
        for index, address in enumerate(self.expect or []):
            if address.version != version:
                problems.add(
                    ("expect", index),
                    f"{address} is not an IPv{version} address, as {self.record} records hold",
                    str(address),
                )
        if self.jitter and 2 * self.jitter >= self.interval:
            problems.add(
                ("jitter",),
                f"jitter {format_duration(self.jitter)} must be under half the interval "
                f"{format_duration(self.interval)}, so that two runs never bunch",
                self.jitter,
            )
        if self.timeout > self.interval:
            problems.add(
                ("timeout",),
                f"timeout {format_duration(self.timeout)} must not exceed "
                f"interval {format_duration(self.interval)}",
                self.timeout,
            )
        problems.raise_any()
        return self


class HeartbeatConfig(_Model):
    """A job that pings `POST /heartbeat/{service}/{name}`; a missed ping is a failed probe."""

    name: str
    interval: PositiveDuration
    """How often the job pings."""
    grace: Duration = Field(ge=0)
    """How late a ping may be before it counts as missed."""

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        if not _SLUG.fullmatch(name):
            raise ValueError(
                f"invalid heartbeat name {name!r}: use lowercase letters, digits, '.', '_' "
                "and '-', starting with a letter or digit (it is part of the ping URL)"
            )
        return name


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
    heartbeats: list[HeartbeatConfig] = []
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

    @model_validator(mode="after")
    def _unique_heartbeat_names(self) -> ServiceConfig:
        # A heartbeat's events carry its name as the probe check, so it must not clash with a probe.
        problems = _Problems(type(self).__name__)
        taken = {probe.name: f"probes[{index}]" for index, probe in enumerate(self.probes)}
        for index, heartbeat in enumerate(self.heartbeats):
            if heartbeat.name in taken:
                problems.add(
                    ("heartbeats", index, "name"),
                    f"duplicate check name {heartbeat.name!r} (also {taken[heartbeat.name]})",
                    heartbeat.name,
                )
            taken.setdefault(heartbeat.name, f"heartbeats[{index}]")
        problems.raise_any()
        return self

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


_PROBE_QUERY_ONLY = ("check", "check_label")
_CAPACITY_QUERY_ONLY = ("resource", "unit", "capacity", "used_is_ratio", "host_label")


class PrometheusQueryConfig(_Model):
    """One PromQL query whose series become probe or capacity events."""

    name: str = Field(pattern=_SLUG.pattern)
    """Names the query in event sources and ids; unique among the queries."""
    query: str = Field(min_length=1)
    """The PromQL expression, evaluated as an instant (or range, when backfilling) query."""
    kind: Literal["probe", "capacity"]
    """`probe`: a series value above 0 is a passed check; `capacity`: the value is `used`."""
    service: ServiceRef | None = None
    """The service every series belongs to."""
    service_label: LabelName | None = None
    """The label whose value is the service id of a series."""
    check: str | None = Field(default=None, min_length=1)
    """The check name of probe events; the query name by default."""
    check_label: LabelName | None = None
    """The label whose value is the check name of a series."""
    resource: str | None = Field(default=None, min_length=1)
    """The resource of capacity events (cpu, disk, connections, ...)."""
    unit: str = Field(default="ratio", min_length=1)
    """The unit of `used` and `capacity`."""
    capacity: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    """The total amount of the resource, in `unit` (1 for ratios)."""
    used_is_ratio: bool = False
    """The value is a utilization ratio: used = value x capacity."""
    host_label: LabelName | None = None
    """The label whose value is the host of capacity events (e.g. `instance`)."""

    @model_validator(mode="after")
    def _consistent(self) -> PrometheusQueryConfig:
        problems = _Problems(type(self).__name__)
        if (self.service is None) == (self.service_label is None):
            loc: Loc = () if self.service is None else ("service_label",)
            problems.add(loc, "set one of service (an id) or service_label (a label name)", None)
        if self.check is not None and self.check_label is not None:
            problems.add(("check_label",), "set check or check_label, not both", None)
        misplaced = _CAPACITY_QUERY_ONLY if self.kind == "probe" else _PROBE_QUERY_ONLY
        for key in misplaced:
            if getattr(self, key) == type(self).model_fields[key].default:
                continue
            other = "capacity" if self.kind == "probe" else "probe"
            problems.add((key,), f"{key} applies to {other} queries only", getattr(self, key))
        if self.kind == "capacity" and self.resource is None:
            problems.add(("resource",), "a capacity query needs a resource (e.g. disk)", None)
        problems.raise_any()
        return self


class PrometheusImportConfig(_Model):
    """PromQL queries run on an interval against a Prometheus server."""

    url: HttpUrlText
    """Base URL of the Prometheus server, e.g. `http://127.0.0.1:9090`."""
    interval: PositiveDuration = 60
    timeout: PositiveDuration = 10
    queries: list[PrometheusQueryConfig] = Field(min_length=1)

    @field_validator("queries")
    @classmethod
    def _unique_names(cls, queries: list[PrometheusQueryConfig]) -> list[PrometheusQueryConfig]:
        problems = _Problems(cls.__name__)
        first: dict[str, int] = {}
        for index, query in enumerate(queries):
            if query.name in first:
                problems.add(
                    (index, "name"),
                    f"duplicate query name {query.name!r} (also queries[{first[query.name]}])",
                    query.name,
                )
            first.setdefault(query.name, index)
        problems.raise_any()
        return queries


class HostCapacityConfig(_Model):
    """Capacity samples of the machine slamon runs on (cpu, memory, disks, network links)."""

    interval: PositiveDuration = 60
    services: list[ServiceRef] = Field(min_length=1)
    """The services that run on this host; every sample is published for each."""
    mounts: list[str] = Field(default=["/"])
    """Mount points whose disk usage is sampled."""
    network: dict[str, float] = {}
    """Interface name -> link capacity in bytes per second; only these are sampled."""
    host: str | None = Field(default=None, min_length=1)
    """The host name in the events; the machine's own name by default."""

    @field_validator("network")
    @classmethod
    def _positive_links(cls, network: dict[str, float]) -> dict[str, float]:
        problems = _Problems(cls.__name__)
        for interface, capacity in network.items():
            if not capacity > 0 or capacity == float("inf"):
                problems.add((interface,), "link capacity must be a positive number", capacity)
        problems.raise_any()
        return network


class CollectorsConfig(_Model):
    """Collectors that pull events from elsewhere: a Prometheus server, this host."""

    prometheus: PrometheusImportConfig | None = None
    host: HostCapacityConfig | None = None


def _member(value: object, name: str) -> object:
    """Field `name` of raw (mapping) or already typed (model) input, None when absent."""
    if isinstance(value, Mapping):
        return value.get(name)
    if isinstance(value, BaseModel):
        return getattr(value, name, None)
    return None


def _service_references(data: Mapping[Any, Any]) -> Iterator[tuple[Loc, object]]:
    """Every place outside `services` that names a service, with the id written there."""
    collectors = _member(data, "collectors")
    for index, service_id in enumerate(_items(_member(_member(collectors, "host"), "services"))):
        yield ("collectors", "host", "services", index), service_id
    queries = _items(_member(_member(collectors, "prometheus"), "queries"))
    for index, query in enumerate(queries):
        yield ("collectors", "prometheus", "queries", index, "service"), _member(query, "service")
    receivers = _member(data, "receivers")
    label_map = _member(_member(receivers, "alertmanager"), "label_map")
    for label, values in _pairs(label_map):
        for value, service_id in _pairs(values):
            yield ("receivers", "alertmanager", "label_map", str(label), str(value)), service_id
    tickets = _member(receivers, "tickets")
    for desk in TicketMappings.model_fields:
        for key, service_id in _pairs(_member(_member(tickets, desk), "service_map")):
            yield ("receivers", "tickets", desk, "service_map", str(key)), service_id


def _items(value: object) -> list[object]:
    """The items of a raw list; nothing for anything else (its own check reports it)."""
    return list(value) if isinstance(value, list | tuple) else []


def _pairs(value: object) -> list[tuple[object, object]]:
    """The entries of a raw mapping; nothing for anything else (its own check reports it)."""
    return list(value.items()) if isinstance(value, Mapping) else []


def _unknown_service_problems(data: Mapping[Any, Any], problems: _Problems) -> None:
    """Report service ids named by collectors and receivers that no service has."""
    services = _items(data.get("services"))
    known = {i for i in (_member(service, "id") for service in services) if isinstance(i, str)}
    listed = ", ".join(sorted(known)) or "none configured"
    for loc, service_id in _service_references(data):
        # A value that is no service id at all gets the format's own error instead.
        if isinstance(service_id, str) and _SLUG.fullmatch(service_id) and service_id not in known:
            problems.add(loc, f"unknown service {service_id!r} (services: {listed})", service_id)


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
    reports: ReportsConfig = ReportsConfig()
    spool: SpoolConfig = SpoolConfig()
    exporter: ExporterConfig = ExporterConfig()
    receivers: ReceiversConfig = ReceiversConfig()
    pipeline: PipelineConfig = PipelineConfig()
    collectors: CollectorsConfig = CollectorsConfig()
    calendars: dict[str, CalendarConfig] = {}
    services: list[ServiceConfig] = []

    @model_validator(mode="wrap")
    @classmethod
    def _cross_check(cls, data: object, handler: ValidatorFunctionWrapHandler) -> SlamonConfig:
        problems = _Problems(cls.__name__)
        if isinstance(data, Mapping):
            _reference_problems(data, problems)
            _unknown_service_problems(data, problems)
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
